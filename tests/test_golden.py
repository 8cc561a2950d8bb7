"""Golden-pcap regression: every example and every drop scenario, run and compared with the
captures checked in under tests/golden/<scenario>/expected/, through kpkt's own pytest plugin
(the `kpkt_golden` fixture, kpkt/pytest_plugin.py), as users' projects do.

A difference is reported field by field (`node1__flannel.1.pcap frame 3: IP.ttl: 63 != 62`), not
as a byte offset. `pytest --kpkt-update-golden` (or its older name `--update-golden`) rewrites
the expected files from this run; their text renderings (one line per frame) make the change
readable in `git diff`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kpkt import golden
from kpkt.topology.load import load_topology

from conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
SCENARIOS = {path.stem: path for path in EXAMPLES} | {
    folder.name: folder / "topology.yaml"
    for folder in sorted(GOLDEN.iterdir())
    if (folder / "topology.yaml").is_file()
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden(scenario: str, kpkt_golden) -> None:
    kpkt_golden(SCENARIOS[scenario], GOLDEN / scenario / "expected")


def test_every_drop_reason_the_datapath_produces_has_a_golden() -> None:
    reasons = set()
    for scenario in SCENARIOS:
        manifest = json.loads((GOLDEN / scenario / "expected" / "manifest.json").read_text())
        reasons |= {drop["reason"] for drop in manifest["drops"]}
    assert {
        "ttl-exceeded",
        "no-route",
        "neighbour-unresolved",
        "neighbour-queue-full",
        "port-unreachable",
        "link-down",
    } <= reasons


def test_a_changed_ttl_fails_naming_file_frame_and_field(tmp_path: Path) -> None:
    expected = tmp_path / "expected"
    shutil.copytree(GOLDEN / "flannel-reference" / "expected", expected)
    capture = expected / "node1__flannel.1.pcap"
    data = bytearray(capture.read_bytes())
    ttl_at = 24 + 16 + 14 + 8  # file header, record header, Ethernet, then the IPv4 TTL
    assert data[ttl_at] == 63
    data[ttl_at] = 62
    capture.write_bytes(bytes(data))
    actual = golden.produce(load_topology(SCENARIOS["flannel-reference"]), tmp_path / "run")
    problems = golden.compare(expected, actual)
    assert "node1__flannel.1.pcap frame 1: IP.ttl: 62 != 63" in problems
