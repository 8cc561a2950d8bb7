"""`create` steps on the wire: a pod comes up mid-run as its CNI plugin brings it up.

From the reference (tests/reference/datapath.md §2.2 and §6.5, calico.md §2.1, cni-others.md
§1.7 and §2.3): the bridge plugin sets arp_notify=1 in the pod, so its eth0 sends a gratuitous
ARP when it comes up, and that ARP never makes it through cni0 (the port comes up
asynchronously); the FDB holds no entry for the pod until it first sends. Calico sets no
arp_notify (nothing is sent); Cilium sends nothing either (the reference's inference); weave's
plugin arpings the pod's address (tha all ones) 1 ms after setting it, flooded everywhere.
Inferred by kpkt (not in the captures): the gratuitous ARP is seen on the pod's eth0 and on its
host veth, and dropped by the bridge because the port is still disabled (`br_handle_frame`
drops what arrives on a port that is not learning or forwarding) until linkwatch reports its
carrier.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.errors import TopologyError
from kpkt.html_report.model import read_decisions
from kpkt.topology.load import load_topology_text

from conftest import tshark_read

HEAD = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: create}
cluster: {cni: CNI, underlay: {gateway: 192.168.50.100}}
nodes:
  - {name: node1, pods: [{name: client}]}
  - {name: node2, pods: [{name: db}]}
services:
  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
traffic:
"""
CREATE = "  - create: {pod: {name: web-1, labels: {app: web}}, node: NODE}\n"
HOST_GW = "flannel, flannel: {backend: host-gw}"
CNIS = ("flannel", HOST_GW, "calico", "cilium", "weave")


def load(traffic: str, cni: str = "flannel", node: str = "node1"):
    return load_topology_text(HEAD.replace("CNI", cni) + traffic.replace("NODE", node), "c.yaml")


def run(tmp_path: Path, traffic: str, cni: str = "flannel", node: str = "node1", **options):
    return runner.run(load(traffic, cni, node), folder=tmp_path / "out", report=False, **options)


def frames(result: runner.Run, capture: str) -> list[tuple[int, Ether]]:
    return [(t, Ether(f)) for t, f in read_pcap(result.folder / f"{capture}.pcap")]


def device(result: runner.Run, owner: str, name: str):
    return next(dev for dev in result.network.stacks[owner].devices if dev.name == name)


def test_a_flannel_pod_announces_itself_and_the_bridge_drops_it(tmp_path: Path) -> None:
    """arp_notify's gratuitous ARP: a request for the pod's own address, target MAC zero
    (inetdev_send_gratuitous_arp), sent as eth0 comes up; the host veth sees it arrive, cni0
    drops it (the port is not forwarding yet): no other port and not cni0 gets it, and the
    bridge has learned nothing of the pod."""
    result = run(tmp_path, CREATE, steps=1)
    log = result.network.journal.steps[0]
    assert (log.outcome, log.result) == (
        "applied",
        "web-1.default: created on node1 with 10.244.1.3",
    )
    [(sent_at, garp)] = frames(result, "web-1.default__eth0")
    assert garp[Ether].dst == "ff:ff:ff:ff:ff:ff" and len(garp) == 42
    assert (garp[ARP].op, garp[ARP].psrc, garp[ARP].pdst) == (1, "10.244.1.3", "10.244.1.3")
    assert garp[ARP].hwdst == "00:00:00:00:00:00"
    assert [bytes(f) for _, f in frames(result, "node1__veth-web-1")] == [bytes(garp)]
    assert not any(f.haslayer(ARP) for _, f in frames(result, "node1__cni0"))
    assert frames(result, "node1__veth-client") == []
    assert [(d.where, d.reason) for d in log.drops] == [("node1/veth-web-1", "link-down")]
    cni0 = device(result, "node1", "cni0")
    assert bytes.fromhex(garp[Ether].src.replace(":", "")) not in cni0.fdb.entries
    assert [port.name for port in cni0.ports] == ["veth-web-1", "veth-client"]
    assert not cni0.disabled  # forwarding once linkwatch reported the carrier


