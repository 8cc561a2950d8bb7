"""The neighbour table: NUD state decay on the virtual clock, updates and `ip neigh` rows."""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.net.neighbor import Neighbor, NeighborTable, Nud

SECOND = 1_000_000_000
REACHABLE_NS = 27 * SECOND + 123_456_789

MAC_1 = bytes.fromhex("0a580af40101")
MAC_2 = bytes.fromhex("0a580af40102")


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


def test_unknown_address_gives_none():
    assert NeighborTable(REACHABLE_NS).get(ip("10.244.1.1"), 0) is None


def test_reachable_stays_reachable_before_reachable_time():
    table = NeighborTable(REACHABLE_NS)
    t0 = 2 * SECOND
    table.set(ip("10.244.1.1"), MAC_1, Nud.REACHABLE, t0)
    for now in (t0, t0 + 1, t0 + REACHABLE_NS // 2, t0 + REACHABLE_NS - 1):
        assert table.get(ip("10.244.1.1"), now).state is Nud.REACHABLE


def test_reachable_decays_to_stale_after_reachable_time():
    table = NeighborTable(REACHABLE_NS)
    t0 = 2 * SECOND
    table.set(ip("10.244.1.1"), MAC_1, Nud.REACHABLE, t0)
    entry = table.get(ip("10.244.1.1"), t0 + REACHABLE_NS + 1)
    assert entry.state is Nud.STALE
    assert entry.mac == MAC_1
    # the decay is stored: a later look at an earlier time does not bring it back
    assert table.get(ip("10.244.1.1"), t0).state is Nud.STALE


def test_reachable_still_reachable_at_exactly_reachable_time():
    # Linux neigh_timer_handler(): `time_before_eq(now, confirmed + reachable_time)` keeps the
    # entry REACHABLE at exactly confirmed + reachable_time; it is STALE only after that (the
    # module docstring also says "decays to STALE after reachable_time").
    table = NeighborTable(REACHABLE_NS)
    t0 = 2 * SECOND
    table.set(ip("10.244.1.1"), MAC_1, Nud.REACHABLE, t0)
    assert table.get(ip("10.244.1.1"), t0 + REACHABLE_NS).state is Nud.REACHABLE


def test_reconfirming_restarts_reachable_time():
    table = NeighborTable(REACHABLE_NS)
    table.set(ip("10.244.1.1"), MAC_1, Nud.REACHABLE, 0)
    table.set(ip("10.244.1.1"), MAC_1, Nud.REACHABLE, 10 * SECOND)
    assert table.get(ip("10.244.1.1"), 10 * SECOND + REACHABLE_NS - 1).state is Nud.REACHABLE
    assert table.get(ip("10.244.1.1"), 10 * SECOND + REACHABLE_NS + 1).state is Nud.STALE


def test_other_states_do_not_decay():
    table = NeighborTable(REACHABLE_NS)
    far = 10_000 * SECOND
    for i, state in enumerate((Nud.STALE, Nud.DELAY, Nud.PROBE, Nud.INCOMPLETE, Nud.FAILED)):
        addr = bytes((10, 0, 0, i + 1))
        table.set(addr, MAC_1 if state is not Nud.INCOMPLETE else None, state, 0)
        assert table.get(addr, far).state is state


def test_permanent_never_decays():
    table = NeighborTable(REACHABLE_NS)
    table.add_permanent(ip("10.244.2.0"), MAC_2)
    for now in (0, REACHABLE_NS, REACHABLE_NS + 1, 10**6 * SECOND):
        entry = table.get(ip("10.244.2.0"), now)
        assert entry.state is Nud.PERMANENT
        assert entry.mac == MAC_2


def test_set_creates_entry_with_timestamp():
    table = NeighborTable(REACHABLE_NS)
    entry = table.set(ip("10.244.1.1"), None, Nud.INCOMPLETE, 5)
    assert isinstance(entry, Neighbor)
    assert table.entries[ip("10.244.1.1")] is entry
    assert (entry.ip, entry.mac, entry.state, entry.updated_ns) == (
        ip("10.244.1.1"),
        None,
        Nud.INCOMPLETE,
        5,
    )
    assert entry.timer_gen == 0
    assert entry.probes == 0
    assert entry.queue == []


def test_set_on_existing_entry_bumps_timer_gen_and_resets_probes():
    table = NeighborTable(REACHABLE_NS)
    entry = table.set(ip("10.244.1.1"), None, Nud.INCOMPLETE, 0)
    entry.probes = 3
    entry.queue.append((b"packet", "tag"))
    again = table.set(ip("10.244.1.1"), MAC_1, Nud.REACHABLE, 1_000)
    assert again is entry  # updated in place
    assert entry.timer_gen == 1
    assert entry.probes == 0
    assert (entry.mac, entry.state, entry.updated_ns) == (MAC_1, Nud.REACHABLE, 1_000)
    assert entry.queue == [(b"packet", "tag")]  # the queue is the caller's business
    entry.probes = 2
    table.set(ip("10.244.1.1"), MAC_2, Nud.STALE, 2_000)
    assert entry.timer_gen == 2
    assert entry.probes == 0
    assert entry.mac == MAC_2


def test_rows_sorted_by_address():
    table = NeighborTable(REACHABLE_NS)
    table.set(ip("10.244.1.10"), MAC_1, Nud.REACHABLE, 0)
    table.add_permanent(ip("10.244.2.0"), MAC_2)
    table.set(ip("10.244.1.9"), None, Nud.INCOMPLETE, 0)
    table.set(ip("9.255.255.255"), MAC_2, Nud.STALE, 0)
    assert table.rows() == [
        ("9.255.255.255", "0a:58:0a:f4:01:02", "STALE"),
        ("10.244.1.9", "-", "INCOMPLETE"),
        ("10.244.1.10", "0a:58:0a:f4:01:01", "REACHABLE"),
        ("10.244.2.0", "0a:58:0a:f4:01:02", "PERMANENT"),
    ]
