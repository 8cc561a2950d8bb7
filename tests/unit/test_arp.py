"""The neighbour layer driven on its own, with no capture layer: what it sends out of a device,
and why, checked as decisions (kpkt/observe.py)."""

from __future__ import annotations

from ipaddress import IPv4Network

from kpkt.engine.scheduler import Scheduler
from kpkt.net.arp import Arp, ignored_where
from kpkt.net.drops import REASON_OF
from kpkt.net.neighbor import Nud
from kpkt.net.route import Route, RouteTable
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
    proxy_arp = False

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


# --- proxy ARP (Calico's host-side veths): answer for what the namespace routes elsewhere ---

GATEWAY = bytes((169, 254, 1, 1))  # Calico's dummy pod gateway: no device has it
POD = bytes((10, 245, 1, 2))
CALI_MAC = bytes.fromhex("eeeeeeeeeeee")


class Cali(Device):
    name = "cali"
    mac = CALI_MAC
    proxy_arp = True


def proxy_stack(*routes: tuple[str, object, bool]) -> Stack:
    """A forwarding namespace with `routes` as (network, device, blackhole)."""
    stack = Stack()
    stack.forwarding = True
    stack.routes = RouteTable()
    for network, dev, blackhole in routes:
        stack.routes.add(Route(IPv4Network(network), dev, blackhole=blackhole))
    return stack


def ask(stack: Stack, dev: Device, target: bytes) -> Arp:
    arp = Arp(stack)
    request = arp_frame(ARP_REQUEST, BROADCAST, MAC_PEER, POD, bytes(6), target)
    arp.receive(request, dev, "tag")
    return arp


def test_proxy_arp_answers_for_an_address_routed_out_of_another_device():
    cali, eth0 = Cali(), Device()
    stack = proxy_stack(("0.0.0.0/0", eth0, False))
    arp = ask(stack, cali, GATEWAY)
    ((reply, note),) = cali.sent
    assert why(note) == (Why.ARP_PROXY_REPLY, GATEWAY, CALI_MAC)
    op, sha, spa, tha, tpa = arp_fields(reply)
    assert (op, sha, spa, tha, tpa) == (ARP_REPLY, CALI_MAC, GATEWAY, MAC_PEER, POD)
    assert reply[:6] == MAC_PEER and reply[6:12] == CALI_MAC  # unicast to the asker
    # neigh_event_ns: the asker is learned, so the node never ARPs for it afterwards
    assert arp.table(cali).get(POD, stack.sched.now).state is Nud.STALE


def test_proxy_arp_stays_silent_without_a_route_or_a_forwarding_namespace():
    cali, eth0 = Cali(), Device()
    ask(proxy_stack(), cali, GATEWAY)  # no default route (calico#3270)
    assert cali.sent == []
    stack = proxy_stack(("0.0.0.0/0", eth0, False))
    stack.forwarding = False
    ask(stack, cali, GATEWAY)
    assert cali.sent == []


def test_proxy_arp_stays_silent_for_a_route_back_out_of_the_asking_device_or_a_blackhole():
    cali = Cali()
    ask(proxy_stack(("169.254.1.1/32", cali, False)), cali, GATEWAY)
    assert cali.sent == []
    ask(proxy_stack(("169.254.1.0/24", None, True)), cali, GATEWAY)
    assert cali.sent == []


def test_without_proxy_arp_a_request_for_a_routed_address_is_not_answered():
    dev, eth0 = Device(), Device()
    dev.proxy_arp = False
    arp = ask(proxy_stack(("0.0.0.0/0", eth0, False)), dev, GATEWAY)
    assert dev.sent == []
    assert arp.table(dev).get(POD, 0) is None  # and the asker is not learned