def test_the_bridge_learns_the_created_pod_when_it_first_sends(tmp_path: Path) -> None:
    """Its ARP reply to the client is the first frame of the pod cni0 forwards: what teaches
    cni0 the pod's MAC."""
    result = run(tmp_path, CREATE + "  - ping: {from: client, to: web-1}\n")
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["applied", "delivered"]
    mac = result.topology.created_pods()[0].mac
    arps = [f for _, f in frames(result, "node1__veth-web-1") if f.haslayer(ARP)]
    # the GARP (in, dropped), the client's who-has flooded to it (out), the pod's reply (in)
    assert [(f[ARP].op, f[Ether].src == mac) for f in arps] == [(1, True), (1, False), (2, True)]
    entry = device(result, "node1", "cni0").fdb.entries[bytes.fromhex(mac.replace(":", ""))]
    assert entry.port.name == "veth-web-1"


def test_the_service_gains_the_created_pod(tmp_path: Path) -> None:
    """Before the pod exists kube-proxy rejects; once its CNI ADD returned it is the endpoint."""
    send = "  - tcp: {from: client, to: 'web:80', payload: hi}\n"
    result = run(tmp_path, send + CREATE + send, node="node2")
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["refused", "applied", "delivered"]
    assert [d.reason for d in logs[0].drops] == ["service-no-endpoints"]
    web = [f for _, f in frames(result, "web-1.default__eth0") if f.haslayer(TCP)]
    assert web and {f[IP].dst for f in web if f[TCP].dport == 8080} == {"10.244.2.3"}


def test_ipam_gives_the_next_address_round_robin(tmp_path: Path) -> None:
    """host-local gives the next free address after the last one it gave: a pod re-created
    with a deleted one's name gets a new address, on its new node from that node's range."""
    topology = load(
        "  - create: {pod: {name: a}, node: node1}\n"
        "  - delete: {pod: a}\n"
        "  - create: {pod: {name: a}, node: node1}\n"
        "  - delete: {pod: a}\n"
        "  - create: {pod: {name: a, labels: {app: web}}, node: node2}\n"
        "  - delete: {pod: client}\n"
        "  - create: {pod: {name: b}, node: node1}\n"
    )
    created = topology.created_pods()
    assert [(p.node, str(p.ip)) for p in created] == [
        ("node1", "10.244.1.3"),
        ("node1", "10.244.1.4"),
        ("node2", "10.244.2.3"),
        ("node1", "10.244.1.5"),
    ]
    assert len({p.mac for p in created} | {p.mac for p in topology.pods()}) == 6
    # the last create's Service endpoints: only the pod that has the label
    [service] = [s for s in topology.steps[4].services if s.name == "web"]
    assert [str(e.ip) for e in service.endpoints] == ["10.244.2.3"]


def test_a_pod_created_again_goes_on_in_its_capture_files(tmp_path: Path) -> None:
    traffic = (
        "  - ping: {from: web-1, to: client}\n"
        "  - delete: {pod: web-1}\n"
        "  - create: {pod: {name: web-1}, node: node2}\n"
        "  - ping: {from: web-1, to: client}\n"
    )
    result = run(tmp_path, CREATE + traffic)
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["applied", "delivered", "applied", "applied"] + [
        "delivered"
    ]
    sources = [f[IP].src for _, f in frames(result, "web-1.default__eth0") if f.haslayer(ICMP)]
    assert sources == ["10.244.1.3", "10.244.1.2", "10.244.2.3", "10.244.1.2"]


def test_a_pod_created_on_another_node_is_declared_again_in_all_pcapng(
    tmp_path: Path, tshark: str
) -> None:
    """An interface block of all.pcapng cannot change: web-1, created again on node2, goes on in
    its pcap and under its interface name, with a second interface block that says node2, so
    tshark shows each frame where it was. Created again on the same node, it keeps its block.
    The report finds a frame's comment by its index under the name, across both blocks."""
    again = (
        "  - ping: {from: web-1, to: client}\n"
        "  - delete: {pod: web-1}\n"
        "  - create: {pod: {name: web-1}, node: NODE}\n"
        "  - ping: {from: web-1, to: client}\n"
    )
    result = run(tmp_path, CREATE.replace("NODE", "node1") + again, node="node2")
    where = "veth, the pod's end eth0 of web-1.default on"
    fields = ("-e", "frame.interface_id", "-e", "frame.interface_description", "-e", "ip.src")
    flag = 'frame.interface_name == "web-1.default/eth0"'
    rows = tshark_read(tshark, result.folder / "all.pcapng", "-Y", flag, "-T", "fields", *fields)
    rows = [row.split("\t") for row in rows.splitlines()]
    assert len(rows) == len(frames(result, "web-1.default__eth0"))
    moved = next(index for index, row in enumerate(rows) if row[1] != f"{where} node1")
    assert {row[1] for row in rows[moved:]} == {f"{where} node2"}
    assert {row[2] for row in rows[:moved] if row[2]} == {"10.244.1.3", "10.244.1.2"}
    assert {row[2] for row in rows[moved:] if row[2]} == {"10.244.2.3", "10.244.1.2"}
    assert len({row[0] for row in rows}) == 2
    comments = read_decisions(result.folder / "all.pcapng", {"web-1.default/eth0": {moved}})
    assert "created on node2" in comments["web-1.default/eth0", moved]

    result = run(tmp_path / "same", CREATE.replace("NODE", "node1") + again, node="node1")
    rows = tshark_read(tshark, result.folder / "all.pcapng", "-Y", flag, "-T", "fields", *fields)
    blocks = {tuple(row.split("\t")[:2]) for row in rows.splitlines()}
    assert len(blocks) == 1 and blocks.pop()[1] == f"{where} node1"


