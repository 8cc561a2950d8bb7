"""TCP: flags, the fixed header, a builder with the checksum complete, a summary."""

from __future__ import annotations

import struct

from kpkt.wire.ipv4 import PROTO_TCP, l4_checksum

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
FLAG_NAMES = {FIN: "F", SYN: "S", RST: "R", PSH: "P", ACK: "A"}
TCP_LEN = 20  # the header without options
TCP_CHECKSUM_AT = 16
# the header length in bytes for each value of the data offset byte (high nibble, in words)
TCP_HEADER_LEN = tuple((offset >> 4) * 4 for offset in range(256))
# source port, destination port, seq, ack, data offset (high nibble), flags, window
TCP_HEAD = struct.Struct("!HHIIBBH")

_H = struct.Struct("!H")
_TCP = struct.Struct("!HHIIBBHHH")


def flag_text(flags: int) -> str:
    return "".join(name for bit, name in FLAG_NAMES.items() if flags & bit) or "."


def tcp_segment(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    """A TCP header (options padded to 32 bits by the caller) and payload, checksum complete."""
    offset = (TCP_LEN + len(options)) // 4
    header = _TCP.pack(sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    segment = header + payload
    csum = l4_checksum(src, dst, PROTO_TCP, segment)
    return segment[:16] + _H.pack(csum) + segment[18:]


def tcp_summary(segment: bytes) -> str:
    """`TCP 40000 > 80 [SA] seq 0 ack 1 len 0`: the header's fields and the payload length."""
    sport, dport, seq, ack, offset, flags, _ = TCP_HEAD.unpack_from(segment)
    acked = f" ack {ack}" if flags & ACK else ""
    length = len(segment) - TCP_HEADER_LEN[offset]
    return f"TCP {sport} > {dport} [{flag_text(flags)}] seq {seq}{acked} len {length}"
