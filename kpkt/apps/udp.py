"""A `udp` step: a socket in the sender sends datagrams; a listener in the receiver counts them.

The sender's socket is bound to `sport` (or an ephemeral port from the seed) and stays open for
answers and ICMP errors until the run ends, as a real socket would. A port where a server kpkt
runs listens (CoreDNS on 53) stays that server's: the step's datagrams reach it, it answers, and
the answers count as received.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.apps.base import StepApp
from kpkt.capture.tap import Tag
from kpkt.outcome import classify
from kpkt.spec import UdpStep
from kpkt.wire.ipv4 import PROTO_UDP
from kpkt.wire.udp import udp_segment


class UdpApp(StepApp):
    def __init__(self, step: UdpStep, sender, receivers: list) -> None:
        super().__init__(step, sender)
        # (stack, port) for whoever owns the destination: the endpoints of a service
        self.receivers = receivers
        self.received = 0  # datagrams the receiver got, and answers the sender's socket got
        self.answers: dict[str, int] = {}  # who answered ("10.96.0.10:53") -> how many times
        self.sport = step.sport
        self.dst = step.dst.packed
        self.source: bytes | None = None
        self.segment: bytes | None = None
        self.flow: Tag | None = None  # the socket's datagrams and their answers

    def open(self) -> None:
        if self.sport is None:
            self.sport = self.sender.ids.ephemeral_port()
        self.sender.udp_errors[self.sport] = self._on_error
        self.sender.bind_udp(self.sport, self._on_answer)
        self.flow = self.sender.journal.new_flow(self.index)
        if self.step.listen:
            for stack, port in self.receivers:
                stack.bind_udp(port, self._on_datagram)

    def _send(self) -> None:
        step, stack, dst = self.step, self.sender, self.dst
        self.sent += 1
        if self.segment is None:  # every datagram of the step is the same segment: build it once
            self.source = stack.source_address(dst)
            if self.source is not None:
                self.segment = udp_segment(self.source, dst, self.sport, step.dport, step.payload)
        stack.send_ip(
            self.source,
            dst,
            PROTO_UDP,
            self.segment or b"",  # no route: the stack drops it before it is used
            stack.journal.packet(self.flow),
            ttl=step.ttl,
            note=f"udp send {self.sent}/{step.count}",
        )
        if self.sent < step.count:
            stack.sched.after(step.interval_ns, self._send)

    def _on_datagram(self, src: bytes, sport: int, dst: bytes, payload: bytes, tag: Tag) -> None:
        self.received += 1

    def _on_answer(self, src: bytes, sport: int, dst: bytes, payload: bytes, tag: Tag) -> None:
        self.received += 1
        who = f"{IPv4Address(src)}:{sport}"
        self.answers[who] = self.answers.get(who, 0) + 1

    def _on_error(self, packet: bytes, tag: Tag) -> None:
        self.note_error(packet)

    def done(self) -> bool:
        return self.sent >= self.step.count

    def counts(self) -> tuple[int, int]:
        return self.sent, self.received

    def ended_as(self, reasons: list[str]) -> str:
        return classify(self.sent, self.received, self.error_kinds, reasons)

    def result(self) -> str:
        answers = ", ".join(f"{n} from {who}" for who, n in self.answers.items())
        answered = f" (answers: {answers})" if answers else ""
        return f"sent {self.sent}, received {self.received}{answered}" + self.error_summary()
