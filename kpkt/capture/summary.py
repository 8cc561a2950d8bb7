"""One readable line per frame, from the bytes: for hop tables, traces and golden renderings.

MAC addresses are shown by the interface that owns them when a name map is given
(`n1-pod-a.default/eth0`), so a table reads like the path it describes; `interface_names` makes
that map from an output folder's manifest.json.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.wire.arp import arp_summary
from kpkt.wire.ethernet import (
    BROADCAST,
    ETH_DST,
    ETH_LEN,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_SRC,
    ethertype,
    mac_bytes,
    mac_str,
)
from kpkt.wire.icmp import ICMP_LEN, icmp_summary
from kpkt.wire.ipv4 import (
    IP_DST,
    IP_HEADER_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    TOS,
    TTL,
    ip_df,
)
from kpkt.wire.tcp import TCP_LEN, tcp_summary
from kpkt.wire.udp import PORTS, UDP_LEN, udp_summary
from kpkt.wire.vxlan import LINUX_PORT, PRE_IANA_PORT, VNI, VXLAN_LEN


def summarize(
    frame: bytes,
    names: dict[bytes, str] | None = None,
    vxlan_ports: frozenset[int] = frozenset({PRE_IANA_PORT, LINUX_PORT}),
) -> str:
    """`eth <src> > <dst> | <network layer>` for an Ethernet frame."""
    names = names or {}
    if len(frame) < ETH_LEN:
        return f"malformed frame ({len(frame)} bytes)"
    head = f"{_mac(frame[ETH_SRC], names)} > {_mac(frame[ETH_DST], names)}"
    kind = ethertype(frame)
    if kind == ETH_P_ARP:
        return f"{head} | {arp_summary(frame)}"
    if kind == ETH_P_IP:
        return f"{head} | {_ipv4(frame[ETH_LEN:], names, vxlan_ports)}"
    return f"{head} | ethertype 0x{kind:04x} ({len(frame)} bytes)"


def interface_names(manifest: dict) -> dict[bytes, str]:
    """MAC -> `owner/interface` for every capture a manifest.json lists (loopbacks have none)."""
    return {
        mac_bytes(c["mac"]): f"{c['owner']}/{c['interface']}"
        for c in manifest["captures"]
        if c["mac"] and c["kind"] != "loopback"
    }


def _mac(mac: bytes, names: dict[bytes, str]) -> str:
    if mac == BROADCAST:
        return "broadcast"
    return names.get(mac) or mac_str(mac)


def _ipv4(packet: bytes, names: dict[bytes, str], vxlan_ports: frozenset[int]) -> str:
    flags = " DF" if ip_df(packet) else ""
    tos = f" tos 0x{packet[TOS]:02x}" if packet[TOS] else ""
    ip = f"{IPv4Address(packet[IP_SRC])} > {IPv4Address(packet[IP_DST])} ttl {packet[TTL]}"
    ip += flags + tos
    body = packet[IP_HEADER_LEN[packet[0]] :]
    proto = packet[PROTO]
    if proto == PROTO_UDP and len(body) >= UDP_LEN:
        sport, dport = PORTS.unpack_from(body)
        if dport in vxlan_ports and len(body) >= UDP_LEN + VXLAN_LEN:
            vni = int.from_bytes(body[UDP_LEN:][VNI], "big")
            inner = summarize(body[UDP_LEN + VXLAN_LEN :], names, vxlan_ports)
            return f"{ip} UDP {sport} > {dport} VXLAN vni {vni} [{inner}]"
        return f"{ip} {udp_summary(body)}"
    if proto == PROTO_ICMP and len(body) >= ICMP_LEN:
        return f"{ip} {icmp_summary(body)}"
    if proto == PROTO_TCP and len(body) >= TCP_LEN:
        return f"{ip} {tcp_summary(body)}"
    return f"{ip} proto {proto}"
