"""A sweep's progress on stderr, redrawn on one line: runs done of the total, failed, skipped
(finished before) and the time left. Shown only on a terminal, like kpkt.progress."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from kpkt.progress import StatusLine


class SweepProgress(StatusLine):
    def __init__(self, total: int, skipped: int, stream: TextIO = sys.stderr) -> None:
        super().__init__(stream, delay=0)
        self.total = total
        self.skipped = skipped

    def update(self, ran: int, failed: int) -> None:
        now = time.monotonic()
        if not self.due(now) and ran + self.skipped < self.total:
            return
        left = self.total - self.skipped - ran
        eta = f", {(now - self.started) / ran * left:.0f} s left" if ran and left else ""
        line = (
            f"kpkt sweep: {ran + self.skipped}/{self.total} runs done, {failed} failed, "
            f"{self.skipped} skipped{eta}"
        )
        self.draw(line)
