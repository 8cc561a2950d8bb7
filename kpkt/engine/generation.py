"""The generation of the forwarding state: a count of the changes to what the datapath's
decisions read at run time (FDB entries, neighbour entries, routes, connections) and of the
steps that may change anything else (a fault, a pod created, a socket opened).

Every writer of that state calls `changed()`; the flow cache (kpkt/flowcache.py) replays a
recorded path only while `current()` is the generation it was recorded in. One count serves
every network of the process (a run is single-threaded; a sweep runs its tasks in processes):
a change in one network only makes the others' caches record their paths again.

This module is at the bottom of the import graph: it imports nothing of kpkt.
"""

from __future__ import annotations

_generation = 0


def changed() -> None:
    """Some state a forwarding decision reads has changed."""
    global _generation
    _generation += 1


def current() -> int:
    return _generation
