"""The discrete-event scheduler: (time, sequence) order on a virtual nanosecond clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpkt.engine import scheduler
from kpkt.engine.scheduler import Scheduler

SETTINGS = settings(max_examples=100, deadline=None, database=None, derandomize=True)


def run_all(sched: Scheduler) -> int:
    steps = 0
    while sched.step():
        steps += 1
    return steps


def test_events_run_in_time_order_and_clock_follows():
    sched = Scheduler()
    seen: list[tuple[int, str]] = []
    sched.at(300, lambda: seen.append((sched.now, "c")))
    sched.at(100, lambda: seen.append((sched.now, "a")))
    sched.at(200, lambda: seen.append((sched.now, "b")))
    assert run_all(sched) == 3
    assert seen == [(100, "a"), (200, "b"), (300, "c")]
    assert sched.now == 300


def test_same_time_events_run_in_scheduling_order():
    sched = Scheduler()
    seen: list[int] = []
    for i in range(10):
        sched.at(50, seen.append, i)
    run_all(sched)
    assert seen == list(range(10))


def test_arguments_are_passed():
    sched = Scheduler()
    seen: list[tuple] = []
    sched.at(5, lambda *args: seen.append(args), 1, "two", b"3")
    sched.step()
    assert seen == [(1, "two", b"3")]


@SETTINGS
@given(st.lists(st.integers(min_value=0, max_value=1_000), max_size=40))
def test_order_is_time_then_sequence(times):
    sched = Scheduler()
    seen: list[tuple[int, int]] = []
    for i, t in enumerate(times):
        sched.at(t, lambda t=t, i=i: seen.append((sched.now, t, i)))
    run_all(sched)
    expected = sorted((t, i) for i, t in enumerate(times))
    assert [(t, i) for _, t, i in seen] == expected
    assert all(now == t for now, t, _ in seen)


def test_at_in_the_past_runs_at_now():
    sched = Scheduler()
    seen: list[tuple[int, str]] = []

    def late() -> None:
        # scheduled at 100 for time 10: must run at 100, not move the clock back
        sched.at(10, lambda: seen.append((sched.now, "past")))
        assert sched.next_time() == 100

    sched.at(100, late)
    sched.at(150, lambda: seen.append((sched.now, "later")))
    run_all(sched)
    assert seen == [(100, "past"), (150, "later")]
    assert sched.now == 150


def test_past_event_runs_after_events_already_queued_for_now():
    sched = Scheduler()
    seen: list[str] = []

    def first() -> None:
        sched.at(0, seen.append, "past")  # clamped to now=100, sequence after "second"

    sched.at(100, first)
    sched.at(100, seen.append, "second")
    run_all(sched)
    assert seen == ["second", "past"]


def test_after_is_relative_to_now():
    sched = Scheduler()
    seen: list[tuple[int, str]] = []

    def first() -> None:
        seen.append((sched.now, "first"))
        sched.after(25, lambda: seen.append((sched.now, "after")))
        sched.after(0, lambda: seen.append((sched.now, "zero")))

    sched.after(1_000, first)
    assert sched.next_time() == 1_000
    run_all(sched)
    assert seen == [(1_000, "first"), (1_000, "zero"), (1_025, "after")]


def test_at_and_after_share_one_sequence():
    sched = Scheduler()
    seen: list[str] = []
    sched.after(10, seen.append, "after-1")
    sched.at(10, seen.append, "at-2")
    sched.after(10, seen.append, "after-3")
    run_all(sched)
    assert seen == ["after-1", "at-2", "after-3"]


def test_step_on_empty_queue_returns_false_and_keeps_clock():
    sched = Scheduler()
    assert sched.step() is False
    assert sched.now == 0
    sched.at(42, lambda: None)
    assert sched.step() is True
    assert sched.step() is False
    assert sched.now == 42


def test_next_time_and_pending():
    sched = Scheduler()
    assert sched.next_time() is None
    assert sched.pending() == 0
    sched.at(500, lambda: None)
    sched.at(200, lambda: None)
    sched.after(300, lambda: None)
    assert sched.next_time() == 200
    assert sched.pending() == 3
    sched.step()
    assert sched.now == 200
    assert sched.next_time() == 300
    assert sched.pending() == 2
    run_all(sched)
    assert sched.next_time() is None
    assert sched.pending() == 0


def test_next_time_does_not_run_anything():
    sched = Scheduler()
    seen: list[int] = []
    sched.at(7, seen.append, 7)
    assert sched.next_time() == 7
    assert seen == []
    assert sched.now == 0


def _queued_since(sched: Scheduler, sequence: int) -> list[tuple]:
    """scheduled_since as a look through the whole queue (how it was once written)."""
    later = sorted((e for e in sched._queue if e[1] > sequence), key=lambda e: e[1])
    return [(t_ns, fn, args) for t_ns, _, fn, args in later]


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["at", "after", "step", "look"]), st.integers(0, 50)),
        max_size=300,
    ),
    st.lists(st.integers(0, 50), min_size=1, max_size=30),
)
def test_scheduled_since_is_every_event_scheduled_since_and_not_run(ops, starts):
    # events scheduled from inside running events and from outside, at the same time as the
    # running one and later, some run between the look's sequence and the look, more than
    # RECENT of them at once (then the queue is looked through)
    sched = Scheduler()
    marks = [0]

    def event(*_args) -> None:
        if sched.sequence % 3 == 0:
            sched.after(sched.sequence % 7, event, "nested")

    for t in starts:
        sched.at(t, event)
    for op, n in ops:
        if op == "at":
            sched.at(sched.now + n - 10, event, n)
        elif op == "after":
            for _ in range(n * 7 if n > 45 else 1):
                sched.after(n, event)
        elif op == "step":
            for _ in range(n % 5):
                sched.step()
        else:
            marks.append(sched.sequence)
            for mark in marks:
                assert sched.scheduled_since(mark) == _queued_since(sched, mark)


def _chains(sched: Scheduler, starts, hand_over: bool, seen: list) -> None:
    """Events at `starts` (time, links), each going on one link at a time: a link is (delay,
    bystander): the next link `delay` later, scheduled as the event's last act (by `after`, or
    by `hand_over`, run at once when it says so), after a bystander event `bystander` later,
    if any (before, at the same time as or after the next link)."""

    def link(name: str, links: tuple) -> None:
        to_come = sorted(repr(args) for _, _, args in sched.scheduled_since(0))
        seen.append((sched.now, name, to_come))
        if not links:
            return
        (delay, bystander), rest = links[0], links[1:]
        if bystander is not None:
            bystanding = (sched.now + bystander, f"{name} bystander", None)
            sched.after(bystander, seen.append, bystanding)
        if hand_over and sched.hand_over(delay):
            link(name + "+", rest)
        else:
            sched.after(delay, link, name + "+", rest)

    for index, (t_ns, links) in enumerate(starts):
        sched.at(t_ns, link, str(index), tuple(links))


LINKS = st.lists(st.tuples(st.integers(0, 15), st.none() | st.integers(0, 16)), max_size=4)
STARTS = st.lists(st.tuples(st.integers(0, 40), LINKS), max_size=12)


@SETTINGS
@given(STARTS, st.integers(0, 80))
def test_a_handed_over_event_runs_when_and_where_the_queue_would_run_it(starts, until):
    """`hand_over` runs the same events in the same order at the same times as `after`, and
    `run_until` runs none past its time, handed over or not."""
    _the_same_both_ways(lambda sched, seen, fast: _chains(sched, starts, fast, seen), until)


def _the_same_both_ways(schedule, until: int) -> None:
    """`schedule(sched, seen, fast)` without and with the fast way: what runs up to `until`
    (`run_until`, which runs nothing past it), then all of it, the clock and the sequence
    numbers used are the same."""
    runs = []
    for fast in (False, True):
        sched, seen = Scheduler(), []
        schedule(sched, seen, fast)
        sched.run_until(until)
        assert all(t_ns <= until for t_ns, *_ in seen)
        early = list(seen)
        run_all(sched)
        runs.append((early, seen, sched.now, sched.sequence))
    assert runs[0] == runs[1]


def test_an_event_due_at_the_same_instant_runs_before_a_handed_over_one():
    sched, seen = Scheduler(), []
    sched.at(10, seen.append, "queued first")
    assert not sched.hand_over(10)  # not the next: queued, it runs second
    sched.after(10, seen.append, "handed over")
    assert sched.hand_over(5)  # nothing queued before it: run it now
    assert sched.now == 5
    seen.append("sooner")
    run_all(sched)
    assert seen == ["sooner", "queued first", "handed over"]


def test_nothing_is_handed_over_while_an_event_holds():
    """A flood's arrivals in turn: the first port's hand-over must not run before the second."""
    sched, seen = Scheduler(), []

    def flood() -> None:
        with sched.holding():
            for port in ("a", "b"):
                seen.append(port)
                if sched.hand_over(5):
                    seen.append(f"{port} onward")
                else:
                    sched.after(5, seen.append, f"{port} onward")
        seen.append(sched.horizon)  # run_until's, again
        if sched.hand_over(4):  # nothing due before it
            seen.append("after the flood")
        else:
            sched.after(4, seen.append, "after the flood")

    sched.at(0, flood)
    sched.run_until(10)
    assert seen == ["a", "b", 10, "after the flood", "a onward", "b onward"]


def _senders(sched: Scheduler, senders, promising: bool, seen: list) -> None:
    """Senders (start, count, interval, links, nested): each sends `count` packets `interval`
    apart, each going its `links` as in `_chains`; a link with `nested` set first sends a
    packet of its own (a server answering). Without `promising`, everything is scheduled with
    `after`. With it, as kpkt's senders and flow cache do: a sender promises its next send
    before it sends (`promise`), a send takes what was promised (a send made inside it finds
    none) and hands its packet over with it (`hand_over_sent`), the links hand over, and the
    sender ends with `keep_promise`, going on at once when it says so."""

    def link(name: str, links: tuple) -> None:
        to_come = sorted(repr(args) for _, _, args in sched.scheduled_since(0))
        seen.append((sched.now, name, to_come))
        if not links:
            return
        (delay, bystander, nested), rest = links[0], links[1:]
        if nested:
            send(f"{name} answer", ((1, None, False),))
        if bystander is not None:
            sched.after(bystander, seen.append, (sched.now + bystander, f"{name} bystander", None))
        if promising and sched.hand_over(delay):
            link(name + "+", rest)
        else:
            sched.after(delay, link, name + "+", rest)

    def send(name: str, links: tuple) -> None:
        """A packet's send: its first link's event is the send's last act."""
        promised, sched.promised = sched.promised, None
        (delay, _, _), rest = links[0], links[1:]
        if promising and sched.hand_over_sent(promised, delay):
            link(name, rest)
        else:
            sched.after(delay, link, name, rest)
        if sched.promised is None:  # given back, unless the hand-over took it up
            sched.promised = promised

    class Sender:
        def __init__(self, name: str, count: int, interval: int, links: tuple) -> None:
            self.name, self.count, self.interval, self.links = name, count, interval, links
            self.sent = 0

        def next(self) -> None:
            while True:
                self.sent += 1
                seen.append((sched.now, f"{self.name} sends {self.sent}", None))
                last = self.sent == self.count
                if promising and not last:
                    sched.promise(self.interval, self.next)
                send(f"{self.name}.{self.sent}", self.links)
                if last:
                    return
                if not promising:
                    sched.after(self.interval, self.next)
                    return
                if not sched.keep_promise():
                    return

    for index, (start, count, interval, links) in enumerate(senders):
        sched.at(start, Sender(str(index), count, interval, tuple(links)).next)


