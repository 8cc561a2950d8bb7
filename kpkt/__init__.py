"""kpkt: a packet-level emulator of Kubernetes pod networking.

The Python API (kpkt/api.py):

    import kpkt
    topology = kpkt.load("topologies/two-node.yaml")
    run = kpkt.run(topology)                  # in memory; kpkt.run(topology, "out/") writes
    run["node1/eth0"]                         # a Scapy PacketList
    run.steps[0].outcome, run.drops

    with kpkt.start(topology) as net:         # a live network, paused
        net.send("pod-a", IP(dst="10.1.2.10", ttl=1) / UDP(dport=53))
        net.settle()
        net["pod-a/eth0"]

Names are imported when first used, so `import kpkt` (and the CLI) stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Drop",
    "Hop",
    "KpktError",
    "LiveNetwork",
    "Run",
    "Step",
    "Topology",
    "TopologyError",
    "__version__",
    "load",
    "load_dict",
    "loads",
    "run",
    "start",
]

_WHERE = {
    "load": "kpkt.api",
    "loads": "kpkt.api",
    "load_dict": "kpkt.api",
    "run": "kpkt.api",
    "start": "kpkt.api",
    "Run": "kpkt.runner",
    "LiveNetwork": "kpkt.live",
    "Topology": "kpkt.spec",
    "Step": "kpkt.results",
    "Hop": "kpkt.results",
    "Drop": "kpkt.results",
    "KpktError": "kpkt.errors",
    "TopologyError": "kpkt.errors",
}

if TYPE_CHECKING:
    from kpkt.api import load, load_dict, loads, run, start
    from kpkt.errors import KpktError, TopologyError
    from kpkt.live import LiveNetwork
    from kpkt.results import Drop, Hop, Step
    from kpkt.runner import Run
    from kpkt.spec import Topology


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kpkt' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
