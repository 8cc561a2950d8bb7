"""Topology loading: defaults, name resolution in traffic, and one test per check on bad input."""

from __future__ import annotations

import hashlib
import textwrap
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpkt.derive import derive_mac
from kpkt.errors import TopologyError
from kpkt.spec import ContainerPort, ContainerSpec, HostRef, PingStep, UdpStep
from kpkt.topology.load import load_topology, load_topology_text

from topology_fuzz import loads_or_reports

ROOT = Path(__file__).resolve().parents[2]
HEADER = "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: t}\n"
NODES = """
nodes:
  - name: node1
    pods: [{name: pod-a}, {name: pod-b}]
  - name: node2
    pods: [{name: pod-c}]
"""


def load(body: str, seed: int | None = None):
    return load_topology_text(HEADER + textwrap.dedent(body), "t.yaml", seed=seed)


def problems(body: str, header: str = HEADER) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_topology_text(header + textwrap.dedent(body), "t.yaml")
    return caught.value.problems


def traffic(*steps: str) -> str:
    return NODES + "traffic:\n" + "".join(f"  - {step}\n" for step in steps)


def pod(topology, name):
    return next(p for p in topology.pods() if p.name == name)


def node(topology, name):
    return next(n for n in topology.nodes if n.name == name)


# --- defaults ---------------------------------------------------------------------------------


def test_a_minimal_file_gets_every_default():
    topology = load(NODES)
    assert topology.name == "t" and topology.source == "t.yaml"
    assert topology.seed == 0 and topology.description == "" and topology.warnings == ()
    cluster = topology.cluster
    assert cluster.cni == "flannel" and cluster.pod_cidr == IPv4Network("10.244.0.0/16")
    assert cluster.underlay_cidr == IPv4Network("192.168.50.0/24") and cluster.pod_mtu == 1450
    assert (cluster.vni, cluster.vxlan_port, cluster.hairpin) == (1, 8472, True)
    assert [n.ip for n in topology.nodes] == [
        IPv4Address("192.168.50.1"),
        IPv4Address("192.168.50.2"),
    ]
    assert [str(n.pod_cidr) for n in topology.nodes] == ["10.244.1.0/24", "10.244.2.0/24"]
    assert [(p.name, p.namespace, p.node, str(p.ip)) for p in topology.pods()] == [
        ("pod-a", "default", "node1", "10.244.1.2"),
        ("pod-b", "default", "node1", "10.244.1.3"),
        ("pod-c", "default", "node2", "10.244.2.2"),
    ]
    a = pod(topology, "pod-a")
    assert (a.host_veth, a.ready, a.resolver, a.labels, a.containers) == (
        "veth-pod-a",
        True,
        "glibc",
        (),
        (),
    )
    assert topology.steps == () and topology.externals == ()


def test_ipam_counts_from_2_in_declaration_order_skipping_named_addresses():
    topology = load("""
        nodes:
          - name: node1
            pods:
              - {name: a}
              - {name: b, ip: 10.244.1.2}
              - {name: c}
              - {name: d, ip: 10.244.1.4}
              - {name: e}
    """)
    assert [str(p.ip) for p in topology.pods()] == [
        "10.244.1.3",
        "10.244.1.2",
        "10.244.1.5",
        "10.244.1.4",
        "10.244.1.6",
    ]


def test_underlay_addresses_count_from_1_nodes_first_skipping_named_ones():
    topology = load("""
        nodes: [{name: n1}, {name: n2, ip: 192.168.50.1}, {name: n3}]
        externals: [{name: laptop}, {name: router, ip: 192.168.50.2}]
    """)
    assert [str(n.ip) for n in topology.nodes] == ["192.168.50.3", "192.168.50.1", "192.168.50.4"]
    assert [str(e.ip) for e in topology.externals] == ["192.168.50.5", "192.168.50.2"]


def test_pod_cidrs_start_at_the_second_24_and_skip_named_ones():
    topology = load("""
        cluster: {podCIDR: 10.1.0.0/16}
        nodes:
          - {name: n1}
          - {name: n2, podCIDR: 10.1.1.0/24}
          - {name: n3}
          - {name: n4, podCIDR: 10.1.4.0/23}
          - {name: n5}
    """)
    assert [str(n.pod_cidr) for n in topology.nodes] == [
        "10.1.2.0/24",
        "10.1.1.0/24",
        "10.1.3.0/24",
        "10.1.4.0/23",
        "10.1.6.0/24",
    ]


def test_derive_mac_is_the_documented_hash():
    digest = hashlib.sha256(b"0:node/node1/eth0").digest()
    assert derive_mac(0, "node/node1/eth0") == "02:" + ":".join(f"{b:02x}" for b in digest[:5])
    assert derive_mac(0, "node/node1/eth0") == "02:04:e1:2d:82:12"  # pinned: captures rely on it
    assert derive_mac(1, "node/node1/eth0") != derive_mac(0, "node/node1/eth0")


def derived_macs(topology, seed: int) -> None:
    for n in topology.nodes:
        assert n.mac == derive_mac(seed, f"node/{n.name}/eth0")
        assert n.cni0_mac == derive_mac(seed, f"node/{n.name}/cni0")
        assert n.vtep_mac == derive_mac(seed, f"node/{n.name}/flannel.1")
        for p in n.pods:
            assert p.mac == derive_mac(seed, f"pod/{p.namespace}/{p.name}/eth0")
            assert p.host_veth_mac == derive_mac(seed, f"pod/{p.namespace}/{p.name}/veth")
    for e in topology.externals:
        assert e.mac == derive_mac(seed, f"external/{e.name}/eth0")


def test_every_mac_left_out_derives_from_the_seed_and_the_device():
    body = NODES + "externals: [{name: laptop}]\n"
    derived_macs(load(body), 0)
    derived_macs(load("seed: 5\n" + body), 5)
    assert load(body) == load(body)  # stable from run to run


def test_the_seed_argument_overrides_the_files_seed_but_not_explicit_macs():
    body = "seed: 5\n" + NODES.replace("{name: pod-a}", "{name: pod-a, mac: 02:00:00:00:00:0a}")
    topology = load(body, seed=9)
    assert topology.seed == 9
    assert node(topology, "node1").mac == derive_mac(9, "node/node1/eth0")
    assert node(topology, "node1").mac != load(body).nodes[0].mac
    assert pod(topology, "pod-a").mac == "02:00:00:00:00:0a"
    assert pod(topology, "pod-a").host_veth_mac == derive_mac(9, "pod/default/pod-a/veth")


def test_a_derived_mac_that_collides_is_derived_again_with_a_suffix():
    taken = derive_mac(0, "node/node1/eth0")
    topology = load(f"nodes: [{{name: node1, pods: [{{name: p, mac: '{taken}'}}]}}]")
    assert node(topology, "node1").mac == derive_mac(0, "node/node1/eth0#1")
    assert pod(topology, "p").mac == taken


def hashed(seed: int, namespace: str, name: str) -> str:
    return "veth" + hashlib.sha256(f"{seed}:pod/{namespace}/{name}/veth".encode()).hexdigest()[:8]


