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
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kpkt import golden
from kpkt.topology.load import load_topology

from conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
SAMPLE = ROOT / "tests" / "sample_project"  # a user's project: its own topology, golden, test
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


def sample_pytest(project: Path, *options: str) -> subprocess.CompletedProcess:
    """pytest run in `project` as its owner would, the plugin loaded from kpkt's installation."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)


def test_the_sample_project_passes_fails_on_a_change_and_updates(tmp_path: Path, request) -> None:
    if request.config.getoption("kpkt_update_golden"):  # its golden follows the datapath's
        done = sample_pytest(SAMPLE, "--kpkt-update-golden")
        assert done.returncode == 0, done.stdout + done.stderr
    project = tmp_path / "project"
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    passed = sample_pytest(project)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    topology = project / "cluster.yaml"
    topology.write_text(topology.read_text().replace("hello web", "hello, web"))
    failed = sample_pytest(project)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    out = failed.stdout
    assert "the run of cluster.yaml differs from the golden folder golden/cluster (" in out, out
    payload = r"frame \d+: (inner\.)?Raw\.load: 68656c6c6f20776562 != 68656c6c6f2c20776562"
    assert re.search(r"\n  node1__veth-web\.pcap " + payload, out), out
    assert re.search(r"\n  node1__eth0\.pcap frame \d+: inner\.UDP\.len: 17 != 18", out), out
    assert "\n  manifest.json: steps[0].text: 'udp: {from: client" in out, out
    assert "rerun with --kpkt-update-golden" in out and "Traceback" not in out, out

    updated = sample_pytest(project, "--kpkt-update-golden")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    again = sample_pytest(project)
    assert again.returncode == 0, again.stdout + again.stderr
    manifest = json.loads((project / "golden" / "cluster" / "manifest.json").read_text())
    assert "hello, web" in manifest["steps"][0]["text"]

    shutil.rmtree(project / "golden")
    missing = sample_pytest(project)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert (
        "kpkt_golden: no golden folder golden/cluster for cluster.yaml: "
        "run pytest --kpkt-update-golden to write it" in missing.stdout
    ), missing.stdout

    topology.write_text(topology.read_text().replace("dport: 8080", "dport: eighty"))
    broken = sample_pytest(project)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert re.search(
        r"\nkpkt_golden: \S*cluster\.yaml: traffic\[0\]\.udp\.dport: ", broken.stdout
    ), broken.stdout
    assert "During handling" not in broken.stdout, broken.stdout
    assert "Traceback" not in broken.stdout, broken.stdout


def test_the_documented_update_command_is_accepted() -> None:
    """README's `pytest tests/test_golden.py --update-golden`: the plugin's option, older name."""
    for option in ("--update-golden", "--kpkt-update-golden"):
        command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        test = "tests/test_golden.py::test_every_drop_reason_the_datapath_produces_has_a_golden"
        done = subprocess.run([*command, option, test], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_manifest_differences_are_named_by_their_json_path() -> None:
    expected = {"seed": 0, "steps": [{"outcome": "delivered", "hops": [1, 2]}], "gone": 1}
    actual = {"seed": 0, "steps": [{"outcome": "refused", "hops": [1, 3, 4]}], "new": [2]}
    assert golden.json_differences(expected, actual) == [
        "steps[0].outcome: 'delivered' != 'refused'",
        "steps[0].hops[1]: 2 != 3",
        "steps[0].hops: 2 entries != 3",
        "gone: expected, not produced",
        "new: produced, not expected",
    ]


def test_a_rendering_is_compared_by_line_only_when_its_capture_is_the_same(tmp_path: Path) -> None:
    expected = GOLDEN / "masquerade" / "expected"
    actual = tmp_path / "actual"
    shutil.copytree(expected, actual)
    rendering = actual / "node1__eth0.txt"
    lines = rendering.read_text().splitlines(keepends=True)
    rendering.write_text("".join(lines[:1] + ["   2 changed\n"] + lines[2:]))
    (actual / "laptop__eth0.pcap").unlink()
    (actual / "extra.txt").write_text("")
    manifest = json.loads((actual / "manifest.json").read_text())
    manifest["steps"][1]["outcome"] = "delivered"
    (actual / "manifest.json").write_text(json.dumps(manifest))
    assert golden.compare(expected, actual) == [
        "laptop__eth0.pcap: expected, not produced",
        "extra.txt: produced, not expected",
        "manifest.json: steps[1].outcome: 'refused' != 'delivered'",
        f"node1__eth0.txt line 2: {lines[1].strip()!r} != '2 changed'",
    ]
    capture = actual / "node1__eth0.pcap"
    data = bytearray(capture.read_bytes())
    data[-1] ^= 0xFF  # the last frame's last byte: the capture differs, its rendering too
    capture.write_bytes(bytes(data))
    problems = golden.compare(expected, actual)
    assert not any(line.startswith("node1__eth0.txt") for line in problems), problems
    assert any(line.startswith("node1__eth0.pcap frame 10: ") for line in problems), problems


def test_the_plugin_is_installed_and_imports_nothing_until_a_test_uses_it() -> None:
    from importlib.metadata import entry_points

    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert plugins.get("kpkt") == "kpkt.pytest_plugin"
    code = (
        "import sys, kpkt.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith(('kpkt.', 'scapy'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['kpkt.pytest_plugin']"
