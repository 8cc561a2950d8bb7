"""The ARP neighbour table of one interface, with Linux's NUD states on the virtual clock.

INCOMPLETE entries queue packets and retry broadcast requests (mcast_solicit 3, 1 s apart);
entries learned from a request start STALE; using a STALE entry moves it to DELAY, and 5 s later
(delay_first_probe_time) to PROBE with unicast requests (ucast_solicit 3). REACHABLE decays to
STALE after reachable_time. PERMANENT entries (a CNI's static VTEP neighbours) never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address

from kpkt.engine import generation
from kpkt.wire.ethernet import mac_str

SECOND = 1_000_000_000
RETRANS_TIME_NS = 1 * SECOND
DELAY_FIRST_PROBE_NS = 5 * SECOND
MCAST_SOLICIT = 3
UCAST_SOLICIT = 3
# unres_qlen: what /proc/sys/net/ipv4/neigh/*/unres_qlen reports for the default byte limit
UNRES_QLEN = 101


class Nud(Enum):
    INCOMPLETE = "INCOMPLETE"
    REACHABLE = "REACHABLE"
    STALE = "STALE"
    DELAY = "DELAY"
    PROBE = "PROBE"
    FAILED = "FAILED"
    PERMANENT = "PERMANENT"


_REACHABLE = Nud.REACHABLE  # read by every `get`: a module name, not a class attribute lookup


@dataclass(slots=True)
class Neighbor:
    ip: bytes
    mac: bytes | None
    state: Nud
    updated_ns: int = 0  # when it was last confirmed (REACHABLE) or changed
    probes: int = 0
    queue: list = field(default_factory=list)  # (packet, tag, note) waiting for resolution
    timer_gen: int = 0  # bumps on every state change, so a stale timer knows to do nothing
    spa: bytes = b""  # the sender address our requests for this entry carry
    header: bytes = b""  # the Ethernet header of packets to this neighbour, made once per MAC


class NeighborTable:
    """Entries by IPv4 address (4 bytes); the policy lives in the stack that owns the table."""

    __slots__ = ("entries", "reachable_ns", "dev_mac")

    def __init__(self, reachable_ns: int, dev_mac: bytes = b"\x00" * 6) -> None:
        self.entries: dict[bytes, Neighbor] = {}
        self.reachable_ns = reachable_ns
        self.dev_mac = dev_mac  # the source MAC of the device the table belongs to

    def _header(self, mac: bytes | None) -> bytes:
        return mac + self.dev_mac + b"\x08\x00" if mac is not None else b""

    def get(self, ip: bytes, now_ns: int) -> Neighbor | None:
        """The entry for `ip`, with REACHABLE decayed to STALE once reachable_time has passed."""
        entry = self.entries.get(ip)
        if (
            entry is not None
            and entry.state is _REACHABLE
            and (now_ns - entry.updated_ns > self.reachable_ns)
        ):
            generation.changed()
            entry.state = Nud.STALE
        return entry

    def add_permanent(self, ip: bytes, mac: bytes) -> None:
        generation.changed()
        self.entries[ip] = Neighbor(ip, mac, Nud.PERMANENT, header=self._header(mac))

    def set(self, ip: bytes, mac: bytes | None, state: Nud, now_ns: int) -> Neighbor:
        generation.changed()
        entry = self.entries.get(ip)
        if entry is None:
            entry = self.entries[ip] = Neighbor(ip, mac, state, now_ns)
        else:
            entry.mac, entry.state, entry.updated_ns = mac, state, now_ns
            entry.timer_gen += 1
        entry.header = self._header(mac)
        entry.probes = 0
        return entry

    def rows(self) -> list[tuple[str, str, str]]:
        """(ip, mac, state) sorted by address, as `ip neigh show` prints them."""
        return [
            (str(IPv4Address(e.ip)), mac_str(e.mac) if e.mac else "-", e.state.value)
            for e in sorted(self.entries.values(), key=lambda e: e.ip)
        ]
