"""The IPv4 stack driven on its own, with no capture layer: forwarding (route lookup, TTL, MTU),
local delivery and the ICMP errors it sends, checked as bytes and as decisions
(kpkt/observe.py)."""

from __future__ import annotations

from handmade import MAC_NODE, MAC_PEER, Seen, ip, namespace, to, udp_packet, why

from kpkt.observe import Decision, Why
from kpkt.wire import icmp
from kpkt.wire.ethernet import ETH_LEN, ETH_P_IP, eth_header
from kpkt.wire.icmp import ICMP_LEN
from kpkt.wire.ipv4 import (
    IP_DST,
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    TTL,
    checksum,
    ipv4_packet,
)

TAG = "tag"
REPLY_TAG = ("packet of", TAG)  # the tag the observer hands out for an answer


def sent_packet(dev) -> tuple[bytes, Decision]:
    """The one frame `dev` sent, as its IPv4 packet, and its decision."""
    ((frame, decision),) = dev.sent
    assert frame[:ETH_LEN] == eth_header(MAC_PEER, dev.mac, ETH_P_IP)
    return frame[ETH_LEN:], decision


def icmp_error_to(dev, sender: str) -> tuple[int, int, bytes]:
    """The ICMP error `dev` sent to `sender`: type, code and the message."""
    packet, decision = sent_packet(dev)
    assert packet[PROTO] == PROTO_ICMP and packet[IP_DST] == ip(sender)
    assert checksum(packet[:IP_MIN_LEN]) == 0
    message = packet[IP_MIN_LEN:]
    assert checksum(message) == 0
    assert why(decision) == (Why.ICMP_ERROR, message[0], message[1], ip(sender))
    return message[0], message[1], message


def test_a_packet_is_forwarded_with_its_ttl_decremented():
    stack, recorder, eth0, cni0 = namespace()
    packet = udp_packet("10.244.1.5", "192.168.50.2")
    stack.receive(to(cni0, packet), cni0, TAG)
    out, decision = sent_packet(eth0)
    assert out[TTL] == 63 and checksum(out[:IP_MIN_LEN]) == 0
    assert out[:TTL] == packet[:TTL] and out[IP_SRC.start :] == packet[IP_SRC.start :]
    route, ttl = decision.args
    assert decision.why is Why.FORWARD and ttl == 63
    assert str(route) == "192.168.50.0/24 dev eth0 scope link src 192.168.50.1"
    assert recorder.drops == [] and cni0.sent == []


def test_the_decision_of_a_route_and_ttl_is_made_once():
    stack, _, eth0, cni0 = namespace()
    for _ in range(2):
        stack.receive(to(cni0, udp_packet("10.244.1.5", "8.8.8.8")), cni0, TAG)
    (_, first), (_, second) = eth0.sent
    assert first is second
    assert str(first.args[0]) == "default via 192.168.50.254 dev eth0"


def test_no_route_drops_with_net_unreachable():
    stack, recorder, eth0, cni0 = namespace(default=False)
    packet = udp_packet("10.244.1.5", "8.8.8.8")
    stack.receive(to(cni0, packet), cni0, TAG)
    assert [(w, r, why(d)) for w, r, d in recorder.drops] == [
        ("node1", "no-route", (Why.NO_ROUTE, ip("8.8.8.8")))
    ]
    kind, code, message = icmp_error_to(cni0, "10.244.1.5")
    assert (kind, code) == (icmp.DEST_UNREACH, icmp.NET_UNREACH)
    assert message[ICMP_LEN:] == packet  # quoted whole: it is short
    assert eth0.sent == []


def test_ttl_one_is_not_forwarded_and_the_sender_hears_time_exceeded():
    stack, recorder, eth0, cni0 = namespace()
    stack.receive(to(cni0, udp_packet("10.244.1.5", "192.168.50.2", ttl=1)), cni0, TAG)
    assert [why(d) for _, _, d in recorder.drops] == [(Why.TTL_EXCEEDED, 1, ip("192.168.50.2"))]
    assert icmp_error_to(cni0, "10.244.1.5")[:2] == (icmp.TIME_EXCEEDED, 0)
    packet, _ = sent_packet(cni0)
    assert packet[IP_SRC] == ip("10.244.1.1")  # from the route back to the sender
    assert eth0.sent == []


