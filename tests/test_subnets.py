"""A routed node network (`cluster.underlay.subnets`): kpkt's router between the subnets, and
Calico's CrossSubnet on it, checked on kpkt's captures.

From Calico's source: with CrossSubnet, confd gives BIRD `krt_tunnel = tunl0` (IPIP) only when
the BGP next hop is outside the local subnet (tests/reference/calico.md §2.3); felix's
`noEncapRoute` (felix/dataplane/linux) programs a route update marked SameSubnet as
`<block> via <DstNodeIp>` on the parent device (eth0) instead of the VXLAN route, and its FDB
sync (`fdb.SetVTEPs`) still has every remote VTEP. From the kernel (ip_tunnel_xmit, calico.md
§2.5): the IPIP outer header copies the inner TTL and DF; VXLAN's outer TTL is 64, DF 0.
Inferred, not captured (no reference capture has a router): that the router is an ordinary
Linux router (ARP from its own MAC and address on each subnet, TTL - 1 on the outer header
only, the inner packet untouched), and that flannel host-gw across subnets fails: Linux refuses
`via <node> dev eth0` when the node is not on link ("Nexthop has invalid gateway")."""

from __future__ import annotations

import json
import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from test_examples import DAMAGE

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.errors import TopologyError
from kpkt.topology.load import load_topology_text
from kpkt.wire.ethernet import mac_str

from conftest import tshark_read

CLUSTER = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {{name: t}}
cluster:
  cni: {cni}
  podCIDR: 10.245.0.0/16
{settings}  underlay:
    subnets:
      - {{name: rack-a, cidr: 192.168.60.0/24}}
      - {{name: rack-b, cidr: 192.168.61.0/24, gateway: 192.168.61.100}}
nodes:
  - {{name: node1, subnet: rack-a, pods: [{{name: pod-a}}]}}
  - {{name: node2, subnet: rack-a, pods: [{{name: pod-b}}]}}
  - {{name: node3, subnet: rack-b, pods: [{{name: pod-c, labels: {{app: c}}}}]}}
services:
  - {{name: svc, selector: {{app: c}}, ports: [{{port: 80, targetPort: 5000, protocol: UDP}}]}}
traffic:
  - udp: {{from: pod-a, to: pod-b, dport: 5000, payload: same-subnet}}
  - udp: {{from: pod-a, to: pod-c, dport: 5000, payload: other-subnet}}
  - udp: {{from: pod-b, to: "svc:80", payload: service}}
