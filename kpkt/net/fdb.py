"""A bridge's forwarding database: learned entries that age on the virtual clock, and local
(permanent) entries for the bridge's own MAC and its ports' MACs."""

from __future__ import annotations

from dataclasses import dataclass

from kpkt.engine import generation
from kpkt.observe import Decision, Why
from kpkt.wire.ethernet import mac_str

AGEING_NS = 300 * 1_000_000_000  # ageing_time 30000 centiseconds


@dataclass(slots=True)
class FdbEntry:
    port: object  # the bridge port (a device), None for the bridge device itself
    updated_ns: int
    local: bool = False
    decision: Decision | None = None  # what forwarding by this entry decides


def _decision(mac: bytes, port: object, local: bool) -> Decision:
    return Decision(Why.FDB_LOCAL, mac) if local else Decision(Why.FDB_PORT, mac, port.name)


class Fdb:
    __slots__ = ("entries", "ageing_ns")

    def __init__(self, ageing_ns: int = AGEING_NS) -> None:
        self.entries: dict[bytes, FdbEntry] = {}
        self.ageing_ns = ageing_ns

    def add_local(self, mac: bytes, port: object) -> None:
        generation.changed()
        self.entries[mac] = FdbEntry(port, 0, local=True, decision=_decision(mac, port, True))

    def learn(self, mac: bytes, port: object, now_ns: int) -> bool:
        """Learn `mac` on `port`; True when the entry is new or moved. Local entries win."""
        entry = self.entries.get(mac)
        if entry is None:
            generation.changed()
            self.entries[mac] = FdbEntry(port, now_ns, decision=_decision(mac, port, False))
            return True
        if entry.local:
            return False
        entry.updated_ns = now_ns
        if entry.port is port:
            return False  # refreshed: what the flow cache replays (kpkt/flowcache.py)
        generation.changed()
        entry.port, entry.decision = port, _decision(mac, port, False)
        return True

    def flush_port(self, port: object) -> None:
        """The port leaves the bridge: every entry behind it goes, its own MAC's too."""
        generation.changed()
        for mac in [mac for mac, entry in self.entries.items() if entry.port is port]:
            del self.entries[mac]

    def lookup(self, mac: bytes, now_ns: int) -> FdbEntry | None:
        """The live entry for `mac`; an entry older than the ageing time is removed."""
        entry = self.entries.get(mac)
        # has_expired(): time_before_eq(updated + ageing_time, now)
        if entry is not None and not entry.local and now_ns - entry.updated_ns >= self.ageing_ns:
            generation.changed()
            del self.entries[mac]
            return None
        return entry

    def rows(self, now_ns: int) -> list[tuple[str, str, str]]:
        """(mac, port name, "permanent" | "<age>s") sorted by MAC, like `bridge fdb show`."""
        rows = []
        for mac, entry in sorted(self.entries.items()):
            if self.lookup(mac, now_ns) is None:
                continue
            port = entry.port.name if entry.port is not None else "self"
            age = "permanent" if entry.local else f"{(now_ns - entry.updated_ns) / 1e9:.3f}s"
            rows.append((mac_str(mac), port, age))
        return rows
