"""kpkt/runner.py: one function runs a topology, in memory or into a folder."""

from __future__ import annotations

import os

from kpkt import runner
from kpkt.topology.load import load_topology

from conftest import ROOT

TWO_NODE = ROOT / "kpkt" / "examples" / "two-node.yaml"


def test_in_memory_run_writes_nothing_and_keeps_every_step_log(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    topology = load_topology(TWO_NODE)
    done = runner.run(topology)
    assert done.folder is None and done.files == {}
    assert os.listdir(tmp_path) == []
    logs = done.network.journal.steps
    assert len(logs) == len(topology.steps)
    assert all(log.hop_count for log in logs)


def test_steps_runs_only_the_first_steps_and_zero_builds_without_running(tmp_path) -> None:
    topology = load_topology(TWO_NODE)
    first = runner.run(topology, steps=1)
    assert first.topology.steps == topology.steps[:1]
    assert len(first.network.journal.steps) == 1
    built = runner.run(topology, steps=0)
    assert built.network.journal.steps == []
    assert built.network.sched.now == 0
    assert built.network.stacks.keys() == first.network.stacks.keys()


def test_a_folder_run_writes_the_same_frames_as_an_in_memory_run(tmp_path) -> None:
    topology = load_topology(TWO_NODE)
    written = runner.run(topology, folder=tmp_path / "out", report=False)
    in_memory = runner.run(topology)
    assert written.folder == tmp_path / "out"
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert not (tmp_path / "out" / "report.html").exists()
    assert all((tmp_path / "out" / name).is_file() for name in written.files.values())
    pairs = zip(written.network.journal.steps, in_memory.network.journal.steps, strict=True)
    for a, b in pairs:
        assert [h.frame for h in a.rows] == [h.frame for h in b.rows]
        assert a.result == b.result


def test_keep_rows_keeps_every_hop_of_a_step() -> None:
    topology = load_topology(TWO_NODE)
    kept = runner.run(topology, steps=1, keep_rows={0: 10_000}).network.journal.steps[0]
    assert len(kept.rows) == kept.hop_count
