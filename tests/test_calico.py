"""Calico beyond the two captured scenarios (tests/test_calico_reference.py): the facts of
tests/reference/calico.md §2-§4 that no shipped capture holds, checked on kpkt's captures:
VXLAN across nodes, ping in both modes, where ARP happens, TTLs and outer headers, natOutgoing,
CrossSubnet, a Service with no bridge, and the topology keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.errors import TopologyError
from kpkt.report import open_hint, step_tables
from kpkt.topology.load import load_topology, load_topology_text
from kpkt.trace import trace

from conftest import EXAMPLES

TOPOLOGIES = {path.stem: path for path in EXAMPLES}
CALI = "ee:ee:ee:ee:ee:ee"
N1_VTEP, N2_VTEP = "66:bd:c1:b6:30:e3", "66:eb:5b:33:d9:c8"
N1_POD_A = "kcal-n1-pod-a.default"
N2_POD_A = "kcal-n2-pod-a.default"
N1_CALI, N2_CALI = "kcal-node1__calif1e28bf8d7e", "kcal-node2__cali0b62c7dbc62"


def cold(name: str, index: int, folder: Path):
    """Step `index` of the reference topology `name`, alone (cold ARP caches)."""
    topology = load_topology(TOPOLOGIES[name])
    return runner.run(dataclasses.replace(topology, steps=(topology.steps[index],)), folder=folder)


def frames(folder: Path, capture: str, raw: bool = False) -> list:
    return [(IP if raw else Ether)(f) for _, f in read_pcap(folder / f"{capture}.pcap")]


def arp_requests(packets: list, sender: str | None = None) -> list[tuple[str, str]]:
    """(sender address, target address) of each ARP request (from `sender`, if given)."""
    return [
        (p[ARP].psrc, p[ARP].pdst)
        for p in packets
        if ARP in p and p[ARP].op == 1 and sender in (None, p[ARP].psrc)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    wanted = {
        "vxlan_udp_cross": ("calico-vxlan-reference", 1),
        "vxlan_icmp": ("calico-vxlan-reference", 2),
        "ipip_icmp": ("calico-reference", 2),
        "ipip_udp_same": ("calico-reference", 0),
    }
    return {
        key: cold(name, index, tmp_path_factory.mktemp(key) / "out").folder
        for key, (name, index) in wanted.items()
    }


def test_vxlan_cross_node_as_calico_md_3_2(runs) -> None:
    folder = runs["vxlan_udp_cross"]
    total = sum(len(read_pcap(path)) for path in folder.glob("*.pcap"))
    assert total == 20
    (inner,) = frames(folder, "kcal-node1__vxlan.calico")
    assert (inner.src, inner.dst, inner[IP].ttl, inner[IP].flags.DF) == (N1_VTEP, N2_VTEP, 63, 1)
    eth0 = frames(folder, "kcal-node1__eth0")
    assert arp_requests(eth0) == [("192.168.60.1", "192.168.60.2")]  # the underlay, only
    (outer,) = [f for f in eth0 if VXLAN in f]
    assert len(outer) == 102 and outer[IP].ttl == 64 and not outer[IP].flags.DF
    assert (outer[UDP].dport, outer[VXLAN].vni, outer[VXLAN].flags) == (4789, 4096, 0x08)
    assert 32768 <= outer[UDP].sport <= 60999
    assert bytes(outer[VXLAN].payload) == bytes(inner)
    assert [f[IP].ttl for f in frames(folder, "kcal-node2__vxlan.calico")] == [63]
    delivered = [f for f in frames(folder, N2_CALI) if UDP in f]
    assert [(f.src, f[IP].ttl) for f in delivered] == [(CALI, 62)]
    # never an ARP over the tunnel: permanent neighbour and FDB entries
    assert not [f for f in frames(folder, "kcal-node1__vxlan.calico") if ARP in f]


def test_the_node_arps_for_its_pod_with_its_underlay_address(runs) -> None:
    folder = runs["vxlan_udp_cross"]
    cali = frames(folder, N2_CALI)
    assert arp_requests(cali) == [("192.168.60.2", "10.245.2.2")]
    request = next(f for f in cali if ARP in f)
    assert (request.src, request.dst, request[ARP].hwsrc) == (CALI, "ff:ff:ff:ff:ff:ff", CALI)


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_ping_across_nodes_as_calico_md_3_4(runs, mode: str) -> None:
    folder = runs[f"{mode}_icmp"]
    total = sum(len(read_pcap(path)) for path in folder.glob("*.pcap"))
    assert total == 32
    pod = frames(folder, f"{N2_POD_A}__eth0")
    # the replying pod ARPs for 169.254.1.1 although it has just answered node2's request
    assert arp_requests(pod, "10.245.2.2") == [("10.245.2.2", "169.254.1.1")]
    replies = [f for f in frames(folder, f"{N1_POD_A}__eth0") if ICMP in f and f[ICMP].type == 0]
    assert [(r[IP].ttl, r[IP].flags.DF, r.src) for r in replies] == [(62, 0, CALI)]
    # node1 does not ARP for pod-a on the way back: pod-a's request for its gateway taught it
    assert arp_requests(frames(folder, N1_CALI), "192.168.60.1") == []
    underlay = [f for f in frames(folder, "kcal-node1__eth0") if ICMP in f]
    request, reply = underlay
    if mode == "ipip":
        assert (len(request), len(reply)) == (118, 118)
        assert [(f[IP].proto, f[IP].ttl, f[IP].flags.DF) for f in underlay] == [
            (4, 63, 1),  # outer TTL and DF are the inner packet's
            (4, 63, 0),  # the kernel's echo reply has DF 0, and so has its tunnel packet
        ]
        raw = frames(folder, "kcal-node1__tunl0", raw=True)
        assert [len(p) for p in raw] == [84, 84]
    else:
        assert (len(request), len(reply)) == (148, 148)
        assert request[UDP].sport == reply[UDP].sport  # the symmetric flow hash
        assert request[UDP].chksum == reply[UDP].chksum  # calico.md §5: the same both ways
        assert {(f[IP].ttl, f[IP].flags.DF) for f in underlay} == {(64, 0)}


def test_same_node_is_routed_through_proxy_arp(runs) -> None:
    folder = runs["ipip_udp_same"]
    pod_a = frames(folder, f"{N1_POD_A}__eth0")
    request, reply, datagram = pod_a
    assert (request[ARP].psrc, request[ARP].pdst) == ("10.245.1.2", "169.254.1.1")
    assert (reply[ARP].op, reply[ARP].hwsrc, reply[ARP].psrc) == (2, CALI, "169.254.1.1")
    assert (datagram.dst, datagram[IP].ttl) == (CALI, 64)
    pod_b = [f for f in frames(folder, "kcal-n1-pod-b.default__eth0") if UDP in f]
    assert [(f.src, f[IP].ttl) for f in pod_b] == [(CALI, 63)]
    assert frames(folder, "kcal-node1__eth0") == [] and frames(folder, "kcal-node1__tunl0") == []


# --- the tutorial cluster on Calico ----------------------------------------------------------


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for name in ("two-node-calico", "two-node-calico-vxlan"):
        folders[name] = tmp_path_factory.mktemp(name) / "out"
        runner.run(load_topology(TOPOLOGIES[name]), folder=folders[name])
    return folders


def tcp_rows(folder: Path, capture: str) -> list[tuple[str, int, str, int, int]]:
    return [
        (f[IP].src, f[TCP].sport, f[IP].dst, f[TCP].dport, f[IP].ttl)
        for f in frames(folder, capture)
        if TCP in f
    ]


@pytest.mark.parametrize("name", ["two-node-calico", "two-node-calico-vxlan"])
def test_a_service_is_dnatted_in_prerouting_from_the_cali_veth(tutorial, name: str) -> None:
    folder = tutorial[name]
    client = tcp_rows(folder, "pod-d.default__eth0")
    # pod-d only ever sees the service address
    assert {(src, dst) for src, _, dst, _, _ in client} == {
        ("10.1.2.11", "10.96.0.80"),
        ("10.96.0.80", "10.1.2.11"),
    }
    # node2 DNATs to pod-c and routes it (TTL 63): no bridge, so not switched with TTL 64
    server = [r for r in tcp_rows(folder, "pod-c.default__eth0") if r[0] == "10.1.2.11"]
    assert server and {(r[2], r[3], r[4]) for r in server} == {("10.1.2.10", 8080, 63)}


def test_nodeport_is_masqueraded_to_the_tunnel_address(tutorial) -> None:
    folder = tutorial["two-node-calico"]
    raw = frames(folder, "node1__tunl0", raw=True)
    forwarded = [p for p in raw if TCP in p and p[TCP].dport == 8080]
    assert forwarded and {(p.src, p.dst) for p in forwarded} == {("10.1.1.0", "10.1.2.10")}


def test_nat_outgoing_masquerades_what_leaves_the_pool(tutorial) -> None:
    folder = tutorial["two-node-calico"]
    upstream = [f for f in frames(folder, "upstream-dns__eth0") if UDP in f and f[UDP].dport == 53]
    assert upstream and {f[IP].src for f in upstream} == {"192.168.50.1"}  # node1's address
    # pod to pod never: pod-c sees pod-a's own address across the tunnel
    pod_c = [f for f in frames(folder, "pod-c.default__eth0") if UDP in f]
    assert "10.1.1.5" in {f[IP].src for f in pod_c}


CLUSTER = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {{name: t}}
cluster:
  cni: calico
  podCIDR: 10.245.0.0/16
{calico}  underlay: {{gateway: 192.168.50.254}}
nodes:
  - name: node1
    pods: [{{name: pod-a}}]
  - name: node2
    pods: [{{name: pod-c}}]
externals:
  - {{name: laptop}}
traffic:
  - udp: {{from: pod-a, to: pod-c, dport: 5000}}
  - udp: {{from: pod-a, to: laptop, dport: 5000}}
"""


