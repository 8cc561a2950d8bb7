"""A one-line progress report on stderr for long runs, shown only on a terminal.

It appears once a run has taken a second and redraws at most ten times a second; in a pipe, a
file or CI (the CI environment variable set) it prints nothing at all.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

SHOW_AFTER_S = 1.0
REDRAW_S = 0.1


class StatusLine:
    """One line on `stream`, redrawn in place, from `delay` seconds on, and cleared at the end."""

    def __init__(self, stream: TextIO = sys.stderr, delay: float = SHOW_AFTER_S) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.next_draw = self.started + delay
        self.drawn = False

    @staticmethod
    def wanted(stream: TextIO = sys.stderr) -> bool:
        return stream.isatty() and not os.environ.get("CI")

    def due(self, now: float) -> bool:
        """Whether a redraw is due at `now` (then the next one is REDRAW_S later)."""
        if now < self.next_draw:
            return False
        self.next_draw = now + REDRAW_S
        return True

    def draw(self, line: str) -> None:
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Progress(StatusLine):
    """A run's progress: the step, what it sent, the frames written and the time taken."""

    def __init__(self, total_steps: int, stream: TextIO = sys.stderr) -> None:
        super().__init__(stream)
        self.total = total_steps

    def tick(self, index: int, app, journal) -> None:
        now = time.monotonic()
        if not self.due(now):
            return
        frames = sum(log.hop_count for log in journal.steps)
        count = getattr(app.step, "count", None)  # tcp and dns steps have no count
        sent = f"{app.sent:,}/{count:,}" if count is not None else f"{app.sent:,}"
        line = (
            f"kpkt: step {index + 1}/{self.total}, {sent} sent, "
            f"{frames:,} frames, {now - self.started:.1f} s"
        )
        self.draw(line)
