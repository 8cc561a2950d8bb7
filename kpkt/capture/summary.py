"""One readable line per frame, from the bytes: for hop tables, traces and golden renderings.

MAC addresses are shown by the interface that owns them when a name map is given
(`n1-pod-a.default/eth0`), so a table reads like the path it describes (`interface_names` makes
that map from an output folder's manifest.json); a MAC that several interfaces share (a CNI may
give every host-side veth one MAC) names none of them. A frame of a tunnel without a link layer
(LINKTYPE_RAW) is `raw ip | <network layer>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from kpkt.capture.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW
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
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    PROTO_IPIP,
    PROTO_TCP,
    PROTO_UDP,
    TOS,
    TTL,
    ip_df,
)
from kpkt.wire.tcp import TCP_LEN, tcp_summary
from kpkt.wire.udp import PORTS, UDP_LEN, udp_summary
from kpkt.wire.vxlan import LINUX_PORT, PRE_IANA_PORT, VNI, VXLAN_LEN


def owner_names(owners: Iterable[tuple[bytes, str]]) -> dict[bytes, str]:
    """MAC -> the one interface that owns it, from (MAC, interface name) pairs; a MAC owned by
    more than one interface is left out (its frames show the MAC itself)."""
    names: dict[bytes, str] = {}
    shared = set()
    for mac, name in owners:
        if names.setdefault(mac, name) != name:
            shared.add(mac)
    return {mac: name for mac, name in names.items() if mac not in shared}


def summarize(
    frame: bytes,
    names: dict[bytes, str] | None = None,
    vxlan_ports: frozenset[int] = frozenset({PRE_IANA_PORT, LINUX_PORT}),
    link_type: int = LINKTYPE_ETHERNET,
) -> str:
    """`<src> > <dst> | <network layer>` for an Ethernet frame, `raw ip | <network layer>` for
    a raw IP one."""
    names = names or {}
    if link_type == LINKTYPE_RAW:
        if len(frame) < IP_MIN_LEN:
            return f"malformed raw ip packet ({len(frame)} bytes)"
        return f"raw ip | {_ipv4(frame, names, vxlan_ports)}"
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
    """MAC -> `owner/interface` for the captures a manifest.json lists (loopbacks have none)."""
    return owner_names(
        (mac_bytes(c["mac"]), f"{c['owner']}/{c['interface']}")
        for c in manifest["captures"]
        if c["mac"] and c["kind"] != "loopback"
    )


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
    if proto == PROTO_IPIP and len(body) >= IP_MIN_LEN:
        return f"{ip} IPIP [{_ipv4(body, names, vxlan_ports)}]"
    if proto == PROTO_ICMP and len(body) >= ICMP_LEN:
        return f"{ip} {icmp_summary(body)}"
    if proto == PROTO_TCP and len(body) >= TCP_LEN:
        return f"{ip} {tcp_summary(body)}"
    return f"{ip} proto {proto}"
