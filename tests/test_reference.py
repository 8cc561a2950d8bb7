"""kpkt against a real Linux kernel: the reference cluster through the three captured flannel
VXLAN scenarios and the captured host-gw one (`cni-others.md` §6), compared frame by frame and
field by field with `tests/reference/<scenario>/`.

Only what the reference documents as random may differ: IP IDs (and so IP header checksums),
the outer VXLAN UDP source port value (and the outer UDP checksum, which covers the inner IDs),
the ICMP echo id and the timestamp that starts the ping payload (and so the ICMP checksum).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology

from conftest import REFERENCE, ROOT, reference_captures
from wire_fields import assert_same_as_linux

VXLAN_TOPOLOGY = ROOT / "topologies" / "flannel-reference.yaml"
HOST_GW_TOPOLOGY = ROOT / "topologies" / "hostgw-reference.yaml"

# scenario -> the example topology and the index of its step there
SCENARIOS = {
    "udp_same_node": (VXLAN_TOPOLOGY, 0),
    "udp_cross_node": (VXLAN_TOPOLOGY, 1),
    "icmp_cross_node": (VXLAN_TOPOLOGY, 2),
    "hostgw_udp_cross_node": (HOST_GW_TOPOLOGY, 0),
}


def our_name(reference_file: str) -> str:
    """kref-node1__cni0.pcap -> node1__cni0.pcap; kref-n1-pod-a__eth0 -> n1-pod-a.default__eth0"""
    owner, ifname = reference_file.removeprefix("kref-").removesuffix(".pcap").split("__")
    if owner.startswith("node"):
        return f"{owner}__{ifname}.pcap"
    return f"{owner}.default__{ifname}.pcap"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for scenario, (path, index) in SCENARIOS.items():
        topology = load_topology(path)
        cold = dataclasses.replace(topology, steps=(topology.steps[index],))
        folder = tmp_path_factory.mktemp(scenario) / "out"
        runner.run(cold, folder=folder)
        folders[scenario] = folder
    return folders


CASES = [(scenario, name) for scenario in SCENARIOS for name in reference_captures(scenario)]


@pytest.mark.parametrize(("scenario", "reference_file"), CASES)
def test_interface_matches_linux(runs, scenario: str, reference_file: str) -> None:
    assert_same_as_linux(
        REFERENCE / scenario / reference_file, runs[scenario] / our_name(reference_file)
    )


def test_vxlan_source_port_is_symmetric_and_in_range(runs) -> None:
    frames = [f for _, f in read_pcap(runs["icmp_cross_node"] / "node1__eth0.pcap")]
    ports = {Ether(f)[UDP].sport for f in frames if VXLAN in Ether(f)}
    assert len(ports) == 1, "request and reply must share the outer source port"
    assert 32768 <= ports.pop() <= 60999


def read_reference(path: Path) -> list[tuple[int, bytes]]:
    """The reference files are nanosecond pcaps like ours, with snaplen 262144."""
    return read_pcap(path)
