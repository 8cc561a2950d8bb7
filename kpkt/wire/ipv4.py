"""IPv4 headers: field offsets, the Internet checksum, a builder and the edits a router makes.

Offsets are from the start of the IP header; the header length comes from the packet
(`IP_HEADER_LEN[packet[0]]`: IP options are allowed).
"""

from __future__ import annotations

import struct

IP_MIN_LEN = 20
VERSION_IHL_NO_OPTIONS = 0x45  # the first byte of an IPv4 header without options
TOS = 1
FLAGS = 6  # the byte holding DF and MF
DF = 0x40  # in packet[FLAGS]
TTL = 8
PROTO = 9
CHECKSUM = slice(10, 12)
IP_SRC = slice(12, 16)
IP_DST = slice(16, 20)
IP_ADDRS = slice(12, 20)  # source and destination together
# the addresses and then the transport ports, contiguous in a header without options
IP_ADDRS_PORTS = slice(12, 24)
# the header length in bytes for each value of the first byte (version and IHL): a table, so
# reading it is one index on the hot path, not arithmetic
IP_HEADER_LEN = tuple((first & 0x0F) * 4 for first in range(256))

PROTO_ICMP = 1
PROTO_IPIP = 4  # IPv4 in IPv4 (RFC 2003): the payload is an IPv4 packet
PROTO_TCP = 6
PROTO_UDP = 17

_H = struct.Struct("!H")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`.

    The ones' complement sum of the 16-bit words is the data read as one big-endian number,
    modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), except that a nonzero sum folds to 0xFFFF, never
    to 0: one big-integer remainder in C instead of a loop over the words."""
    if len(data) & 1:
        data = data + b"\x00"  # not +=: a bytearray argument is the caller's
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and any(data):
        total = 0xFFFF
    return ~total & 0xFFFF


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """The UDP/TCP checksum of `segment` (its checksum field zeroed) with the IPv4 pseudo-header.

    A UDP result of 0 is sent as 0xffff (RFC 768)."""
    pseudo = src + dst + bytes((0, proto)) + _H.pack(len(segment))
    value = checksum(pseudo + segment)
    return 0xFFFF if value == 0 and proto == PROTO_UDP else value


def ipv4_header_checksum(header: bytes) -> int:
    return checksum(header[:10] + b"\x00\x00" + header[12:])


def checksum_error(packet: bytes, local: bool) -> str | None:
    """What a receiver's checksum check finds wrong with `packet`, or None: the header
    checksum (ip_rcv), and for a packet delivered here (`local`) the UDP (a zero checksum is
    none), TCP or ICMP checksum over what the header's lengths say the packet holds."""
    ihl = IP_HEADER_LEN[packet[0]]
    if len(packet) < IP_MIN_LEN or ihl < IP_MIN_LEN or checksum(packet[:ihl]) != 0:
        return "ip header checksum"
    if not local:
        return None
    proto = packet[PROTO]
    segment = packet[ihl : _H.unpack_from(packet, 2)[0]]
    pseudo = packet[IP_SRC] + packet[IP_DST] + bytes((0, proto)) + _H.pack(len(segment))
    if proto == PROTO_TCP and checksum(pseudo + segment) != 0:
        return "tcp checksum"
    if proto == PROTO_UDP and segment[6:8] != b"\x00\x00" and checksum(pseudo + segment) != 0:
        return "udp checksum"
    if proto == PROTO_ICMP and checksum(segment) != 0:
        return "icmp checksum"
    return None


def ipv4_packet(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes,
    *,
    ident: int,
    ttl: int = 64,
    df: bool = True,
    tos: int = 0,
) -> bytes:
    """An IPv4 header (no options) followed by `payload`, with a valid header checksum."""
    header = _IPV4.pack(
        VERSION_IHL_NO_OPTIONS,
        tos,
        IP_MIN_LEN + len(payload),
        ident,
        0x4000 if df else 0,
        ttl,
        proto,
        0,
        src,
        dst,
    )
    csum = checksum(header)
    return header[:10] + _H.pack(csum) + header[12:] + payload


def ip_df(packet: bytes) -> bool:
    return bool(packet[FLAGS] & DF)


def decrement_ttl(packet: bytes) -> bytes:
    """The packet with TTL - 1 and the header checksum updated incrementally (RFC 1624),
    as `ip_decrease_ttl` does."""
    edited = bytearray(packet)
    edited[TTL] -= 1
    csum = ((packet[10] << 8) | packet[11]) + 0x0100
    _H.pack_into(edited, 10, (csum + (csum >= 0xFFFF)) & 0xFFFF)  # the kernel's fold: 0xffff is 0
    return bytes(edited)


def with_ip_id(packet: bytes, ident: int) -> bytes:
    """The packet with a new IP ID and the header checksum redone."""
    header = packet[:4] + _H.pack(ident) + packet[6:10] + b"\x00\x00" + packet[12:20]
    return header[:10] + _H.pack(checksum(header)) + header[12:] + packet[20:]
