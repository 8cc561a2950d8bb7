"""kpkt's Python API: load a topology, run it (into a folder or in memory) and read the run
back, or start a live network and send crafted Scapy packets through it. `import kpkt` gives
these names (kpkt/__init__.py); the CLI's `kpkt run` uses them too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kpkt.errors import TopologyError
from kpkt.flowcache import FLOW_CACHE_DEFAULT
from kpkt.live import LiveNetwork
from kpkt.runner import Run
from kpkt.runner import run as _run
from kpkt.spec import Topology
from kpkt.topology.load import load_topology, load_topology_text


def load(path: str | Path, *, seed: int | None = None) -> Topology:
    """Load a topology file; `seed` overrides its `seed:`. A problem raises TopologyError
    (each line names the file and the YAML path)."""
    return load_topology(path, seed)


def loads(text: str, *, seed: int | None = None, source: str = "<string>") -> Topology:
    """Load a topology from YAML text; `source` names it in problems."""
    return load_topology_text(text, source, seed)


def load_dict(
    data: Mapping[str, Any], *, seed: int | None = None, source: str = "<dict>"
) -> Topology:
    """Load a topology from a mapping shaped like the YAML file (as `yaml.safe_load` gives)."""
    try:
        text = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as error:
        raise TopologyError(f"{source}: not plain data: {error}") from None
    return load_topology_text(text, source, seed)


def run(
    topology: Topology,
    folder: str | Path | None = None,
    *,
    report: bool = True,
    force: bool = False,
    max_frames: int | None = None,
    progress: Any = None,
    flow_cache: bool = FLOW_CACHE_DEFAULT,
) -> Run:
    """Run `topology`'s traffic. With `folder`, the captures, all.pcapng, manifest.json and
    (with `report`) report.html are written there as `kpkt run -o` writes them (`force`: into
    a folder holding files kpkt did not write); without, the run is in memory and keeps its
    captures. `max_frames`: stop with KpktError, writing nothing, past that many frames.
    `progress.tick(step index, app, journal)` is called as the run goes (the CLI's status
    line). `flow_cache` False: every packet takes the datapath's slow path (the output is the
    same; kpkt/flowcache.py). Read the result with `run["node1/eth0"]` (a Scapy PacketList),
    `run.steps`, `run.drops`."""
    return _run(
        topology,
        folder=None if folder is None else Path(folder),
        report=report,
        force=force,
        max_frames=max_frames,
        progress=progress,
        keep=folder is None,
        flow_cache=flow_cache,
    )


def start(topology: Topology) -> LiveNetwork:
    """The network of `topology`, built and paused at time 0 (its own traffic is not run):
    `send` packets, `advance` the clock or `settle`, read `net["pod-a/eth0"]`, `net.steps`,
    `net.drops`; `close` it (or use `with`)."""
    return LiveNetwork(topology)