def test_host_veth_names():
    topology = load("""
        nodes:
          - name: node1
            pods:
              - {name: short}
              - {name: a-long-pod-name}
              - {name: twin}
              - {name: twin, namespace: other}
              - {name: mine, hostVeth: {name: veth-taken}}
              - {name: taken}
              - {name: ten-chars1}
          - name: node2
            pods: [{name: twin, namespace: third}]
    """)
    names = [(p.node, p.namespace, p.name, p.host_veth) for p in topology.pods()]
    assert names == [
        ("node1", "default", "short", "veth-short"),
        ("node1", "default", "a-long-pod-name", hashed(0, "default", "a-long-pod-name")),
        ("node1", "default", "twin", hashed(0, "default", "twin")),
        ("node1", "other", "twin", hashed(0, "other", "twin")),
        ("node1", "default", "mine", "veth-taken"),
        ("node1", "default", "taken", hashed(0, "default", "taken")),
        ("node1", "default", "ten-chars1", "veth-ten-chars1"),
        ("node2", "third", "twin", "veth-twin"),
    ]
    assert all(len(p.host_veth) <= 15 for p in topology.pods())


def test_pod_details_and_cluster_settings_are_read():
    topology = load("""
        cluster:
          podCIDR: 10.10.0.0/16
          serviceCIDR: 10.20.0.0/16
          clusterDomain: example.internal
          underlay: {cidr: 172.16.0.0/24, mtu: 9000}
          vxlan: {vni: 42, port: 4789}
          hairpin: false
        nodes:
          - name: node1
            pods:
              - name: db-0
                namespace: prod
                labels: {app: db, "example.com/tier": backend, empty: ""}
                hostname: db-0
                subdomain: db
                ready: false
                resolver: musl
                containers:
                  - name: db
                    ports: [{name: pg, containerPort: 5432}, {containerPort: 53, protocol: UDP}]
                  - {name: exporter}
    """)
    cluster = topology.cluster
    assert cluster.pod_cidr == IPv4Network("10.10.0.0/16")
    assert cluster.service_cidr == IPv4Network("10.20.0.0/16")
    assert cluster.cluster_domain == "example.internal"
    assert (str(cluster.underlay_cidr), cluster.underlay_mtu, cluster.pod_mtu) == (
        "172.16.0.0/24",
        9000,
        8950,
    )
    assert (cluster.vni, cluster.vxlan_port, cluster.hairpin) == (42, 4789, False)
    assert str(topology.nodes[0].ip) == "172.16.0.1"
    db = pod(topology, "db-0")
    assert db.labels == (("app", "db"), ("example.com/tier", "backend"), ("empty", ""))
    assert (db.namespace, db.hostname, db.subdomain, db.ready, db.resolver) == (
        "prod",
        "db-0",
        "db",
        False,
        "musl",
    )
    assert db.owner == "db-0.prod"
    assert db.containers == (
        ContainerSpec("db", (ContainerPort("pg", 5432, "TCP"), ContainerPort(None, 53, "UDP"))),
        ContainerSpec("exporter"),
    )


def test_description_and_explicit_devices():
    topology = load_topology_text(
        textwrap.dedent("""
            apiVersion: kpkt/v1
            kind: Topology
            metadata: {name: demo, description: two nodes}
            nodes:
              - name: node1
                mac: 02:00:C0:A8:32:01
                devices: {cni0: {mac: 02:00:0a:f4:01:01}, flannel.1: {mac: 02:00:0a:f4:01:00}}
        """),
        "demo.yaml",
    )
    assert (topology.name, topology.description) == ("demo", "two nodes")
    n1 = topology.nodes[0]
    assert (n1.mac, n1.cni0_mac, n1.vtep_mac) == (
        "02:00:c0:a8:32:01",
        "02:00:0a:f4:01:01",
        "02:00:0a:f4:01:00",
    )


# --- traffic ----------------------------------------------------------------------------------


def test_udp_step_defaults_and_text():
    [step] = load(
        traffic("udp: {from: pod-a, to: pod-b, sport: 40000, dport: 5000, payload: hello}")
    ).steps
    assert step == UdpStep(
        text="udp: {from: pod-a, to: pod-b, sport: 40000, dport: 5000, payload: hello}",
        src=HostRef("pod", "pod-a", "default"),
        dst=IPv4Address("10.244.1.3"),
        sport=40000,
        dport=5000,
        payload=b"hello",
    )
    assert (step.count, step.interval_ns, step.listen, step.at_ns, step.ttl) == (
        1,
        1_000_000,
        True,
        None,
        64,
    )


def test_udp_step_every_field():
    [step] = load(
        traffic(
            "udp: {from: pod-a, to: pod-c, dport: 53, payloadHex: '4b52 0100', count: 3, "
            "interval: 20ms, listen: false, at: 2s, ttl: 1}"
        )
    ).steps
    assert (step.payload, step.count, step.interval_ns, step.listen, step.at_ns, step.ttl) == (
        b"KR\x01\x00",
        3,
        20_000_000,
        False,
        2_000_000_000,
        1,
    )
    assert step.sport is None


def test_payload_is_utf8():
    [step] = load(traffic("udp: {from: pod-a, to: pod-b, dport: 1, payload: héllo}")).steps
    assert step.payload == "héllo".encode()
    assert step.text == "udp: {from: pod-a, to: pod-b, dport: 1, payload: héllo}"


def test_ping_step_defaults_and_fields():
    first, second = load(
        traffic(
            "ping: {from: pod-a, to: pod-c}",
            "ping: {from: pod-a, to: pod-c, id: 7, seq: 3, count: 2, interval: 200ms, size: 100, "
            "at: 1}",
        )
    ).steps
    assert first == PingStep(
        text="ping: {from: pod-a, to: pod-c}",
        src=HostRef("pod", "pod-a", "default"),
        dst=IPv4Address("10.244.2.2"),
        id=None,
    )
    assert (first.seq, first.count, first.interval_ns, first.size, first.at_ns) == (
        1,
        1,
        1_000_000_000,
        56,
        None,
    )
    assert (second.id, second.seq, second.count, second.interval_ns, second.size, second.at_ns) == (
        7,
        3,
        2,
        200_000_000,
        100,
        1_000_000_000,
    )


NAMES = NODES.replace("{name: pod-c}", "{name: pod-c}, {name: pod-a, namespace: prod}") + (
    "externals: [{name: laptop, ip: 192.168.50.100}]\n"
)


@pytest.mark.parametrize(
    ("written", "src", "dst", "dport"),
    [
        ("from: default/pod-a, to: pod-b, dport: 1", ("pod", "pod-a", "default"), "10.244.1.3", 1),
        ("from: prod/pod-a, to: pod-c, dport: 1", ("pod", "pod-a", "prod"), "10.244.2.2", 1),
        ("from: pod-b, to: prod/pod-a, dport: 1", ("pod", "pod-b", "default"), "10.244.2.3", 1),
        ("from: node1, to: node2, dport: 1", ("node", "node1", None), "192.168.50.2", 1),
        ("from: laptop, to: pod-c, dport: 1", ("external", "laptop", None), "10.244.2.2", 1),
        ("from: pod-b, to: laptop, dport: 1", ("pod", "pod-b", "default"), "192.168.50.100", 1),
        ("from: pod-b, to: 10.244.2.2, dport: 1", ("pod", "pod-b", "default"), "10.244.2.2", 1),
        ("from: pod-b, to: localhost, dport: 9090", ("pod", "pod-b", "default"), "127.0.0.1", 9090),
        ("from: node1, to: 127.0.0.1, dport: 10248", ("node", "node1", None), "127.0.0.1", 10248),
        ("from: pod-b, to: 'pod-c:5000'", ("pod", "pod-b", "default"), "10.244.2.2", 5000),
        ("from: pod-b, to: '10.244.2.2:5000'", ("pod", "pod-b", "default"), "10.244.2.2", 5000),
        ("from: pod-b, to: 'prod/pod-a:53'", ("pod", "pod-b", "default"), "10.244.2.3", 53),
        ("from: pod-b, to: 'localhost:9090'", ("pod", "pod-b", "default"), "127.0.0.1", 9090),
        ("from: pod-b, to: 'pod-c:80', dport: 80", ("pod", "pod-b", "default"), "10.244.2.2", 80),
    ],
)
def test_names_in_from_and_to(written, src, dst, dport):
    topology = load(NAMES + f"traffic:\n  - udp: {{{written}}}\n")
    [step] = topology.steps
    assert (step.src, step.dst, step.dport) == (HostRef(*src), IPv4Address(dst), dport)
    assert topology.warnings == ()


