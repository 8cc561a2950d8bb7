"""The neighbour layer driven on its own, with no capture layer: what it sends out of a device,
and why, checked as decisions (kpkt/observe.py)."""

from __future__ import annotations

from kpkt.engine.scheduler import Scheduler
from kpkt.net.arp import Arp
from kpkt.net.drops import REASON_OF
from kpkt.net.neighbor import Nud
from kpkt.observe import Why
from kpkt.wire.arp import ARP_REPLY, ARP_REQUEST, arp_fields, arp_frame
from kpkt.wire.ethernet import BROADCAST

MAC_US = bytes.fromhex("0a580af40101")
MAC_PEER = bytes.fromhex("0a580af40102")
IP_US = bytes((10, 244, 1, 1))
IP_PEER = bytes((10, 244, 1, 2))
PACKET = bytes(20)  # an IPv4 packet waiting for its next hop; the layer does not read it


class Ids:
    def reachable_time_ns(self) -> int:
        return 30_000_000_000


class Flows:
    """Tags for the frames ARP sends: what the network's observer hands out."""

    def packet(self, tag):
        return ("packet of", tag)

    def new_flow(self, step: int):
        return ("timer flow", step)


class Stack:
    def __init__(self) -> None:
        self.sched = Scheduler()
        self.ids = Ids()
        self.observer = Flows()
        self.local_ips = {IP_US}
        self.pending = 0
        self.drops: list[str] = []
        self.errors: list[int] = []

    def primary_ip(self, dev, toward=None) -> bytes:
        return IP_US

    def current_step(self) -> int:
        return 0

    def note_pending(self, delta: int) -> None:
        self.pending += delta

    def drop(self, decision, tag, where=None) -> None:
        self.drops.append(REASON_OF[decision.why])

    def icmp_error(self, packet: bytes, icmp_type: int, code: int, tag, mtu: int = 0) -> None:
        self.errors.append(code)


class Device:
    name = "eth0"
    mac = MAC_US

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, object]] = []

    def xmit(self, frame: bytes, tag, note="") -> None:
        self.sent.append((frame, note))


def why(decision) -> tuple:
    return (decision.why, *decision.args)


def test_a_packet_waits_for_the_reply_and_leaves_with_it():
    stack, dev = Stack(), Device()
    arp = Arp(stack)
    arp.output(dev, IP_PEER, PACKET, "tag", "forward")
    ((request, note),) = dev.sent
    assert why(note) == (Why.ARP_WHO_HAS, IP_PEER, 1)
    assert request[:6] == BROADCAST and arp_fields(request)[0] == ARP_REQUEST
    assert stack.pending == 1
    reply = arp_frame(ARP_REPLY, MAC_US, MAC_PEER, IP_PEER, MAC_US, IP_US)
    arp.receive(reply, dev, "tag")
    frame, note = dev.sent[1]
    assert frame[:6] == MAC_PEER and frame.endswith(PACKET)
    assert note.why is Why.THEN
    assert note.args[0] == "forward" and why(note.args[1]) == (Why.ARP_RESOLVED, IP_PEER)
    assert stack.pending == 0
    assert arp.table(dev).get(IP_PEER, stack.sched.now).state is Nud.REACHABLE


def test_a_request_for_our_address_is_answered():
    stack, dev = Stack(), Device()
    arp = Arp(stack)
    request = arp_frame(ARP_REQUEST, BROADCAST, MAC_PEER, IP_PEER, bytes(6), IP_US)
    arp.receive(request, dev, "tag")
    ((reply, note),) = dev.sent
    assert why(note) == (Why.ARP_REPLY, IP_US, MAC_US)
    assert arp_fields(reply)[0] == ARP_REPLY and reply[:6] == MAC_PEER
    assert arp.table(dev).get(IP_PEER, stack.sched.now).state is Nud.STALE


def test_no_reply_retries_then_drops_with_host_unreachable():
    stack, dev = Stack(), Device()
    arp = Arp(stack)
    arp.output(dev, IP_PEER, PACKET, "tag", "")
    while stack.sched.step():
        pass
    assert [why(note) for _, note in dev.sent] == [
        (Why.ARP_WHO_HAS, IP_PEER, 1),
        (Why.ARP_WHO_HAS, IP_PEER, 2),
        (Why.ARP_WHO_HAS, IP_PEER, 3),
    ]
    assert stack.drops == ["neighbour-unresolved"] and stack.errors == [1]  # host unreachable
    assert stack.pending == 0
