"""One-line frame summaries: ARP, UDP, VXLAN with the inner frame, ICMP, and MAC names."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from kpkt.capture.summary import summarize
from kpkt.net.icmp import ping_payload
from kpkt.wire import icmp
from kpkt.wire.arp import ARP_REPLY, ARP_REQUEST, arp_frame
from kpkt.wire.ethernet import BROADCAST, ETH_P_IP, ZERO_MAC, eth_header, mac_bytes
from kpkt.wire.ipv4 import PROTO_ICMP, PROTO_UDP, ipv4_packet
from kpkt.wire.tcp import tcp_segment
from kpkt.wire.udp import udp_segment


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


POD_A = mac_bytes("0a:58:0a:f4:01:02")
POD_B = mac_bytes("0a:58:0a:f4:01:03")
CNI0 = mac_bytes("0a:58:0a:f4:01:01")
N1_VTEP = mac_bytes("6e:4a:1c:00:00:01")
N2_VTEP = mac_bytes("6e:4a:1c:00:00:02")
N1_ETH0 = mac_bytes("02:42:ac:12:00:02")
N2_ETH0 = mac_bytes("02:42:ac:12:00:03")

NAMES = {
    POD_A: "n1-pod-a.default/eth0",
    POD_B: "n1-pod-b.default/eth0",
    CNI0: "node1/cni0",
    N1_VTEP: "node1/flannel.1",
    N2_VTEP: "node2/flannel.1",
    N1_ETH0: "node1/eth0",
    N2_ETH0: "node2/eth0",
}


def udp_frame(dst_mac, src_mac, src, dst, sport, dport, payload, *, ttl=64, df=True, ident=1):
    segment = udp_segment(ip(src), ip(dst), sport, dport, payload)
    packet = ipv4_packet(ip(src), ip(dst), PROTO_UDP, segment, ident=ident, ttl=ttl, df=df)
    return eth_header(dst_mac, src_mac, ETH_P_IP) + packet


def test_arp_request():
    frame = arp_frame(ARP_REQUEST, BROADCAST, POD_A, ip("10.244.1.2"), ZERO_MAC, ip("10.244.1.1"))
    assert summarize(frame) == (
        "0a:58:0a:f4:01:02 > broadcast | ARP who-has 10.244.1.1 tell 10.244.1.2"
    )


def test_arp_request_with_names():
    frame = arp_frame(ARP_REQUEST, BROADCAST, POD_A, ip("10.244.1.2"), ZERO_MAC, ip("10.244.1.1"))
    assert summarize(frame, NAMES) == (
        "n1-pod-a.default/eth0 > broadcast | ARP who-has 10.244.1.1 tell 10.244.1.2"
    )


def test_broadcast_wins_over_a_name_for_ff():
    frame = arp_frame(ARP_REQUEST, BROADCAST, POD_A, ip("10.244.1.2"), ZERO_MAC, ip("10.244.1.1"))
    names = dict(NAMES)
    names[BROADCAST] = "everyone"
    assert summarize(frame, names).startswith("n1-pod-a.default/eth0 > broadcast |")


def test_arp_reply():
    frame = arp_frame(ARP_REPLY, POD_A, CNI0, ip("10.244.1.1"), POD_A, ip("10.244.1.2"))
    assert summarize(frame, NAMES) == (
        "node1/cni0 > n1-pod-a.default/eth0 | ARP 10.244.1.1 is-at 0a:58:0a:f4:01:01"
    )


def test_unicast_arp_probe_is_a_who_has():
    frame = arp_frame(ARP_REQUEST, POD_A, CNI0, ip("10.244.1.1"), ZERO_MAC, ip("10.244.1.2"))
    assert summarize(frame, NAMES) == (
        "node1/cni0 > n1-pod-a.default/eth0 | ARP who-has 10.244.1.2 tell 10.244.1.1"
    )


def test_unknown_mac_falls_back_to_colon_hex():
    frame = arp_frame(ARP_REPLY, POD_A, CNI0, ip("10.244.1.1"), POD_A, ip("10.244.1.2"))
    assert summarize(frame, {CNI0: "node1/cni0"}).startswith("node1/cni0 > 0a:58:0a:f4:01:02 |")


def test_udp_datagram():
    frame = udp_frame(POD_B, POD_A, "10.244.1.2", "10.244.1.3", 40000, 5000, b"kref-udp-same-node")
    assert summarize(frame, NAMES) == (
        "n1-pod-a.default/eth0 > n1-pod-b.default/eth0 | "
        "10.244.1.2 > 10.244.1.3 ttl 64 DF UDP 40000 > 5000 len 18"
    )


def test_udp_from_scapy_no_df():
    frame = bytes(
        Ether(src="0a:58:0a:f4:01:02", dst="0a:58:0a:f4:01:03")
        / IP(src="10.244.1.2", dst="10.244.1.3", ttl=62)
        / UDP(sport=53, dport=33000)
        / b"abc"
    )
    assert summarize(frame) == (
        "0a:58:0a:f4:01:02 > 0a:58:0a:f4:01:03 | "
        "10.244.1.2 > 10.244.1.3 ttl 62 UDP 53 > 33000 len 3"
    )


def test_vxlan_encapsulated_frame_shows_the_inner_frame():
    inner = udp_frame(
        N2_VTEP, N1_VTEP, "10.244.1.2", "10.244.2.2", 40000, 5000, b"kref-udp-cross-node", ttl=63
    )
    vxlan = struct.pack("!II", 0x08 << 24, 1 << 8) + inner
    outer = udp_frame(N2_ETH0, N1_ETH0, "172.18.0.2", "172.18.0.3", 51969, 8472, vxlan, df=False)
    assert summarize(outer, NAMES) == (
        "node1/eth0 > node2/eth0 | 172.18.0.2 > 172.18.0.3 ttl 64 UDP 51969 > 8472 VXLAN vni 1 "
        "[node1/flannel.1 > node2/flannel.1 | "
        "10.244.1.2 > 10.244.2.2 ttl 63 DF UDP 40000 > 5000 len 19]"
    )


def test_vxlan_built_by_scapy_on_iana_port():
    outer = bytes(
        Ether(src="02:42:ac:12:00:02", dst="02:42:ac:12:00:03")
        / IP(src="172.18.0.2", dst="172.18.0.3")
        / UDP(sport=50066, dport=4789)
        / VXLAN(vni=4096, flags=0x08)
        / Ether(src="6e:4a:1c:00:00:01", dst="6e:4a:1c:00:00:02")
        / IP(src="10.244.1.2", dst="10.244.2.2", ttl=63)
        / ICMP(type=8, id=0x1234, seq=1)
    )
    assert summarize(outer, NAMES) == (
        "node1/eth0 > node2/eth0 | 172.18.0.2 > 172.18.0.3 ttl 64 UDP 50066 > 4789 VXLAN "
        "vni 4096 [node1/flannel.1 > node2/flannel.1 | "
        "10.244.1.2 > 10.244.2.2 ttl 63 ICMP echo request id 4660 seq 1]"
    )


def test_udp_to_8472_is_plain_udp_when_not_a_vxlan_port():
    frame = udp_frame(POD_B, POD_A, "10.244.1.2", "10.244.1.3", 40000, 8472, bytes(30))
    assert summarize(frame, NAMES, vxlan_ports=frozenset()).endswith("UDP 40000 > 8472 len 30")


def test_icmp_echo_request_and_reply():
    request = eth_header(CNI0, POD_A, ETH_P_IP) + ipv4_packet(
        ip("10.244.1.2"),
        ip("10.244.2.2"),
        PROTO_ICMP,
        icmp.echo(icmp.ECHO_REQUEST, 4321, 1, ping_payload(0, 56)),
        ident=5,
    )
    assert summarize(request, NAMES) == (
        "n1-pod-a.default/eth0 > node1/cni0 | "
        "10.244.1.2 > 10.244.2.2 ttl 64 DF ICMP echo request id 4321 seq 1"
    )
    reply = eth_header(POD_A, CNI0, ETH_P_IP) + ipv4_packet(
        ip("10.244.2.2"),
        ip("10.244.1.2"),
        PROTO_ICMP,
        icmp.echo(icmp.ECHO_REPLY, 4321, 1, ping_payload(0, 56)),
        ident=6,
        ttl=62,
        df=False,
    )
    assert summarize(reply, NAMES) == (
        "node1/cni0 > n1-pod-a.default/eth0 | "
        "10.244.2.2 > 10.244.1.2 ttl 62 ICMP echo reply id 4321 seq 1"
    )


def test_icmp_error_shows_kind_and_tos():
    quoted = ipv4_packet(ip("10.244.1.2"), ip("10.244.2.9"), PROTO_UDP, bytes(8), ident=1)
    message = icmp.error(icmp.DEST_UNREACH, icmp.PORT_UNREACH, quoted)
    packet = ipv4_packet(
        ip("10.244.2.9"), ip("10.244.1.2"), PROTO_ICMP, message, ident=2, df=False, tos=0xC0
    )
    frame = eth_header(POD_A, CNI0, ETH_P_IP) + packet
    assert summarize(frame, NAMES) == (
        "node1/cni0 > n1-pod-a.default/eth0 | "
        "10.244.2.9 > 10.244.1.2 ttl 64 tos 0xc0 ICMP port unreachable"
    )


def test_other_ethertypes_and_short_frames():
    ipv6 = eth_header(BROADCAST, POD_A, 0x86DD) + bytes(40)
    assert summarize(ipv6, NAMES) == (
        "n1-pod-a.default/eth0 > broadcast | ethertype 0x86dd (54 bytes)"
    )
    assert summarize(b"\x00" * 10) == "malformed frame (10 bytes)"


def test_tcp_and_other_protocols():
    segment = tcp_segment(
        ip("10.244.1.2"), ip("10.244.1.3"), 40080, 80, 7, 9, 0x18, 64, payload=b"GET /"
    )
    tcp = eth_header(POD_B, POD_A, ETH_P_IP) + ipv4_packet(
        ip("10.244.1.2"), ip("10.244.1.3"), 6, segment, ident=1
    )
    assert summarize(tcp).endswith(
        "| 10.244.1.2 > 10.244.1.3 ttl 64 DF TCP 40080 > 80 [PA] seq 7 ack 9 len 5"
    )
    gre = eth_header(POD_B, POD_A, ETH_P_IP) + ipv4_packet(
        ip("10.244.1.2"), ip("10.244.1.3"), 47, bytes(4), ident=1
    )
    assert summarize(gre).endswith("| 10.244.1.2 > 10.244.1.3 ttl 64 DF proto 47")


def test_raw_ip_and_ipip():
    from kpkt.capture.pcap import LINKTYPE_RAW
    from kpkt.wire.ipip import ipip_packet

    inner = udp_frame(N2_ETH0, N1_ETH0, "10.245.1.2", "10.245.2.2", 40000, 5000, b"x", ttl=63)
    inner = inner[14:]
    raw = summarize(inner, NAMES, link_type=LINKTYPE_RAW)
    assert raw == "raw ip | 10.245.1.2 > 10.245.2.2 ttl 63 DF UDP 40000 > 5000 len 1"
    outer = ipip_packet(ip("192.168.60.1"), ip("192.168.60.2"), inner, ident=3)
    frame = eth_header(N2_ETH0, N1_ETH0, ETH_P_IP) + outer
    assert summarize(frame, NAMES) == (
        "node1/eth0 > node2/eth0 | 192.168.60.1 > 192.168.60.2 ttl 63 DF IPIP "
        "[10.245.1.2 > 10.245.2.2 ttl 63 DF UDP 40000 > 5000 len 1]"
    )
    assert summarize(b"\x45" * 7, link_type=LINKTYPE_RAW) == "malformed raw ip packet (7 bytes)"


def test_a_mac_several_interfaces_share_names_none_of_them():
    from kpkt.capture.summary import owner_names

    cali = mac_bytes("ee:ee:ee:ee:ee:ee")
    owners = [(cali, "node1/calia"), (POD_A, "pod-a/eth0"), (cali, "node2/calib")]
    names = owner_names(owners)
    assert names == {POD_A: "pod-a/eth0"}
    frame = udp_frame(cali, POD_A, "10.245.1.2", "10.245.2.2", 1, 2, b"")
    assert summarize(frame, names).startswith("pod-a/eth0 > ee:ee:ee:ee:ee:ee | ")
