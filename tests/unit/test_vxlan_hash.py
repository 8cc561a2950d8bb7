"""The VXLAN outer source port: a symmetric hash of the inner flow, folded into 32768-60999."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, IPOption
from scapy.layers.l2 import Ether

from kpkt.engine.ids import LOCAL_PORT_MAX, LOCAL_PORT_MIN
from kpkt.net.vxlan import FlowPorts, _flow_key
from kpkt.wire import icmp
from kpkt.wire.arp import ARP_REQUEST, arp_frame
from kpkt.wire.ethernet import BROADCAST, ETH_P_IP, ZERO_MAC, eth_header
from kpkt.wire.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, ipv4_packet
from kpkt.wire.udp import udp_segment

SETTINGS = settings(max_examples=150, deadline=None, database=None, derandomize=True)

MAC_A = bytes.fromhex("0a580af40101")
MAC_B = bytes.fromhex("0a580af40201")
HASH_KEY = bytes(range(16))

addrs = st.binary(min_size=4, max_size=4)
ports = st.integers(min_value=0, max_value=0xFFFF)
u16 = st.integers(min_value=0, max_value=0xFFFF)


def frame(packet: bytes, forward: bool = True) -> bytes:
    src, dst = (MAC_A, MAC_B) if forward else (MAC_B, MAC_A)
    return eth_header(dst, src, ETH_P_IP) + packet


def udp_frame(src, dst, sport, dport, ident=1, forward=True, payload=b"data") -> bytes:
    segment = udp_segment(src, dst, sport, dport, payload)
    return frame(ipv4_packet(src, dst, PROTO_UDP, segment, ident=ident), forward)


def tcp_frame(src, dst, sport, dport, ident=1, forward=True) -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return frame(ipv4_packet(src, dst, PROTO_TCP, segment, ident=ident), forward)


def icmp_frame(src, dst, icmp_type, ident, seq, forward=True) -> bytes:
    message = icmp.echo(icmp_type, ident, seq, b"x" * 56)
    return frame(ipv4_packet(src, dst, PROTO_ICMP, message, ident=7, df=True), forward)


def device(key: bytes = HASH_KEY) -> FlowPorts:
    """A tunnel's source ports, as a VXLAN device keyed by `key` has them."""
    return FlowPorts(key)


def source_port(ports: FlowPorts, inner: bytes) -> int:
    return ports.port(inner)


@SETTINGS
@given(addrs, addrs, ports, ports, u16, u16)
def test_udp_flow_key_is_symmetric(a, b, pa, pb, id1, id2):
    forward = udp_frame(a, b, pa, pb, ident=id1)
    back = udp_frame(b, a, pb, pa, ident=id2, forward=False, payload=b"reply!")
    assert _flow_key(forward) == _flow_key(back)


@SETTINGS
@given(addrs, addrs, ports, ports, u16, u16)
def test_tcp_flow_key_is_per_direction(a, b, pa, pb, id1, id2):
    # services.md §3.1: TCP's outer port follows the sending socket's txhash, one per direction
    forward = tcp_frame(a, b, pa, pb, ident=id1)
    again = tcp_frame(a, b, pa, pb, ident=id2)
    back = tcp_frame(b, a, pb, pa, ident=id2, forward=False)
    assert _flow_key(forward) == _flow_key(again)
    assert (_flow_key(forward) == _flow_key(back)) == ((a, pa) == (b, pb))


def test_udp_flow_key_content():
    a, b = bytes((10, 244, 2, 2)), bytes((10, 244, 1, 2))
    key = _flow_key(udp_frame(a, b, 5000, 40000))
    assert key == b + a + bytes((PROTO_UDP,)) + (5000).to_bytes(2, "big") + (40000).to_bytes(
        2, "big"
    )


def test_flow_key_tells_flows_apart():
    a, b, c = bytes((10, 244, 1, 2)), bytes((10, 244, 2, 2)), bytes((10, 244, 2, 3))
    base = _flow_key(udp_frame(a, b, 40000, 5000))
    assert _flow_key(udp_frame(a, b, 40001, 5000)) != base
    assert _flow_key(udp_frame(a, b, 40000, 5001)) != base
    assert _flow_key(udp_frame(a, c, 40000, 5000)) != base
    assert _flow_key(tcp_frame(a, b, 40000, 5000)) != base  # the protocol is part of the key


def test_flow_key_ignores_inner_macs_ttl_and_ip_id():
    a, b = bytes((10, 244, 1, 2)), bytes((10, 244, 2, 2))
    one = udp_frame(a, b, 40000, 5000, ident=1)
    segment = udp_segment(a, b, 40000, 5000, b"data")
    other = eth_header(BROADCAST, MAC_B, ETH_P_IP) + ipv4_packet(
        a, b, PROTO_UDP, segment, ident=999, ttl=3
    )
    assert _flow_key(one) == _flow_key(other)