"""
IPIP = "  calico: {ipipMode: CrossSubnet}\n"
VXLAN_CROSS = "  calico: {ipipMode: Never, vxlanMode: CrossSubnet}\n"
POD_A, POD_B, POD_C = "10.245.0.66", "10.245.0.130", "10.245.0.194"
NODE1, NODE3 = "192.168.60.1", "192.168.61.1"


def load(settings: str = IPIP, cni: str = "calico", text: str = CLUSTER):
    return load_topology_text(text.format(cni=cni, settings=settings), "t.yaml")


def frames(folder: Path, capture: str, raw: bool = False) -> list:
    return [(IP if raw else Ether)(f) for _, f in read_pcap(folder / f"{capture}.pcap")]


def carrying(packets: list, payload: bytes) -> list:
    return [p for p in packets if payload in bytes(p)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple]:
    done = {}
    for mode, settings in (("ipip", IPIP), ("vxlan", VXLAN_CROSS)):
        topology = load(settings)
        folder = tmp_path_factory.mktemp(mode) / "out"
        done[mode] = (topology, runner.run(topology, folder=folder).folder)
    return done


def test_the_topology_places_hosts_on_their_subnets_and_gives_the_router_its_addresses() -> None:
    topology = load()
    assert [str(node.ip) for node in topology.nodes] == ["192.168.60.1", "192.168.60.2", NODE3]
    rack_a, rack_b = topology.cluster.subnets
    assert (str(rack_a.gateway), str(rack_b.gateway)) == ("192.168.60.254", "192.168.61.100")
    assert rack_a.router_mac != rack_b.router_mac and rack_a.router_mac.startswith("02:")


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_routes_plain_on_the_subnet_and_encapsulated_to_the_other(runs, mode) -> None:
    topology, folder = runs[mode]
    network = runner.run(topology, steps=0).network
    lines = {str(route) for route in network.stacks["node1"].routes.routes()}
    assert "10.245.0.128/26 via 192.168.60.2 dev eth0" in lines
    assert "default via 192.168.60.254 dev eth0" in lines
    if mode == "ipip":  # BIRD's route
        assert "10.245.0.192/26 via 192.168.61.1 dev tunl0 onlink" in lines
    else:  # felix's: via the remote VTEP address
        assert "10.245.0.192/26 via 10.245.0.192 dev vxlan.calico onlink" in lines
        # felix's FDB sync (SetVTEPs) keeps an entry for every remote VTEP, on any subnet
        vtep = next(d for d in network.stacks["node1"].devices if d.name == "vxlan.calico")
        assert {mac_str(mac): str(IPv4Address(ip)) for mac, ip in vtep.fdb.items()} == {
            topology.nodes[1].vtep_mac: "192.168.60.2",
            topology.nodes[2].vtep_mac: NODE3,
        }


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_same_subnet_is_plain_routing_node_to_node(runs, mode) -> None:
    topology, folder = runs[mode]
    node2 = topology.nodes[1]
    (wire,) = carrying(frames(folder, "node1__eth0"), b"same-subnet")
    assert (wire.dst, wire[IP].src, wire[IP].dst, wire[IP].ttl) == (node2.mac, POD_A, POD_B, 63)
    assert wire[IP].proto == 17 and not wire.haslayer(VXLAN)  # no IPIP, no VXLAN
    assert [p[IP].ttl for p in carrying(frames(folder, "pod-b.default__eth0"), b"same-subnet")] == [
        62
    ]
    for interface in ("eth0", "eth1"):  # the router never sees it
        assert not carrying(frames(folder, f"router__{interface}"), b"same-subnet")


def test_other_subnet_ipip_the_router_forwards_the_outer_packet(runs) -> None:
    topology, folder = runs["ipip"]
    rack_a, rack_b = topology.cluster.subnets
    node1, node3 = topology.nodes[0], topology.nodes[2]
    (tunl0,) = carrying(frames(folder, "node1__tunl0", raw=True), b"other-subnet")
    assert (tunl0.src, tunl0.dst, tunl0.ttl) == (POD_A, POD_C, 63)
    (out,) = carrying(frames(folder, "node1__eth0"), b"other-subnet")
    # to the gateway's MAC, outer node1 -> node3, protocol 4, TTL and DF copied from the inner
    assert (out.src, out.dst) == (node1.mac, rack_a.router_mac)
    assert (out[IP].src, out[IP].dst, out[IP].proto, out[IP].ttl) == (NODE1, NODE3, 4, 63)
    assert out[IP].flags.DF and out[IP].payload.ttl == 63
    (routed,) = carrying(frames(folder, "router__eth1"), b"other-subnet")
    assert (routed.src, routed.dst) == (rack_b.router_mac, node3.mac)
    assert (routed[IP].src, routed[IP].dst, routed[IP].ttl) == (NODE1, NODE3, 62)
    assert bytes(routed[IP].payload) == bytes(out[IP].payload)  # the inner packet untouched
    assert [
        p[IP].ttl for p in carrying(frames(folder, "pod-c.default__eth0"), b"other-subnet")
    ] == [62]
    assert not carrying(frames(folder, "node2__eth0"), b"other-subnet")  # no flooding


def test_other_subnet_vxlan_outer_ttl_64_then_63(runs) -> None:
    topology, folder = runs["vxlan"]
    rack_a, rack_b = topology.cluster.subnets
    (out,) = carrying(frames(folder, "node1__eth0"), b"other-subnet")
    assert out.dst == rack_a.router_mac
    assert (out[IP].src, out[IP].dst, out[IP].ttl, out[IP].flags.DF) == (NODE1, NODE3, 64, 0)
    assert (out[UDP].dport, out[VXLAN].vni) == (4789, 4096)
    inner = out[VXLAN].payload
    assert (inner.src, inner.dst) == (topology.nodes[0].vtep_mac, topology.nodes[2].vtep_mac)
    assert (inner[IP].src, inner[IP].dst, inner[IP].ttl) == (POD_A, POD_C, 63)
    (routed,) = carrying(frames(folder, "router__eth1"), b"other-subnet")
    assert routed.src == rack_b.router_mac and routed[IP].ttl == 63
    assert routed[UDP].sport == out[UDP].sport and bytes(routed[VXLAN]) == bytes(out[VXLAN])
    assert [
        p[IP].ttl for p in carrying(frames(folder, "pod-c.default__eth0"), b"other-subnet")
    ] == [62]


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_the_router_answers_and_asks_arp_from_its_own_mac_and_address(runs, mode) -> None:
    topology, folder = runs[mode]
    rack_a, rack_b = topology.cluster.subnets
    arps = [p[ARP] for p in frames(folder, "router__eth0") if ARP in p]
    reply = next(a for a in arps if a.op == 2 and a.psrc == "192.168.60.254")
    assert (reply.hwsrc, reply.pdst) == (rack_a.router_mac, NODE1)
    arps = [p[ARP] for p in frames(folder, "router__eth1") if ARP in p]
    request = next(a for a in arps if a.op == 1)
    assert (request.hwsrc, request.psrc, request.pdst) == (
        rack_b.router_mac,
        "192.168.61.100",
        NODE3,
    )


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_a_service_reaches_its_endpoint_on_the_other_subnet(runs, mode) -> None:
    topology, folder = runs[mode]
    (delivered,) = carrying(frames(folder, "pod-c.default__eth0"), b"service")
    # DNATed by kube-proxy on node2, not masqueraded: pod-c sees pod-b
    assert (delivered[IP].src, delivered[IP].dst, delivered[UDP].dport) == (POD_B, POD_C, 5000)
    assert delivered[IP].ttl == 62
    assert carrying(frames(folder, "router__eth1"), b"service")


@pytest.mark.parametrize("mode", ["ipip", "vxlan"])
def test_tshark_reads_every_capture_cleanly(runs, mode, tshark) -> None:
    _, folder = runs[mode]
    captures = sorted(folder.glob("*.pcap")) + [folder / "all.pcapng"]
    assert len(captures) > 10
    for capture in captures:
        # across interfaces (all.pcapng) the node's ARP out of each cali veth shows its address
        # behind two MACs, as in test_examples: only there is that let through
        wanted = (
            f"({DAMAGE}) && !arp.duplicate-address-detected"
            if capture.suffix == ".pcapng"
            else DAMAGE
        )
        flagged = tshark_read(tshark, capture, "-Y", wanted)
        assert flagged == "", f"{capture.name}:\n{flagged}"


def test_flannel_vxlan_crosses_the_router(tmp_path) -> None:
    folder = runner.run(load("", cni="flannel"), folder=tmp_path / "out").folder
    (routed,) = carrying(frames(folder, "router__eth1"), b"other-subnet")
    assert routed[UDP].dport == 8472 and routed[IP].ttl == 63
    assert [
        p[IP].ttl for p in carrying(frames(folder, "pod-c.default__eth0"), b"other-subnet")
    ] == [62]


@pytest.mark.parametrize(
    ("cni", "settings"),
    [("flannel", "  flannel: {backend: host-gw}\n"), ("calico", "  calico: {ipipMode: Never}\n")],
)
def test_routing_without_encapsulation_across_subnets_is_an_error(cni, settings) -> None:
    with pytest.raises(TopologyError) as error:
        load(settings, cni=cni)
    (line,) = str(error.value).splitlines()
    assert "nodes[2].subnet: node node3 is on subnet rack-b, node node1 on rack-a" in line
    assert "Nexthop has invalid gateway" in line or "one subnet" in line


def test_routing_without_encapsulation_on_one_subnet_is_fine() -> None:
    text = CLUSTER.replace("subnet: rack-b", "subnet: rack-a")
    load("  flannel: {backend: host-gw}\n", cni="flannel", text=text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("subnet: rack-b, pods", "subnet: rack-c, pods", "no subnet 'rack-c' in cluster.underlay"),
        (
            "{name: node3, subnet: rack-b,",
            "{name: node3, ip: 192.168.61.100,",
            "nodes[2].ip: 192.168.61.100 is the router's address on subnet rack-b",
        ),
        (
            "{name: node3, subnet: rack-b,",
            "{name: node3, ip: 192.168.62.1,",
            "192.168.62.1 is on none of cluster.underlay.subnets",
        ),
        (
            "{name: node3, subnet: rack-b,",
            "{name: node3, subnet: rack-b, ip: 192.168.60.9,",
            "nodes[2].ip: 192.168.60.9 is outside cluster.underlay.subnets[1].cidr",
        ),
        ("{name: node3,", "{name: router,", "'router' is the name of kpkt's router"),
        ("{name: node3,", "{name: underlay-rack-b,", "kpkt's switch of subnet rack-b"),
        ("  underlay:\n", "  underlay:\n    cidr: 10.0.0.0/24\n", "remove underlay.cidr"),
        (
            "      - {name: rack-b, cidr: 192.168.61.0/24, gateway: 192.168.61.100}\n",
            "",
            "at least two subnets",
        ),
        ("cidr: 192.168.60.0/24", "cidr: 192.168.61.128/25", "overlaps"),
        ("gateway: 192.168.61.100", "gateway: 192.168.62.1", "not a host address of the subnet"),
        ("{name: rack-b,", "{name: rack-a,", "duplicate subnet name 'rack-a'"),
        ("cidr: 192.168.60.0/24", "cidr: 10.245.1.0/24", "overlaps cluster.podCIDR"),
    ],
)
def test_subnet_mistakes_are_reported_where_they_are(old, new, message) -> None:
    text = CLUSTER.format(cni="calico", settings=IPIP)
    assert old in text
    with pytest.raises(TopologyError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_topology_text(text.replace(old, new), "t.yaml")


def test_a_subnet_without_underlay_subnets_is_an_error() -> None:
    text = CLUSTER.format(cni="calico", settings=IPIP)
    text = text.split("  underlay:\n")[0] + "nodes:" + text.split("nodes:")[1]
    with pytest.raises(TopologyError, match="there is no cluster.underlay.subnets to name"):
        load_topology_text(text, "t.yaml")


def test_the_cli_reports_a_bad_subnet_in_one_line(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        CLUSTER.format(cni="calico", settings=IPIP).replace("rack-b, pods", "rack-x, pods")
    )
    done = subprocess.run(["kpkt", "validate", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "no subnet 'rack-x'" in done.stderr and "Traceback" not in done.stderr


def test_validate_shows_the_subnets_and_the_router(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(CLUSTER.format(cni="calico", settings=IPIP))
    rack_a, rack_b = load().cluster.subnets
    text = subprocess.run(["kpkt", "validate", str(path)], capture_output=True, text=True).stdout
    assert "underlay rack-a 192.168.60.0/24, rack-b 192.168.61.0/24 mtu 1500" in text
    assert (
        f"router router: eth0 192.168.60.254 {rack_a.router_mac} (rack-a), "
        f"eth1 192.168.61.100 {rack_b.router_mac} (rack-b)"
    ) in text
    assert "  router: 192.168.61.0/24 dev eth1 scope link src 192.168.61.100" in text
    assert " on rack-b, tunl0 10.245.0.192/32" in text
    done = subprocess.run(["kpkt", "validate", "--json", str(path)], capture_output=True, text=True)
    subnets = json.loads(done.stdout)["cluster"]["subnets"]
    assert subnets[1] == {
        "name": "rack-b",
        "cidr": "192.168.61.0/24",
        "gateway": "192.168.61.100",
        "routerInterface": "eth1",
        "routerMac": rack_b.router_mac,
    }