def test_too_big_with_df_gets_fragmentation_needed_with_the_mtu():
    stack, recorder, eth0, cni0 = namespace()
    packet = udp_packet("192.168.50.2", "10.244.1.5", size=1450)
    stack.receive(to(eth0, packet), eth0, TAG)
    assert [(r, why(d)) for _, r, d in recorder.drops] == [
        ("mtu-exceeded", (Why.MTU_EXCEEDED, len(packet), 1450, "cni0"))
    ]
    kind, code, message = icmp_error_to(eth0, "192.168.50.2")
    assert (kind, code) == (icmp.DEST_UNREACH, icmp.FRAG_NEEDED)
    assert int.from_bytes(message[6:8], "big") == 1450
    assert cni0.sent == []


def test_a_namespace_that_does_not_forward_drops_what_is_not_for_it():
    stack, recorder, eth0, cni0 = namespace("default/client", forwarding=False)
    stack.receive(to(eth0, udp_packet("192.168.50.2", "10.244.1.5")), eth0, TAG)
    assert [(w, r, why(d)) for w, r, d in recorder.drops] == [
        ("default/client", "not-for-us", (Why.NOT_FOR_US, ip("10.244.1.5"), "default/client"))
    ]
    assert eth0.sent == cni0.sent == []


def test_a_frame_for_another_mac_is_ignored_silently():
    stack, recorder, eth0, _ = namespace()
    frame = eth_header(bytes.fromhex("02000000ffff"), MAC_PEER, ETH_P_IP)
    stack.receive(frame + udp_packet("192.168.50.2", "192.168.50.1"), eth0, TAG)
    assert recorder.drops == [] and eth0.sent == []


def test_udp_to_a_port_nobody_listens_on_gets_port_unreachable():
    stack, recorder, eth0, _ = namespace()
    stack.receive(to(eth0, udp_packet("192.168.50.2", "192.168.50.1", dport=53)), eth0, TAG)
    assert [(r, why(d)) for _, r, d in recorder.drops] == [
        ("port-unreachable", (Why.NO_UDP_LISTENER, 53))
    ]
    assert icmp_error_to(eth0, "192.168.50.2")[:2] == (icmp.DEST_UNREACH, icmp.PORT_UNREACH)
    packet, _ = sent_packet(eth0)
    assert packet[IP_SRC] == ip("192.168.50.1")  # the address the datagram was sent to


def test_an_echo_request_is_answered():
    stack, recorder, eth0, _ = namespace()
    request = icmp.echo(icmp.ECHO_REQUEST, 7, 1, b"ping")
    packet = ipv4_packet(ip("192.168.50.2"), ip("192.168.50.1"), PROTO_ICMP, request, ident=9)
    stack.receive(to(eth0, packet), eth0, TAG)
    reply, decision = sent_packet(eth0)
    assert decision.why is Why.ECHO_REPLY
    assert reply[IP_SRC] == ip("192.168.50.1") and reply[IP_DST] == ip("192.168.50.2")
    assert reply[IP_MIN_LEN:] == icmp.echo(icmp.ECHO_REPLY, 7, 1, b"ping")
    assert recorder.drops == []


def test_errors_past_the_rate_limit_are_decided_not_sent():
    stack, recorder, eth0, cni0 = namespace()
    for _ in range(7):  # a burst of 6, at one instant
        stack.receive(to(cni0, udp_packet("10.244.1.5", "192.168.50.2", ttl=1)), cni0, TAG)
    assert len(cni0.sent) == 6 and len(recorder.drops) == 7
    assert [(tag, why(d)) for tag, d in recorder.decisions] == [
        (TAG, (Why.ICMP_RATE_LIMITED, icmp.TIME_EXCEEDED, 0))
    ]


def test_what_the_stack_sends_is_seen_by_the_device_observer_not_the_stack():
    stack, recorder, eth0, _ = namespace()
    eth0.observer = Seen()  # a Port keeps frames itself; its observer is the device's own
    stack.send_udp(None, ip("192.168.50.2"), 40000, 5000, b"x", TAG, note="udp send 1/1")
    packet, note = sent_packet(eth0)
    assert note == "udp send 1/1" and packet[IP_SRC] == ip("192.168.50.1")
    assert recorder.drops == recorder.decisions == []
    assert eth0.mac == MAC_NODE


def test_a_socket_with_no_route_is_told_network_unreachable():
    stack, recorder, eth0, _ = namespace(default=False)
    stack.send_udp(None, ip("8.8.8.8"), 40000, 53, b"x", TAG)
    assert [why(d) for _, _, d in recorder.drops] == [(Why.UNREACHABLE, ip("8.8.8.8"))]
    assert eth0.sent == []
