"""The bridge forwarding database: learning, moves, local entries, ageing on the virtual clock."""

from __future__ import annotations

from types import SimpleNamespace

from kpkt.net.fdb import AGEING_NS, Fdb

SECOND = 1_000_000_000

MAC_A = bytes.fromhex("0a580af40102")
MAC_B = bytes.fromhex("0a580af40103")
MAC_C = bytes.fromhex("0a580af40104")
MAC_BR = bytes.fromhex("0a580af40101")


def port(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name)


def test_default_ageing_is_300_seconds():
    assert AGEING_NS == 300 * SECOND
    assert Fdb().ageing_ns == 300 * SECOND


def test_learning_a_new_mac():
    fdb = Fdb()
    p1 = port("veth-a")
    assert fdb.lookup(MAC_A, 0) is None
    assert fdb.learn(MAC_A, p1, 1_000) is True
    entry = fdb.lookup(MAC_A, 2_000)
    assert entry is not None
    assert entry.port is p1
    assert entry.updated_ns == 1_000
    assert entry.local is False


def test_relearning_on_same_port_is_not_a_move_but_refreshes():
    fdb = Fdb()
    p1 = port("veth-a")
    fdb.learn(MAC_A, p1, 0)
    assert fdb.learn(MAC_A, p1, 10 * SECOND) is False
    assert fdb.entries[MAC_A].updated_ns == 10 * SECOND


def test_mac_moves_to_another_port():
    fdb = Fdb()
    p1, p2 = port("veth-a"), port("veth-b")
    fdb.learn(MAC_A, p1, 0)
    assert fdb.learn(MAC_A, p2, 5 * SECOND) is True
    entry = fdb.lookup(MAC_A, 6 * SECOND)
    assert entry.port is p2
    assert entry.updated_ns == 5 * SECOND


def test_move_is_by_identity_not_by_name():
    fdb = Fdb()
    fdb.learn(MAC_A, port("same"), 0)
    assert fdb.learn(MAC_A, port("same"), 1) is True


def test_local_entries_are_never_overwritten_by_learning():
    fdb = Fdb()
    own, other = port("veth-a"), port("veth-b")
    fdb.add_local(MAC_A, own)
    fdb.add_local(MAC_BR, None)
    assert fdb.learn(MAC_A, other, 7 * SECOND) is False
    assert fdb.learn(MAC_BR, other, 7 * SECOND) is False
    entry = fdb.lookup(MAC_A, 8 * SECOND)
    assert entry.local is True
    assert entry.port is own
    assert entry.updated_ns == 0
    assert fdb.lookup(MAC_BR, 8 * SECOND).port is None


def test_ageing_alive_until_300_s_gone_at_exactly_300_s():
    # has_expired(): time_before_eq(updated + ageing_time, now) -- expired at exactly 300 s
    fdb = Fdb()
    p1 = port("veth-a")
    fdb.learn(MAC_A, p1, 0)
    assert fdb.lookup(MAC_A, 300 * SECOND - 1) is not None
    assert MAC_A in fdb.entries
    assert fdb.lookup(MAC_A, 300 * SECOND) is None
    assert MAC_A not in fdb.entries  # removed, not just hidden
    # and it stays gone
    assert fdb.lookup(MAC_A, 300 * SECOND) is None


def test_ageing_counts_from_last_learn():
    fdb = Fdb()
    p1 = port("veth-a")
    fdb.learn(MAC_A, p1, 0)
    fdb.learn(MAC_A, p1, 100 * SECOND)
    assert fdb.lookup(MAC_A, 400 * SECOND - 1) is not None
    assert fdb.lookup(MAC_A, 400 * SECOND) is None


def test_learning_after_expiry_creates_a_new_entry():
    fdb = Fdb()
    p1 = port("veth-a")
    fdb.learn(MAC_A, p1, 0)
    assert fdb.lookup(MAC_A, 301 * SECOND) is None
    assert fdb.learn(MAC_A, p1, 302 * SECOND) is True


def test_custom_ageing():
    fdb = Fdb(ageing_ns=10)
    fdb.learn(MAC_A, port("p"), 100)
    assert fdb.lookup(MAC_A, 109) is not None
    assert fdb.lookup(MAC_A, 110) is None


def test_local_entries_never_age():
    fdb = Fdb()
    fdb.add_local(MAC_A, port("veth-a"))
    assert fdb.lookup(MAC_A, 10**6 * SECOND) is not None


def test_rows_sorted_by_mac_with_ages():
    fdb = Fdb()
    pa, pb = port("veth-a"), port("veth-b")
    fdb.learn(MAC_C, pb, 1 * SECOND)
    fdb.add_local(MAC_BR, None)
    fdb.learn(MAC_A, pa, 0)
    fdb.add_local(MAC_B, pb)
    rows = fdb.rows(1_500_000_000)
    assert rows == [
        ("0a:58:0a:f4:01:01", "self", "permanent"),
        ("0a:58:0a:f4:01:02", "veth-a", "1.500s"),
        ("0a:58:0a:f4:01:03", "veth-b", "permanent"),
        ("0a:58:0a:f4:01:04", "veth-b", "0.500s"),
    ]


def test_rows_leave_out_expired_entries():
    fdb = Fdb()
    fdb.learn(MAC_A, port("veth-a"), 0)
    fdb.learn(MAC_B, port("veth-b"), 200 * SECOND)
    fdb.add_local(MAC_BR, None)
    rows = fdb.rows(350 * SECOND)
    assert [r[0] for r in rows] == ["0a:58:0a:f4:01:01", "0a:58:0a:f4:01:03"]
    assert rows[1][2] == "150.000s"
    assert MAC_A not in fdb.entries