def load(calico: str = ""):
    return load_topology_text(CLUSTER.format(calico=calico), "t.yaml")


def test_defaults_are_ipip_always_nat_outgoing_and_26_blocks() -> None:
    topology = load()
    options = topology.cluster.cni_options
    assert options == {
        "ipipMode": "Always",
        "vxlanMode": "Never",
        "natOutgoing": True,
        "blockSize": 26,
    }
    assert topology.cluster.pod_mtu == 1480
    assert [str(node.pod_cidr) for node in topology.nodes] == ["10.245.0.64/26", "10.245.0.128/26"]
    (pod,) = topology.nodes[0].pods
    assert pod.host_veth.startswith("cali") and len(pod.host_veth) == 15
    assert pod.host_veth_mac == CALI


def test_both_encapsulations_at_once_is_an_error() -> None:
    with pytest.raises(TopologyError, match="one way at most"):
        load("  calico: {vxlanMode: Always}\n")


def test_a_podcidr_that_is_not_a_block_is_an_error() -> None:
    text = CLUSTER.format(calico="").replace(
        "  - name: node1\n", "  - name: node1\n    podCIDR: 10.245.1.0/24\n"
    )
    with pytest.raises(TopologyError, match="not a /26"):
        load_topology_text(text, "t.yaml")


