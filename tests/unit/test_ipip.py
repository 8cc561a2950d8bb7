"""The IPIP tunnel (Linux's fallback `tunl0`) driven on two namespaces with no capture layer:
what it sends, what the underlay carries and what comes out at the far end, as
`ip_tunnel_xmit` builds it (calico.md §2.5)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from kpkt.net.device import Veth
from kpkt.net.ipip import IpipTunnel
from kpkt.net.route import Route
from kpkt.net.stack import Stack
from kpkt.network import Network
from kpkt.observe import OUT
from kpkt.wire.ethernet import ETH_LEN, ETH_TYPE, ETH_TYPE_IP
from kpkt.wire.ipip import ipip_packet
from kpkt.wire.ipv4 import (
    DF,
    FLAGS,
    IP_DST,
    IP_SRC,
    PROTO,
    PROTO_IPIP,
    PROTO_UDP,
    TOS,
    TTL,
    checksum,
    ipv4_packet,
)


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


NODE1, NODE2 = ip("192.168.60.1"), ip("192.168.60.2")
POD_A, POD_B = ip("10.245.1.2"), ip("10.245.2.2")


class Recorder:
    def __init__(self, where: str, log: list) -> None:
        self.where, self.log = where, log

    def seen(self, frame: bytes, direction: str, tag, decision="") -> None:
        self.log.append((self.where, direction, frame))


def datagram(*, ttl: int = 64, df: bool = True, tos: int = 0) -> bytes:
    return ipv4_packet(POD_A, POD_B, PROTO_UDP, bytes(18), ident=0x1234, ttl=ttl, df=df, tos=tos)


def two_nodes():
    """node1 and node2 on one wire, each with tunl0; node1 routes node2's block into the
    tunnel via node2's address, node2 blackholes it (so the decapsulated packet stops there)."""
    network = Network(seed=1)
    seen: list = []
    nodes = []
    for name, own in (("node1", NODE1), ("node2", NODE2)):
        stack = Stack(network, name, forwarding=True, node=name)
        network.add_stack(stack)
        eth0 = Veth(stack, "eth0", bytes.fromhex("0200c0a83c0" + name[-1]), 1500)
        tunl0 = IpipTunnel(stack, "tunl0")
        for dev in (eth0, tunl0):
            dev.observer = Recorder(f"{name}/{dev.name}", seen)
        stack.add_address(eth0, own, 24)
        stack.add_route(Route(IPv4Network("192.168.60.0/24"), eth0, src=own))
        nodes.append((stack, eth0, tunl0))
    Veth.pair(nodes[0][1], nodes[1][1])
    node1, node2 = nodes[0][0], nodes[1][0]
    node1.add_route(Route(IPv4Network("10.245.2.0/26"), nodes[0][2], via=NODE2, onlink=True))
    node2.add_route(Route(IPv4Network("10.245.2.0/26"), None, blackhole=True))
    return network, node1, node2, seen


def drops(network: Network) -> list[str]:
    return [drop.reason for drop in network.journal.background.drops]


def run(network: Network) -> None:
    while network.sched.step():
        pass


def test_outer_header_inherits_ttl_and_df_and_only_the_ecn_bits():
    inner = datagram(ttl=63, df=True, tos=0xB9)
    outer = ipip_packet(NODE1, NODE2, inner, ident=7)
    assert outer[20:] == inner
    assert outer[PROTO] == PROTO_IPIP and outer[TTL] == 63 and outer[FLAGS] & DF
    assert outer[TOS] == 0x01  # the ECN bits of 0xb9; the DSCP stays in the inner header
    assert (outer[IP_SRC], outer[IP_DST]) == (NODE1, NODE2)
    assert checksum(outer[:20]) == 0
    reply = ipip_packet(NODE2, NODE1, datagram(df=False), ident=8)
    assert not reply[FLAGS] & DF  # a kernel echo reply has DF 0, so its tunnel packet too


def test_a_routed_packet_crosses_the_tunnel_and_comes_out_raw_at_the_far_end():
    network, node1, node2, seen = two_nodes()
    tag = network.journal.new_flow(-1)
    node1.receive_ip(datagram(), node1.devices[0], tag)
    run(network)
    places = [(where, direction) for where, direction, _ in seen]
    assert places == [
        ("node1/tunl0", OUT),
        ("node1/eth0", OUT),  # ARP for node2, after the tunnel TX: the packet waits for it
        ("node2/eth0", "in"),
        ("node2/eth0", OUT),
        ("node1/eth0", "in"),
        ("node1/eth0", OUT),  # the encapsulated packet
        ("node2/eth0", "in"),
        ("node2/tunl0", "in"),
    ]
    sent_raw, outer_frame, received_raw = seen[0][2], seen[5][2], seen[7][2]
    assert sent_raw[TTL] == 63 and sent_raw == received_raw  # raw IP: no link layer
    assert outer_frame[ETH_TYPE] == ETH_TYPE_IP
    outer = outer_frame[ETH_LEN:]
    assert outer[PROTO] == PROTO_IPIP and outer[TTL] == 63 and outer[FLAGS] & DF
    assert (outer[IP_SRC], outer[IP_DST]) == (NODE1, NODE2)  # the route's next hop
    assert outer[20:] == sent_raw and len(outer_frame) == ETH_LEN + 20 + len(sent_raw)
    assert drops(network) == ["blackhole"]  # node2's blackhole for its own block


def test_a_packet_bigger_than_the_tunnel_mtu_is_refused_before_encapsulation():
    network, node1, _, seen = two_nodes()
    big = ipv4_packet(POD_A, POD_B, PROTO_UDP, bytes(1481 - 20), ident=1, ttl=64)
    node1.receive_ip(big, node1.devices[0], network.journal.new_flow(-1))
    run(network)
    assert drops(network)[0] == "mtu-exceeded"
    assert not [s for s in seen if s[0] == "node1/tunl0"]


def test_a_tunnel_whose_remote_end_is_routed_into_itself_drops_the_packet():
    network, node1, _, seen = two_nodes()
    tunl0 = node1.ipip_tunnel
    node1.add_route(Route(IPv4Network("192.168.60.2/32"), tunl0, via=NODE2, onlink=True))
    node1.receive_ip(datagram(), node1.devices[0], network.journal.new_flow(-1))
    run(network)
    assert drops(network) == ["tunnel-loop"]
    assert [where for where, _, _ in seen] == ["node1/tunl0"]
