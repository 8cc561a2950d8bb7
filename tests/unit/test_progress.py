"""The progress line: shown on a terminal after a second, never in pipes or CI, also for runs of
many short steps."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from types import SimpleNamespace

from kpkt import progress
from kpkt.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fake_run(sent: int) -> tuple[SimpleNamespace, SimpleNamespace]:
    app = SimpleNamespace(sent=sent, step=SimpleNamespace(count=1000))
    journal = SimpleNamespace(steps=[SimpleNamespace(hop_count=12345)])
    return app, journal


def test_quiet_in_pipes_and_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not Progress.wanted(io.StringIO())
    assert Progress.wanted(Terminal())
    monkeypatch.setenv("CI", "true")
    assert not Progress.wanted(Terminal())


def test_draws_only_after_a_second_and_clears(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    stream = Terminal()
    bar = Progress(3, stream)
    app, journal = fake_run(10)
    bar.tick(0, app, journal)
    assert stream.getvalue() == ""
    clock[0] += 1.5
    bar.tick(1, *fake_run(500))
    assert "step 2/3, 500/1,000 sent, 12,345 frames, 1.5 s" in stream.getvalue()
    bar.finish()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_finish_prints_nothing_when_never_drawn():
    stream = Terminal()
    Progress(1, stream).finish()
    assert stream.getvalue() == ""


def test_a_run_of_many_short_steps_shows_progress(monkeypatch):
    """Steps of a few events each never reach the every-few-thousand-events check on their
    own: the line is also considered after each step (as `kpkt gen 60 40` runs)."""
    from kpkt.build import build
    from kpkt.gen import generate
    from kpkt.topology.load import load_topology_text

    clock = [0.0]

    def monotonic() -> float:
        clock[0] += 0.25  # each look at the clock: a quarter of a second later
        return clock[0]

    monkeypatch.setattr(progress.time, "monotonic", monotonic)
    topology = load_topology_text(generate(3, 4), "gen.yaml")
    network, apps = build(topology)
    assert len(apps) == 12
    stream = Terminal()
    bar = Progress(len(apps), stream)
    with tempfile.TemporaryDirectory() as folder:
        network.journal.open(Path(folder))
        network.run(apps, bar)
        network.journal.close()
    assert "kpkt: step 12/12, 1/1 sent" in stream.getvalue()
    assert stream.getvalue().count("\r") >= 5  # redrawn as the steps went by