def test_ping_may_name_a_node_and_an_address():
    steps = load(
        traffic("ping: {from: node1, to: pod-c}", "ping: {from: pod-c, to: 10.244.1.1}")
    ).steps
    assert (steps[0].src, steps[0].dst) == (HostRef("node", "node1"), IPv4Address("10.244.2.2"))
    assert steps[1].dst == IPv4Address("10.244.1.1")  # node1's cni0: owned, so no warning


def test_an_address_nobody_has_is_allowed_with_a_warning():
    topology = load(traffic("udp: {from: pod-a, to: 10.244.9.9, dport: 1}"))
    assert topology.steps[0].dst == IPv4Address("10.244.9.9")
    assert topology.warnings == (
        "t.yaml: traffic[0].udp.to: no pod, node or external host has 10.244.9.9: nothing answers",
    )


def test_a_name_of_both_a_node_and_a_pod_means_the_node_with_a_warning():
    topology = load(
        NODES.replace("{name: pod-c}", "{name: node1}") + "traffic:\n"
        "  - ping: {from: pod-a, to: node1}\n  - ping: {from: pod-a, to: default/node1}\n"
    )
    assert [str(step.dst) for step in topology.steps] == ["192.168.50.1", "10.244.2.2"]
    [warning] = topology.warnings
    assert warning.startswith("t.yaml: traffic[0].ping.to: 'node1' is both a node and a pod")
    assert "'default/node1'" in warning


@pytest.mark.parametrize(
    ("written", "ns"),
    [
        ("2s", 2_000_000_000),
        ("500ms", 500_000_000),
        ("1.5s", 1_500_000_000),
        ("250us", 250_000),
        ("10ns", 10),
        ("0s", 0),
        ("2", 2_000_000_000),
        ("0.25", 250_000_000),
        ("'3'", 3_000_000_000),
        ("' 1 ms '", 1_000_000),
    ],
)
def test_durations(written, ns):
    [step] = load(
        traffic(f"udp: {{from: pod-a, to: pod-b, dport: 1, interval: {written}, at: {written}}}")
    ).steps
    assert (step.interval_ns, step.at_ns) == (ns, ns)


@pytest.mark.parametrize("written", ["-1s", "5 min", "1.5ns", "true", "[1]", "s", ".inf", "1e3s"])
def test_bad_durations(written):
    [line] = problems(traffic(f"udp: {{from: pod-a, to: pod-b, dport: 1, at: {written}}}"))
    assert line.startswith("t.yaml: traffic[0].udp.at: expected a duration like 500ms, 2s or 1.5s")


def test_payload_up_to_the_mtu_fits():
    steps = load(
        traffic(
            f"udp: {{from: pod-a, to: pod-c, dport: 1, payload: {'x' * 1422}}}",
            "ping: {from: pod-a, to: pod-c, size: 1422}",
            f"udp: {{from: node1, to: node2, dport: 1, payload: {'x' * 1472}}}",
            f"udp: {{from: pod-a, to: localhost, dport: 1, payload: {'x' * 60000}}}",
        )
    ).steps
    assert [len(s.payload) if isinstance(s, UdpStep) else s.size for s in steps] == [
        1422,
        1422,
        1472,
        60000,
    ]


# --- problems ---------------------------------------------------------------------------------


def one_pod(fields: str) -> str:
    """A node n1 with a single pod p that has `fields`."""
    return f"nodes: [{{name: n1, pods: [{{name: p, {fields}}}]}}]"


def udp(fields: str) -> str:
    return traffic(f"udp: {{{fields}}}")


def ping(fields: str) -> str:
    return traffic(f"ping: {{{fields}}}")


HEAD = "apiVersion: kpkt/v1\nkind: Topology\n"
PORTS = "containers: [{name: c, ports: [{%s}]}]"
X = "x"

