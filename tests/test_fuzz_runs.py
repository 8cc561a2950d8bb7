"""Random clusters and random traffic never crash a run, and every run is reproducible; mutated
example topologies either run or are refused as the user's problem, and never lose a capture."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.cli import main
from kpkt.topology.load import load_topology_text

from fuzz_mutator import mutants

ADDRESSES = [
    "10.244.1.2",
    "10.244.2.9",
    "10.99.0.1",
    "192.168.50.1",
    "192.168.50.77",
    "127.0.0.1",
    "10.244.1.1",
    "10.244.2.0",
]


@st.composite
def topologies(draw) -> str:
    nodes = draw(st.integers(1, 3))
    pods = [draw(st.integers(0, 3)) for _ in range(nodes)]
    externals = draw(st.integers(0, 1))
    names = [f"p{n}-{i}" for n in range(nodes) for i in range(pods[n])]
    hosts = names + [f"node{n + 1}" for n in range(nodes)] + (["laptop"] if externals else [])
    senders = [h for h in hosts if h != "laptop"] or hosts
    lines = [
        "apiVersion: kpkt/v1",
        "kind: Topology",
        "metadata: {name: fuzz}",
        f"cluster: {{hairpin: {draw(st.booleans())}}}",
        "nodes:",
    ]
    for n in range(nodes):
        members = ", ".join(f"{{name: p{n}-{i}}}" for i in range(pods[n]))
        lines.append(f"  - {{name: node{n + 1}, pods: [{members}]}}")
    if externals:
        lines.append("externals: [{name: laptop}]")
    lines.append("traffic:")
    for _ in range(draw(st.integers(1, 4))):
        src = draw(st.sampled_from(senders))
        dst = draw(st.sampled_from(hosts + ADDRESSES))
        kind = draw(st.sampled_from(["udp", "ping", "tcp"]))
        if kind == "ping":
            body = f"from: {src}, to: '{dst}', count: {draw(st.integers(1, 2))}, "
            body += f"ttl: {draw(st.integers(1, 4))}"
        else:
            body = f"from: {src}, to: '{dst}', dport: {draw(st.integers(1, 65535))}, "
            body += f"listen: {draw(st.booleans())}"
            if kind == "udp":
                body += f", count: {draw(st.integers(1, 3))}, ttl: {draw(st.integers(1, 3))}"
        lines.append(f"  - {kind}: {{{body}}}")
    return "\n".join(lines) + "\n"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(topologies())
def test_random_traffic_runs_and_repeats(text: str) -> None:
    topology = load_topology_text(text, "fuzz.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        first, second = Path(scratch) / "a", Path(scratch) / "b"
        runner.run(topology, folder=first)
        runner.run(topology, folder=second)
        for path in sorted(first.iterdir()):
            assert path.read_bytes() == (second / path.name).read_bytes(), path.name


MUTANTS = 300
MAX_FRAMES = 3000  # keeps a mutant that asks for much traffic short: exit 2, as documented


def test_mutated_examples_exit_0_or_2_and_write_only_whole_output_folders(tmp_path):
    """Every mutant of the shipped examples runs to exit 0 (3 with an `expect:`) or is refused
    with exit 2 and an `error:` line; never a traceback; nothing written outside the output
    folder; and every capture in the manifest has a file of its own holding its packets."""
    cli = CliRunner()
    for number, mutant in enumerate(mutants(MUTANTS, seed=12)):
        here = tmp_path / str(number)  # the run's current folder: -o out lands inside it
        here.mkdir()
        with contextlib.chdir(here):
            (here / "t.yaml").write_text(mutant.text, encoding="utf-8")
            arguments = ["run", "-q", "t.yaml", "-o", "out", "--max-packets", str(MAX_FRAMES)]
            result = cli.invoke(main, arguments)
            allowed = (0, 2, 3) if mutant.has_expectations else (0, 2)
            assert result.exit_code in allowed, (mutant.label, result.output)
            assert "Traceback" not in result.output and "internal error" not in result.output
            written = sorted(str(p.relative_to(here)) for p in here.rglob("*") if p.is_file())
            if result.exit_code == 2:
                assert any(line.startswith("error: ") for line in result.stderr.splitlines())
                assert written == ["t.yaml"], (mutant.label, written)
                continue
            outside = [name for name in written if not name.startswith("out/")]
            assert outside == ["t.yaml"], (mutant.label, outside)
            _check_captures(here / "out", mutant.label)


def _check_captures(folder: Path, label: str) -> None:
    captures = json.loads((folder / "manifest.json").read_text())["captures"]
    files = [capture["file"] for capture in captures]
    assert len(files) == len(set(files)), (label, files)
    assert sorted(files) == sorted(path.name for path in folder.glob("*.pcap")), label
    for capture in captures:
        records = read_pcap(folder / capture["file"])
        assert capture["packets"] == len(records), (label, capture["file"])
