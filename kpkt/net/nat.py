"""NAT's building blocks: flows, flow keys, packet rewriting, and masquerade policies.

A masquerade policy is a CNI's chain of source-NAT rules (first match wins), as a CNI plugin
(`kpkt/cni/`) states it: a match either masquerades to the egress device's address with
`--random-fully` (a random port, or a random ICMP echo id) or returns. `netfilter.py` holds the
policies in POSTROUTING; `conntrack.py` applies them to each new connection.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Network

from kpkt.wire import icmp
from kpkt.wire.icmp import ECHO_ID_AT, ICMP_CHECKSUM_AT, ICMP_HEAD
from kpkt.wire.ipv4 import (
    CHECKSUM,
    IP_ADDRS,
    IP_ADDRS_PORTS,
    IP_DST,
    IP_HEADER_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    VERSION_IHL_NO_OPTIONS,
    checksum,
    l4_checksum,
)
from kpkt.wire.tcp import TCP_CHECKSUM_AT
from kpkt.wire.udp import DPORT_AT, PORTS, SPORT_AT, UDP_CHECKSUM_AT

# (protocol, source, source port or echo id, destination, destination port or echo id)
Flow = tuple[int, bytes, int, bytes, int]
MULTICAST = IPv4Network("224.0.0.0/4")
_PORTED = (PROTO_UDP, PROTO_TCP)
_CHECKSUM_AT = {
    PROTO_UDP: UDP_CHECKSUM_AT,
    PROTO_TCP: TCP_CHECKSUM_AT,
    PROTO_ICMP: ICMP_CHECKSUM_AT,
}


@dataclass(frozen=True, slots=True)
class MasqRule:
    """One masquerade rule: source and destination matches (None: any), negations, and
    whether a match masquerades (True) or returns (False)."""

    src: IPv4Network | None
    dst: IPv4Network | None
    masquerade: bool
    not_src: bool = False
    not_dst: bool = False
    # the matches as integers (network address, netmask), made once: every new connection
    # leaving a node meets the rules
    _src_bits: tuple[int, int] | None = dataclasses.field(init=False, repr=False, compare=False)
    _dst_bits: tuple[int, int] | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_src_bits", _bits(self.src))
        object.__setattr__(self, "_dst_bits", _bits(self.dst))

    def matches(self, src: int, dst: int) -> bool:
        """Whether addresses `src` and `dst` (as integers) match, as `address in network`."""
        return _match(self._src_bits, src, self.not_src) and _match(
            self._dst_bits, dst, self.not_dst
        )


def _bits(network: IPv4Network | None) -> tuple[int, int] | None:
    return None if network is None else (int(network.network_address), int(network.netmask))


def _match(bits: tuple[int, int] | None, address: int, negate: bool) -> bool:
    return bits is None or ((address & bits[1] == bits[0]) != negate)


@dataclass(frozen=True, slots=True)
class MasqPolicy:
    """A CNI's masquerade rules in order, and who installs them (named in the NAT note)."""

    by: str
    rules: tuple[MasqRule, ...]

    def masquerades(self, src: int, dst: int) -> bool:
        """Whether the first rule that matches addresses `src` and `dst` (as integers), if one
        does, masquerades."""
        for rule in self.rules:
            if rule.matches(src, dst):
                return rule.masquerade
        return False


FlowKey = tuple[int, bytes]


def flow_key(packet: bytes) -> FlowKey | None:
    """`flow_of` as a dict key: the protocol, and the addresses then ports (or the echo id
    twice) as one bytes value, which for the usual 20-byte header is a single slice."""
    proto = packet[PROTO]
    if proto in _PORTED:
        if packet[0] == VERSION_IHL_NO_OPTIONS:  # addresses and ports are contiguous
            return proto, packet[IP_ADDRS_PORTS]
        ihl = IP_HEADER_LEN[packet[0]]
        return proto, packet[IP_ADDRS] + packet[ihl : ihl + PORTS.size]
    if proto == PROTO_ICMP:
        ihl = IP_HEADER_LEN[packet[0]]
        if packet[ihl] in (icmp.ECHO_REQUEST, icmp.ECHO_REPLY):
            at = ihl + ECHO_ID_AT
            return proto, packet[IP_ADDRS] + packet[at : at + 2] * 2
    return None


