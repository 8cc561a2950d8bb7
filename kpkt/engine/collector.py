"""Python's cyclic garbage collector, paused while kpkt loads a topology and builds and runs its
network.

A large run makes millions of objects that live until it ends (the topology's specs, the
namespaces, devices, routes and capture points, the steps' logs) and almost no garbage cycles
(about 650 objects in a run of 2,000 pods). The collector's full collections walk every
object alive, and the larger the heap the longer each walk: about a tenth of a 10,000-pod run's
time went there. Paused, the few cycles that do become garbage wait for the collector's first
collection after the pause; memory freed by reference counting (nearly all of it) is freed at
once as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (nested blocks leave it to the outer)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
