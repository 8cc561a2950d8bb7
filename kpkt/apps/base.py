"""What every traffic step's application shares: its step and sending stack, when it started,
how many packets it sent, and the ICMP errors its socket received."""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.outcome import APPLIED
from kpkt.wire.icmp import describe_in
from kpkt.wire.ipv4 import IP_SRC


class StepApp:
    event = False  # a fault or lifecycle step (kpkt/apps/faults.py), which sends nothing

    def __init__(self, step, sender) -> None:
        self.step = step
        self.sender = sender  # the Stack that sends
        self.at_ns = step.at_ns
        self.started = False
        self.scheduled = False  # the runner has scheduled its start
        self.start_ns = 0
        self.index = -1
        self.sent = 0
        self.errors: list[str] = []
        self.error_kinds: list[str] = []  # the errors without their source: "port unreachable"

    def start(self, index: int) -> None:
        self.started = True
        self.index = index
        self.start_ns = self.sender.sched.now
        self.open()
        self._send()

    def open(self) -> None:
        """Bind the step's sockets (before the first packet goes out)."""
        raise NotImplementedError

    def _send(self) -> None:
        raise NotImplementedError

    def note_error(self, packet: bytes) -> None:
        """An ICMP error for one of our packets: remember what it said and who sent it."""
        kind = describe_in(packet)
        self.error_kinds.append(kind)
        self.errors.append(f"{kind} from {IPv4Address(packet[IP_SRC])}")

    def counts(self) -> tuple[int, int]:
        """What the step sent and received, in its own units (datagrams, echo requests and
        replies, bytes of a tcp step, dns messages)."""
        raise NotImplementedError

    def ended_as(self, reasons: list[str]) -> str:
        """One word of kpkt.outcome.OUTCOMES; `reasons`: the step's drop reasons."""
        raise NotImplementedError

    def verdict(self) -> dict:
        """A probe's verdict as manifest fields (other steps have none)."""
        return {}

    def error_summary(self) -> str:
        if not self.errors:
            return ""
        return f"; {len(self.errors)} icmp error(s): {self.errors[0]}"


class EventApp(StepApp):
    """A fault or lifecycle step: it changes the cluster when it starts (`_send`) and is done
    at once; it sends nothing itself."""

    event = True

    def open(self) -> None:
        pass

    def done(self) -> bool:
        return True

    def counts(self) -> tuple[int, int]:
        return 0, 0

    def ended_as(self, reasons: list[str]) -> str:
        return APPLIED
