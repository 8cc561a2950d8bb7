"""Scale regressions: the cost of a pod, and of a frame, must not grow with the cluster.

A lookup that looks through every namespace or capture point once per new one makes a run
quadratic in the cluster's size: harmless at ten pods, minutes at 10,000 (`bench/scale.py`).
Wall time is too noisy to catch that in a test, so the cost here is counted: the lines of
kpkt's own code executed (sys.settrace), the same from run to run. A cluster four times as
large must cost about as much per pod to load, build and write, and about as much per frame to
run. What grows by nature stays under the bounds: every node has a route, a neighbour and an
FDB entry per other node (flannel), and an ARP broadcast on the node network reaches every node.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import yaml

import kpkt
from kpkt import runner
from kpkt.gen import generate
from kpkt.network import Network
from kpkt.topology import load
from kpkt.topology.load import load_topology_text

PACKAGE = str(Path(kpkt.__file__).parent)
SMALL, LARGE = 6, 24  # nodes, of 5 pods each
PODS = 5
# per pod of a cluster without traffic, per frame of its traffic: the large cluster's cost over
# the small one's. Measured 1.04 and 0.97; with a look through every capture point for each new
# one (fixed on 2026-12-03) the first was 1.9, with a list of every namespace's VXLAN ports per
# veth 1.29, and with a look through the whole event queue at every hop the flow cache records
# the second was 1.17.
MAX_GROWTH_PER_POD = 1.2
MAX_GROWTH_PER_FRAME = 1.1


def _cost(text: str, folder: Path) -> tuple[int, int]:
    """The lines of kpkt's code that loading, building, running and writing `text` executes,
    and the frames captured."""
    lines = 0

    def count(frame, event, arg):
        nonlocal lines
        lines += event == "line"
        return count

    def enter(frame, event, arg):
        return count if frame.f_code.co_filename.startswith(PACKAGE) else None

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        run = runner.run(load_topology_text(text, "gen.yaml"), folder=folder, report=False)
    finally:
        sys.settrace(previous)
    return lines, sum(tap.count for tap in run.network.journal.taps)


def _cluster(nodes: int, traffic: bool) -> str:
    """`kpkt gen NODES 5`: with its pings and a udp flow of 3 datagrams from each node's first
    pod to the next node's (recorded once by the flow cache, replayed twice), or no traffic."""
    document = yaml.safe_load(generate(nodes, PODS, ping=traffic))
    if traffic:
        document["traffic"] += [
            {"udp": {"from": f"pod-{n}-0", "to": f"pod-{n % nodes + 1}-0:5000", "count": 3}}
            for n in range(1, nodes + 1)
        ]
    return yaml.safe_dump(document, sort_keys=False)


def test_a_pod_and_a_frame_cost_the_same_in_a_cluster_four_times_as_large(
    tmp_path: Path,
) -> None:
    per_pod, per_frame = {}, {}
    for nodes in (SMALL, LARGE):
        empty, no_frames = _cost(_cluster(nodes, False), tmp_path / f"empty-{nodes}")
        busy, frames = _cost(_cluster(nodes, True), tmp_path / f"busy-{nodes}")
        assert no_frames < frames / 10
        per_pod[nodes] = empty / (nodes * PODS)
        per_frame[nodes] = (busy - empty) / (frames - no_frames)
    growth = {
        "per pod": per_pod[LARGE] / per_pod[SMALL],
        "per frame": per_frame[LARGE] / per_frame[SMALL],
    }
    assert growth["per pod"] < MAX_GROWTH_PER_POD, (growth, per_pod)
    assert growth["per frame"] < MAX_GROWTH_PER_FRAME, (growth, per_frame)


def test_the_cyclic_collector_is_paused_while_a_topology_loads_builds_and_runs(
    tmp_path: Path, monkeypatch
) -> None:
    """Its full collections walk every object alive, again and again as a large run grows
    (kpkt/engine/collector.py)."""
    enabled = []

    def watched(fn):
        def call(*args, **kwargs):
            enabled.append((fn.__name__, gc.isenabled()))
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(load, "load_topology_document", watched(load.load_topology_document))
    monkeypatch.setattr(runner, "build", watched(runner.build))
    monkeypatch.setattr(Network, "run", watched(Network.run))
    assert gc.isenabled()
    topology = load_topology_text(generate(2, 2), "gen.yaml")
    runner.run(topology, folder=tmp_path / "out", report=False)
    assert enabled == [("load_topology_document", False), ("build", False), ("run", False)]
    assert gc.isenabled()
