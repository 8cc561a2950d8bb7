"""Services hop by hop, on the captures of the examples and goldens: the addresses before and
after DNAT, the reverse NAT on replies, the masquerade of hairpin and NodePort traffic, and the
REJECT of a service without endpoints (services.md §2.7, §4, §6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, TCPerror
from scapy.layers.l2 import Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology

from conftest import ROOT


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    sources = {
        "two-node": ROOT / "topologies" / "two-node.yaml",
        "hairpin": ROOT / "tests" / "golden" / "service-hairpin" / "topology.yaml",
        "no-endpoints": ROOT / "tests" / "golden" / "service-no-endpoints" / "topology.yaml",
    }
    folders = {}
    for name, source in sources.items():
        folders[name] = tmp_path_factory.mktemp(name) / "out"
        runner.run(load_topology(source), folder=folders[name])
    return folders


def tcp_flows(path: Path) -> list[tuple[str, int, str, int, str, int]]:
    """(src, sport, dst, dport, flags, ttl) of every TCP segment, in order."""
    rows = []
    for _, frame in read_pcap(path):
        packet = Ether(frame)
        if TCP in packet and TCPerror not in packet:
            ip, tcp = packet[IP], packet[TCP]
            rows.append((ip.src, tcp.sport, ip.dst, tcp.dport, str(tcp.flags), ip.ttl))
    return rows


def ends(rows) -> set[tuple[str, str]]:
    return {(src, dst) for src, _, dst, _, _, _ in rows}


def test_nodeport_cross_node_is_masqueraded_to_flannel_1(runs) -> None:
    folder = runs["two-node"]
    laptop = [r for r in tcp_flows(folder / "laptop__eth0.pcap")]
    assert ends(laptop) == {("192.168.50.100", "192.168.50.1"), ("192.168.50.1", "192.168.50.100")}
    assert {r[3] for r in laptop if r[0] == "192.168.50.100"} == {30080}
    # node1 DNATs to pod-c on node2 and masquerades to flannel.1's address, a random port
    tunnel = [r for r in tcp_flows(folder / "node1__flannel.1.pcap") if r[0] == "10.1.1.0"]
    assert tunnel and {(r[2], r[3]) for r in tunnel} == {("10.1.2.10", 8080)}
    pod_c = tcp_flows(folder / "pod-c.default__eth0.pcap")
    assert ("10.1.1.0", "10.1.2.10") in ends(pod_c)  # the endpoint never sees the laptop


def test_same_node_service_is_bridged_and_translated_back(runs) -> None:
    folder = runs["two-node"]
    client = [r for r in tcp_flows(folder / "pod-d.default__eth0.pcap") if 80 in (r[1], r[3])]
    assert ends(client) == {("10.1.2.11", "10.96.0.80"), ("10.96.0.80", "10.1.2.11")}
    server = [r for r in tcp_flows(folder / "pod-c.default__eth0.pcap") if r[0] == "10.1.2.11"]
    assert server and {(r[2], r[3]) for r in server} == {("10.1.2.10", 8080)}
    assert {r[5] for r in server} == {64}  # switched by the bridge, never routed


def test_hairpin_is_masqueraded_to_cni0(runs) -> None:
    folder = runs["hairpin"]
    rows = tcp_flows(folder / "web-0.default__eth0.pcap")
    own = "10.244.1.2"
    sent = [r for r in rows if r[2] == "10.96.0.50" or r[0] == "10.96.0.50"]
    assert sent, "the client side talks to the service address"
    masqueraded = [r for r in rows if r[0] == "10.244.1.1" and r[2] == own and r[3] == 8080]
    assert masqueraded and {r[5] for r in masqueraded} == {64}
    assert all(r[0] != own or r[2] != own for r in rows)  # never a packet to itself


def test_service_without_endpoints_is_rejected_by_the_node(runs) -> None:
    frames = [Ether(f) for _, f in read_pcap(runs["no-endpoints"] / "client.default__eth0.pcap")]
    errors = [p for p in frames if ICMP in p and p[ICMP].type == 3]
    assert len(errors) == 1
    error = errors[0]
    assert (error[IP].src, error[ICMP].code, error[IP].tos) == ("10.244.1.1", 3, 0xC0)
    quoted = error[ICMP].payload
    assert (quoted.dst, quoted.ttl) == ("10.96.0.51", 63)  # rejected after forwarding
