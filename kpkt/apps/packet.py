"""A `packet` step: the sender sends a crafted packet `count` times through a raw socket
(kpkt/net/raw.py), and nothing listens for it. A packet counts as arrived unless the observer
records a drop of it on its way; the step's outcome follows from those drops."""

from __future__ import annotations

from kpkt.apps.base import StepApp
from kpkt.net.raw import send_raw
from kpkt.observe import Decision, Tag, Why
from kpkt.outcome import classify
from kpkt.spec import PacketStep


class PacketApp(StepApp):
    def __init__(self, step: PacketStep, sender) -> None:
        super().__init__(step, sender)
        self.flow: Tag | None = None
        self.pids: set[int] = set()  # the packets sent

    def open(self) -> None:
        self.flow = self.sender.observer.new_flow(self.index, checked=True)

    def _send(self) -> None:
        step, stack = self.step, self.sender
        self.sent += 1
        tag = stack.observer.packet(self.flow)
        self.pids.add(tag.pid)
        note = Decision(Why.RAW_SEND, step.frame, self.sent, step.count)
        send_raw(stack, step.data, step.frame, step.fill, tag, note)
        if self.sent < step.count:
            stack.sched.after(step.interval_ns, self._send)

    def done(self) -> bool:
        return self.sent >= self.step.count

    def arrived(self) -> int:
        """The packets sent that no drop stopped."""
        dropped = {drop.pid for drop in self.flow.log.drops} & self.pids
        return self.sent - len(dropped)

    def counts(self) -> tuple[int, int]:
        return self.sent, self.arrived()

    def ended_as(self, reasons: list[str]) -> str:
        return classify(self.sent, self.arrived(), [], reasons)

    def result(self) -> str:
        return f"sent {self.sent}, arrived {self.arrived()}"
