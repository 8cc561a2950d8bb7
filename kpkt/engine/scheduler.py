"""A discrete-event scheduler on a virtual clock of integer nanoseconds.

Events run in (time, sequence) order, so two events at the same instant run in the order they
were scheduled: runs are reproducible to the byte. No event is scheduled before the one running
(`at` never earlier than now, `after` never a negative delay), so events run in the order of
their (time, sequence) keys, and an event has run exactly when its key is not above the key of
the event that ran last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import Any


class Scheduler:
    __slots__ = (
        "now",
        "horizon",
        "promised",
        "_queue",
        "_seq",
        "_ran",
        "_recent",
        "_streak",
        "_held",
    )

    def __init__(self) -> None:
        self.now = 0
        # no event runs past it inside another (see hand_over): a caller that runs events up
        # to a time (kpkt/live.py) sets it
        self.horizon = _NEVER
        self._queue: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0
        self._ran = 0  # the sequence number of the event that ran last
        # the events scheduled last, each at its sequence number modulo RECENT (for
        # scheduled_since, which would otherwise look through the whole queue)
        self._recent: list[tuple | None] = [None] * RECENT
        # what the running event promised to do last (`promise`): (time, fn, args), until a
        # hand-over takes it up (`hand_over_sent`): then (time, sequence, fn, args)
        self.promised: tuple | None = None
        self._streak = 0  # promised events run at once in a row (`keep_promise`)
        self._held = _NEVER  # the horizon while a promised event holds it (`hand_over_sent`)

    def at(self, t_ns: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` at virtual time `t_ns` (never earlier than now)."""
        seq = self._seq = self._seq + 1
        event = (t_ns if t_ns > self.now else self.now, seq, fn, args)
        heappush(self._queue, event)
        self._recent[seq & _SLOT] = event

    def after(self, delay_ns: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` `delay_ns` (0 or more) from now."""
        seq = self._seq = self._seq + 1
        event = (self.now + delay_ns, seq, fn, args)
        heappush(self._queue, event)
        self._recent[seq & _SLOT] = event

    def hand_over(self, delay_ns: int) -> bool:
        """Whether an event `delay_ns` from now, the last thing the running event schedules,
        would be the next to run (every queued event is later, and it is within the horizon):
        then the clock moves to its time, it takes its sequence number, and the caller runs it
        at once, inside the running event, as `step` would run it next (True); else the caller
        schedules it with `after` (False). The same events run in the same order at the same
        times; only the queue is spared (the flow cache hands a replayed packet to the next
        namespace this way)."""
        t_ns = self.now + delay_ns
        queue = self._queue
        if (not queue or queue[0][0] > t_ns) and t_ns <= self.horizon:
            # run at once: `scheduled_since` has nothing to find
            self._ran = self._seq = self._seq + 1
            self.now = t_ns
            return True
        return False

    def promise(self, delay_ns: int, fn: Callable[..., Any], *args: Any) -> None:
        """Announce that the running event, a sender's, will end with `after(delay_ns, fn,
        *args)` (its next send), done by `keep_promise`. Until then the send it makes may hand
        its packet over (`hand_over_sent`), so a packet can go its way at once. Only for an
        event the run goes on to (a step's next send while the step is not done): one taken
        at once (`keep_promise`) must be one the run's loop would have run, not one it would
        have stopped before (a ping's wait for replies, after its replies are all in)."""
        self.promised = (self.now + delay_ns, fn, args)

    def hand_over_sent(self, promised: tuple | None, delay_ns: int) -> bool:
        """`hand_over` for the last thing a send does, given what its sender promised to do
        after it (`promised`, taken from `promised` when the send began, so that a send
        made inside it finds none): only when the sender promised (and a hand-over has not
        taken it up yet) and the new event would run before the promised one. Then the
        promised event takes the next sequence number, as it would have been queued before
        anything the new event schedules, and is what `promised` holds until `keep_promise`;
        it stands where it would be in the queue: nothing at or after its time is handed over
        (the horizon is held before it)."""
        if promised is None or len(promised) == 4 or promised[0] < self.now + delay_ns:
            return False
        horizon = self.horizon
        if not self.hand_over(delay_ns):
            return False
        due, seq = promised[0], self._seq + 1
        self._seq = seq
        self.promised = (due, seq, promised[1], promised[2])
        self._recent[seq & _SLOT] = self.promised
        self._held = horizon
        if due <= horizon:
            self.horizon = due - 1
        return True

    def keep_promise(self) -> bool:
        """Do what the running event promised (`promise`): queue the promised event, or, when
        it is the next to run, take it (True: the caller runs it at once, as `hand_over`
        has it), but not more than RUN_AHEAD in a row, so that a long run of them still
        passes through `step` now and then (a run's progress and frame limit are looked at
        between events)."""
        promised, self.promised = self.promised, None
        if promised is None:
            return False
        queue = self._queue
        if len(promised) == 3:  # not taken up by a hand-over: it takes its sequence number now
            due, seq = promised[0], self._seq + 1
            self._seq = seq
        else:  # it has its sequence number: the horizon is let go
            self.horizon = self._held
            due, seq = promised[0], promised[1]
        if (
            (not queue or queue[0][0] > due or (queue[0][0] == due and queue[0][1] > seq))
            and due <= self.horizon
            and self._streak < RUN_AHEAD
        ):
            self._streak += 1
            self._ran = seq
            self.now = due
            return True
        if len(promised) == 3:
            promised = (due, seq, promised[1], promised[2])
            self._recent[seq & _SLOT] = promised
        heappush(queue, promised)
        self._streak = 0
        return False

    def next_time(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def step(self) -> bool:
        """Run the next event; False when there is none."""
        if not self._queue:
            return False
        t_ns, self._ran, fn, args = heappop(self._queue)
        self.now = t_ns
        fn(*args)
        return True

    @contextmanager
    def holding(self) -> Iterator[None]:
        """For an event that calls several handlers in turn (the arrivals of a flood at each
        port): nothing is handed over while it holds, since what the event does after a
        handler would otherwise come after what was handed over (`hand_over` queues)."""
        horizon, self.horizon = self.horizon, -1
        try:
            yield
        finally:
            self.horizon = horizon

    def run_until(self, t_ns: int) -> None:
        """Run every event due by `t_ns`, and none after it (handed over ones included)."""
        self.horizon = t_ns
        try:
            while self._queue and self._queue[0][0] <= t_ns:
                self.step()
        finally:
            self.horizon = _NEVER

    def pending(self) -> int:
        return len(self._queue)

    @property
    def sequence(self) -> int:
        """How many events have been scheduled so far."""
        return self._seq

    def scheduled_since(self, sequence: int) -> list[tuple[int, Callable[..., Any], tuple]]:
        """The events scheduled after `sequence` (a `sequence` read earlier) and not run yet,
        in the order they were scheduled, as (time, fn, args). The flow cache asks at every hop
        it records: the few events scheduled since are looked up by their sequence numbers, not
        looked for in the queue (which holds every step's next packet in a large cluster)."""
        if self._seq - sequence > RECENT:
            later = sorted((e for e in self._queue if e[1] > sequence), key=lambda e: e[1])
        else:
            # an event run at once (`hand_over`) left no entry: its slot holds an older one
            recent, ran = self._recent, (self.now, self._ran)
            since = ((seq, recent[seq & _SLOT]) for seq in range(sequence + 1, self._seq + 1))
            later = [e for seq, e in since if e is not None and e[1] == seq and e[:2] > ran]
        return [(t_ns, fn, args) for t_ns, _, fn, args in later]


RUN_AHEAD = 16  # promised events taken at once in a row, at most (`keep_promise`): a run
# loop that looks at its progress every few thousand events still does every ~50,000 sends
RECENT = 256  # events scheduled_since finds without looking through the queue (a power of 2)
_SLOT = RECENT - 1
_NEVER = 1 << 62