@pytest.mark.parametrize("cni", CNIS, ids=["flannel", "host-gw", "calico", "cilium", "weave"])
@pytest.mark.parametrize("node", ["node1", "node2"])
def test_a_created_pod_talks_on_every_cni(tmp_path: Path, cni: str, node: str) -> None:
    send = "  - tcp: {from: client, to: 'web:80', payload: hi}\n"
    ping = "  - ping: {from: web-1, to: db}\n"
    result = run(tmp_path, CREATE + send + ping, cni=cni, node=node)
    assert [log.outcome for log in result.network.journal.steps] == ["applied", *["delivered"] * 2]


def test_calico_and_cilium_pods_send_nothing_as_they_come_up(tmp_path: Path) -> None:
    for cni in ("calico", "cilium"):
        result = run(tmp_path / cni, CREATE, cni=cni, steps=1)
        assert frames(result, "web-1.default__eth0") == [], cni
    # Calico: the node's /32 route to the pod through its cali veth, no neighbour learned
    result = run(tmp_path / "routes", CREATE, cni="calico", steps=1)
    pod = result.topology.created_pods()[0]
    route = result.network.stacks["node1"].routes.lookup(pod.ip.packed)
    assert route.dev.name == pod.host_veth and route.dev.name.startswith("cali")
    assert route.dev.proxy_arp and route.network.prefixlen == 32


def test_weave_arpings_the_pod_and_floods_it_to_every_peer(tmp_path: Path) -> None:
    result = run(tmp_path, CREATE, cni="weave", steps=1)
    # sent, then reflected by its hairpin port (weave's pod ports are hairpin, like flannel's)
    [(t, garp), (_, reflected)] = frames(result, "web-1.default__eth0")
    assert bytes(reflected) == bytes(garp)
    assert garp[ARP].hwdst == "ff:ff:ff:ff:ff:ff" and garp[ARP].psrc == garp[ARP].pdst
    created_at = result.network.journal.steps[0].start_ns
    assert t - created_at == 1_000_000
    # flooded: the other pod of the node, and the pod on node2 through the overlay
    for capture in ("client.default__eth0", "db.default__eth0"):
        assert [f[ARP].psrc for _, f in frames(result, capture) if f.haslayer(ARP)] == [
            garp[ARP].psrc
        ], capture


@pytest.mark.parametrize(
    ("step", "path", "message"),
    [
        ("{pod: {name: web}, node: nod1}", "create.node", "no node named 'nod1'"),
        ("{pod: {name: web}}", "create.node", "name the node"),
        ("{node: node1}", "create.pod", "give the pod"),
        ("{pod: {name: client}, node: node2}", "create.pod", "pod default/client already runs"),
        ("{pod: {name: web, labels: {'-x': y}}, node: node1}", "create.pod.labels.-x", "label"),
        ("{pod: {name: web, ip: 10.244.1.2}, node: node1}", "create.pod.ip", "in use on node1"),
        ("{pod: {name: web, ip: 10.244.2.9}, node: node1}", "create.pod.ip", "outside"),
        ("{pod: {name: web, colour: red}, node: node1}", "create.pod", "colour"),
    ],
)
def test_bad_create_steps_are_refused(step: str, path: str, message: str) -> None:
    with pytest.raises(TopologyError) as raised:
        load(f"  - create: {step}\n")
    text = str(raised.value)
    assert f"traffic[0].{path}" in text and message in text, text


def test_a_created_pod_can_be_named_by_later_steps_only() -> None:
    with pytest.raises(TopologyError) as raised:
        load("  - ping: {from: web-1, to: client}\n" + CREATE)
    assert "traffic[0].ping.from: no pod or node named 'web-1'" in str(raised.value)


