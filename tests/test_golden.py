"""Golden-pcap regression: every example and every drop scenario, run and compared with the
captures checked in under tests/golden/<scenario>/expected/.

A difference is reported field by field (`node1__flannel.1.pcap frame 3: IP.ttl: 63 != 62`), not
as a byte offset. `pytest --update-golden` rewrites the expected files from this run; their text
renderings (one line per frame) make the change readable in `git diff`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kpkt import runner
from kpkt.capture.diff import compare_pcaps
from kpkt.capture.pcap import read_pcap
from kpkt.capture.summary import interface_names, summarize
from kpkt.topology.load import load_topology
from kpkt.wire.ethernet import mac_bytes

from conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
SCENARIOS = {path.stem: path for path in EXAMPLES} | {
    folder.name: folder / "topology.yaml"
    for folder in sorted(GOLDEN.iterdir())
    if (folder / "topology.yaml").is_file()
}


def render(folder: Path) -> dict[str, str]:
    """`<capture>.txt` for every pcap: one stable line per frame, MACs named by interface."""
    manifest = json.loads((folder / "manifest.json").read_text())
    names = interface_names(
        (mac_bytes(c["mac"]), f"{c['owner']}/{c['interface']}")
        for c in manifest["captures"]
        if c["mac"] and c["kind"] != "loopback"
    )
    link_types = {c["file"]: c["linkType"] for c in manifest["captures"]}
    texts = {}
    for capture in sorted(folder.glob("*.pcap")):
        link_type = link_types[capture.name]
        lines = [
            f"{number:>4} {t_ns / 1000:>14.3f}us  {summarize(frame, names, link_type=link_type)}"
            for number, (t_ns, frame) in enumerate(read_pcap(capture), start=1)
        ]
        texts[capture.stem + ".txt"] = "".join(f"{line}\n" for line in lines)
    return texts


def produce(scenario: str, into: Path) -> Path:
    """Run the scenario; its captures, all.pcapng, manifest.json and the renderings."""
    folder = into / scenario
    runner.run(load_topology(SCENARIOS[scenario]), folder=folder, report=False)
    for name, text in render(folder).items():
        (folder / name).write_text(text)
    return folder


def compare(expected: Path, actual: Path) -> list[str]:
    """Every difference between two golden folders, field by field where frames differ."""
    problems = []
    want = {p.name for p in expected.iterdir()}
    got = {p.name for p in actual.iterdir()}
    problems += [f"{name}: expected, not produced" for name in sorted(want - got)]
    problems += [f"{name}: produced, not expected" for name in sorted(got - want)]
    for name in sorted(want & got):
        if (expected / name).read_bytes() == (actual / name).read_bytes():
            continue
        if name.endswith(".pcap"):
            problems += compare_pcaps(expected / name, actual / name, set()) or [
                f"{name}: bytes differ"
            ]
        elif name == "manifest.json":
            problems += _manifest_differences(expected / name, actual / name)
        elif name == "all.pcapng":
            problems.append("all.pcapng: differs (see the per-interface differences)")
    return problems


def _manifest_differences(expected: Path, actual: Path) -> list[str]:
    want, got = json.loads(expected.read_text()), json.loads(actual.read_text())
    keys = [k for k in want.keys() | got.keys() if want.get(k) != got.get(k)]
    return [f"manifest.json: {key} differs" for key in sorted(keys)]


def update(expected: Path, actual: Path) -> None:
    if expected.exists():
        shutil.rmtree(expected)
    shutil.copytree(actual, expected)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden(scenario: str, tmp_path: Path, request) -> None:
    actual = produce(scenario, tmp_path)
    expected = GOLDEN / scenario / "expected"
    if request.config.getoption("--update-golden"):
        update(expected, actual)
        return
    assert expected.is_dir(), f"no golden for {scenario}: run pytest --update-golden"
    problems = compare(expected, actual)
    assert not problems, f"{scenario} differs from its golden:\n" + "\n".join(problems[:40])


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
    actual = produce("flannel-reference", tmp_path / "run")
    problems = compare(expected, actual)
    assert "node1__flannel.1.pcap frame 1: IP.ttl: 62 != 63" in problems
