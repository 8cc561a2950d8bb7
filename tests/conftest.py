"""Shared fixtures: the project root, the example topologies, the reference data, and tshark
(the binary, and the one way every test reads a capture with it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the example topologies, shipped as package data (`topologies` is a link to this folder)
EXAMPLES = sorted((ROOT / "kpkt" / "examples").glob("*.yaml"))
# the real-kernel captures and notes the tests compare with (tests/reference/README.md)
REFERENCE = ROOT / "tests" / "reference"
# a project of its own, run by tests/test_golden.py in a pytest of its own, as a user's would be
collect_ignore = ["sample_project"]


def reference_files() -> dict[str, str]:
    """Every reference file (its path under tests/reference/) and its SHA-256, as SHA256SUMS
    lists them: the list the tests walk, so a file that went missing fails instead of vanishing
    from a glob."""
    lines = (REFERENCE / "SHA256SUMS").read_text().splitlines()
    listed = (line.split(maxsplit=1) for line in lines)
    return {name: digest for digest, name in listed}


def reference_captures(scenario: str) -> list[str]:
    """The capture files (`<netns>__<ifname>.pcap`) of one reference scenario, from SHA256SUMS."""
    prefix = f"{scenario}/"
    names = [
        name.removeprefix(prefix)
        for name in reference_files()
        if name.startswith(prefix) and name.count("/") == 1 and name.endswith(".pcap")
    ]
    assert names, f"tests/reference/SHA256SUMS lists no capture of scenario {scenario!r}"
    return names


@pytest.fixture(scope="session")
def tshark() -> str:
    """The tshark binary. In CI its absence is a failure, never a skip."""
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed: CI must run the Wireshark checks")
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return path


# every tshark read in the tests: names not resolved, flannel's and weave fastdp's VXLAN ports
# decoded as VXLAN (Wireshark knows 4789 only) and every checksum validated, as the README tells
# users to read them
TSHARK_OPTIONS = (
    "-n",
    "-d",
    "udp.port==8472,vxlan",
    "-d",
    "udp.port==6784,vxlan",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
)


def tshark_read(tshark: str, capture: Path, *options: str) -> str:
    """What tshark prints for `capture` with TSHARK_OPTIONS and then `options`."""
    command = [tshark, "-r", str(capture), *TSHARK_OPTIONS, *options]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


IO_STAT_TOTALS = re.compile(r"^\|\s*[\d.]+ <> \S+\s*\|\s*(\d+) \|\s*(\d+) \|", re.MULTILINE)


def tshark_count(tshark: str, capture: Path, flag: str) -> tuple[int, int]:
    """How many frames tshark reads in `capture`, and how many of them match the display filter
    `flag`: one pass (its statistics over the whole file), where counting and filtering apart
    would start tshark twice. tshark splits a `-z` argument at commas, so `flag` has none."""
    assert "," not in flag, f"a comma in {flag!r}: write `a == 1 || a == 2` for `a in {{1, 2}}`"
    stats = f"io,stat,0,COUNT(frame)frame,COUNT(frame)frame && ({flag})"
    printed = tshark_read(tshark, capture, "-q", "-z", stats)
    totals = IO_STAT_TOTALS.findall(printed)
    if not totals:  # tshark prints no interval for a file without frames
        assert "Duration: 0" in printed, f"{capture.name}: no totals from tshark:\n{printed}"
        return len(tshark_read(tshark, capture).splitlines()), 0
    ((frames, flagged),) = totals
    return int(frames), int(flagged)


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        dest="kpkt_update_golden",  # the kpkt plugin's --kpkt-update-golden, by its older name
        help="rewrite tests/golden/*/expected/ from this run (then review `git diff`)",
    )
