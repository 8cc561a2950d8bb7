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

# option kinds
OPT_END, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_PERM, OPT_SACK, OPT_TIMESTAMP = 0, 1, 2, 3, 4, 5, 8
DEFAULT_MSS = 536  # when a SYN carries no MSS option (RFC 9293)

_H = struct.Struct("!H")
_MSS = struct.Struct("!BBH")
_TIMESTAMP = struct.Struct("!BBII")
_WSCALE = struct.Struct("!BBB")
_EDGES = struct.Struct("!II")
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


def syn_options(mss: int, ts_val: int, ts_ecr: int, wscale: int) -> bytes:
    """A SYN's options in Linux's order: MSS, SACK permitted, timestamps, NOP, window scale."""
    return (
        _MSS.pack(OPT_MSS, 4, mss)
        + bytes((OPT_SACK_PERM, 2))
        + _TIMESTAMP.pack(OPT_TIMESTAMP, 10, ts_val, ts_ecr)
        + bytes((OPT_NOP,))
        + _WSCALE.pack(OPT_WSCALE, 3, wscale)
    )


def timestamp_options(ts_val: int, ts_ecr: int) -> bytes:
    """NOP NOP timestamps: the options of every segment after the SYNs."""
    return bytes((OPT_NOP, OPT_NOP)) + _TIMESTAMP.pack(OPT_TIMESTAMP, 10, ts_val, ts_ecr)


def sack_option(blocks: list[tuple[int, int]]) -> bytes:
    """NOP NOP SACK with `blocks` (left and right edges), what Linux appends to the timestamps
    of an ACK while it holds data out of order (RFC 2018) or saw a duplicate (D-SACK)."""
    edges = b"".join(_EDGES.pack(left % 2**32, right % 2**32) for left, right in blocks)
    return bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + len(edges))) + edges


def options_of(options: bytes):
    """(kind, value) for each option up to the end of the list or a malformed one."""
    at = 0
    while at < len(options):
        kind = options[at]
        if kind == OPT_END:
            return
        if kind == OPT_NOP:
            at += 1
            continue
        length = options[at + 1] if at + 1 < len(options) else 0
        if length < 2:
            return
        yield kind, options[at + 2 : at + length]
        at += length


def mss_of(options: bytes) -> int:
    found = (int.from_bytes(v, "big") for k, v in options_of(options) if k == OPT_MSS)
    return next(found, DEFAULT_MSS)


def ts_val_of(options: bytes, default: int) -> int:
    found = (int.from_bytes(v[:4], "big") for k, v in options_of(options) if k == OPT_TIMESTAMP)
    return next(found, default)


def tcp_summary(segment: bytes) -> str:
    """`TCP 40000 > 80 [SA] seq 0 ack 1 len 0`: the header's fields and the payload length."""
    sport, dport, seq, ack, offset, flags, _ = TCP_HEAD.unpack_from(segment)
    acked = f" ack {ack}" if flags & ACK else ""
    length = len(segment) - TCP_HEADER_LEN[offset]
    return f"TCP {sport} > {dport} [{flag_text(flags)}] seq {seq}{acked} len {length}"