def test_what_arp_ignores_and_that_it_makes_the_table_receive_would():
    """`ignored_where` (a flood's ends that only capture, kpkt/net/device.py): True exactly
    where `receive` leaves the frame alone, and a missing table made as `receive` makes it
    (its reachable time the namespace's next draw) when it reads the table (a request not
    reflected); otherwise `receive` makes it, the draw the same either way."""
    other = bytes((10, 244, 1, 9))
    frames = {
        "for another host, from an unknown one": (
            arp_frame(ARP_REQUEST, BROADCAST, MAC_PEER, IP_PEER, bytes(6), other),
            True,
        ),
        "our own, reflected": (
            arp_frame(ARP_REQUEST, BROADCAST, MAC_US, IP_US, bytes(6), other),
            True,
        ),
        "for us": (arp_frame(ARP_REQUEST, BROADCAST, MAC_PEER, IP_PEER, bytes(6), IP_US), False),
        "a reply (not ignored: receive looks its sender up)": (
            arp_frame(ARP_REPLY, MAC_US, MAC_PEER, IP_PEER, MAC_US, IP_US),
            False,
        ),
    }
    for name, (frame, ignored) in frames.items():
        stack, dev = Stack(), Device()
        draws = iter(range(1, 100))
        stack.ids.reachable_time_ns = draws.__next__
        arp = stack.arp = Arp(stack)
        dev.stack = stack
        assert ignored_where(frame)(dev) is ignored, name
        reflected = name == "our own, reflected"
        read = not reflected and arp_fields(frame)[0] == ARP_REQUEST
        assert (dev in arp.tables) is read, name  # receive makes it after that check
        arp.receive(frame, dev, "tag")  # finds the table made, or makes it: one draw
        if not reflected:
            assert arp.tables[dev].reachable_ns == 1, name
        assert next(draws) == (1 if reflected else 2), name
        if ignored:  # and receive, given it, changed nothing
            assert dev.sent == [], name
            assert all(not table.entries for table in arp.tables.values()), name


def test_a_request_for_another_host_from_a_known_sender_is_ignored_when_its_entry_keeps():
    """A flooded request reaches pods that know its sender (the node's gateway): `ignored_where`
    is True when `receive` would leave the sender's entry as it is (its MAC, resolved or being
    checked, or PERMANENT), and it reads the entry as `receive` does (a REACHABLE entry past
    reachable_time goes STALE either way)."""
    other = bytes((10, 244, 1, 9))
    request = arp_frame(ARP_REQUEST, BROADCAST, MAC_PEER, IP_PEER, bytes(6), other)
    late = 31_000_000_000  # past the reachable time Ids gives
    cases = [  # (name, the sender's entry: mac, state; when the request comes; ignored)
        ("known, same MAC, STALE", MAC_PEER, Nud.STALE, 0, True),
        ("known, same MAC, REACHABLE", MAC_PEER, Nud.REACHABLE, 0, True),
        ("known, same MAC, REACHABLE past its time", MAC_PEER, Nud.REACHABLE, late, True),
        ("known, same MAC, DELAY", MAC_PEER, Nud.DELAY, 0, True),
        ("PERMANENT, another MAC", MAC_US, Nud.PERMANENT, 0, True),
        ("known, another MAC", MAC_US, Nud.REACHABLE, 0, False),
        ("INCOMPLETE", None, Nud.INCOMPLETE, 0, False),
        ("FAILED", None, Nud.FAILED, 0, False),
    ]
    for name, mac, state, at, ignored in cases:
        arps = []
        for _ in range(2):
            stack, dev = Stack(), Device()
            arp = stack.arp = Arp(stack)
            dev.stack = stack
            arp.table(dev).set(IP_PEER, mac, state, 0)
            stack.sched.now = at
            arps.append((arp, dev))
        (quiet, quiet_dev), (told, told_dev) = arps
        assert ignored_where(request)(quiet_dev) is ignored, name
        told.receive(request, told_dev, "tag")
        entry, seen = quiet.table(quiet_dev).entries[IP_PEER], told.table(told_dev).entries[IP_PEER]
        assert entry.state is (Nud.STALE if at == late else state), name
        if ignored:  # receive, given it, changed nothing more than ignores did
            assert told_dev.sent == [], name
            assert (seen.mac, seen.state, seen.updated_ns, seen.timer_gen) == (
                entry.mac,
                entry.state,
                entry.updated_ns,
                entry.timer_gen,
            ), name
