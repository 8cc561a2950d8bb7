"""A run read back as plain objects, for Python callers (kpkt/api.py): each step's verdict,
hops and drops, and each capture point's frames as a Scapy PacketList.

Scapy is imported only when packets are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kpkt.capture.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW
from kpkt.observe import IN, OUT
from kpkt.outcome import step_kind


@dataclass(frozen=True, slots=True)
class Hop:
    """One frame of a step at one capture point: `run[point][index]` is the frame itself."""

    point: str  # the capture point, "<owner>/<interface>": "node1/eth0", "pod-a.default/eth0"
    index: int  # the frame's position in the capture point's capture, from 0
    direction: str  # "in" or "out"
    packet_id: int  # the same at every hop of one packet (through NAT and tunnels)


@dataclass(frozen=True, slots=True)
class Drop:
    where: str  # "<owner>/<interface>", or "<owner>" for a namespace's stack
    reason: str  # a code of kpkt.net.drops.REASONS
    detail: str
    time_ns: int
    packet_id: int


@dataclass(frozen=True, slots=True)
class Step:
    index: int  # from 0
    kind: str  # udp, ping, tcp, dns or packet
    text: str  # the step as written
    outcome: str  # a word of kpkt.outcome.OUTCOMES ("" until the step is done)
    result: str  # what the step's application saw, one line
    sent: int
    received: int
    expect: str | None  # the step's `expect:` as text, if it has one
    met: bool | None  # whether the outcome is what `expect:` asks (None: no expect)
    hops: tuple[Hop, ...]  # in the order they happened (at most the journal's limit per step)
    drops: tuple[Drop, ...]


def steps(specs, journal) -> list[Step]:
    """The steps of a run (or of a live network) with their logs."""
    taps = journal.taps
    return [
        _step(index, spec, log, taps)
        for index, (spec, log) in enumerate(zip(specs, journal.steps, strict=True))
    ]


def _step(index: int, spec, log, taps) -> Step:
    hops = log.hops
    expect = spec.expect
    return Step(
        index=index,
        kind=step_kind(spec),
        text=spec.text,
        outcome=log.outcome,
        result=log.result,
        sent=log.sent,
        received=log.received,
        expect=expect.text() if expect else None,
        met=expect.met(log.outcome, [d.reason for d in log.drops]) if expect else None,
        hops=tuple(
            Hop(taps[hops[at]].name, hops[at + 1], OUT if hops[at + 2] else IN, hops[at + 3])
            for at in range(0, len(hops), 4)
        ),
        drops=tuple(drops_of(log)),
    )


def drops_of(log) -> list[Drop]:
    return [Drop(d.where, d.reason, d.detail, d.t_ns, d.pid) for d in log.drops]


def all_drops(journal) -> list[Drop]:
    """Every drop, of the steps in order and then of the background."""
    return [drop for log in [*journal.steps, journal.background] for drop in drops_of(log)]


def packet_list(point: str, frames: list[tuple[int, bytes]], link_type: int = LINKTYPE_ETHERNET):
    """The frames of a capture point, (t_ns, frame) each, as a Scapy PacketList whose packets'
    `time` is the virtual time in seconds: Ether packets, or IP ones for a raw IP capture
    (`tunl0`); VXLAN decoded on its ports, so a tunnelled packet reads `p[VXLAN][IP]`."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.plist import PacketList

    import kpkt.capture.diff  # noqa: F401  (binds VXLAN's ports and DNS, as `kpkt diff` does)

    layer = IP if link_type == LINKTYPE_RAW else Ether
    packets = []
    for t_ns, frame in frames:
        packet = layer(frame)
        packet.time = t_ns / 1e9
        packets.append(packet)
    return PacketList(packets, name=point)


def capture_point(points: list[str], name: str) -> str:
    """The capture point `name` stands for, of `points`: its full name, or a pod's with the
    pod's bare name ("pod-a/eth0" for "pod-a.default/eth0") when that is unique; a KeyError
    names the points."""
    if name in points:
        return name
    owner, slash, interface = name.partition("/")
    found = [p for p in points if slash and p.split("/")[1] == interface and _is(p, owner)]
    if len(found) == 1:
        return found[0]
    raise KeyError(f"no capture point {name!r}; there are: {', '.join(points)}")


def _is(point: str, owner: str) -> bool:
    full = point.split("/")[0]
    name, _, namespace = full.partition(".")
    return full == owner or (name == owner and bool(namespace)) or f"{namespace}/{name}" == owner


class RunView:
    """What a run, finished or going on, shows of its network: its capture points by name, a
    point's frames as a Scapy PacketList (`run["node1/eth0"]`, a pod's points also by its bare
    name), every drop. A subclass has `network` and `frames(point)`: the (t_ns, frame) records
    of a capture point, wherever it keeps them."""

    network: Any

    def frames(self, point: str) -> list[tuple[int, bytes]]:
        raise NotImplementedError

    @property
    def points(self) -> list[str]:
        """Every capture point, by name ("node1/eth0")."""
        return [tap.name for tap in self.network.journal.taps]

    def __getitem__(self, point: str) -> Any:
        """A capture point's frames (so far, in a live network) as a Scapy PacketList."""
        name = capture_point(self.points, point)
        tap = next(tap for tap in self.network.journal.taps if tap.name == name)
        return packet_list(name, self.frames(name), tap.link_type)

    @property
    def drops(self) -> list[Drop]:
        """Every drop (so far), of the steps in order and then of the background."""
        return all_drops(self.network.journal)
