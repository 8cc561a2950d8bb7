"""The progress line: shown on a terminal after a second, never in pipes or CI."""

from __future__ import annotations

import io
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
