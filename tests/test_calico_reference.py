"""Calico against a real Linux kernel: the reference cluster of tests/reference/calico.md in
IPIP and in VXLAN mode (`calico-reference.yaml`, `calico-vxlan-reference.yaml`), through the two
captured scenarios, compared frame by frame and field by field on every interface, link types
included (`tunl0` is raw IP).

Only what the reference documents as random may differ: IP IDs (and so IP header checksums, inner
and outer). Facts of calico.md §3 that no shipped capture holds (VXLAN across nodes, ping) are
checked in tests/test_calico.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kpkt import runner
from kpkt.capture.diff import compare_pcaps
from kpkt.topology.load import load_topology

from conftest import EXAMPLES, REFERENCE, reference_captures
from wire_fields import assert_same_as_linux, pcap_link_type

TOPOLOGIES = {path.stem: path for path in EXAMPLES}
# scenario -> the topology that states its cluster, and the index of its step there
SCENARIOS = {
    "calico_ipip_udp_cross_node": ("calico-reference", 1),
    "calico_vxlan_udp_same_node": ("calico-vxlan-reference", 0),
}


def our_name(reference_file: str) -> str:
    """kcal-node1__tunl0.pcap stays; kcal-n1-pod-a__eth0 -> kcal-n1-pod-a.default__eth0 (a pod
    namespace is named <pod>.<namespace>)."""
    owner, ifname = reference_file.removesuffix(".pcap").split("__")
    if "-node" in owner:
        return f"{owner}__{ifname}.pcap"
    return f"{owner}.default__{ifname}.pcap"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for scenario, (name, index) in SCENARIOS.items():
        topology = load_topology(TOPOLOGIES[name])
        cold = dataclasses.replace(topology, steps=(topology.steps[index],))
        folder = tmp_path_factory.mktemp(scenario) / "out"
        runner.run(cold, folder=folder)
        folders[scenario] = folder
    return folders


CASES = [(scenario, name) for scenario in SCENARIOS for name in reference_captures(scenario)]


def test_every_capture_point_of_the_reference_is_one_of_ours(runs) -> None:
    for scenario, folder in runs.items():
        ours = sorted(path.name for path in folder.glob("*.pcap"))
        theirs = sorted(our_name(name) for name in reference_captures(scenario))
        assert ours == theirs, scenario


@pytest.mark.parametrize(("scenario", "reference_file"), CASES)
def test_interface_matches_linux(runs, scenario: str, reference_file: str) -> None:
    assert_same_as_linux(
        REFERENCE / scenario / reference_file, runs[scenario] / our_name(reference_file)
    )


def test_tunl0_is_raw_ip_and_the_others_ethernet(runs) -> None:
    folder = runs["calico_ipip_udp_cross_node"]
    kinds = {path.name: pcap_link_type(path) for path in folder.glob("*.pcap")}
    assert {name for name, kind in kinds.items() if kind == 101} == {
        "kcal-node1__tunl0.pcap",
        "kcal-node2__tunl0.pcap",
    }
    assert set(kinds.values()) == {1, 101}


@pytest.mark.parametrize("capture", ["kcal-node1__tunl0.pcap", "kcal-node1__eth0.pcap"])
def test_kpkt_diff_reads_raw_ip_and_ipip(runs, capture: str) -> None:
    # the random fields only: IP IDs and so header checksums, inner (IP#2) and outer, and time
    ignore = {"frame.time", "IP.id", "IP.chksum", "IP#2.id", "IP#2.chksum"}
    ours = runs["calico_ipip_udp_cross_node"] / capture
    reference = REFERENCE / "calico_ipip_udp_cross_node" / capture
    assert compare_pcaps(reference, ours, ignore) == []
    assert compare_pcaps(reference, ours, set())  # and they do differ in those fields