def test_the_old_cni_names_say_what_to_write() -> None:
    text = CLUSTER.format(calico="").replace("cni: calico", "cni: calico-vxlan")
    with pytest.raises(TopologyError, match=r"`cni: calico` with `calico: \{ipipMode: Never"):
        load_topology_text(text, "t.yaml")


def test_names_and_macs_can_be_overridden() -> None:
    text = CLUSTER.format(calico="  calico: {ipipMode: Never, vxlanMode: Always}\n")
    text = text.replace(
        "    pods: [{name: pod-a}]\n",
        "    devices: {vxlan.calico: {mac: 02:00:00:00:00:01}}\n"
        "    pods: [{name: pod-a, hostVeth: {name: cali-a, mac: 02:00:00:00:00:02}}]\n",
    )
    node1 = load_topology_text(text, "t.yaml").nodes[0]
    assert node1.vtep_mac == "02:00:00:00:00:01"
    assert (node1.pods[0].host_veth, node1.pods[0].host_veth_mac) == ("cali-a", "02:00:00:00:00:02")


@pytest.mark.parametrize(
    ("calico", "tunnel", "ttls"),
    [
        ("  calico: {ipipMode: CrossSubnet}\n", "tunl0", [62]),
        ("  calico: {ipipMode: Never, vxlanMode: CrossSubnet}\n", "vxlan.calico", [62]),
        ("  calico: {ipipMode: Never}\n", None, [62]),
    ],
)
def test_cross_subnet_and_never_route_on_the_shared_subnet(tmp_path, calico, tunnel, ttls) -> None:
    # both nodes are on the underlay's one subnet: no encapsulation, `via <node> dev eth0`
    result = runner.run(load(calico), folder=tmp_path / "out")
    folder = result.folder
    eth0 = [f for f in frames(folder, "node1__eth0") if UDP in f and f[IP].dst == "10.245.0.130"]
    assert [(f[IP].src, f[IP].ttl, f.haslayer(VXLAN)) for f in eth0] == [("10.245.0.66", 63, 0)]
    assert [f[IP].ttl for f in frames(folder, "pod-c.default__eth0") if UDP in f] == ttls
    if tunnel is not None:
        assert read_pcap(folder / f"node1__{tunnel}.pcap") == []
    else:
        assert not list(folder.glob("node1__tunl0.pcap"))
        assert not list(folder.glob("node1__vxlan.calico.pcap"))


