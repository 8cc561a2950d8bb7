"""A discrete-event scheduler on a virtual clock of integer nanoseconds.

Events run in (time, sequence) order, so two events at the same instant run in the order they
were scheduled: runs are reproducible to the byte.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any


class Scheduler:
    __slots__ = ("now", "_queue", "_seq")

    def __init__(self) -> None:
        self.now = 0
        self._queue: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, t_ns: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` at virtual time `t_ns` (never earlier than now)."""
        self._seq += 1
        heappush(self._queue, (t_ns if t_ns > self.now else self.now, self._seq, fn, args))

    def after(self, delay_ns: int, fn: Callable[..., Any], *args: Any) -> None:
        self._seq += 1
        heappush(self._queue, (self.now + delay_ns, self._seq, fn, args))

    def next_time(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def step(self) -> bool:
        """Run the next event; False when there is none."""
        if not self._queue:
            return False
        t_ns, _, fn, args = heappop(self._queue)
        self.now = t_ns
        fn(*args)
        return True

    def pending(self) -> int:
        return len(self._queue)

    @property
    def sequence(self) -> int:
        """How many events have been scheduled so far."""
        return self._seq

    def scheduled_since(self, sequence: int) -> list[tuple[int, Callable[..., Any], tuple]]:
        """The events scheduled after `sequence` (a `sequence` read earlier) and not run yet,
        in the order they were scheduled, as (time, fn, args)."""
        later = sorted((e for e in self._queue if e[1] > sequence), key=lambda e: e[1])
        return [(t_ns, fn, args) for t_ns, _, fn, args in later]