def test_a_rescheduled_pod_leaves_stale_state_behind(tmp_path: Path) -> None:
    """tests/golden/lifecycle-reschedule: web-a moves from node2 to node1. node2's neighbour
    entry still holds the old MAC, so a SYN to the old address is flooded to db's port (cni0
    has no FDB entry for that MAC any more) with Linux's SYN timeouts (tcp_syn_linear_timeouts
    4, then doubling), and connect() times out; the deleted namespace's own timers are gone
    with it (nothing more is sent or dropped there). Through the Service, TCP and the same UDP
    flow reach the new endpoint."""
    path = Path(__file__).parent / "golden" / "lifecycle-reschedule" / "topology.yaml"
    topology = load_topology_text(path.read_text(), str(path))
    result = runner.run(topology, folder=tmp_path / "out", report=False)
    logs = result.network.journal.steps
    outcomes = [log.outcome for log in logs]
    assert outcomes == ["delivered", "delivered", "applied", "applied", "timeout", "delivered"] + [
        "delivered"
    ]
    old_mac = next(pod.mac for pod in topology.pods() if pod.name == "web-a")
    flooded = [
        (t, f)
        for t, f in frames(result, "node2__veth-db")
        if f.haslayer(TCP) and f[TCP].flags == "S"
    ]
    assert {f[Ether].dst for _, f in flooded} == {old_mac}
    start = flooded[0][0]
    assert [t - start for t, _ in flooded] == [n * 1_000_000_000 for n in (0, 1, 2, 3, 4, 6, 10)]
    assert not [d for log in logs[2:] for d in log.drops if d.where.startswith("web-a")]
    new_ip = str(topology.created_pods()[0].ip)
    served = [f for t, f in frames(result, "web-a.default__eth0") if t > start and f.haslayer(IP)]
    assert {f[IP].dst for f in served if f[IP].src == "10.244.1.2"} == {new_ip}


POLICY = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: create-policy}
nodes:
  - name: node1
    pods:
      - {name: a, namespace: y, containers: [{name: web, ports: [{containerPort: 80}]}]}
      - {name: a, namespace: z}
  - {name: node2}
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: y-only-from-y, namespace: y}
    spec:
      podSelector: {}
      policyTypes: [Ingress]
      ingress: [{from: [{podSelector: {}}]}]
traffic:
  - create:
      pod: {name: d, namespace: y, containers: [{name: web, ports: [{containerPort: 80}]}]}
      node: node2
  - probe: {from: z/a, to: y/d, port: 80}
  - probe: {from: y/a, to: y/d, port: 80}
  - probe: {from: y/a, to: y/d, port: 81}
  - probe: {from: y/d, to: y/a, port: 80}
"""


def test_network_policies_select_a_created_pod_and_its_ports(tmp_path: Path) -> None:
    """The policy of its namespace isolates the new pod from the moment it runs, and a probe
    finds what its containers declare."""
    topology = load_topology_text(POLICY, "policy.yaml")
    result = runner.run(topology, folder=tmp_path / "out", report=False)
    logs = result.network.journal.steps
    assert [log.result.split(" (")[0] for log in logs[1:]] == [
        "denied",
        "allowed",
        "refused",
        "allowed",
    ]


def test_cilium_forgets_a_deleted_pods_endpoint(tmp_path: Path) -> None:
    """cilium-cni's DEL removes the endpoint: a packet still sent to the address is the
    node's stack's, routed to cilium_host, where BPF finds no endpoint and drops it."""
    traffic = "  - delete: {pod: db}\n  - ping: {from: client, to: 10.244.2.2}\n"
    result = run(tmp_path, traffic, cni="cilium")
    logs = result.network.journal.steps
    assert [(d.where, d.reason) for d in logs[1].drops] == [("node2", "no-route")]


def test_the_json_documents_of_a_run_with_create_follow_their_schemas(tmp_path: Path) -> None:
    schemas = Path(__file__).parent.parent / "kpkt" / "schemas"
    path = Path(__file__).parent / "golden" / "lifecycle-reschedule" / "topology.yaml"
    for command, args in (
        ("run", ("-o", str(tmp_path / "out"), "--no-report")),
        ("trace", ("4",)),
        ("validate", ()),
    ):
        done = subprocess.run(
            ["kpkt", command, str(path), *args, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        schema = json.loads((schemas / f"{command}.schema.json").read_text())
        jsonschema.validate(json.loads(done.stdout), schema, cls=jsonschema.Draft202012Validator)
