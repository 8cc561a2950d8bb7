"""The reference data is in the repository, whole and unchanged: every file SHA256SUMS lists is
there with its checksum, nothing unlisted sits beside them, and every captured scenario is there.
These files are ground truth taken from real kernels (tests/reference/README.md); a change to one
of them is a mistake, not an update."""

from __future__ import annotations

import hashlib

from conftest import REFERENCE, reference_files

SCENARIOS = {
    "udp_same_node",
    "udp_cross_node",
    "icmp_cross_node",
    "svc_clusterip_tcp",
    "hostgw_udp_cross_node",
    "calico_ipip_udp_cross_node",
    "calico_vxlan_udp_same_node",
}
NOTES = {"datapath.md", "services.md", "calico.md", "cni-others.md", "netpol.md"}


def test_every_listed_file_is_there_unchanged() -> None:
    changed = [
        name
        for name, digest in reference_files().items()
        if not (REFERENCE / name).is_file()
        or hashlib.sha256((REFERENCE / name).read_bytes()).hexdigest() != digest
    ]
    assert not changed, f"missing or changed in tests/reference/: {changed}"


def test_nothing_unlisted_is_there() -> None:
    present = {
        path.relative_to(REFERENCE).as_posix() for path in REFERENCE.rglob("*") if path.is_file()
    }
    unlisted = present - set(reference_files()) - {"README.md", "SHA256SUMS"}
    assert not unlisted, f"not in tests/reference/SHA256SUMS: {sorted(unlisted)}"


def test_every_scenario_and_note_is_listed() -> None:
    names = set(reference_files())
    assert {name.split("/")[0] for name in names if "/" in name} == SCENARIOS
    assert {name for name in names if "/" not in name} == NOTES
    for scenario in SCENARIOS:
        assert f"{scenario}/hops.txt" in names, f"{scenario} has no hops.txt"
