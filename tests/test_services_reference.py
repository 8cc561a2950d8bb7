"""kube-proxy's Services against a real Linux kernel: `topologies/services-reference.yaml` runs
the ClusterIP TCP scenario of `tests/reference/services.md` §3.1, and every interface the
reference captured (pods, veths, cni0, flannel.1, eth0, the underlay switch and the laptop) is
compared frame by frame and field by field with `tests/reference/svc_clusterip_tcp/`:
the DNAT inside the bridge, the reverse NAT on the way back, TTLs, MACs, ARP, and TCP (relative
sequence numbers, flags, windows, options). Only what the reference documents as random may
differ (see `wire_fields.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology

from conftest import REFERENCE, ROOT, reference_captures
from wire_fields import assert_same_as_linux

SCENARIO = REFERENCE / "svc_clusterip_tcp"
TOPOLOGY = ROOT / "topologies" / "services-reference.yaml"


def our_name(reference_file: str) -> str:
    """ksvc-node1__cni0.pcap -> node1__cni0.pcap; ksvc-n1-client__eth0 -> n1-client.default__eth0"""
    owner, ifname = reference_file.removeprefix("ksvc-").removesuffix(".pcap").split("__")
    if owner.startswith(("n1-", "n2-")):
        owner += ".default"
    return f"{owner}__{ifname}.pcap"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("services") / "out"
    runner.run(load_topology(TOPOLOGY), folder=folder)
    return folder


@pytest.mark.parametrize("reference_file", reference_captures("svc_clusterip_tcp"))
def test_interface_matches_linux(run: Path, reference_file: str) -> None:
    assert_same_as_linux(SCENARIO / reference_file, run / our_name(reference_file))


def addresses(path: Path) -> list[str]:
    rows = []
    for _, frame in read_pcap(path):
        packet = Ether(frame)
        if TCP in packet:
            ip, tcp = packet[IP], packet[TCP]
            rows.append(f"{ip.src}:{tcp.sport}>{ip.dst}:{tcp.dport}")
    return sorted(set(rows))


def test_the_vip_is_seen_only_between_the_client_and_the_bridge(run: Path) -> None:
    to_vip, from_vip = "10.244.1.2:40080>10.96.0.50:80", "10.96.0.50:80>10.244.1.2:40080"
    direct = ["10.244.1.2:40080>10.244.2.2:8080", "10.244.2.2:8080>10.244.1.2:40080"]
    assert addresses(run / "n1-client.default__eth0.pcap") == [to_vip, from_vip]
    assert addresses(run / "node1__veth-client.pcap") == [to_vip, from_vip]
    # cni0 receives the DNATed request and sends the reverse-NATed reply
    assert addresses(run / "node1__cni0.pcap") == [direct[0], from_vip]
    assert addresses(run / "node1__flannel.1.pcap") == direct
    assert addresses(run / "n2-web-b.default__eth0.pcap") == direct
