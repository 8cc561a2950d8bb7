"""kpkt/net/socket_lb.py: service translation at the socket (connect4/sendmsg4, recvmsg4)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from kpkt.net.kubeproxy import ServicePortInfo, ServiceRules
from kpkt.net.socket_lb import SocketLb
from kpkt.wire.ipv4 import PROTO_TCP, PROTO_UDP

VIP = IPv4Address("10.96.0.80").packed
A, B = IPv4Address("10.1.1.6"), IPv4Address("10.1.2.10")


def rules() -> ServiceRules:
    endpoints = ((A.packed, 5353), (B.packed, 5353))
    port = ServicePortInfo("default/web:dns", PROTO_UDP, VIP, 53, None, endpoints)
    return ServiceRules([port], IPv4Network("10.1.0.0/16"))


def test_one_endpoint_per_socket_and_replies_shown_from_the_service() -> None:
    picks = iter([1, 0])
    lb = SocketLb(rules(), lambda n: next(picks))
    assert lb.connect(PROTO_UDP, VIP, 53, 40000) == (B.packed, 5353)
    assert lb.connect(PROTO_UDP, VIP, 53, 40000) == (B.packed, 5353), "picked once"
    assert lb.connect(PROTO_UDP, VIP, 53, 40001) == (A.packed, 5353), "another socket"
    assert lb.received(PROTO_UDP, B.packed, 5353, 40000) == (VIP, 53)
    assert lb.received(PROTO_UDP, B.packed, 5353, 40001) == (B.packed, 5353), "not its endpoint"


def test_what_is_no_service_passes_unchanged() -> None:
    lb = SocketLb(rules(), lambda n: 0)
    assert lb.connect(PROTO_TCP, VIP, 53, 40000) == (VIP, 53), "the service port is UDP only"
    other = IPv4Address("10.1.2.11").packed
    assert lb.connect(PROTO_UDP, other, 53, 40000) == (other, 53)
    assert lb.received(PROTO_UDP, other, 53, 40000) == (other, 53)