# (id, body, path, a key part of the message); a body that starts with apiVersion or kind
# brings its own header.
# fmt: off
CASES = [
    # header and metadata
    ("api-version", "apiVersion: v1\nkind: Topology\nmetadata: {name: t}\n" + NODES,
     "apiVersion", "expected kpkt/v1, got 'v1'"),
    ("api-version-missing", "kind: Topology\nmetadata: {name: t}\n" + NODES,
     "apiVersion", "required; add `apiVersion: kpkt/v1`"),
    ("kind", "apiVersion: kpkt/v1\nkind: Pod\nmetadata: {name: t}\n" + NODES,
     "kind", "expected Topology, got 'Pod'"),
    ("metadata-missing", HEAD + NODES, "metadata", "required"),
    ("name-missing", HEAD + "metadata: {description: x}\n" + NODES, "metadata.name", "required"),
    ("name-label", HEAD + "metadata: {name: Two_Node}\n" + NODES,
     "metadata.name", "'Two_Node' is not a DNS label"),
    ("seed-negative", "seed: -1\n" + NODES, "seed", "-1 is out of range"),
    ("seed-type", "seed: abc\n" + NODES, "seed", "expected an integer, got 'abc'"),
    # unknown keys, with hints
    ("unknown-top", NODES + "trafic: []\n", "trafic", "unknown key (did you mean 'traffic'?)"),
    ("unknown-cluster", "cluster: {podCidr: 10.1.0.0/16}\n" + NODES,
     "cluster.podCidr", "did you mean 'podCIDR'?"),
    ("unknown-node", "nodes: [{name: n1, podcidr: 10.244.1.0/24}]",
     "nodes[0].podcidr", "did you mean 'podCIDR'?"),
    ("unknown-device", "nodes: [{name: n1, devices: {eth0: {mac: 02:00:00:00:00:01}}}]",
     "nodes[0].devices.eth0", "unknown key; expected one of: cni0, flannel.1"),
    ("unknown-pod", one_pod("hostveth: {name: v}"),
     "nodes[0].pods[0].hostveth", "did you mean 'hostVeth'?"),
    ("unknown-udp", udp("from: pod-a, to: pod-b, dprot: 5"),
     "traffic[0].udp.dprot", "did you mean 'dport'?"),
    ("unknown-step", traffic("udpp: {from: pod-a, to: pod-b}"),
     "traffic[0].udpp", "did you mean 'udp'?"),
    ("two-steps-in-one", traffic("{udp: {}, ping: {}}"), "traffic[0]", "got keys udp, ping"),
    ("step-not-mapping", traffic("udp"), "traffic[0]", "expected one `udp:` or `ping:` mapping"),
    ("step-body", traffic("udp: pod-a"), "traffic[0].udp", "expected a mapping, got 'pod-a'"),
    # not supported yet
    ("cni-misspelt", "cluster: {cni: weav}\n" + NODES,
     "cluster.cni", "unknown CNI 'weav' (did you mean 'weave'?)"),
    ("cilium-native", "cluster: {cni: cilium, cilium: {routingMode: native}}\n" + NODES,
     "cluster.cilium.routingMode", "'native' is not supported yet; use tunnel"),
    ("cilium-bpf-host-routing",
     "cluster: {cni: cilium, cilium: {hostRouting: bpf}}\n" + NODES,
     "cluster.cilium.hostRouting", "BPF host routing needs kubeProxyReplacement: true"),
    ("cilium-kpr-string", "cluster: {cni: cilium, cilium: {kubeProxyReplacement: strict}}\n"
     + NODES, "cluster.cilium.kubeProxyReplacement", "expected true or false, got 'strict'"),
    ("cni-unknown", "cluster: {cni: flanel}\n" + NODES,
     "cluster.cni", "unknown CNI 'flanel' (did you mean 'flannel'?)"),
    # cluster DNS, services and dns steps (tests/unit/test_load_services.py has the rest)
    ("cluster-dns", "cluster: {dns: {enabled: true, node: node3}}\n" + NODES,
     "cluster.dns.node", "no node named 'node3' (did you mean 'node1'?)"),
    ("services", NODES + "services: [{name: web}]\n",
     "services[0].ports", "required; add ports: [{port: 80}]"),
    ("service-type-later",
     NODES + "services: [{name: web, type: LoadBalancer, ports: [{port: 80}]}]",
     "services[0].type", "LoadBalancer is not supported yet"),
    ("dns-step", traffic("dns: {from: node1, name: web}"),
     "traffic[0].dns.from", "dns steps run a pod's stub resolver: name a pod"),
    ("tcp-no-port", traffic("tcp: {from: pod-a, to: pod-b}"), "traffic[0].tcp.dport", "required"),
    ("tcp-unknown-key", traffic("tcp: {from: pod-a, to: 'pod-b:80', count: 2}"),
     "traffic[0].tcp.count", "unknown key"),
    # types
    ("count-string", udp("from: pod-a, to: pod-b, dport: 1, count: x"),
     "traffic[0].udp.count", "expected an integer, got 'x'"),
    ("count-bool", udp("from: pod-a, to: pod-b, dport: 1, count: true"),
     "traffic[0].udp.count", "expected an integer, got true"),
    ("count-zero", udp("from: pod-a, to: pod-b, dport: 1, count: 0"),
     "traffic[0].udp.count", "0 is out of range: use an integer from 1 to 1000000"),
    ("listen-string", udp("from: pod-a, to: pod-b, dport: 1, listen: 'no'"),
     "traffic[0].udp.listen", "expected true or false, got 'no'"),
    ("payload-number", udp("from: pod-a, to: pod-b, dport: 1, payload: 42"),
     "traffic[0].udp.payload", "expected a string, got 42 (put it in quotes)"),
    ("hairpin-string", "cluster: {hairpin: 'on'}\n" + NODES,
     "cluster.hairpin", "expected true or false"),
    ("ready-int", one_pod("ready: 1"), "nodes[0].pods[0].ready", "expected true or false, got 1"),
    ("resolver", one_pod("resolver: muls"),
     "nodes[0].pods[0].resolver", "'muls' is not one of: glibc, musl (did you mean 'musl'?)"),
    ("protocol", one_pod(PORTS % "containerPort: 1, protocol: SCTP"),
     "nodes[0].pods[0].containers[0].ports[0].protocol", "'SCTP' is not one of: TCP, UDP"),
    ("label-value-type", one_pod("labels: {version: 2}"),
     "nodes[0].pods[0].labels.version", "expected a string, got 2 (put it in quotes)"),
    ("label-value", one_pod("labels: {app: 'a b'}"),
     "nodes[0].pods[0].labels.app", "not a valid label value"),
    ("label-key", one_pod("labels: {'a b': x}"),
     "nodes[0].pods[0].labels.a b", "not a valid label key"),
    ("nodes-not-list", "nodes: {name: n1}", "nodes", "expected a list, got a mapping"),
    ("node-not-mapping", "nodes: [n1]", "nodes[0]", "expected a mapping, got 'n1'"),
    ("ip-type", "nodes: [{name: n1, ip: 7}]", "nodes[0].ip", "expected an IPv4 address"),
    ("ip-malformed", "nodes: [{name: n1, ip: 192.168.50.300}]",
     "nodes[0].ip", "expected an IPv4 address like 10.244.1.2, got '192.168.50.300'"),
    ("cidr-no-prefix", "nodes: [{name: n1, podCIDR: 10.244.1.0}]",
     "nodes[0].podCIDR", "expected a CIDR like 10.244.1.0/24"),
    ("cidr-host-bits", "nodes: [{name: n1, podCIDR: 10.244.1.5/24}]",
     "nodes[0].podCIDR", "has host bits set (did you mean 10.244.1.0/24?)"),
    ("cidr-too-small", "nodes: [{name: n1, podCIDR: 10.244.1.0/31}]",
     "nodes[0].podCIDR", "too small"),
    # names
    ("no-nodes", "nodes: []", "nodes", "needs at least one node"),
    ("nodes-missing", "externals: [{name: laptop}]", "nodes", "needs at least one node"),
    ("node-name-missing", "nodes: [{ip: 192.168.50.1}]", "nodes[0].name", "required"),
    ("node-name-label", "nodes: [{name: Node_1}]",
     "nodes[0].name", "'Node_1' is not a DNS label: use lowercase letters, digits and '-'"),
    ("pod-name-long", f"nodes: [{{name: n1, pods: [{{name: {'a' * 64}}}]}}]",
     "nodes[0].pods[0].name", "at most 63 characters"),
    ("pod-name-missing", "nodes: [{name: n1, pods: [{ip: 10.244.1.2}]}]",
     "nodes[0].pods[0].name", "required"),
    ("namespace-label", one_pod("namespace: Prod"),
     "nodes[0].pods[0].namespace", "not a DNS label"),
    ("hostname-label", one_pod("hostname: db_0"),
     "nodes[0].pods[0].hostname", "not a DNS label: use lowercase letters"),
    ("subdomain-label", one_pod("subdomain: -db"), "nodes[0].pods[0].subdomain", "not a DNS label"),
    ("container-label", one_pod("containers: [{name: App}]"),
     "nodes[0].pods[0].containers[0].name", "not a DNS label"),
    ("external-label", NODES + "externals: [{name: My.Laptop}]",
     "externals[0].name", "not a DNS label"),
    ("port-name", one_pod(PORTS % "name: http--x, containerPort: 80"),
     "nodes[0].pods[0].containers[0].ports[0].name", "not a valid port name"),
    ("cluster-domain", "cluster: {clusterDomain: Cluster.Local}\n" + NODES,
     "cluster.clusterDomain", "not a DNS name"),
    ("veth-name-long", one_pod("hostVeth: {name: veth-0123456789ab}"),
     "nodes[0].pods[0].hostVeth.name", "not a Linux interface name"),
    ("veth-name-reserved", one_pod("hostVeth: {name: cni0}"),
     "nodes[0].pods[0].hostVeth.name", "'cni0' is a device of n1 itself"),
    # duplicates
    ("dup-node", "nodes: [{name: n1}, {name: n1}]",
     "nodes[1].name", "duplicate name: 'n1' is already used by node n1 (nodes[0].name)"),
    ("dup-external", NODES + "externals: [{name: laptop}, {name: laptop}]", "externals[1].name",
     "duplicate name: 'laptop' is already used by external laptop (externals[0].name)"),
    ("node-and-external", NODES + "externals: [{name: node2}]",
     "externals[0].name", "duplicate name: 'node2' is already used by node node2 (nodes[1].name)"),
    ("dup-pod", "nodes: [{name: n1, pods: [{name: p}]}, {name: n2, pods: [{name: p}]}]",
     "nodes[1].pods[0].name", "duplicate pod (pod names are unique per namespace): default/p"),
    ("dup-container", one_pod("containers: [{name: c}, {name: c}]"),
     "nodes[0].pods[0].containers[1].name", "duplicate container name 'c'"),
    ("dup-veth", "nodes: [{name: n1, pods: [{name: p, hostVeth: {name: v1}}, "
                 "{name: q, hostVeth: {name: v1}}]}]",
     "nodes[0].pods[1].hostVeth.name", "duplicate host veth name on n1: 'v1'"),
    ("dup-node-ip", "nodes: [{name: n1}, {name: n2, ip: 192.168.50.9}]\n"
                    "externals: [{name: laptop, ip: 192.168.50.9}]",
     "externals[0].ip", "duplicate address: 192.168.50.9 is already used by node n2 (nodes[1].ip)"),
    ("dup-pod-ip", "nodes: [{name: n1, pods: [{name: a, ip: 10.244.1.7}, "
                   "{name: b, ip: 10.244.1.7}]}]",
     "nodes[0].pods[1].ip", "duplicate address: 10.244.1.7 is already used by pod default/a"),
    ("dup-mac", "nodes: [{name: n1, mac: 02:00:00:00:00:01, "
                "pods: [{name: p, mac: 02:00:00:00:00:01}]}]",
     "nodes[0].pods[0].mac", "duplicate MAC: 02:00:00:00:00:01 is already used by node n1"),
    ("dup-device-mac", "nodes: [{name: n1, devices: {cni0: {mac: 02:00:00:00:00:01}, "
                       "flannel.1: {mac: 02:00:00:00:00:01}}}]",
     "nodes[0].devices.flannel.1.mac", "is already used by n1's cni0"),
    ("dup-veth-mac", one_pod("hostVeth: {mac: 02:00:00:00:00:01}")
                     + "\nexternals: [{name: e, mac: 02:00:00:00:00:01}]",
     "externals[0].mac", "is already used by pod default/p's host veth"),
    # addresses outside their CIDR
    ("node-ip-outside", "nodes: [{name: n1, ip: 10.0.0.1}]",
     "nodes[0].ip", "10.0.0.1 is outside cluster.underlay.cidr 192.168.50.0/24"),
    ("external-ip-outside", NODES + "externals: [{name: e, ip: 192.168.51.1}]",
     "externals[0].ip", "192.168.51.1 is outside cluster.underlay.cidr 192.168.50.0/24"),
    ("node-ip-broadcast", "nodes: [{name: n1, ip: 192.168.50.255}]",
     "nodes[0].ip", "the broadcast address of cluster.underlay.cidr"),
    ("pod-ip-outside", "nodes: [{name: node1}, {name: node2, podCIDR: 10.244.2.0/24, "
                       "pods: [{name: p, ip: 10.244.9.2}]}]",
     "nodes[1].pods[0].ip", "10.244.9.2 is outside node2's podCIDR 10.244.2.0/24"),
    ("pod-ip-gateway", one_pod("ip: 10.244.1.1"),
     "nodes[0].pods[0].ip", "the cni0 gateway address of n1's podCIDR 10.244.1.0/24"),
    ("pod-ip-network", one_pod("ip: 10.244.1.0"), "nodes[0].pods[0].ip", "the network address"),
    ("pod-ip-broadcast", one_pod("ip: 10.244.1.255"),
     "nodes[0].pods[0].ip", "the broadcast address"),
    ("pod-cidr-outside", "nodes: [{name: n1, podCIDR: 10.245.1.0/24}]",
     "nodes[0].podCIDR", "10.245.1.0/24 is outside cluster.podCIDR 10.244.0.0/16"),
    # overlapping CIDRs
    ("pod-cidrs-overlap", "nodes: [{name: n1, podCIDR: 10.244.1.0/24}, "
                          "{name: n2, podCIDR: 10.244.0.0/23}]",
     "nodes[1].podCIDR", "10.244.0.0/23 overlaps n1's podCIDR 10.244.1.0/24 (nodes[0].podCIDR)"),
    ("service-overlaps-pod", "cluster: {podCIDR: 10.0.0.0/8}\n" + NODES,
     "cluster.serviceCIDR", "10.96.0.0/12 overlaps cluster.podCIDR 10.0.0.0/8"),
    ("underlay-overlaps-pod", "cluster: {underlay: {cidr: 10.244.200.0/24}}\n" + NODES,
     "cluster.underlay.cidr", "overlaps cluster.podCIDR 10.244.0.0/16"),
    # MACs
    ("mac-malformed", "nodes: [{name: n1, mac: 02:00:00:00:01}]",
     "nodes[0].mac", "'02:00:00:00:01' is not a MAC address"),
    ("mac-multicast", "nodes: [{name: n1, mac: 01:00:5e:00:00:01}]",
     "nodes[0].mac", "is a multicast MAC"),
    ("mac-broadcast", one_pod("mac: ff:ff:ff:ff:ff:ff"), "nodes[0].pods[0].mac", "multicast MAC"),
    ("mac-zero", "nodes: [{name: n1, devices: {cni0: {mac: 00:00:00:00:00:00}}}]",
     "nodes[0].devices.cni0.mac", "the all-zero MAC"),
    ("veth-mac-multicast", one_pod("hostVeth: {mac: 33:33:00:00:00:01}"),
     "nodes[0].pods[0].hostVeth.mac", "is a multicast MAC"),
    # ranges
    ("mtu", "cluster: {underlay: {mtu: 100}}\n" + NODES,
     "cluster.underlay.mtu", "100 is out of range: use an integer from 576 to 9000"),
    ("vni", "cluster: {vxlan: {vni: 16777216}}\n" + NODES, "cluster.vxlan.vni", "out of range"),
    ("vxlan-port", "cluster: {vxlan: {port: 0}}\n" + NODES, "cluster.vxlan.port", "out of range"),
    ("sport", udp("from: pod-a, to: pod-b, sport: 0, dport: 1"),
     "traffic[0].udp.sport", "0 is out of range: use an integer from 1 to 65535"),
    ("dport", udp("from: pod-a, to: pod-b, dport: 65536"),
     "traffic[0].udp.dport", "65536 is out of range"),
    ("to-port", udp("from: pod-a, to: 'pod-b:0'"),
     "traffic[0].udp.to", "'0' after the colon is not a port from 1 to 65535"),
    ("to-port-text", udp("from: pod-a, to: 'pod-b:http'"),
     "traffic[0].udp.to", "'http' after the colon is not a port"),
    ("container-port", one_pod(PORTS % "containerPort: 70000"),
     "nodes[0].pods[0].containers[0].ports[0].containerPort", "out of range"),
    ("ping-id", ping("from: pod-a, to: pod-b, id: 65536"), "traffic[0].ping.id", "out of range"),
    ("ping-seq", ping("from: pod-a, to: pod-b, seq: -1"), "traffic[0].ping.seq", "out of range"),
    ("ping-size", ping("from: pod-a, to: pod-b, size: 65508"),
     "traffic[0].ping.size", "out of range"),
    ("ttl", ping("from: pod-a, to: pod-b, ttl: 0"), "traffic[0].ping.ttl", "out of range"),
    # payloads over the MTU
    ("payload-mtu", udp(f"from: pod-a, to: pod-c, dport: 1, payload: {X * 1423}"),
     "traffic[0].udp.payload", "1423 bytes do not fit the pod MTU 1450: at most 1422 bytes"),
    ("payload-hex-mtu", udp(f"from: pod-a, to: pod-b, dport: 1, payloadHex: '{'00' * 1423}'"),
     "traffic[0].udp.payloadHex", "1423 bytes do not fit the pod MTU 1450"),
    ("payload-jumbo-mtu", "cluster: {underlay: {mtu: 9000}}\n"
                          + udp(f"from: node1, to: pod-c, dport: 1, payload: {X * 8923}"),
     "traffic[0].udp.payload", "8923 bytes do not fit the pod MTU 8950: at most 8922 bytes"),
    ("payload-underlay-mtu", udp(f"from: node1, to: node2, dport: 1, payload: {X * 1473}"),
     "traffic[0].udp.payload", "do not fit the underlay MTU 1500: at most 1472 bytes"),
    ("ping-mtu", ping("from: pod-a, to: pod-c, size: 1423"),
     "traffic[0].ping.size", "1423 bytes do not fit the pod MTU 1450: at most 1422 bytes"),
    # running out of addresses
    ("pod-addresses", "nodes: [{name: n1, podCIDR: 10.244.1.0/30, pods: [{name: a}, {name: b}]}]",
     "nodes[0].pods[1].ip", "no free address left in n1's podCIDR 10.244.1.0/30"),
    ("underlay-addresses", "cluster: {underlay: {cidr: 192.168.50.0/30}}\n"
                           "nodes: [{name: n1}, {name: n2}]\nexternals: [{name: e}]",
     "externals[0].ip", "no free address left in cluster.underlay.cidr 192.168.50.0/30"),
    ("pod-cidrs", "cluster: {podCIDR: 10.244.0.0/23}\nnodes: [{name: n1}, {name: n2}]",
     "nodes[1].podCIDR", "no free /24 left in cluster.podCIDR 10.244.0.0/23"),
    # names and ports in traffic
    ("from-unknown", udp("from: pod-z, to: pod-b, dport: 1"),
     "traffic[0].udp.from", "no pod or node named 'pod-z' (did you mean 'pod-a'?)"),
    ("from-unknown-with-externals", udp("from: laptp, to: pod-b, dport: 1")
                                    + "externals: [{name: laptop}]",
     "traffic[0].udp.from", "no pod, node or external host named 'laptp' (did you mean 'laptop'?)"),
    ("from-missing", udp("to: pod-b, dport: 1"), "traffic[0].udp.from", "required"),
    ("from-without-nodes", "nodes: []\ntraffic: [{udp: {from: a, to: b, dport: 1}}]",
     "traffic[0].udp.from", "no pod or node named 'a'"),
    ("from-address", udp("from: 10.244.1.2, to: pod-b, dport: 1"),
     "traffic[0].udp.from", "not 10.244.1.2 (10.244.1.2 is 'pod-a')"),
    ("from-port", udp("from: 'pod-a:40000', to: pod-b, dport: 1"),
     "traffic[0].udp.from", "takes no port here"),
    ("from-ambiguous", NAMES + "traffic:\n  - udp: {from: pod-a, to: pod-b, dport: 1}\n",
     "traffic[0].udp.from",
     "'pod-a' is a pod in several namespaces: write one of default/pod-a, prod/pod-a"),
    ("to-missing", udp("from: pod-a, dport: 1"), "traffic[0].udp.to", "required"),
    ("to-unknown-ns", udp("from: pod-a, to: prod/pod-b, dport: 1"),
     "traffic[0].udp.to", "no pod or node named 'prod/pod-b'"),
    ("to-service-like", udp("from: pod-a, to: web.default, dport: 80"), "traffic[0].udp.to",
     "no pod, node or service named 'web.default'"),
    ("to-service", udp("from: pod-a, to: web.default, dport: 80")
                   + "services: [{name: web, namespace: default, clusterIP: None}]",
     "traffic[0].udp.to", "'web.default' is headless service default/web: a headless service "
                          "has no cluster IP; name one of its pods, or look it up with a dns step"),
    ("to-bad-address", udp("from: pod-a, to: 10.244.1.300, dport: 1"),
     "traffic[0].udp.to", "'10.244.1.300' is not an IPv4 address"),
    ("to-localhost-external", ping("from: laptop, to: localhost") + "externals: [{name: laptop}]",
     "traffic[0].ping.to", "only pods and nodes have one"),
    ("port-disagrees", udp("from: pod-a, to: 'pod-b:5000', dport: 5001"),
     "traffic[0].udp.dport", "5001 disagrees with the port 5000 in `to`"),
    ("dport-missing", udp("from: pod-a, to: pod-b"),
     "traffic[0].udp.dport", "required; give dport, or the port in `to`"),
    ("ping-port", ping("from: pod-a, to: 'pod-b:80'"),
     "traffic[0].ping.to", "ping has no ports: remove ':80'"),
    ("payload-both", udp("from: pod-a, to: pod-b, dport: 1, payload: a, payloadHex: '61'"),
     "traffic[0].udp.payloadHex", "give payload or payloadHex, not both"),
    ("payload-hex", udp("from: pod-a, to: pod-b, dport: 1, payloadHex: xyz"),
     "traffic[0].udp.payloadHex", "'xyz' is not hex"),
    ("payload-hex-number", udp("from: pod-a, to: pod-b, dport: 1, payloadHex: 1234"),
     "traffic[0].udp.payloadHex", "expected a string, got 1234 (put it in quotes)"),
]
# fmt: on


