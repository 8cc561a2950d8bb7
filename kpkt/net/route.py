"""A routing table with longest-prefix match, as `ip route` shows it for the main table."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from kpkt.engine import generation


# not frozen, though nothing changes a route once made (hashed and compared as a frozen one
# would be): a frozen dataclass's __init__ takes twice as long, and a 200-node cluster makes
# 80,000 routes
@dataclass(slots=True, unsafe_hash=True)
class Route:
    network: IPv4Network
    dev: object  # the NetDevice packets leave through (None for a blackhole)
    via: bytes | None = None  # gateway address, None for a connected (scope link) route
    src: bytes | None = None  # preferred source address
    onlink: bool = False
    mtu: int | None = None  # the route's own MTU (`mtu 1450`), below the device's
    blackhole: bool = False  # `ip route add blackhole`: packets are discarded, no ICMP error
    # as `ip route` prints it, made when first asked for (a node of a large cluster has a route
    # per other node, most never used)
    _text: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def text(self) -> str:
        text = self._text
        if text is None:
            text = self._text = self._render()
        return text

    def __str__(self) -> str:
        return self.text

    def _render(self) -> str:
        plen = self.network.prefixlen
        text = {0: "default", 32: str(self.network.network_address)}.get(plen, str(self.network))
        if self.blackhole:
            return f"blackhole {text}"
        if self.via is not None:
            text += f" via {IPv4Address(self.via)}"
        text += f" dev {self.dev.name}"
        if self.onlink:
            text += " onlink"
        if self.via is None:
            text += " scope link"
        if self.src is not None:
            text += f" src {IPv4Address(self.src)}"
        if self.mtu is not None:
            text += f" mtu {self.mtu}"
        return text


class RouteTable:
    """Routes grouped by prefix length; lookups try the longest prefix first, with a cache."""

    __slots__ = ("_by_len", "_cache")

    def __init__(self) -> None:
        self._by_len: dict[int, dict[int, Route]] = {}
        self._cache: dict[bytes, Route | None] = {}

    def add(self, route: Route) -> None:
        generation.changed()
        plen = route.network.prefixlen
        table = self._by_len.get(plen)
        if table is None:  # a new prefix length: the tables stay longest first
            table = self._by_len[plen] = {}
            self._by_len = dict(sorted(self._by_len.items(), reverse=True))
        table[int(route.network.network_address)] = route
        self._cache.clear()

    def remove_through(self, dev) -> None:
        """The routes through `dev` go, as the kernel deletes them with the device."""
        generation.changed()
        for table in self._by_len.values():
            for key in [key for key, route in table.items() if route.dev is dev]:
                del table[key]
        self._cache.clear()

    def lookup(self, dst: bytes) -> Route | None:
        try:
            return self._cache[dst]
        except KeyError:
            pass
        addr = int.from_bytes(dst, "big")
        found = None
        for plen, table in self._by_len.items():
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            found = table.get(addr & mask)
            if found is not None:
                break
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[dst] = found
        return found

    def routes(self) -> list[Route]:
        """All routes, most specific first, then by address (a stable order for printing)."""
        return [r for _, table in self._by_len.items() for _, r in sorted(table.items())]
