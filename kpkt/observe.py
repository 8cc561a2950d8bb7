"""The hook through which devices report what they did, in the spirit of ns-3's trace sources.

Every device has an observer, whose `seen(frame, direction, tag, decision)` it calls for each
frame: "this frame crossed this interface, in this direction, because of this decision", and
whose `remark(text)` it calls when something happens to the interface itself (a fault step). The
default observer does nothing; the capture layer gives each device its tap, a unit test gives it
a recorder. What a device decided is data, a `Decision`: a kind and its arguments, turned into
text only by whoever records it (kpkt/capture/decisions.py). A device that has not moved to
decisions yet still reports a ready-made string.

This module is at the bottom of the import graph: it imports nothing of kpkt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

IN = "in"
OUT = "out"


@dataclass(slots=True)
class Tag:
    """What a frame belongs to: the packet (its id, the same at every hop, through NAT and
    tunnels), the flow (a conversation a step or a kernel timer started: the packets it sends
    and every packet sent because of them, answers, errors, ARP) and the traffic step (and the
    observer's log of it). A flow's own tag has packet id 0: each packet sent gets its id from
    the observer (`Journal.packet`, kpkt/capture/tap.py), which hands out the tags."""

    step: int
    pid: int
    flow: int
    log: object  # the observer's record of the step (a capture StepLog)
    label: str  # "step 3 flow 2" (or "background flow 7"), the start of the packet's comment


class Why(Enum):
    """The kinds of decision, with the arguments each carries."""

    FDB_LEARN = "fdb-learn"  # (mac, port name): a new or moved entry
    FDB_LOCAL = "fdb-local"  # (mac,): up to the bridge device, a local MAC
    FDB_PORT = "fdb-port"  # (mac, port name): out of the one port the entry names
    PASSED_UP = "passed-up"  # (): a broadcast, also passed up to the bridge device
    FLOODED = "flooded"  # (mac, ports, hairpin): broadcast or fdb miss, sent to `ports` ports
    ARP_WHO_HAS = "arp-who-has"  # (ip, try): a broadcast request for an INCOMPLETE entry
    ARP_PROBE = "arp-probe"  # (ip, try): a unicast request for an entry in PROBE
    ARP_REPLY = "arp-reply"  # (ip, mac): the answer to a request for one of our addresses
    ARP_RESOLVED = "arp-resolved"  # (ip,): a packet that waited for the neighbour, sent
    THEN = "then"  # (decision or text, ...): several decisions, in order


class Decision:
    """One decision: `why` and its `args`. `text` is the rendered form, filled in by the first
    recorder that renders it (decisions that stay the same, such as an FDB entry's, are built
    once and rendered once)."""

    __slots__ = ("why", "args", "text")

    def __init__(self, why: Why, *args) -> None:
        self.why = why
        self.args = args
        self.text: str | None = None

    def __repr__(self) -> str:
        return f"Decision({self.why.name}, {', '.join(map(repr, self.args))})"


class Unobserved:
    """The observer of a device nobody observes."""

    __slots__ = ()

    def seen(self, frame: bytes, direction: str, tag, decision: Decision | str = "") -> None:
        pass

    def remark(self, text: str) -> None:
        pass


UNOBSERVED = Unobserved()
