"""ICMP messages: types and codes, echo and error builders, their names."""

from __future__ import annotations

import struct

from kpkt.wire.ipv4 import IP_HEADER_LEN, IP_MIN_LEN, checksum

ECHO_REPLY = 0
DEST_UNREACH = 3
ECHO_REQUEST = 8
TIME_EXCEEDED = 11

NET_UNREACH = 0
HOST_UNREACH = 1
PORT_UNREACH = 3
FRAG_NEEDED = 4

ERROR_TYPES = frozenset({DEST_UNREACH, TIME_EXCEEDED, 4, 5, 12})
# icmp_send(): the error quotes as much of the packet as fits in 576 bytes
MAX_ERROR_PACKET = 576
ICMP_LEN = 8  # type, code, checksum, and the rest of the header (echo id and seq, or unused/MTU)

# type, code, checksum, and for echo messages the identifier and sequence number
ICMP_HEAD = struct.Struct("!BBHHH")
ICMP_CHECKSUM_AT = 2
ECHO_ID_AT = 4


def _with_checksum(message: bytes) -> bytes:
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def echo(icmp_type: int, ident: int, seq: int, data: bytes) -> bytes:
    return _with_checksum(ICMP_HEAD.pack(icmp_type, 0, 0, ident, seq) + data)


def error(icmp_type: int, code: int, quoted_packet: bytes, mtu: int = 0) -> bytes:
    """An ICMP error quoting the offending IP packet, truncated so the whole IP packet
    stays within 576 bytes."""
    quoted = quoted_packet[: MAX_ERROR_PACKET - IP_MIN_LEN - ICMP_LEN]
    rest = struct.pack("!HH", 0, mtu) if code == FRAG_NEEDED else b"\x00\x00\x00\x00"
    return _with_checksum(struct.pack("!BBH", icmp_type, code, 0) + rest + quoted)


def describe(icmp_type: int, code: int) -> str:
    return {
        (ECHO_REPLY, 0): "echo reply",
        (ECHO_REQUEST, 0): "echo request",
        (DEST_UNREACH, NET_UNREACH): "net unreachable",
        (DEST_UNREACH, HOST_UNREACH): "host unreachable",
        (DEST_UNREACH, PORT_UNREACH): "port unreachable",
        (DEST_UNREACH, FRAG_NEEDED): "fragmentation needed",
        (TIME_EXCEEDED, 0): "time exceeded in transit",
    }.get((icmp_type, code), f"type {icmp_type} code {code}")


def describe_in(packet: bytes) -> str:
    """`describe` for the ICMP message an IPv4 packet carries."""
    ihl = IP_HEADER_LEN[packet[0]]
    return describe(packet[ihl], packet[ihl + 1])


def icmp_summary(message: bytes) -> str:
    """`ICMP echo request id 7 seq 1`, `ICMP port unreachable`."""
    icmp_type, code, _, ident, seq = ICMP_HEAD.unpack_from(message)
    kind = describe(icmp_type, code)
    if icmp_type in (ECHO_REQUEST, ECHO_REPLY):
        return f"ICMP {kind} id {ident} seq {seq}"
    return f"ICMP {kind}"
