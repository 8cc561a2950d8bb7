"""A `udp` step: a socket in the sender sends datagrams; a listener in the receiver counts them.

The sender's socket is bound to `sport` (or an ephemeral port from the seed) and stays open for
answers and ICMP errors until the run ends, as a real socket would. A port where a server kpkt
runs listens (CoreDNS on 53) stays that server's: the step's datagrams reach it, it answers, and
the answers count as received.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from kpkt.apps.base import StepApp
from kpkt.net.sockets import UdpSocket
from kpkt.observe import Decision, Tag, Why
from kpkt.outcome import classify
from kpkt.spec import UdpStep

_UDP_SEND = Why.UDP_SEND  # looked up once: a member of an Enum is slow to reach (3.11)


class UdpApp(StepApp):
    def __init__(self, step: UdpStep, sender, receivers: Callable[[], list]) -> None:
        super().__init__(step, sender)
        # (stack, port) for whoever owns the destination (the endpoints of a service), as
        # they are when the step starts
        self.receivers = receivers
        self.received = 0  # datagrams the receiver got, and answers the sender's socket got
        self.answers: dict[str, int] = {}  # who answered ("10.96.0.10:53") -> how many times
        self.sport = step.sport
        self.dst = step.dst.packed
        self.socket: UdpSocket | None = None
        self.datagram = None  # every datagram of the step is the same: built once, sent count times
        self.flow: Tag | None = None  # the socket's datagrams and their answers

    def open(self) -> None:
        if self.sport is None:
            self.sport = self.sender.ids.ephemeral_port()
        self.socket = UdpSocket(self.sender, self.sport, self._on_answer, self._on_error)
        self.flow = self.sender.observer.new_flow(self.index)
        if self.step.listen:
            for stack, port in self.receivers():
                UdpSocket(stack, port, self._on_datagram)

    def _send(self) -> None:
        step, stack = self.step, self.sender
        sched, count = stack.sched, step.count
        if self.datagram is None:
            self.datagram = self.socket.prepare(self.dst, step.dport, step.payload)
        while True:
            self.sent += 1
            note = Decision(_UDP_SEND, self.sent, count)
            if self.sent == count:
                self.datagram(stack.observer.packet(self.flow), ttl=step.ttl, note=note)
                return
            # the next send, promised first: the datagram may then go its way at once, and
            # when the next send is the next thing to happen, it happens here
            sched.promise(step.interval_ns, self._send)
            self.datagram(stack.observer.packet(self.flow), ttl=step.ttl, note=note)
            if not sched.keep_promise():
                return

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
