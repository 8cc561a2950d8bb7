"""Seeded generators for the values a kernel picks at random: IP IDs, ports, ping ids.

Each network namespace has its own generator, derived from the topology's seed and the
namespace's name, so adding a pod does not change the values another pod draws.
"""

from __future__ import annotations

import hashlib
import random

# net.ipv4.ip_local_port_range, the range for ephemeral ports and for VXLAN source ports
LOCAL_PORT_MIN = 32768
LOCAL_PORT_MAX = 60999


def derived_random(seed: int, name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class NamespaceIds:
    """The random choices of one network namespace."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int, namespace: str):
        self._rng = derived_random(seed, f"netns/{namespace}")

    def ip_id(self) -> int:
        return self._rng.getrandbits(16)

    def ephemeral_port(self) -> int:
        return self._rng.randint(LOCAL_PORT_MIN, LOCAL_PORT_MAX)

    def masquerade_port(self, original: int) -> int:
        """MASQUERADE --random-fully: a random port from the original port's class."""
        return self._rng.randint(1024, 65535) if original >= 1024 else self._rng.randint(1, 1023)

    def pick(self, n: int) -> int:
        """One of `n` choices, equally likely: kube-proxy's `statistic --mode random` rules."""
        return self._rng.randrange(n)

    def u32(self) -> int:
        """A random 32-bit value: TCP initial sequence numbers and timestamp offsets."""
        return self._rng.getrandbits(32)

    def ping_id(self) -> int:
        return self._rng.getrandbits(16)

    def reachable_time_ns(self, base_ns: int = 30_000_000_000) -> int:
        """neigh reachable_time: uniformly random in [base/2, 3*base/2), as the kernel draws it."""
        return base_ns // 2 + self._rng.randrange(base_ns)
