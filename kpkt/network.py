"""The running network: the clock, the namespaces, the journal, and the step runner.

Steps run one after another. A step starts when the previous one is done (or at its `at:` time,
if that is later) and is done when its application says so and nothing of it is left in the
network: no frame on a link, no packet waiting for ARP. An event step (a fault) right after a
traffic step, with an `at:` time, happens at that time even while the traffic step still runs:
a link can go down in the middle of a transfer. Kernel timers (ARP retries, neighbour
probes) keep running between steps; frames they send outside any step are logged as background.
"""

from __future__ import annotations

from kpkt.capture.tap import Journal
from kpkt.engine import generation
from kpkt.engine.ids import NamespaceIds
from kpkt.engine.scheduler import Scheduler
from kpkt.errors import KpktError


class Network:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.sched = Scheduler()
        self.journal = Journal(self.sched)
        self.stacks: dict[str, object] = {}  # owner name -> Stack, in creation order
        self.by_ip: dict[bytes, object] = {}  # address -> the Stack that owns it
        self.in_flight = 0  # frames on links (and held by netem)
        # a frame was corrupted (netem): receivers check checksums from now on (a kernel always
        # does; kpkt skips the work while no frame can be wrong)
        self.corrupting = False
        self.pending = 0  # packets waiting in ARP queues
        self.current_step = -1  # -1: background
        self.flow_cache = None  # a FlowCache (kpkt/flowcache.py) when the run uses one

    def vxlan_ports(self) -> frozenset[int]:
        """The UDP ports VXLAN devices listen on: what summaries decode as VXLAN."""
        return frozenset(port for stack in self.stacks.values() for port in stack.vxlan_ports)

    def ids_for(self, owner: str) -> NamespaceIds:
        return NamespaceIds(self.seed, owner)

    def add_stack(self, stack) -> None:
        self.stacks[stack.owner] = stack

    def register_ip(self, ip: bytes, stack) -> None:
        self.by_ip[ip] = stack

    def run(self, apps: list, progress=None, max_frames: int | None = None) -> None:
        """Run each step's application to completion, in order; `progress.tick` is called
        every few thousand events and after each step (it draws only when it is time to).
        A run whose captures would hold more than `max_frames` records stops with an error,
        looked at every 64 events (one may carry up to RUN_AHEAD + 1 sends and their packets'
        whole ways, `Scheduler.keep_promise`)."""
        sched, journal = self.sched, self.journal
        end = 0
        events = 0  # counted across steps: a run of many short steps shows progress too
        # every frame written is counted in one log: its step's or the background's
        written, background = 0, journal.background  # `written`: by the finished steps
        for index, app in enumerate(apps):
            log = journal.new_step()
            if not app.scheduled:
                start = max(end, app.at_ns if app.at_ns is not None else 0)
                sched.at(start, self._start, index, app)
                app.scheduled = True
                if not app.event:
                    self._schedule_events(apps, index + 1, start)
            step = sched.step
            while not (self.in_flight == 0 and self.pending == 0 and app.started and app.done()):
                if not step():
                    break
                events += 1
                if not events & 0x3F:  # an event may carry many sends (Scheduler.keep_promise)
                    _check_frames(written + log.hop_count + background.hop_count, max_frames)
                    if progress is not None and not events & 0xFFF:
                        progress.tick(index, app, journal)
            _check_frames(written + log.hop_count + background.hop_count, max_frames)
            written += log.hop_count
            end = sched.now
            finish_step(log, app, end)
            self.current_step = -1
            if progress is not None:
                progress.tick(index, app, journal)
        _check_frames(sum(tap.count for tap in journal.taps), max_frames)  # exactly, at the end

    def _schedule_events(self, apps: list, first: int, start: int) -> None:
        """The event steps from `first` on that have an `at:` time happen then, while the
        traffic step before them runs (they send nothing: the step keeps the background)."""
        for index in range(first, len(apps)):
            app = apps[index]
            if not app.event or app.at_ns is None:
                return
            self.sched.at(max(start, app.at_ns), self._start_event, index, app)
            app.scheduled = True

    def _start(self, index: int, app) -> None:
        generation.changed()  # a step may change anything: open sockets, take a link down
        self.current_step = index
        app.start(index)

    def _start_event(self, index: int, app) -> None:
        generation.changed()
        app.start(index)


def finish_step(log, app, end_ns: int) -> None:
    """Record in its log how a step that is done ended: what its application saw, its
    counts, its outcome and a probe's verdict."""
    log.start_ns, log.result = app.start_ns, app.result()
    log.end_ns = app.start_ns if app.event else end_ns  # an event takes no time
    log.sent, log.received = app.counts()
    log.outcome = app.ended_as([drop.reason for drop in log.drops])
    log.probe = app.verdict()


def _check_frames(frames: int, max_frames: int | None) -> None:
    if max_frames is not None and frames > max_frames:
        raise KpktError(
            f"the run would write more than {max_frames} frames (it had reached {frames}) and was "
            "stopped; nothing was written: allow more with --max-packets, or send fewer packets"
        )