@pytest.mark.parametrize(
    ("body", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_names_the_path_and_the_fix(body, path, message):
    header = "" if body.startswith(("apiVersion", "kind")) else HEADER
    lines = problems(body, header)
    prefix = f"t.yaml: {path}: "
    assert any(line.startswith(prefix) and message in line for line in lines), lines


def test_every_problem_is_reported_at_once():
    lines = problems("""
        nodes:
          - name: node1
            ip: 10.0.0.1
            pods: [{name: Pod_A}, {name: b, ip: 10.244.9.9}]
          - name: node1
        traffic:
          - udp: {from: pod-z, to: b, dport: 0}
          - ping: {from: b, to: b, count: x}
    """)
    paths = [line.split(": ")[1] for line in lines]
    assert paths == [
        "nodes[0].pods[0].name",
        "nodes[0].ip",
        "nodes[0].pods[1].ip",
        "nodes[1].name",
        "traffic[0].udp.from",
        "traffic[0].udp.dport",
        "traffic[1].ping.count",
    ]


def test_problems_are_one_line_each():
    lines = problems(
        traffic("udp: {from: pod-z, to: pod-b, dport: 1}", "udp: {from: pod-a, to: pod-b}")
    )
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert str(TopologyError(lines)) == "\n".join(lines)


def test_a_yaml_syntax_error_gives_the_line_and_column():
    with pytest.raises(TopologyError) as caught:
        load_topology_text(HEADER + "nodes:\n  - name: node1\n   pods: [\n", "t.yaml")
    [line] = caught.value.problems
    assert line.startswith("t.yaml: line 6, column 4: expected <block end>"), line


def test_a_duplicate_yaml_key_is_an_error_with_its_line():
    with pytest.raises(TopologyError) as caught:
        load_topology_text(HEADER + "nodes:\n  - name: node1\n    name: node2\n", "t.yaml")
    assert caught.value.problems == ["t.yaml: line 6, column 5: duplicate key 'name'; keep one"]


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!int x", "int"), ("!!float 1.5e", "float"), ("!!timestamp x", "timestamp")],
)
def test_a_value_its_yaml_tag_refuses_is_an_error_with_its_line(value: str, tag: str) -> None:
    # PyYAML lets these out as a ValueError or an AttributeError, not as a YAML error
    with pytest.raises(TopologyError) as caught:
        load_topology_text(HEADER + f"seed: {value}\nnodes: [{{name: n1}}]\n", "t.yaml")
    shown = value.split()[1]
    problem = f"'{shown}' is not a value `!!{tag}` takes; fix it, or drop the tag"
    assert caught.value.problems == [f"t.yaml: line 4, column 7: {problem}"]


def test_macs_and_times_stay_strings():
    """YAML 1.1 reads 12:34:56 as a base-60 number; kpkt reads it as the text written."""
    topology = load("nodes: [{name: n1, mac: 12:34:56:12:34:56}]")
    assert topology.nodes[0].mac == "12:34:56:12:34:56"
    assert problems("nodes: [{name: n1, mac: 13:34:56:12:34:56}]") == [
        "t.yaml: nodes[0].mac: 13:34:56:12:34:56 is a multicast MAC (the first octet's low bit is "
        "set); try 02"
    ]


@pytest.mark.parametrize(("text", "got"), [("", "an empty file"), ("- a\n", "a list"), ("7", "7")])
def test_a_file_that_is_no_mapping(text, got):
    with pytest.raises(TopologyError) as caught:
        load_topology_text(text, "t.yaml")
    assert caught.value.problems == [
        f"t.yaml: expected a mapping with apiVersion, kind, metadata and nodes, got {got}"
    ]


def test_a_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TopologyError) as caught:
        load_topology(missing)
    assert caught.value.problems == [f"{missing}: no such file"]


