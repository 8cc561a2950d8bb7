"""Golden folders: a run's captures, manifest.json and one readable line per frame, kept in a
repository and compared with a fresh run field by field (kpkt's pytest plugin, tests/golden).

A golden folder is what `kpkt run --no-report` writes plus `<capture>.txt` for every pcap: one
stable line per frame (`summarize`, MACs named by interface), so a change reads well in
`git diff`. Differences are named by file and field: `node1__eth0.pcap frame 3: IP.ttl:
63 != 62` (kpkt.capture.diff), `manifest.json: steps[1].outcome: 'refused' != 'delivered'`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.capture.summary import interface_names, summarize
from kpkt.spec import Topology

LIMIT = 40  # differences listed in full per folder; the rest are counted


def produce(topology: Topology, folder: Path) -> Path:
    """Run `topology` into `folder`: its captures, all.pcapng, manifest.json and renderings."""
    runner.run(topology, folder=folder, report=False)
    for name, text in render(folder).items():
        (folder / name).write_text(text)
    return folder


def render(folder: Path) -> dict[str, str]:
    """`<capture>.txt` for every pcap: one stable line per frame, MACs named by interface."""
    manifest = json.loads((folder / "manifest.json").read_text())
    names = interface_names(manifest)
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


def compare(expected: Path, actual: Path) -> list[str]:
    """Every difference between two golden folders, one line each, named by file and field.

    A capture's rendering (`.txt`) is reported only when its pcap is the same (the rendering
    itself changed): otherwise the pcap's field-by-field lines already say what differs."""
    from kpkt.capture.diff import compare_pcaps  # Scapy: only once something differs

    problems = []
    want = {p.name for p in expected.iterdir()}
    got = {p.name for p in actual.iterdir()}
    problems += [f"{name}: expected, not produced" for name in sorted(want - got)]
    problems += [f"{name}: produced, not expected" for name in sorted(got - want)]
    differing = {
        name
        for name in want & got
        if (expected / name).read_bytes() != (actual / name).read_bytes()
    }
    for name in sorted(differing):
        if name.endswith(".pcap"):
            problems += compare_pcaps(expected / name, actual / name, set()) or [
                f"{name}: bytes differ"
            ]
        elif name.endswith(".json"):
            want_doc = json.loads((expected / name).read_text())
            got_doc = json.loads((actual / name).read_text())
            problems += [f"{name}: {line}" for line in json_differences(want_doc, got_doc)]
        elif name.endswith(".txt"):
            if name.removesuffix(".txt") + ".pcap" not in differing:
                problems += _text_differences(name, expected / name, actual / name)
        elif name == "all.pcapng":
            problems.append("all.pcapng: differs (see the per-interface differences)")
        else:
            problems.append(f"{name}: differs")
    return problems


def json_differences(expected, actual, path: str = "") -> list[str]:
    """`steps[1].outcome: 'refused' != 'delivered'` (expected first) for every leaf that differs."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in list(expected) + [key for key in actual if key not in expected]:
            where = f"{path}.{key}" if path else key
            if key not in actual:
                lines.append(f"{where}: expected, not produced")
            elif key not in expected:
                lines.append(f"{where}: produced, not expected")
            else:
                lines += json_differences(expected[key], actual[key], where)
        return lines
    if isinstance(expected, list) and isinstance(actual, list):
        lines = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
            lines += json_differences(want, got, f"{path}[{index}]")
        if len(expected) != len(actual):
            lines.append(f"{path}: {len(expected)} entries != {len(actual)}")
        return lines
    if expected != actual:
        return [f"{path}: {expected!r} != {actual!r}"]
    return []


def _text_differences(name: str, expected: Path, actual: Path) -> list[str]:
    want = expected.read_text().splitlines()
    got = actual.read_text().splitlines()
    lines = []
    for number in range(max(len(want), len(got))):
        old = want[number] if number < len(want) else "<absent>"
        new = got[number] if number < len(got) else "<absent>"
        if old != new:
            lines.append(f"{name} line {number + 1}: {old.strip()!r} != {new.strip()!r}")
    return lines


def report(run: str, golden: str, problems: list[str], limit: int = LIMIT) -> str:
    """The message a failed comparison shows: what differs from which golden, and the fix."""
    shown = problems[:limit]
    more = len(problems) - len(shown)
    count = f"{len(problems)} differences, expected != actual"
    lines = [f"the run of {run} differs from the golden folder {golden} ({count}):"]
    lines += [f"  {problem}" for problem in shown]
    if more:
        lines.append(f"  ... and {more} more")
    lines.append("if the change is intended: rerun with --kpkt-update-golden and review git diff")
    return "\n".join(lines)


def update(expected: Path, actual: Path) -> None:
    """Replace the golden folder `expected` with the fresh run `actual`."""
    if expected.exists():
        shutil.rmtree(expected)
    shutil.copytree(actual, expected)