def test_ports_are_read_after_ip_options():
    inner = bytes(
        Ether(src="0a:58:0a:f4:01:01", dst="0a:58:0a:f4:02:01")
        / IP(src="10.244.1.2", dst="10.244.2.2", options=[IPOption(b"\x01\x01\x01\x00")])
        / UDP(sport=40000, dport=5000)
    )
    assert inner[14] == 0x46  # IHL 6
    a, b = bytes((10, 244, 1, 2)), bytes((10, 244, 2, 2))
    assert _flow_key(inner) == _flow_key(udp_frame(a, b, 40000, 5000))


def test_the_port_cache_tells_flows_with_ip_options_apart():
    # the cache is keyed on the frame's bytes: with options, the ports are not at the usual
    # offset, so two flows with the same options must not share a cached port
    def with_options(sport: int) -> bytes:
        return bytes(
            Ether(src="0a:58:0a:f4:01:01", dst="0a:58:0a:f4:02:01")
            / IP(src="10.244.1.2", dst="10.244.2.2", options=[IPOption(b"\x01\x01\x01\x00")])
            / UDP(sport=sport, dport=5000)
        )

    cached = device()
    for sport in range(40000, 40040):
        assert source_port(cached, with_options(sport)) == source_port(
            device(), with_options(sport)
        )


@SETTINGS
@given(addrs, addrs, u16, u16, u16)
def test_icmp_flow_key_ignores_echo_id_and_direction(a, b, id1, id2, seq):
    request = icmp_frame(a, b, icmp.ECHO_REQUEST, id1, seq)
    reply = icmp_frame(b, a, icmp.ECHO_REPLY, id1, seq, forward=False)
    other_ping = icmp_frame(a, b, icmp.ECHO_REQUEST, id2, (seq + 1) & 0xFFFF)
    key = _flow_key(request)
    assert key == _flow_key(reply) == _flow_key(other_ping)
    assert key == min(a, b) + max(a, b) + bytes((PROTO_ICMP,))


def test_non_ip_frame_keys_on_the_ethernet_addresses():
    arp = arp_frame(
        ARP_REQUEST, BROADCAST, MAC_A, b"\x0a\xf4\x01\x00", ZERO_MAC, b"\x0a\xf4\x02\x00"
    )
    assert _flow_key(arp) == arp[0:12]


@SETTINGS
@given(st.binary(min_size=1, max_size=32), addrs, addrs, ports, ports)
def test_source_port_in_local_port_range_and_symmetric(key, a, b, pa, pb):
    dev = device(key)
    forward = source_port(dev, udp_frame(a, b, pa, pb))
    # a fresh device with the same key: the reply must not depend on the cache
    back = source_port(device(key), udp_frame(b, a, pb, pa, forward=False))
    assert LOCAL_PORT_MIN <= forward <= LOCAL_PORT_MAX
    assert (LOCAL_PORT_MIN, LOCAL_PORT_MAX) == (32768, 60999)
    assert forward == back


@SETTINGS
@given(addrs, addrs, u16, u16)
def test_icmp_source_port_same_for_every_ping_of_a_pair(a, b, id1, id2):
    dev = device()
    ports_seen = {
        source_port(dev, icmp_frame(a, b, icmp.ECHO_REQUEST, id1, 1)),
        source_port(device(), icmp_frame(b, a, icmp.ECHO_REPLY, id1, 1, forward=False)),
        source_port(device(), icmp_frame(a, b, icmp.ECHO_REQUEST, id2, 2)),
    }
    assert len(ports_seen) == 1
    assert LOCAL_PORT_MIN <= ports_seen.pop() <= LOCAL_PORT_MAX


def test_source_port_spreads_over_the_range():
    dev = device()
    a, b = bytes((10, 244, 1, 2)), bytes((10, 244, 2, 2))
    seen = {source_port(dev, udp_frame(a, b, sport, 53)) for sport in range(32768, 33768)}
    assert len(seen) > 900  # 1000 flows into 28232 ports: few collisions
    assert min(seen) < 34000 and max(seen) > 59000


def test_source_port_depends_on_the_hash_key():
    a, b = bytes((10, 244, 1, 2)), bytes((10, 244, 2, 2))
    flows = [udp_frame(a, b, sport, 5000) for sport in range(40000, 40020)]
    one = [source_port(device(b"boot-1"), f) for f in flows]
    two = [source_port(device(b"boot-2"), f) for f in flows]
    assert one != two
    assert one == [source_port(device(b"boot-1"), f) for f in flows]


def test_source_port_is_cached_per_flow_direction():
    # the cache is keyed by each direction's own bytes (one slice, no sorting on the hot
    # path); both directions still get the one symmetric port, and repeats add no entries
    dev = device()
    a, b = bytes((10, 244, 1, 2)), bytes((10, 244, 2, 2))
    forward, backward = udp_frame(a, b, 40000, 5000), udp_frame(b, a, 5000, 40000, forward=False)
    port = source_port(dev, forward)
    assert source_port(dev, backward) == port
    for _ in range(3):
        assert source_port(dev, forward) == source_port(dev, backward) == port
    assert len(dev._cache) == 2
    assert set(dev._cache.values()) == {port}