def test_load_topology_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(HEADER + NODES + "seed: 3\n")
    assert load_topology(path).seed == 3
    assert load_topology(str(path), seed=4).seed == 4
    path.write_text(HEADER + "nodes: [{name: N}]\n")
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert caught.value.problems[0].startswith(f"{path}: nodes[0].name: ")


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes(HEADER.encode() + b"nodes: [{name: \xff}]\n")
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert caught.value.problems == [f"{path}: not UTF-8 text (byte {len(HEADER) + 15})"]


def test_the_same_pod_name_in_two_namespaces_is_fine():
    topology = load(NAMES)
    assert [p.owner for p in topology.pods()] == [
        "pod-a.default",
        "pod-b.default",
        "pod-c.default",
        "pod-a.prod",
    ]


# --- robustness: any value anywhere gives a TopologyError, never another exception -----------

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "pod-a",
            "node1",
            "default/pod-a",
            "localhost",
            "pod-b:80",
            "10.244.1.2",
            "web.default",
            "10.244.1.0/24",
            "10.244.1.0/31",
            "02:00:00:00:00:01",
            "1.5s",
            "flannel",
            "",
            "\ud800",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# fmt: off
SPOTS = [
    ("apiVersion",), ("kind",), ("seed",), ("metadata",), ("metadata", "name"), ("cluster",),
    ("cluster", "cni"), ("cluster", "podCIDR"), ("cluster", "serviceCIDR"), ("cluster", "dns"),
    ("cluster", "underlay"), ("cluster", "underlay", "cidr"), ("cluster", "vxlan"),
    ("nodes",), ("nodes", 0), ("nodes", 1), ("nodes", 0, "name"), ("nodes", 0, "ip"),
    ("nodes", 0, "mac"), ("nodes", 0, "podCIDR"), ("nodes", 0, "devices"), ("nodes", 0, "pods"),
    ("nodes", 0, "pods", 0), ("nodes", 0, "pods", 0, "name"), ("nodes", 0, "pods", 0, "ip"),
    ("nodes", 0, "pods", 0, "namespace"), ("nodes", 0, "pods", 0, "hostVeth"),
    ("nodes", 0, "pods", 0, "containers"), ("nodes", 0, "pods", 0, "labels"), ("externals",),
    ("externals", 0), ("externals", 0, "ip"), ("traffic",), ("traffic", 0), ("traffic", 0, "udp"),
    ("traffic", 0, "udp", "from"), ("traffic", 0, "udp", "to"), ("traffic", 0, "udp", "dport"),
    ("traffic", 0, "udp", "payload"), ("traffic", 0, "udp", "payloadHex"),
    ("traffic", 0, "udp", "interval"), ("traffic", 1, "ping"), ("traffic", 1, "ping", "size"),
    ("services",),
]
# fmt: on


