"""Namespaces built by hand for unit tests of the datapath, with no capture layer and no
topology: a real `Stack` in a small network whose observer is a `Recorder`, and devices that
keep what the stack sends out of them."""

from __future__ import annotations

from ipaddress import IPv4Network

from kpkt.engine.ids import NamespaceIds
from kpkt.engine.scheduler import Scheduler
from kpkt.net.device import NetDevice
from kpkt.net.route import Route
from kpkt.net.stack import Stack
from kpkt.observe import Decision
from kpkt.wire.ethernet import ETH_P_IP, eth_header
from kpkt.wire.ipv4 import PROTO_UDP, ipv4_packet
from kpkt.wire.udp import udp_segment

MAC_NODE = bytes.fromhex("020000000001")
MAC_PEER = bytes.fromhex("020000000002")


def ip(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def why(decision: Decision) -> tuple:
    """A decision as a tuple, to compare: its kind, then its arguments."""
    return (decision.why, *decision.args)


class Recorder:
    """The network's observer: hands out tags (a packet's tag is `("packet of", tag)`) and
    keeps the decisions and drops it is told of."""

    def __init__(self) -> None:
        self.decisions: list[tuple[object, Decision]] = []
        self.drops: list[tuple[str, str, Decision]] = []  # (where, reason, decision)

    def packet(self, tag):
        return ("packet of", tag)

    def new_flow(self, step: int):
        return ("flow", step)

    def decided(self, tag, decision: Decision) -> None:
        self.decisions.append((tag, decision))

    def dropped(self, where: str, reason: str, decision: Decision, tag) -> None:
        self.drops.append((where, reason, decision))


class Network:
    """What a stack needs of its network: the clock, the observer, the random choices."""

    def __init__(self) -> None:
        self.seed = 1  # what the namespaces' ids and netem's choices derive from
        self.sched = Scheduler()
        self.journal = Recorder()
        self.pending = 0
        self.in_flight = 0
        self.current_step = 0
        self.corrupting = False  # no impair step corrupted a frame: no checksum checks

    def ids_for(self, owner: str) -> NamespaceIds:
        return NamespaceIds(self.seed, owner)


class Seen:
    """A device's observer: the frames it saw, with direction and decision."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, str, Decision | str]] = []

    def seen(self, frame: bytes, direction: str, tag, decision: Decision | str = "") -> None:
        self.frames.append((frame, direction, decision))


class Port(NetDevice):
    """A device that keeps the frames sent out of it, with the decision each carried."""

    kind = "port"

    def __init__(self, stack: Stack, name: str, mac: bytes, mtu: int = 1500) -> None:
        super().__init__(stack, name, mac, mtu)
        self.sent: list[tuple[bytes, Decision | str]] = []

    def xmit(self, frame: bytes, tag, note: Decision | str = "") -> None:
        self.sent.append((frame, note))


def namespace(
    owner: str = "node1", *, forwarding: bool = True, default: bool = True
) -> tuple[Stack, Recorder, Port, Port]:
    """A namespace with two devices: `eth0` on 192.168.50.1/24 and `cni0` (MTU 1450) on
    10.244.1.1/24, a `default` route via 192.168.50.254, and its neighbours resolved (to
    MAC_PEER)."""
    network = Network()
    stack = Stack(network, owner, forwarding=forwarding, node=owner)
    eth0 = Port(stack, "eth0", MAC_NODE)
    cni0 = Port(stack, "cni0", bytes.fromhex("020000000101"), mtu=1450)
    stack.add_address(eth0, ip("192.168.50.1"), 24)
    stack.add_address(cni0, ip("10.244.1.1"), 24)
    stack.add_route(Route(IPv4Network("10.244.1.0/24"), cni0, src=ip("10.244.1.1")))
    stack.add_route(Route(IPv4Network("192.168.50.0/24"), eth0, src=ip("192.168.50.1")))
    if default:
        stack.add_route(Route(IPv4Network("0.0.0.0/0"), eth0, via=ip("192.168.50.254")))
    for dev, peers in ((eth0, ("192.168.50.2", "192.168.50.254")), (cni0, ("10.244.1.5",))):
        for peer in peers:
            stack.arp.table(dev).add_permanent(ip(peer), MAC_PEER)
    return stack, network.journal, eth0, cni0


def udp_packet(
    src: str, dst: str, sport: int = 40000, dport: int = 5000, *, ttl: int = 64, size: int = 8
) -> bytes:
    """An IPv4 packet carrying a UDP datagram of `size` zero bytes (DF set)."""
    segment = udp_segment(ip(src), ip(dst), sport, dport, bytes(size))
    return ipv4_packet(ip(src), ip(dst), PROTO_UDP, segment, ident=1, ttl=ttl)


def to(dev: NetDevice, packet: bytes) -> bytes:
    """`packet` in an Ethernet frame from MAC_PEER to `dev`."""
    return eth_header(dev.mac, MAC_PEER, ETH_P_IP) + packet