SENT_LINKS = st.lists(
    st.tuples(st.integers(0, 15), st.none() | st.integers(0, 16), st.booleans()),
    min_size=1,
    max_size=4,
)
SENDERS = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 6), st.integers(0, 20), SENT_LINKS), max_size=4
)


@SETTINGS
@given(SENDERS, st.integers(0, 120))
def test_a_promised_send_runs_when_and_where_the_queue_would_run_it(senders, until):
    """`promise`, `hand_over_sent` and `keep_promise` run the same events in the same order at
    the same times as `after`, with the same sequence numbers and the same events queued at
    every moment; `run_until` runs none past its time."""
    _the_same_both_ways(lambda sched, seen, fast: _senders(sched, senders, fast, seen), until)


def test_promised_events_taken_at_once_pass_through_step_now_and_then(monkeypatch):
    """A sender whose every next send is taken at once (`keep_promise`) still returns to the
    event loop every RUN_AHEAD sends."""
    monkeypatch.setattr(scheduler, "RUN_AHEAD", 3)
    sched, sends = Scheduler(), []

    def send() -> None:
        while True:
            sends.append(sched.now)
            if len(sends) == 10:
                return
            sched.promise(7, send)
            if not sched.keep_promise():
                return

    sched.at(0, send)
    steps = 0
    while sched.step():
        steps += 1
    assert sends == [7 * n for n in range(10)]
    assert steps == 3  # 4 sends an event: 1 + RUN_AHEAD at once, then one through the queue


@pytest.mark.parametrize("second_link", [5, 6, 7])
def test_a_packet_handed_over_stops_where_the_promised_send_is_due(second_link):
    """A packet's way reaches, at 4 + `second_link`, the sender's next send's time (10): a
    link due before it is handed over, one due with it or after it comes after it, as the
    queue would have it (the send was queued first)."""
    runs = []
    for promising in (False, True):
        sched, seen = Scheduler(), []
        links = [(4, None, False), (second_link, None, False)]
        _senders(sched, [(0, 2, 10, links)], promising, seen)
        run_all(sched)
        runs.append(seen)
    assert runs[0] == runs[1]
    names = [name for _, name, _ in runs[1]]
    sent = names.index("0 sends 2")
    assert (names.index("0.1+") < sent) == (second_link < 6)
