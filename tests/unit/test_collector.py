"""The cyclic collector paused while kpkt loads, builds and runs (kpkt/engine/collector.py): a
block that made many objects hands them to the oldest generation unwalked, and the next paused
block collects the cycles they left; a block that made few leaves them to the collector."""

from __future__ import annotations

import gc
import weakref

from kpkt.engine import collector


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _cycle_in_a_paused_block() -> weakref.ref:
    with collector.paused():
        assert not gc.isenabled()
        node = Node()
        kept = [Node() for _ in range(200)]  # more objects than HANDED_OVER, set below
        assert kept
    assert gc.isenabled()
    return weakref.ref(node)


def test_a_large_block_hands_its_objects_over_and_the_next_block_collects_their_cycles(
    monkeypatch,
):
    monkeypatch.setattr(collector, "HANDED_OVER", 100)
    gc.collect()
    cycle = _cycle_in_a_paused_block()
    assert cycle() is not None  # not walked when the block ended: in the oldest generation
    assert gc.get_count()[0] < 100  # and the young generation is left empty of them
    with collector.paused():
        assert cycle() is None  # collected as the next block started
    assert gc.isenabled()


def test_a_small_block_leaves_its_objects_to_the_collector(monkeypatch):
    monkeypatch.setattr(collector, "HANDED_OVER", 1_000_000)
    gc.collect()
    cycle = _cycle_in_a_paused_block()
    gc.collect(0)  # its first young collection, as before
    assert cycle() is None


def test_objects_frozen_by_someone_else_stay_frozen(monkeypatch):
    monkeypatch.setattr(collector, "HANDED_OVER", 100)
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        _cycle_in_a_paused_block()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
