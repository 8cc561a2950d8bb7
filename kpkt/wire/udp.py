"""UDP: header offsets, a builder with the checksum complete, a summary."""

from __future__ import annotations

import struct

from kpkt.wire.ipv4 import PROTO_UDP, l4_checksum

UDP_LEN = 8  # the header
# the source and destination ports, the first four bytes of a UDP or TCP header:
# `sport, dport = PORTS.unpack_from(packet, ihl)`
PORTS = struct.Struct("!HH")
SPORT_AT, DPORT_AT = 0, 2
UDP_CHECKSUM_AT = 6

_H = struct.Struct("!H")
_UDP = struct.Struct("!HHHH")


def udp_header(sport: int, dport: int, length: int, csum: int = 0) -> bytes:
    return _UDP.pack(sport, dport, length, csum)


def udp_segment(
    src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, checksum: bool = True
) -> bytes:
    """A UDP header and payload with the checksum complete (what a NIC would send), or 0 (no
    checksum, which UDP over IPv4 allows) when `checksum` is False."""
    segment = _UDP.pack(sport, dport, UDP_LEN + len(payload), 0) + payload
    if not checksum:
        return segment
    return segment[:6] + _H.pack(l4_checksum(src, dst, PROTO_UDP, segment)) + segment[8:]


def udp_summary(segment: bytes) -> str:
    sport, dport = PORTS.unpack_from(segment)
    return f"UDP {sport} > {dport} len {len(segment) - UDP_LEN}"