def key_of(flow: Flow) -> FlowKey:
    proto, src, sport, dst, dport = flow
    return proto, src + dst + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


def flow_of(packet: bytes) -> Flow | None:
    """The flow of a UDP/TCP packet or an ICMP echo (also one quoted, cut short, in an ICMP
    error); None for anything else."""
    ihl = IP_HEADER_LEN[packet[0]]
    proto = packet[PROTO]
    if len(packet) < ihl + 8:  # the 8 bytes an ICMP error quotes at least
        return None
    if proto in (PROTO_UDP, PROTO_TCP):
        sport, dport = PORTS.unpack_from(packet, ihl)
        return proto, packet[IP_SRC], sport, packet[IP_DST], dport
    if proto == PROTO_ICMP and packet[ihl] in (icmp.ECHO_REQUEST, icmp.ECHO_REPLY):
        ident = ICMP_HEAD.unpack_from(packet, ihl)[3]
        return proto, packet[IP_SRC], ident, packet[IP_DST], ident
    return None


def rewrite(
    packet: bytes,
    *,
    src: tuple[bytes, int | None] | None = None,
    dst: tuple[bytes, int | None] | None = None,
    partial: bool = False,
) -> bytes:
    """The packet with its source or destination address and port (ICMP: echo id) replaced,
    and every checksum redone. The transport checksum of a `partial` packet (quoted, cut short,
    in an ICMP error) covers bytes that are no longer there, so it is adjusted for what changed
    (RFC 1624), as netfilter's NAT does."""
    ihl = IP_HEADER_LEN[packet[0]]
    header = bytearray(packet[:ihl])
    body = bytearray(packet[ihl:])
    proto = header[PROTO]
    before = bytes(header[IP_ADDRS]) + bytes(body[0:8])
    for address, field, port_at in ((src, IP_SRC, SPORT_AT), (dst, IP_DST, DPORT_AT)):
        if address is None:
            continue
        header[field] = address[0]
        if address[1] is None:
            continue
        at = ECHO_ID_AT if proto == PROTO_ICMP else port_at
        body[at : at + 2] = address[1].to_bytes(2, "big")
    header[CHECKSUM] = b"\x00\x00"
    header[CHECKSUM] = checksum(bytes(header)).to_bytes(2, "big")
    if not partial:
        _redo_transport_checksum(header, body, proto)
    else:
        _adjust_transport_checksum(before, bytes(header[IP_ADDRS]) + bytes(body[0:8]), body, proto)
    return bytes(header + body)


def _adjust_transport_checksum(before: bytes, after: bytes, body: bytearray, proto: int) -> None:
    """Fold the changed addresses and ports into the existing checksum (a UDP checksum of 0,
    meaning none, stays 0)."""
    at = _CHECKSUM_AT.get(proto)
    if at is None or len(body) < at + 2:
        return
    old = int.from_bytes(body[at : at + 2], "big")
    if proto == PROTO_UDP and old == 0:
        return
    # `before` and `after` are the addresses (8 bytes) then the first 8 bytes of the transport
    # header: UDP and TCP cover the addresses (pseudo-header) and ports; ICMP only its own id
    words = range(0, 12, 2) if proto != PROTO_ICMP else range(12, 14)
    total = ~old & 0xFFFF
    for i in words:
        total += (~int.from_bytes(before[i : i + 2], "big") & 0xFFFF) + int.from_bytes(
            after[i : i + 2], "big"
        )
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    value = ~total & 0xFFFF
    if proto == PROTO_UDP and value == 0:
        value = 0xFFFF
    body[at : at + 2] = value.to_bytes(2, "big")


def _redo_transport_checksum(header: bytearray, body: bytearray, proto: int) -> None:
    at = _CHECKSUM_AT.get(proto)
    if at is None:
        return
    body[at : at + 2] = b"\x00\x00"
    if proto == PROTO_ICMP:
        value = checksum(bytes(body))
    else:
        value = l4_checksum(bytes(header[IP_SRC]), bytes(header[IP_DST]), proto, bytes(body))
    body[at : at + 2] = value.to_bytes(2, "big")