def valid_document() -> dict:
    return yaml.safe_load(
        HEADER
        + "cluster: {podCIDR: 10.244.0.0/16, underlay: {mtu: 1500}}\n"
        + traffic(
            "udp: {from: pod-a, to: pod-b, dport: 5000, payload: hi}",
            "ping: {from: pod-a, to: pod-c}",
        )
        + "externals: [{name: laptop}]\n"
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(SPOTS), VALUES), min_size=1, max_size=3))
def test_any_value_anywhere_is_a_topology_error_or_loads(changes):
    loads_or_reports(valid_document(), changes)


# --- the example topologies -------------------------------------------------------------------

EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))


def test_there_are_example_topologies():
    assert {path.name for path in EXAMPLES} >= {"two-node.yaml", "flannel-reference.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_loads_cleanly(path):
    topology = load_topology(path)
    assert topology.name == path.stem
    assert topology.warnings == ()
    assert topology.steps


def test_two_node_is_the_tutorials_cluster():
    topology = load_topology(ROOT / "topologies" / "two-node.yaml")
    # the tutorial's four pods, and the CoreDNS pod the cluster's DNS adds on node1
    assert [(p.name, p.node, str(p.ip)) for p in topology.pods()] == [
        ("pod-a", "node1", "10.1.1.5"),
        ("pod-b", "node1", "10.1.1.6"),
        ("coredns-a", "node1", "10.1.1.2"),
        ("pod-c", "node2", "10.1.2.10"),
        ("pod-d", "node2", "10.1.2.11"),
    ]
    assert [str(n.pod_cidr) for n in topology.nodes] == ["10.1.1.0/24", "10.1.2.0/24"]
    assert [c.ports[0].port for c in pod(topology, "pod-a").containers] == [8080, 9090]
    derived_macs(topology, 0)
    tcp_lo = topology.steps[3]
    assert (tcp_lo.dst, tcp_lo.dport, tcp_lo.payload) == (
        IPv4Address("127.0.0.1"),
        9090,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )


def test_flannel_reference_has_the_references_macs():
    topology = load_topology(ROOT / "topologies" / "flannel-reference.yaml")
    devices = [(n.name, str(n.ip), n.mac, n.cni0_mac, n.vtep_mac) for n in topology.nodes]
    assert devices == [
        ("node1", "192.168.50.1", "02:00:c0:a8:32:01", "02:00:0a:f4:01:01", "02:00:0a:f4:01:00"),
        ("node2", "192.168.50.2", "02:00:c0:a8:32:02", "02:00:0a:f4:02:01", "02:00:0a:f4:02:00"),
    ]
    pods = [(p.name, str(p.ip), p.mac, p.host_veth, p.host_veth_mac) for p in topology.pods()]
    assert pods == [
        ("n1-pod-a", "10.244.1.2", "02:00:0a:f4:01:02", "veth-pod-a", "02:00:ee:f4:01:02"),
        ("n1-pod-b", "10.244.1.3", "02:00:0a:f4:01:03", "veth-pod-b", "02:00:ee:f4:01:03"),
        ("n2-pod-a", "10.244.2.2", "02:00:0a:f4:02:02", "veth-pod-a", "02:00:ee:f4:02:02"),
        ("n2-pod-b", "10.244.2.3", "02:00:0a:f4:02:03", "veth-pod-b", "02:00:ee:f4:02:03"),
    ]
    same, cross, ping = topology.steps
    assert (same.sport, same.dport, same.payload, str(same.dst)) == (
        40000,
        5000,
        b"kref-udp-same-node",
        "10.244.1.3",
    )
    assert (cross.payload, str(cross.dst)) == (b"kref-udp-cross-node", "10.244.2.2")
    assert isinstance(ping, PingStep) and (ping.count, str(ping.dst)) == (1, "10.244.2.2")


def test_tcp_step_is_read_with_its_defaults():
    from kpkt.spec import DEFAULT_RESPONSE, TcpStep

    topology = load(traffic("tcp: {from: pod-a, to: 'pod-b:8080', payload: 'GET /'}"))
    [step] = topology.steps
    assert isinstance(step, TcpStep)
    assert (step.dport, step.payload, step.response) == (8080, b"GET /", DEFAULT_RESPONSE)
    assert step.sport is None and step.listen


def _read_by(loader, text: str):
    """What `loader` makes of `text`: the document, or the error's class and problem."""
    try:
        return yaml.load(text, Loader=loader)
    except (yaml.YAMLError, UnicodeEncodeError) as error:
        return type(error).__name__, getattr(error, "problem", str(error))


TRICKY_YAML = [
    "a: 12:30\nb: 0x1F\nc: 1_000\nd: .5\ne: yes\nf: ~\ng: 2026-01-01\nh: 0o17\ni: 1e3\n",
    "a: &x {b: 1}\nc: *x\n<<: {d: 2}\n",
    "a: !!binary aGVsbG8=\nb: !!str 1\n",
    "\ufeffa: 1\n",
    "%YAML 1.1\n---\na: 1\n",
    "%YAML 1.2\n---\na: 1\n",
    "a: |\n  x\n   y\nb: >-\n  p\n  q\n",
    "a: 'it''s'\nb: \"\\x41\\u00e9\"\n",
    "",
    "# only a comment\n",
    "a:\t1\n",  # libyaml takes it, PyYAML does not
    "a: 1\t\n",
    "a: b\ud800\n",
    "a: \x01\n",
    "a: 1\na: 2\n",
    "a: *nowhere\n",
    "a: [1, 2\n",
    "a: 1\n---\nb: 2\n",
    "? [a]\n: 1\n",
    "a: !!python/name:os.system x\n",
    "- " * 49 + "x\n",
    "- " * 50 + "x\n",
    "- " * 51 + "x\n",
    "a: &deep " + "[" * 48 + "]" * 48 + "\nb: [*deep]\n",
]


@pytest.mark.parametrize("text", TRICKY_YAML)
def test_libyaml_reads_what_the_python_loader_reads_or_hands_it_over(text, monkeypatch) -> None:
    # parse_document reads with libyaml (about 4 times as fast): the same document, or the
    # same words about what is wrong with it, as when it read with the Python loader alone
    from kpkt.topology import load as module

    def parsed():
        try:
            return module.parse_document(text, "t.yaml")
        except TopologyError as error:
            return error.problems

    got = parsed()
    monkeypatch.setattr(module, "_FastLoader", module._Loader)
    assert got == parsed()


@pytest.mark.parametrize(
    "path",
    sorted(ROOT.glob("topologies/*.yaml"))
    + sorted(ROOT.glob("kpkt/examples/*.yaml"))
    + sorted(ROOT.glob("tests/golden/*/topology.yaml"))
    + sorted(ROOT.glob("examples/**/*.yaml")),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_libyaml_reads_every_topology_of_the_repository_as_the_python_loader(path: Path) -> None:
    from kpkt.topology.load import _FastLoader, _Loader

    text = path.read_text()
    assert _read_by(_FastLoader, text) == _read_by(_Loader, text)


def _by_safe_constructor(loader):
    """`loader` constructing its documents with PyYAML's SafeConstructor alone."""
    construct = yaml.constructor.BaseConstructor.construct_document
    return type(f"Safe{loader.__name__}", (loader,), {"construct_document": construct})


def _made_by(loader, text: str) -> str:
    """What `loader` makes of `text`, or the error it raises (not only a YAMLError: PyYAML's
    int constructor raises ValueError for `!!int x`), as repr shows them (a recursive list
    equals nothing)."""
    try:
        return repr(yaml.load(text, Loader=loader))
    except Exception as error:
        return f"{type(error).__name__}: {error}"


ALIASED_YAML = [
    "a: &x [1, {b: 2}]\nc: *x\nd: &m {e: *x}\nf: *m\n",
    "&a [1, *a]\n",
    "&m {x: *m, y: [*m]}\n",
    "a: &s text\nb: *s\nc: {*s : 1}\n",
    "a: &k [1]\nb: {*k : 1}\n",  # an unhashable key
    "? &k {a: 1}\n: *k\n",
    "a: {b: 1, <<: {c: 2}}\n",
    "a: {b: 1, '=': 2, c: !!int '7', d: !!float '1.5', e: !!bool 'on', f: !!null ''}\n",
    "a: {=: 2}\n",
    "a: !!int x\n",
    "a: !!set {b: null}\nb: !!omap [c: 1]\n",
    "a: !!str [1]\n",
    "1: a\n0x1: b\n",
]


@pytest.mark.parametrize("text", TRICKY_YAML + ALIASED_YAML)
def test_the_loaders_construct_what_safe_constructor_does(text) -> None:
    # their own construct_document builds the plain nodes directly: the same document, or
    # the same error, as PyYAML's SafeConstructor makes of them
    from kpkt.topology.load import _FastLoader, _Loader

    for loader in (_FastLoader, _Loader):
        assert _made_by(loader, text) == _made_by(_by_safe_constructor(loader), text)


def test_an_alias_is_its_anchors_object_and_a_recursive_one_holds_itself() -> None:
    from kpkt.topology.load import parse_document

    doc = parse_document("a: &x [1, {b: 2}]\nc: *x\nd: &m {e: *x}\nf: *m\n", "t.yaml")
    assert doc["c"] is doc["a"] and doc["f"] is doc["d"] and doc["d"]["e"] is doc["a"]
    looped = parse_document("&m {x: *m, y: [*m]}\n", "t.yaml")
    assert looped["x"] is looped and looped["y"][0] is looped


_LEAVES = st.one_of(
    st.text(alphabet="ab:-~ =<0x1.", max_size=5), st.integers(), st.booleans(), st.none()
)
_NESTED = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_LEAVES, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(_NESTED, st.booleans())
def test_any_document_is_constructed_as_safe_constructor_does(document, flow) -> None:
    from kpkt.topology.load import _FastLoader

    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    assert _made_by(_FastLoader, text) == _made_by(_by_safe_constructor(_FastLoader), text)


def test_the_fast_loader_is_libyaml() -> None:
    from kpkt.topology.load import _FastLoader

    assert yaml.__with_libyaml__, "PyYAML without libyaml: topologies parse 4 times as slowly"
    assert issubclass(_FastLoader, yaml.CSafeLoader)


_WORDS = ["pod-a", "web.default", "10.0.0.1", "a/b", "yes", "No", "null", "1_000", "0x1F", "12:30"]
_WORDS += [
    "1e3",
    ".5",
    "2026-01-01",
    "pod-a:5000",
    "-x",
    "x-",
    "a.",
    "_a",
    "é",
    "a b",
    "~",
    "=",
    "<<",
]
_SCALARS = st.one_of(
    st.sampled_from(_WORDS),
    st.text(alphabet="abAB01._/-:", max_size=12),
    st.text(max_size=6),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.text(alphabet="a", min_size=120, max_size=135),  # a simple key is under 128
)


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(st.dictionaries(_SCALARS, st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2)), max_size=4))
def test_a_steps_text_is_what_yaml_writes(body) -> None:
    # the `udp: {from: pod-a, to: pod-b}` of hop tables and manifest.json: written by hand
    # when every key and value is a plain name or a number, and exactly as PyYAML would
    from kpkt.topology.traffic import _flow

    wanted = yaml.safe_dump(
        body, default_flow_style=True, width=2**31 - 1, sort_keys=False, allow_unicode=True
    )
    assert _flow(body) == wanted.strip()
