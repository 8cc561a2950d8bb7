"""ICMP as Linux sends it: the error rate limit, the TOS of errors, iputils ping's payload.

The messages themselves (types, codes, builders) are in `kpkt.wire.icmp`."""

from __future__ import annotations

import functools
import struct

# icmp_send(): errors are sent with IPTOS_PREC_INTERNETCONTROL
TOS_INTERNETCONTROL = 0xC0

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


def ping_payload(t_ns: int, size: int) -> bytes:
    """iputils ping's data: a struct timeval (64-bit seconds and microseconds, little-endian)
    when it fits, over ping's fill pattern (byte i is i & 0xff)."""
    pattern = _fill(size)
    if size < 16:
        return pattern
    return _TIMEVAL.pack(t_ns // 1_000_000_000, (t_ns // 1000) % 1_000_000) + pattern[16:]


_TIMEVAL = struct.Struct("<qq")


@functools.lru_cache(maxsize=16)
def _fill(size: int) -> bytes:
    """Ping's fill pattern of `size` bytes, made once per size (every ping of a run sends it)."""
    return bytes(i & 0xFF for i in range(size))
