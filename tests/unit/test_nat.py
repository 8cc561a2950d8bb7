"""Conntrack's packet rewriting and flannel's masquerade rules."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP

from kpkt.cni.flannel import masquerade_rules
from kpkt.net.nat import flow_key, flow_of, key_of, rewrite
from kpkt.wire.ipv4 import PROTO_UDP, ipv4_packet
from kpkt.wire.udp import udp_segment

addresses = st.integers(1, 2**32 - 2).map(lambda n: IPv4Address(n).packed)
ports = st.integers(1, 65535)


def udp_packet(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    segment = udp_segment(src, dst, sport, dport, payload)
    return ipv4_packet(src, dst, PROTO_UDP, segment, ident=7)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(addresses, addresses, ports, ports, addresses, ports, st.binary(max_size=40))
def test_partial_rewrite_adjusts_like_a_full_recompute(src, dst, sport, dport, new, port, data):
    packet = udp_packet(src, dst, sport, dport, data)
    partial = rewrite(packet, src=(new, port), partial=True)
    full = rewrite(packet, src=(new, port))
    assert partial == full
    assert partial == bytes(IP(partial))  # Scapy agrees every checksum is right
    assert IP(partial)[UDP].sport == port and IP(partial).src == str(IPv4Address(new))


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    addresses,
    addresses,
    ports,
    ports,
    st.sampled_from(["udp", "tcp", "echo-request", "echo-reply", "unreachable"]),
    st.integers(0, 3),
)
def test_flow_key_is_the_key_of_the_flow(src, dst, sport, dport, kind, options):
    # the hot path reads the key straight from the packet; replies are entered by key_of():
    # both must agree, with and without IP options
    layer = {
        "udp": UDP(sport=sport, dport=dport),
        "tcp": TCP(sport=sport, dport=dport),
        "echo-request": ICMP(type=8, id=sport, seq=dport),
        "echo-reply": ICMP(type=0, id=sport, seq=dport),
        "unreachable": ICMP(type=3, code=3),
    }[kind]
    ip = IP(
        src=str(IPv4Address(src)), dst=str(IPv4Address(dst)), options=[IPOption_NOP()] * 4 * options
    )
    packet = bytes(ip / layer / b"data")
    flow = flow_of(packet)
    if kind == "unreachable":
        assert flow is None and flow_key(packet) is None
    else:
        assert flow_key(packet) == key_of(flow)


def test_flannel_rules_masquerade_only_what_leaves_the_pod_network():
    cluster, node = IPv4Network("10.244.0.0/16"), IPv4Network("10.244.1.0/24")
    policy = masquerade_rules(cluster, node)
    rules = policy.rules

    def masqueraded(src: str, dst: str) -> bool:
        return policy.masquerades(int(IPv4Address(src)), int(IPv4Address(dst)))

    assert not masqueraded("10.244.1.2", "10.244.2.2")  # pod to pod
    assert not masqueraded("192.168.50.9", "10.244.1.2")  # outside to a local pod
    assert masqueraded("10.244.1.2", "192.168.50.2")  # pod to another node
    assert masqueraded("192.168.50.9", "10.244.2.2")  # outside to a remote pod
    assert not any(
        r.matches(int(IPv4Address("10.244.1.2")), int(IPv4Address("224.0.0.1"))) and r.masquerade
        for r in rules
    )
