"""`kpkt import` and `kpkt run` on kubectl dumps: the shapes kubectl prints, the mapping, the
report of what is left out, CNI detection, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpkt import __version__, runner
from kpkt.errors import KpktError
from kpkt.importer import ranges
from kpkt.importer.documents import KubeObject
from kpkt.importer.sources import load_cluster
from kpkt.importer.topology import import_files, import_objects
from kpkt.topology import load
from kpkt.topology.load import load_topology, load_topology_text

from conftest import ROOT

FIXTURES = ROOT / "tests" / "import"
FLANNEL = FIXTURES / "two-node-flannel.yaml"
EXTRAS = FIXTURES / "two-node-extras.yaml"
CALICO = FIXTURES / "two-node-calico.yaml"
CILIUM = FIXTURES / "two-node-cilium.yaml"
WEAVE = FIXTURES / "two-node-weave.yaml"
WEAVE_REAL = FIXTURES / "two-node-weave-real.yaml"  # pods outside their nodes' podCIDRs
TWO_NODE = ROOT / "topologies" / "two-node.yaml"


def kpkt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpkt", *args], capture_output=True, text=True)


def items() -> list[dict]:
    return yaml.safe_load(FLANNEL.read_text())["items"]


def dump(tmp_path: Path, objects: list[dict], name: str = "dump.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


def named(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_the_imported_tutorial_cluster_gives_the_captures_of_two_node_yaml(tmp_path: Path):
    imported = load_cluster([FLANNEL, EXTRAS])
    runner.run(imported, folder=tmp_path / "imported", report=False)
    runner.run(load_topology(TWO_NODE), folder=tmp_path / "written", report=False)
    written = sorted(p.name for p in (tmp_path / "written").iterdir() if p.suffix != ".json")
    assert written == sorted(
        p.name for p in (tmp_path / "imported").iterdir() if p.suffix != ".json"
    )
    assert len(written) > 20
    for name in written:
        same = (tmp_path / "imported" / name).read_bytes() == (
            tmp_path / "written" / name
        ).read_bytes()
        assert same, f"{name} differs"


def test_the_tutorial_cluster_on_flannel_host_gw_gives_the_captures_of_two_node_yaml_on_it(
    tmp_path: Path,
):
    """The same dump from a cluster whose flannel runs the host-gw backend (its ConfigMap and
    node annotations say so) against two-node.yaml with `flannel: {backend: host-gw}`."""
    objects = items()
    config = named(objects, "ConfigMap", "kube-flannel-cfg")
    config["data"]["net-conf.json"] = config["data"]["net-conf.json"].replace("vxlan", "host-gw")
    for obj in objects:
        if obj["kind"] == "Node":
            obj["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-type"] = "host-gw"
    imported = load_cluster([dump(tmp_path, objects), EXTRAS])
    assert imported.cluster.cni_options == {"backend": "host-gw"}
    text = TWO_NODE.read_text().replace(
        "cluster:\n  cni: flannel\n", "cluster:\n  cni: flannel\n  flannel: {backend: host-gw}\n"
    )
    assert "host-gw" in text
    runner.run(imported, folder=tmp_path / "imported", report=False)
    written = load_topology_text(text, str(TWO_NODE))
    runner.run(written, folder=tmp_path / "written", report=False)
    names = sorted(p.name for p in (tmp_path / "written").iterdir() if p.suffix != ".json")
    assert names == sorted(p.name for p in (tmp_path / "imported").iterdir() if p.suffix != ".json")
    assert "node1__flannel.1.pcap" not in names
    for name in names:
        same = (tmp_path / "imported" / name).read_bytes() == (
            tmp_path / "written" / name
        ).read_bytes()
        assert same, f"{name} differs"


def test_the_tutorial_cluster_on_calico_gives_the_captures_of_two_node_calico_yaml(
    tmp_path: Path,
):
    """The Calico dump (calico-node pods, an IPIP IPPool with /26 blocks, BlockAffinities, the
    nodes' spec.podCIDR kube-controller-manager's /24s of another range) with the extras and the
    nodes' default route Calico needs, against two-node-calico.yaml: the nodes' pod ranges are
    their blocks."""
    extras = yaml.safe_load(EXTRAS.read_text())
    extras["cluster"]["underlay"] = {"gateway": "192.168.50.254"}
    overlay = tmp_path / "extras.yaml"
    overlay.write_text(yaml.safe_dump(extras))
    imported = load_cluster([CALICO, overlay])
    assert imported.cluster.cni == "calico"
    assert [str(node.pod_cidr) for node in imported.nodes] == ["10.1.1.0/26", "10.1.2.0/26"]
    assert (
        "2x nodes' pod ranges are their IPAM blocks (/26, as their BlockAffinity objects show), "
        "not spec.podCIDR: Node node1: 10.1.1.0/26, Node node2: 10.1.2.0/26"
    ) in import_files([CALICO]).notes.lines()
    text = (ROOT / "topologies" / "two-node-calico.yaml").read_text()
    for calico, extras_payload in (
        ("same node, routed", "same node, bridged"),
        ("IPIP)", "VXLAN)"),
    ):
        assert calico in text
        text = text.replace(calico, extras_payload)  # the extras' traffic names flannel's path
    written = load_topology_text(text, "two-node-calico.yaml")
    assert "node1__tunl0.pcap" in assert_same_captures(imported, written, tmp_path)


def calico_objects(change) -> list[KubeObject]:
    """The Calico dump's objects, changed by `change` (a function of the parsed items)."""
    objects = yaml.safe_load(CALICO.read_text())["items"]
    change(objects)
    return [
        KubeObject(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"], o, "d")
        for o in objects
    ]


def without(kind: str):
    def change(objects: list[dict]) -> None:
        objects[:] = [o for o in objects if o["kind"] != kind]

    return change


def without_tunnels(objects: list[dict]) -> None:
    without("BlockAffinity")(objects)
    for obj in objects:
        if obj["kind"] == "Node":
            del obj["metadata"]["annotations"]["projectcalico.org/IPv4IPIPTunnelAddr"]


def blocks_of(objects: list[KubeObject]) -> tuple[list[str], list[str]]:
    imported = import_objects(objects, None, "dump")
    blocks = [node["podCIDR"] for node in imported.document["nodes"]]
    return blocks, [line for line in imported.notes.lines() if "IPAM block" in line]


def test_without_block_affinities_calico_blocks_come_from_tunnel_addresses_then_pods():
    """The evidence of a node's block, strongest first: its BlockAffinity, its tunnel address
    (from its block), its pods' addresses; a node with none gets the pool's first free block."""
    blocks, notes = blocks_of(calico_objects(without("BlockAffinity")))
    assert blocks == ["10.1.1.0/26", "10.1.2.0/26"]
    assert notes[0].startswith("2x nodes' pod ranges are their IPAM blocks (/26, as their ")
    assert "tunnel addresses show" in notes[0]
    blocks, notes = blocks_of(calico_objects(without_tunnels))
    assert blocks == ["10.1.1.0/26", "10.1.2.0/26"]
    assert "(/26, as their pods' addresses show), not spec.podCIDR" in notes[0]

    def no_pod_cidrs(objects: list[dict]) -> None:  # kube-controller-manager allocates none
        for obj in objects:
            if obj["kind"] == "Node":
                del obj["spec"]["podCIDR"], obj["spec"]["podCIDRs"]

    assert blocks_of(calico_objects(no_pod_cidrs))[0] == ["10.1.1.0/26", "10.1.2.0/26"]

    def node2_empty(objects: list[dict]) -> None:
        without_tunnels(objects)
        objects[:] = [
            o
            for o in objects
            if o["kind"] != "Pod"
            or o["spec"].get("nodeName") != "node2"
            or o["spec"].get("hostNetwork")
        ]

    blocks, notes = blocks_of(calico_objects(node2_empty))
    assert blocks == ["10.1.1.0/26", "10.1.0.0/26"]  # the pool 10.1.0.0/16's first free block
    assert notes[1] == (
        "1x nodes with no IPAM block in the dump (no BlockAffinity, tunnel address or pod) get "
        "the first free block of the IPPool: Node node2: 10.1.0.0/26"
    )


def test_calico_blocks_that_kpkt_cannot_model_are_errors():
    def two_blocks(objects: list[dict]) -> None:
        affinity = copy.deepcopy(named(objects, "BlockAffinity", "node1-10-1-1-0-26"))
        affinity["metadata"]["name"] = "node1-10-1-1-64-26"
        affinity["spec"]["cidr"] = "10.1.1.64/26"
        objects.append(affinity)

    with pytest.raises(
        KpktError, match=r"^Node node1: 2 IPAM blocks \(10.1.1.0/26, 10.1.1.64/26\)"
    ):
        import_objects(calico_objects(two_blocks), None, "dump")

    def stray_pod(objects: list[dict]) -> None:
        pod = named(objects, "Pod", "pod-b")
        pod["status"]["podIP"] = "10.1.1.70"
        pod["status"].pop("podIPs", None)

    with pytest.raises(
        KpktError,
        match=r"^Pod default/pod-b: status.podIP 10.1.1.70 is outside Node node1's IPAM block "
        r"10.1.1.0/26 \(as its BlockAffinity objects show\); kpkt models one block per node",
    ):
        import_objects(calico_objects(stray_pod), None, "dump")


def assert_same_captures(imported, written, tmp_path: Path) -> list[str]:
    """Runs both topologies and checks that they write the same capture files, byte for byte;
    returns their names."""
    runner.run(imported, folder=tmp_path / "imported", report=False)
    runner.run(written, folder=tmp_path / "written", report=False)
    names = sorted(p.name for p in (tmp_path / "written").iterdir() if p.suffix != ".json")
    assert names == sorted(p.name for p in (tmp_path / "imported").iterdir() if p.suffix != ".json")
    assert len(names) > 20
    for name in names:
        same = (tmp_path / "imported" / name).read_bytes() == (
            tmp_path / "written" / name
        ).read_bytes()
        assert same, f"{name} differs"
    return names


def test_the_tutorial_cluster_on_cilium_gives_the_captures_of_cilium_two_node_yaml(
    tmp_path: Path,
):
    """The Cilium dump (agent and operator pods, the agents' node annotations, cilium-config
    with tunnel routing, CiliumNodes) with the extras, against cilium-two-node.yaml."""
    imported = load_cluster([CILIUM, EXTRAS])
    assert imported.cluster.cni == "cilium"
    text = (ROOT / "topologies" / "cilium-two-node.yaml").read_text()
    calls = "GET / (same node, BPF redirect)"
    assert calls in text
    text = text.replace(calls, "GET / (same node, bridged)")  # the extras' payload
    # pod-a's label in the cluster (Cilium's identities come from labels; the ones controllers
    # stamp, pod-template-hash, controller-revision-hash, ..., do not count)
    text = text.replace(
        "        ip: 10.1.1.5\n", "        ip: 10.1.1.5\n        labels: {app: client}\n"
    )
    assert "labels: {app: client}" in text
    written = load_topology_text(text, "cilium-two-node.yaml")
    names = assert_same_captures(imported, written, tmp_path)
    assert "node1__cilium_vxlan.pcap" in names


def test_the_tutorial_cluster_on_weave_gives_the_captures_of_weave_yaml(tmp_path: Path):
    """The Weave Net dump (weave-net pods with their IPALLOC_RANGE, the weave-net ConfigMap)
    with the extras, against weave.yaml."""
    imported = load_cluster([WEAVE, EXTRAS])
    assert imported.cluster.cni == "weave"
    names = assert_same_captures(
        imported, load_topology(ROOT / "topologies" / "weave.yaml"), tmp_path
    )
    assert "node1__weave.pcap" in names


def test_import_writes_a_topology_run_accepts_with_its_header(tmp_path: Path):
    out = tmp_path / "cluster.yaml"
    done = kpkt("import", str(FLANNEL), "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.startswith(f"# Imported by kpkt {__version__} (`kpkt import`) from:\n")
    import hashlib

    assert f"{FLANNEL}  sha256 {hashlib.sha256(FLANNEL.read_bytes()).hexdigest()}" in text
    topology = load_topology(out)
    assert [node.name for node in topology.nodes] == ["node1", "node2"]
    pods = {pod.name: pod for pod in topology.pods()}
    assert str(pods["pod-c"].ip) == "10.1.2.10" and pods["pod-d"].hostname == "db-0"
    assert "db-migrate-x7q2w" not in pods and "kube-flannel-ds-4wz8k" not in pods
    web = next(s for s in topology.services if s.name == "web-service")
    assert web.type == "NodePort" and str(web.cluster_ip) == "10.96.0.80"
    assert {str(e.ip) for e in web.endpoints} == {"10.1.1.6", "10.1.2.10"}
    assert str(topology.cluster.dns.service_ip) == "10.96.0.10"
    assert str(topology.cluster.pod_cidr) == "10.1.0.0/16"


def test_what_is_left_out_is_reported_one_line_per_reason_with_a_count():
    done = kpkt("import", str(FLANNEL))
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert (
        "note: 4x hostNetwork pods are their node (the node's address and ports): Pod "
        "kube-flannel/kube-flannel-ds-4wz8k, Pod kube-flannel/kube-flannel-ds-p9m3r, Pod "
        "kube-system/kube-apiserver-node1, and 1 more" in notes
    )
    assert (
        "note: 1x Secrets skipped without reading their data: Secret default/db-credentials"
        in notes
    )
    assert any("finished pods" in line and "db-migrate-x7q2w" in line for line in notes)
    assert all(f"#   {line.removeprefix('note: ')}" in done.stdout for line in notes)


@pytest.mark.parametrize("shape", ["json", "multi-document", "single objects", "typed list"])
def test_every_shape_kubectl_prints_gives_the_same_topology(tmp_path: Path, shape: str):
    objects = items()
    if shape == "json":
        files = [tmp_path / "dump.json"]
        files[0].write_text(
            json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=4)
        )
    elif shape == "multi-document":
        files = [tmp_path / "dump.yaml"]
        files[0].write_text(yaml.safe_dump_all(objects))
    elif shape == "single objects":
        files = [tmp_path / f"{index:02}.yaml" for index in range(len(objects))]
        for path, obj in zip(files, objects, strict=True):
            path.write_text(yaml.safe_dump(obj))
    else:  # `kubectl get pods -o json` gives a PodList whose items may leave out their kind
        pods = [{k: v for k, v in o.items() if k != "kind"} for o in objects if o["kind"] == "Pod"]
        rest = [o for o in objects if o["kind"] != "Pod"]
        files = [tmp_path / "pods.json", dump(tmp_path, rest)]
        files[0].write_text(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": pods}))
    want = import_files([FLANNEL]).document
    got = import_files(files).document
    got["metadata"] = want["metadata"]
    assert got == want


def test_a_folder_of_dumps_with_an_overlay_runs(tmp_path: Path):
    folder = tmp_path / "cluster"
    folder.mkdir()
    (folder / "dump.yaml").write_text(FLANNEL.read_text())
    (folder / "extras.yaml").write_text(EXTRAS.read_text())
    done = kpkt("run", str(folder), "-o", str(tmp_path / "out"), "--no-report", "-q")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "pod-d.default__eth0.pcap").is_file()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["topology"] == "two-node"


def test_the_overlay_sets_a_pod_what_objects_do_not_say():
    topology = load_cluster([FLANNEL, EXTRAS])
    assert {pod.name: pod.resolver for pod in topology.pods()}["pod-d"] == "musl"
    assert [external.name for external in topology.externals] == ["laptop", "upstream-dns"]


def test_endpointslices_win_over_the_selector(tmp_path: Path):
    objects = items()
    web = named(objects, "EndpointSlice", "web-service-8xq4t")
    web["endpoints"] = web["endpoints"][1:]  # only pod-c, though the selector picks pod-b too
    document = import_files([dump(tmp_path, objects)]).document
    service = next(s for s in document["services"] if s["name"] == "web-service")
    assert "selector" not in service
    assert service["endpoints"] == [{"ip": "10.1.2.10"}]
    assert service["ports"][0]["targetPort"] == 8080
    topology = load_cluster([tmp_path / "dump.yaml"])
    spec = next(s for s in topology.services if s.name == "web-service")
    assert [str(e.ip) for e in spec.endpoints] == ["10.1.2.10"]


def test_readiness_comes_from_the_pods_conditions(tmp_path: Path):
    objects = items()
    named(objects, "Pod", "pod-c")["status"]["conditions"][0]["status"] = "False"
    topology = load_cluster([dump(tmp_path, objects)])
    assert {pod.name: pod.ready for pod in topology.pods()}["pod-c"] is False


def test_policies_and_namespace_labels_light_up_when_the_loader_has_their_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": "default", "uid": "x", "generation": 1},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    path = dump(tmp_path, [*items(), policy])
    if "networkPolicies" not in load.TOP_KEYS:
        notes = import_files([path]).notes.lines()
        assert (
            "1x NetworkPolicies not supported by this kpkt yet: NetworkPolicy default/deny-all"
            in notes
        )
        assert "1x Namespace labels not supported by this kpkt yet: Namespace kube-flannel" in notes
    monkeypatch.setattr(load, "TOP_KEYS", (*load.TOP_KEYS, "namespaces", "networkPolicies"))
    document = import_files([path]).document
    assert document["networkPolicies"] == [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-all", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }
    ]
    assert document["namespaces"] == [
        {"name": "kube-flannel", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}
    ]


def without_flannel(objects: list[dict]) -> list[dict]:
    kept = [o for o in objects if "flannel" not in o["metadata"]["name"]]
    for obj in kept:
        annotations = obj["metadata"].get("annotations") or {}
        for key in [k for k in annotations if k.startswith("flannel.alpha.coreos.com/")]:
            del annotations[key]
    return kept


def test_an_unsupported_cni_is_an_error_naming_what_was_found(tmp_path: Path):
    kindnet = copy.deepcopy(named(items(), "Pod", "kube-proxy-8cz4v"))
    kindnet["metadata"]["name"] = "kindnet-5hx2c"
    path = dump(tmp_path, [*without_flannel(items()), kindnet])
    out = tmp_path / "cluster.yaml"
    done = kpkt("import", str(path), "-o", str(out))
    assert done.returncode == 2
    assert done.stderr == (
        "error: the cluster runs kindnet (found: Pod kube-system/kindnet-5hx2c), which this "
        f"kpkt does not model; it models {', '.join(load.CNIS)}: pass --cni flannel to import "
        "it as that\n"
    )
    assert not out.exists()
    assert kpkt("import", str(path), "--cni", "flannel", "-o", str(out)).returncode == 0
    assert "cni: flannel" in out.read_text()


def test_the_flannel_backend_is_read_from_node_annotations(tmp_path: Path):
    objects = without_flannel(items())
    named(objects, "Node", "node1")["metadata"]["annotations"][
        "flannel.alpha.coreos.com/backend-type"
    ] = "host-gw"
    path = dump(tmp_path, objects)
    if "flannel" in load.CLUSTER_KEYS:
        assert import_files([path]).document["cluster"]["flannel"] == {"backend": "host-gw"}
    else:
        with pytest.raises(
            KpktError, match=r"runs flannel \(host-gw\) \(found: Node node1's annotation"
        ):
            import_files([path])


def test_without_any_sign_of_a_cni_flannel_is_assumed_and_said(tmp_path: Path):
    imported = import_files([dump(tmp_path, without_flannel(items()))])
    assert imported.document["cluster"]["cni"] == "flannel"
    assert any(line.startswith("1x CNI not detected") for line in imported.notes.lines())


def broken(change) -> list[dict]:
    objects = items()
    change(objects)
    return objects


BAD = {
    "pod without podIP": (
        lambda o: [named(o, "Pod", "pod-b")["status"].pop(key) for key in ("podIP", "podIPs")],
        "error: Pod default/pod-b: no IPv4 status.podIP (Running); kpkt needs the address of",
    ),
    "node without pod CIDR": (
        lambda o: [named(o, "Node", "node2")["spec"].pop(key) for key in ("podCIDR", "podCIDRs")],
        "error: Node node2: no IPv4 spec.podCIDR; kpkt needs each node's pod range",
    ),
    "pod outside its node's range": (
        lambda o: named(o, "Pod", "pod-c")["status"].update(podIP="10.1.1.77", podIPs=[]),
        "error: Pod default/pod-c: status.podIP 10.1.1.77 is outside Node node2's podCIDR "
        "10.1.2.0/24",
    ),
    "two pods with one address": (
        lambda o: named(o, "Pod", "pod-b")["status"].update(podIP="10.1.1.5", podIPs=[]),
        "error: Pod default/pod-b: address 10.1.1.5 is also Pod default/pod-a's; the dump is",
    ),
    "a duplicate that differs": (
        lambda o: o.append(
            {**named(o, "Service", "db"), "spec": {"clusterIP": "None", "ports": []}}
        ),
        "error: Service default/db: given twice, differently",
    ),
    "pod on a node not given": (
        lambda o: named(o, "Pod", "pod-c")["spec"].update(nodeName="node9"),
        "error: Pod default/pod-c: spec.nodeName node9 is not among the Nodes",
    ),
    "no nodes": (
        lambda o: [o.remove(node) for node in [x for x in o if x["kind"] == "Node"]],
        "error: no Node among the objects; include them",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_objects_are_one_error_line_naming_the_object_and_nothing_is_written(
    tmp_path: Path, case: str
):
    change, message = BAD[case]
    path = dump(tmp_path, broken(change))
    out = tmp_path / "cluster.yaml"
    done = kpkt("import", str(path), "-o", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "text, message",
    [
        ("just: a mapping\n", "error: {path}: document 1: not a Kubernetes object (no `kind`)"),
        ("- [1, 2\n", "error: {path}: line 2, column 1: not YAML"),
        ("kind: !!int x\n", "error: {path}: line 1, column 7: not YAML: 'x' is not a value"),
        ('{"kind": "List", "items": [}', "error: {path}: line 1, column 28: not JSON"),
        ("kind: Pod\nmetadata: {}\n", "error: {path}: document 1: Pod without metadata.name"),
        ("", "error: {path}: holds no Kubernetes object"),
    ],
)
def test_a_file_that_is_not_kubectl_output_is_refused(tmp_path: Path, text: str, message: str):
    path = tmp_path / "dump.yaml"
    path.write_text(text)
    done = kpkt("import", str(path), "-o", str(tmp_path / "out.yaml"))
    assert done.returncode == 2
    assert done.stderr.startswith(message.format(path=path)), done.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_missing_files_folders_and_unwritable_outputs_are_one_line(tmp_path: Path):
    done = kpkt("import", str(tmp_path / "nope.yaml"))
    assert (done.returncode, done.stderr) == (2, f"error: {tmp_path / 'nope.yaml'}: no such file\n")
    done = kpkt("import", str(FLANNEL), "-o", str(tmp_path / "no" / "such" / "dir.yaml"))
    assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith(
        f"error: {tmp_path / 'no' / 'such' / 'dir.yaml'}: cannot write it"
    )


def test_overlay_problems_name_the_overlay(tmp_path: Path):
    overlay = tmp_path / "extras.yaml"
    overlay.write_text(
        "apiVersion: kpkt/v1\nkind: Overlay\npods: [{name: pod-z, resolver: musl}]\n"
    )
    done = kpkt("run", str(FLANNEL), str(overlay), "-o", str(tmp_path / "out"))
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {overlay}: pods[0]: no imported pod default/pod-z\n",
    )
    overlay.write_text("apiVersion: kpkt/v1\nkind: Overlay\nnodes: []\n")
    done = kpkt("run", str(FLANNEL), str(overlay), "-o", str(tmp_path / "out"))
    assert done.returncode == 2 and "nodes: not a key of an overlay" in done.stderr
    overlay.write_text(
        "apiVersion: kpkt/v1\nkind: Overlay\ntraffic: [{udp: {from: pod-z, to: pod-a, dport: 1}}]\n"
    )
    done = kpkt("run", str(FLANNEL), str(overlay), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"error: {overlay}: traffic[0].udp.from: no pod or node named 'pod-z'"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kubernetes, ips, want",
    [
        ("10.96.0.1", ["10.96.0.10", "10.96.200.3"], "10.96.0.0/12"),  # kubeadm
        ("10.43.0.1", ["10.43.0.10"], "10.43.0.0/16"),  # k3s
        ("172.20.0.1", ["172.20.0.10"], "172.20.0.0/16"),  # EKS
    ],
)
def test_the_service_range_starts_before_the_kubernetes_service(kubernetes, ips, want):
    from ipaddress import IPv4Address, IPv4Network

    taken = [IPv4Network("10.42.0.0/16"), IPv4Network("192.168.50.0/24")]
    got = ranges.service_range(IPv4Address(kubernetes), [IPv4Address(ip) for ip in ips], taken)
    assert str(got) == want


def test_every_overlay_key_is_documented():
    from kpkt.importer import overlay

    text = (ROOT / "docs" / "import.md").read_text()
    assert all(f"`{key}`" in text for key in overlay.KEYS)
    assert "kpkt import dump.yaml -o cluster.yaml" in (ROOT / "README.md").read_text()


def test_calico_shows_through_its_pods_annotations_and_ippools():
    from kpkt.importer.cni import detect
    from kpkt.importer.documents import KubeObject

    pool = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": {"cidr": "10.244.0.0/16", "ipipMode": "Always", "vxlanMode": "Never"},
    }
    node = {
        "kind": "Node",
        "metadata": {"name": "n1", "annotations": {"projectcalico.org/IPv4Address": "10.0.0.1/24"}},
    }
    pod = {"kind": "Pod", "metadata": {"name": "calico-node-x2k9p", "namespace": "calico-system"}}
    objects = [
        KubeObject(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"], o, "d")
        for o in (pool, node, pod)
    ]
    found = [(f.cni, f.evidence, f.settings) for f in detect(objects)]
    assert found == [
        ("calico", "IPPool default-ipv4-ippool", {"ipipMode": "Always", "vxlanMode": "Never"}),
        ("calico", "Node n1's annotation projectcalico.org/IPv4Address", {}),
        ("calico", "Pod calico-system/calico-node-x2k9p", {}),
    ]


def test_cilium_shows_through_its_ciliumnodes_and_node_annotations():
    """Without its pods in the dump (`kubectl get nodes,ciliumnodes`), Cilium still shows:
    its CiliumNode objects, and the node annotations its agent writes (network.cilium.io/ since
    v1.14, io.cilium.network. before); the import reads them, it does not note them unused."""
    from kpkt.importer.cni import detect

    cilium = yaml.safe_load(CILIUM.read_text())["items"]
    node = named(cilium, "CiliumNode", "node1")
    annotated = named(cilium, "Node", "node2")
    found = [
        (f.cni, f.evidence)
        for f in detect(
            [KubeObject(o["kind"], "", o["metadata"]["name"], o, "d") for o in (node, annotated)]
        )
    ]
    assert found == [
        ("cilium", "CiliumNode node1"),
        ("cilium", "Node node2's annotation network.cilium.io/ipv4-pod-cidr"),
    ]
    unused = [
        line
        for path in (CILIUM, CALICO)
        for line in import_files([path]).notes.lines()
        if "kpkt has no use for them" in line
    ]
    assert unused and not any("CiliumNode" in line or "BlockAffinity" in line for line in unused)


def cilium_with(**data: str) -> list[KubeObject]:
    """The Cilium dump's objects with cilium-config's `data` changed (None: the key removed)."""
    objects = yaml.safe_load(CILIUM.read_text())["items"]
    config = named(objects, "ConfigMap", "cilium-config")["data"]
    for key, value in data.items():
        if value is None:
            config.pop(key.replace("_", "-"))
        else:
            config[key.replace("_", "-")] = value
    return [
        KubeObject(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"], o, "d")
        for o in objects
    ]


def test_cilium_config_gives_the_cluster_cilium_settings():
    """cilium-config's routing-mode (tunnel before v1.14), kube-proxy-replacement and
    enable-host-legacy-routing are cluster.cilium's settings; Helm's defaults give none."""
    cluster = import_objects(cilium_with(), None, "d").document["cluster"]
    assert cluster["cni"] == "cilium" and "cilium" not in cluster
    bpf = cilium_with(kube_proxy_replacement="true", enable_host_legacy_routing="false")
    assert import_objects(bpf, None, "d").document["cluster"]["cilium"] == {
        "kubeProxyReplacement": True,
        "hostRouting": "bpf",
    }
    older = cilium_with(routing_mode=None, tunnel="vxlan", kube_proxy_replacement="disabled")
    assert "cilium" not in import_objects(older, None, "d").document["cluster"]
    for native in (
        cilium_with(routing_mode="native"),
        cilium_with(routing_mode=None, tunnel="disabled"),
    ):
        with pytest.raises(
            KpktError,
            match=r"^ConfigMap kube-system/cilium-config: routingMode 'native' is not one this "
            r"kpkt models \(tunnel\)",
        ):
            import_objects(native, None, "d")
    with pytest.raises(KpktError, match="kubeProxyReplacement 'partial' is not one this kpkt"):
        import_objects(cilium_with(kube_proxy_replacement="partial"), None, "d")


def weave_with(**env: str | None) -> list[KubeObject]:
    """The Weave dump's objects with the weave containers' environment changed (None: the
    variable removed)."""
    objects = yaml.safe_load(WEAVE.read_text())["items"]
    for obj in objects:
        if obj["kind"] == "Pod" and obj["metadata"]["name"].startswith("weave-net-"):
            variables = obj["spec"]["containers"][0]["env"]
            variables[:] = [v for v in variables if v["name"] not in env]
            variables += [{"name": k, "value": v} for k, v in env.items() if v is not None]
    return [
        KubeObject(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"], o, "d")
        for o in objects
    ]


def test_weave_pods_give_the_pod_range_and_the_sleeve_backend():
    """The weave container's IPALLOC_RANGE is cluster.podCIDR (weave's default 10.32.0.0/12 when
    unset, where it holds the pods); WEAVE_NO_FASTDP set makes weave's router use sleeve."""
    cluster = import_objects(weave_with(IPALLOC_RANGE="10.0.0.0/8"), None, "d").document["cluster"]
    assert (cluster["podCIDR"], cluster.get("weave")) == ("10.0.0.0/8", None)
    unset = import_objects(weave_with(IPALLOC_RANGE=None), None, "d").document["cluster"]
    assert unset["podCIDR"] == "10.1.0.0/16"  # weave's default does not hold the pods
    sleeve = import_objects(weave_with(WEAVE_NO_FASTDP="1"), None, "d").document["cluster"]
    assert sleeve["weave"] == {"mode": "sleeve"}


def test_a_calico_ippool_gives_the_cluster_calico_settings():
    from kpkt.importer.cni import Finding, cluster_settings
    from kpkt.importer.notes import Notes

    pod = Finding("calico", "Pod calico-system/calico-node-x2k9p")
    ipip = Finding("calico", "IPPool default", settings={"ipipMode": "Always"})
    assert cluster_settings([pod, ipip], None, Notes()) == {"cni": "calico"}
    vxlan = {"ipipMode": "Never", "vxlanMode": "Always", "natOutgoing": True}
    pool = Finding("calico", "IPPool default", settings=vxlan)
    assert cluster_settings([pod, pool], None, Notes()) == {
        "cni": "calico",
        "calico": {"ipipMode": "Never", "vxlanMode": "Always"},
    }
    odd = Finding("calico", "IPPool odd", settings={"ipipMode": "Sometimes"})
    with pytest.raises(KpktError, match="IPPool odd: ipipMode 'Sometimes' is not one"):
        cluster_settings([pod, odd], None, Notes())


def test_nodes_named_by_a_dotted_fqdn_are_named_by_their_first_label(tmp_path: Path):
    objects = items()
    named(objects, "Node", "node2")["metadata"]["name"] = "node2.eu-west-1.compute.internal"
    for obj in objects:
        if obj["kind"] == "Pod" and obj["spec"].get("nodeName") == "node2":
            obj["spec"]["nodeName"] = "node2.eu-west-1.compute.internal"
    imported = import_files([dump(tmp_path, objects)])
    assert [node["name"] for node in imported.document["nodes"]] == ["node1", "node2"]
    assert (
        "1x node names cut to their first label (kpkt names hosts with DNS labels): Node "
        "node2.eu-west-1.compute.internal" in imported.notes.lines()
    )
    topology = load_cluster([tmp_path / "dump.yaml"])
    assert {pod.name: pod.node for pod in topology.pods()}["pod-c"] == "node2"


def test_a_real_weave_cluster_imports_and_its_pods_talk_across_nodes(tmp_path: Path):
    """Weave's IPAM gives pods addresses from chunks of its whole range (10.32.0.2 on node1,
    10.44.0.1 on node2), not from spec.podCIDR: node1's podCIDR outside the range is left out
    (noted), node2 has none; the topology loads and its pods reach each other."""
    imported = import_files([WEAVE_REAL])
    document = imported.document
    assert document["cluster"]["podCIDR"] == "10.32.0.0/12"
    assert [node.get("podCIDR") for node in document["nodes"]] == [None, None]
    pods = {pod["name"]: pod["ip"] for node in document["nodes"] for pod in node["pods"]}
    assert (pods["pod-a"], pods["pod-c"]) == ("10.32.0.2", "10.44.0.1")
    assert any(
        "spec.podCIDR outside the CNI's allocation range" in n for n in imported.notes.lines()
    )
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "apiVersion: kpkt/v1\nkind: Overlay\ntraffic:\n"
        "- udp: {from: pod-a, to: pod-c, dport: 8080, payload: cross}\n"
        "- udp: {from: pod-d, to: pod-b, dport: 8080, payload: back}\n"
    )
    result = runner.run(load_cluster([WEAVE_REAL, overlay]))
    assert [log.outcome for log in result.network.journal.steps] == ["delivered", "delivered"]
