"""A sweep's progress on stderr, redrawn on one line: runs done of the total, failed, skipped
(finished before) and the time left. Shown only on a terminal, like kpkt.progress."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from kpkt.progress import REDRAW_S, Progress


class SweepProgress:
    def __init__(self, total: int, skipped: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.skipped = skipped
        self.stream = stream
        self.started = time.monotonic()
        self.next_draw = self.started
        self.drawn = False

    @staticmethod
    def wanted(stream: TextIO = sys.stderr) -> bool:
        return Progress.wanted(stream)

    def update(self, ran: int, failed: int) -> None:
        now = time.monotonic()
        if now < self.next_draw and ran + self.skipped < self.total:
            return
        self.next_draw = now + REDRAW_S
        left = self.total - self.skipped - ran
        eta = f", {(now - self.started) / ran * left:.0f} s left" if ran and left else ""
        line = (
            f"kpkt sweep: {ran + self.skipped}/{self.total} runs done, {failed} failed, "
            f"{self.skipped} skipped{eta}"
        )
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
