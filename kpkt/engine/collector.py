"""Python's cyclic garbage collector, paused while kpkt loads a topology and builds and runs its
network.

A large run makes millions of objects that live until it ends (the topology's specs, the
namespaces, devices, routes and capture points, the steps' logs) and almost no garbage cycles
(about 650 objects in a run of 2,000 pods). The collector's full collections walk every
object alive, and the larger the heap the longer each walk: about a tenth of a 10,000-pod run's
time went there. Paused, the few cycles that do become garbage wait for the collector's first
collection after the pause; memory freed by reference counting (nearly all of it) is freed at
once as before.

That first collection would walk every object the block made (1.6 million at the end of a
10,000-pod run: 0.44 s) only to find them alive. So after a block that made more than
`HANDED_OVER` objects, they are handed to the collector's oldest generation as they are
(`gc.freeze()` then `gc.unfreeze()`: lists moved, not walked); the collector would not count
them towards its next full collection, so the next paused block starts with one (a process
that runs once, `kpkt run`, never pays it). Not when something else has frozen objects (a
server that forks): unfreezing would undo that.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# objects a block makes past which they are handed over unwalked: a walk of this many takes
# about 0.1 s
HANDED_OVER = 400_000
_handed_over = False  # a block handed its objects over: the next one collects first


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (nested blocks leave it to the outer)."""
    global _handed_over
    enabled = gc.isenabled()
    if enabled and _handed_over:
        _handed_over = False
        gc.collect()  # the cycles the last block's objects left, if they became garbage
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_count()[0] > HANDED_OVER and not gc.get_freeze_count():
                gc.freeze()  # every tracked object into the permanent generation
                gc.unfreeze()  # and back, all of them, into the oldest
                _handed_over = True
            gc.enable()
