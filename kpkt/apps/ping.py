"""A `ping` step: iputils ping over a ping socket: echo requests `interval` apart, replies
matched by id, and 1 s of virtual time granted after the last request for missing replies."""

from __future__ import annotations

from kpkt.apps.base import StepApp
from kpkt.net.icmp import ping_payload
from kpkt.net.sockets import PingSocket
from kpkt.observe import Decision, Tag, Why
from kpkt.outcome import classify
from kpkt.spec import PingStep
from kpkt.wire import icmp
from kpkt.wire.icmp import ICMP_HEAD
from kpkt.wire.ipv4 import IP_HEADER_LEN

REPLY_WAIT_NS = 1_000_000_000


class PingApp(StepApp):
    def __init__(self, step: PingStep, sender) -> None:
        super().__init__(step, sender)
        self.replies: list[int] = []  # round-trip times, ns
        self.sent_at: dict[int, int] = {}
        self.expired = False
        self.ident = step.id
        self.socket: PingSocket | None = None
        self.flow: Tag | None = None  # the socket's echo requests and what they bring back

    def open(self) -> None:
        if self.ident is None:
            self.ident = self.sender.ids.ping_id()
        self.socket = PingSocket(self.sender, self.ident, self._on_icmp)
        self.flow = self.sender.observer.new_flow(self.index)

    def _send(self) -> None:
        step, stack = self.step, self.sender
        sched = stack.sched
        while True:
            seq = (step.seq + self.sent) & 0xFFFF
            now = sched.now
            message = icmp.echo(icmp.ECHO_REQUEST, self.ident, seq, ping_payload(now, step.size))
            self.sent_at[seq] = now
            self.sent += 1
            tag, note = stack.observer.packet(self.flow), Decision(Why.PING_REQUEST, seq)
            if self.sent >= step.count:  # the wait for replies: not taken at once (the step
                # may be done before it, with every reply in)
                self.socket.send(step.dst.packed, message, tag, ttl=step.ttl, note=note)
                sched.after(REPLY_WAIT_NS, self._expire)
                return
            # the next request, promised first: this one, and its reply, may then go their way
            # at once, and when the next is the next thing to happen, it happens here
            sched.promise(step.interval_ns, self._send)
            self.socket.send(step.dst.packed, message, tag, ttl=step.ttl, note=note)
            if not sched.keep_promise():
                return

    def _expire(self) -> None:
        self.expired = True

    def _on_icmp(self, packet: bytes, tag: Tag) -> None:
        icmp_type, _, _, _, seq = ICMP_HEAD.unpack_from(packet, IP_HEADER_LEN[packet[0]])
        if icmp_type == icmp.ECHO_REPLY:
            if seq in self.sent_at:
                self.replies.append(self.sender.sched.now - self.sent_at.pop(seq))
        else:
            self.note_error(packet)

    def done(self) -> bool:
        return self.sent >= self.step.count and (not self.sent_at or self.expired)

    def counts(self) -> tuple[int, int]:
        return self.sent, len(self.replies)

    def ended_as(self, reasons: list[str]) -> str:
        return classify(self.sent, len(self.replies), self.error_kinds, reasons)

    def result(self) -> str:
        text = f"{self.sent} transmitted, {len(self.replies)} received"
        if self.replies:
            text += f", rtt min {min(self.replies) / 1000:.1f} us"
        return text + self.error_summary()
