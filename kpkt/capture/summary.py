"""One readable line per frame, from the bytes: for hop tables, traces and golden renderings.

MAC addresses are shown by the interface that owns them when a name map is given
(`n1-pod-a.default/eth0`), so a table reads like the path it describes.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.wire import icmp
from kpkt.wire.arp import arp_fields
from kpkt.wire.ethernet import ETH_LEN, ETH_P_ARP, ETH_P_IP, mac_str
from kpkt.wire.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from kpkt.wire.tcp import ACK, flag_text


def summarize(
    frame: bytes,
    names: dict[bytes, str] | None = None,
    vxlan_ports: frozenset[int] = frozenset({8472, 4789}),
) -> str:
    """`eth <src> > <dst> | <network layer>` for an Ethernet frame."""
    names = names or {}
    if len(frame) < ETH_LEN:
        return f"malformed frame ({len(frame)} bytes)"
    head = f"{_mac(frame[6:12], names)} > {_mac(frame[0:6], names)}"
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype == ETH_P_ARP:
        return f"{head} | {_arp(frame)}"
    if ethertype == ETH_P_IP:
        return f"{head} | {_ipv4(frame[ETH_LEN:], names, vxlan_ports)}"
    return f"{head} | ethertype 0x{ethertype:04x} ({len(frame)} bytes)"


def _mac(mac: bytes, names: dict[bytes, str]) -> str:
    if mac == b"\xff" * 6:
        return "broadcast"
    return names.get(mac) or mac_str(mac)


def _arp(frame: bytes) -> str:
    op, sha, spa, _tha, tpa = arp_fields(frame)
    if op == 1:
        return f"ARP who-has {IPv4Address(tpa)} tell {IPv4Address(spa)}"
    if op == 2:
        return f"ARP {IPv4Address(spa)} is-at {mac_str(sha)}"
    return f"ARP op {op}"


def _ipv4(packet: bytes, names: dict[bytes, str], vxlan_ports: frozenset[int]) -> str:
    ihl = (packet[0] & 0x0F) * 4
    src, dst = IPv4Address(packet[12:16]), IPv4Address(packet[16:20])
    flags = " DF" if packet[6] & 0x40 else ""
    tos = f" tos 0x{packet[1]:02x}" if packet[1] else ""
    ip = f"{src} > {dst} ttl {packet[8]}{flags}{tos}"
    body = packet[ihl:]
    proto = packet[9]
    if proto == PROTO_UDP and len(body) >= 8:
        sport, dport = (body[0] << 8) | body[1], (body[2] << 8) | body[3]
        if dport in vxlan_ports and len(body) >= 16:
            vni = int.from_bytes(body[12:15], "big")
            inner = summarize(body[16:], names, vxlan_ports)
            return f"{ip} UDP {sport} > {dport} VXLAN vni {vni} [{inner}]"
        return f"{ip} UDP {sport} > {dport} len {len(body) - 8}"
    if proto == PROTO_ICMP and len(body) >= 8:
        kind = icmp.describe(body[0], body[1])
        if body[0] in (icmp.ECHO_REQUEST, icmp.ECHO_REPLY):
            ident, seq = (body[4] << 8) | body[5], (body[6] << 8) | body[7]
            return f"{ip} ICMP {kind} id {ident} seq {seq}"
        return f"{ip} ICMP {kind}"
    if proto == PROTO_TCP and len(body) >= 20:
        sport, dport = (body[0] << 8) | body[1], (body[2] << 8) | body[3]
        seq, ack = int.from_bytes(body[4:8], "big"), int.from_bytes(body[8:12], "big")
        length = len(body) - (body[12] >> 4) * 4
        flags = flag_text(body[13])
        acked = f" ack {ack}" if body[13] & ACK else ""
        return f"{ip} TCP {sport} > {dport} [{flags}] seq {seq}{acked} len {length}"
    return f"{ip} proto {proto}"