def test_without_nat_outgoing_the_pod_address_leaves_the_cluster(tmp_path) -> None:
    for nat, source in ((True, "192.168.50.1"), (False, "10.245.0.66")):
        calico = f"  calico: {{natOutgoing: {str(nat).lower()}}}\n"
        result = runner.run(load(calico), folder=tmp_path / str(nat))
        laptop = [f for f in frames(result.folder, "laptop__eth0") if UDP in f]
        assert [f[IP].src for f in laptop] == [source]


def test_without_a_gateway_proxy_arp_stays_silent_and_kpkt_warns(tmp_path) -> None:
    text = CLUSTER.format(calico="").replace("  underlay: {gateway: 192.168.50.254}\n", "")
    topology = load_topology_text(text, "t.yaml")
    (warning,) = topology.warnings
    assert "cluster.underlay.gateway" in warning and "calico#3270" in warning
    result = runner.run(topology, folder=tmp_path / "out")
    pod_a = frames(result.folder, "pod-a.default__eth0")
    # three requests per step (two steps), never answered
    assert arp_requests(pod_a) == [("10.245.0.66", "169.254.1.1")] * 6
    assert not [f for f in pod_a if ARP in f and f[ARP].op == 2]
    for log in result.network.journal.steps:
        assert [d.reason for d in log.drops] == ["neighbour-unresolved"]


def test_trace_follows_a_packet_into_and_out_of_tunl0() -> None:
    lines = "\n".join(trace(load_topology(TOPOLOGIES["calico-reference"]), 2))
    assert "kcal-node1/tunl0            out    6  into the tunnel: raw ip; ttl 64 -> 63" in lines
    assert "ipip encap: outer 192.168.60.1 > 192.168.60.2 ttl 63" in lines
    assert "kcal-node2/tunl0            in     6  ipip decap: raw ip" in lines
    assert "out of the tunnel: eth ee:ee:ee:ee:ee:ee > kcal-n2-pod-a.default/eth0" in lines


def test_calico_vxlan_needs_no_decode_hint_and_is_summarized(tmp_path) -> None:
    topology = load_topology(TOPOLOGIES["two-node-calico-vxlan"])
    result = runner.run(dataclasses.replace(topology, steps=topology.steps[1:2]), folder=tmp_path)
    assert open_hint(result) == f"open one: wireshark {tmp_path}/node1__eth0.pcap"
    assert "UDP" in step_tables(result) and "4789 VXLAN vni 4096 [" in step_tables(result)
