"""ICMP messages as Linux builds them: echo requests (iputils ping), echo replies and errors."""

from __future__ import annotations

import struct

from kpkt.net.frame import checksum

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
# icmp_send(): errors are sent with IPTOS_PREC_INTERNETCONTROL
TOS_INTERNETCONTROL = 0xC0

_HDR = struct.Struct("!BBHHH")

# net.ipv4.icmp_ratemask (0x1818: destination unreachable, source quench, time exceeded,
# parameter problem) and icmp_ratelimit (1000 ms); XRLIM_BURST_FACTOR
RATEMASK = 0x1818
RATELIMIT_NS = 1_000_000_000
BURST = 6


class RateLimit:
    """icmpv4_xrlim_allow(): a token bucket per destination host (inet_peer) for the ICMP types
    in the ratemask: a burst of 6, then one a second. Errors sent over lo are never limited
    (the caller skips those)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.peers: dict[bytes, tuple[int, int]] = {}  # address -> (tokens, last), in ns

    def allow(self, icmp_type: int, peer: bytes) -> bool:
        if not (1 << icmp_type) & RATEMASK:
            return True
        now = self.clock.now
        # a new inet_peer starts with rate_last 60 s in the past, so its bucket is full
        tokens, last = self.peers.get(peer, (0, now - 60 * RATELIMIT_NS))
        tokens = min(tokens + now - last, BURST * RATELIMIT_NS)
        allowed = tokens >= RATELIMIT_NS
        self.peers[peer] = (tokens - RATELIMIT_NS if allowed else tokens, now)
        return allowed


def _with_checksum(message: bytes) -> bytes:
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def echo(icmp_type: int, ident: int, seq: int, data: bytes) -> bytes:
    return _with_checksum(_HDR.pack(icmp_type, 0, 0, ident, seq) + data)


def ping_payload(t_ns: int, size: int) -> bytes:
    """iputils ping's data: a struct timeval (64-bit seconds and microseconds, little-endian)
    when it fits, over ping's fill pattern (byte i is i & 0xff)."""
    pattern = bytes(i & 0xFF for i in range(size))
    if size < 16:
        return pattern
    return struct.pack("<qq", t_ns // 1_000_000_000, (t_ns // 1000) % 1_000_000) + pattern[16:]


def error(icmp_type: int, code: int, quoted_packet: bytes, mtu: int = 0) -> bytes:
    """An ICMP error quoting the offending IP packet, truncated so the whole IP packet
    stays within 576 bytes."""
    quoted = quoted_packet[: MAX_ERROR_PACKET - 20 - 8]
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
