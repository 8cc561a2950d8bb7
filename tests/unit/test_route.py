"""The routing table: longest-prefix match, the lookup cache, and `ip route` rendering."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from types import SimpleNamespace

from kpkt.net.route import Route, RouteTable


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


ETH0 = SimpleNamespace(name="eth0")
CNI0 = SimpleNamespace(name="cni0")
FLANNEL = SimpleNamespace(name="flannel.1")
LO = SimpleNamespace(name="lo")


def route(net: str, dev, via: str | None = None, src: str | None = None, onlink=False) -> Route:
    return Route(
        IPv4Network(net),
        dev,
        via=ip(via) if via else None,
        src=ip(src) if src else None,
        onlink=onlink,
    )


def full_table():
    table = RouteTable()
    default = route("0.0.0.0/0", ETH0, via="172.18.0.1")
    slash16 = route("10.244.0.0/16", FLANNEL, via="10.244.0.0", onlink=True)
    slash24 = route("10.244.1.0/24", CNI0, src="10.244.1.1")
    slash32 = route("10.244.1.7/32", LO)
    for r in (slash16, default, slash32, slash24):  # insertion order must not matter
        table.add(r)
    return table, default, slash16, slash24, slash32


def test_longest_prefix_wins():
    table, default, slash16, slash24, slash32 = full_table()
    assert table.lookup(ip("10.244.1.7")) is slash32
    assert table.lookup(ip("10.244.1.8")) is slash24
    assert table.lookup(ip("10.244.1.0")) is slash24
    assert table.lookup(ip("10.244.1.255")) is slash24
    assert table.lookup(ip("10.244.2.2")) is slash16
    assert table.lookup(ip("10.244.255.255")) is slash16
    assert table.lookup(ip("10.245.0.1")) is default
    assert table.lookup(ip("8.8.8.8")) is default


def test_default_route_matches_everything():
    table = RouteTable()
    default = route("0.0.0.0/0", ETH0, via="172.18.0.1")
    table.add(default)
    for addr in ("0.0.0.0", "1.2.3.4", "255.255.255.255", "10.244.1.2"):
        assert table.lookup(ip(addr)) is default


def test_no_route_gives_none():
    table = RouteTable()
    assert table.lookup(ip("10.0.0.1")) is None
    table.add(route("10.244.1.0/24", CNI0))
    assert table.lookup(ip("10.244.2.1")) is None
    assert table.lookup(ip("10.244.1.1")) is not None


def test_cache_invalidated_when_a_route_is_added():
    table = RouteTable()
    slash16 = route("10.244.0.0/16", FLANNEL, via="10.244.0.0", onlink=True)
    table.add(slash16)
    assert table.lookup(ip("10.244.2.2")) is slash16
    assert table.lookup(ip("10.244.2.2")) is slash16  # served from the cache
    slash24 = route("10.244.2.0/24", FLANNEL, via="10.244.2.0", onlink=True)
    table.add(slash24)
    assert table.lookup(ip("10.244.2.2")) is slash24


def test_cached_miss_invalidated_when_a_route_is_added():
    table = RouteTable()
    assert table.lookup(ip("192.168.0.1")) is None
    default = route("0.0.0.0/0", ETH0, via="172.18.0.1")
    table.add(default)
    assert table.lookup(ip("192.168.0.1")) is default


def test_adding_same_prefix_replaces():
    table = RouteTable()
    table.add(route("10.244.1.0/24", ETH0))
    newer = route("10.244.1.0/24", CNI0, src="10.244.1.1")
    table.add(newer)
    assert table.lookup(ip("10.244.1.9")) is newer
    assert table.routes() == [newer]


def test_routes_most_specific_first_then_by_address():
    table, default, slash16, slash24, slash32 = full_table()
    other24 = route("10.244.0.0/24", CNI0)
    table.add(other24)
    assert table.routes() == [slash32, other24, slash24, slash16, default]


def test_str_gateway_onlink():
    r = route("10.244.2.0/24", FLANNEL, via="10.244.2.0", onlink=True)
    assert str(r) == "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"


def test_str_connected_route_with_src():
    r = route("10.244.1.0/24", CNI0, src="10.244.1.1")
    assert str(r) == "10.244.1.0/24 dev cni0 scope link src 10.244.1.1"


def test_str_connected_route_without_src():
    assert str(route("172.18.0.0/16", ETH0)) == "172.18.0.0/16 dev eth0 scope link"


def test_str_default_route():
    r = route("0.0.0.0/0", ETH0, via="172.18.0.1")
    assert str(r) == "default via 172.18.0.1 dev eth0"


def test_str_blackhole():
    r = Route(IPv4Network("10.245.1.0/26"), None, blackhole=True)
    assert str(r) == "blackhole 10.245.1.0/26"
