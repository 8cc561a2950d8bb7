"""Running a topology: the one place a topology's network is built and its traffic run, for
`kpkt run`, `kpkt trace`, `kpkt validate` and Python callers.

With a folder, the captures, manifest.json and report.html go there (kpkt/output.py replaces
the folder as a whole); without one, the run happens in memory: the captures go to a scratch
folder that is removed when the run ends, and the `Run` keeps the journal's step logs.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from kpkt import output, results
from kpkt.build import build
from kpkt.capture import manifest
from kpkt.capture.pcap import read_pcap
from kpkt.engine import collector
from kpkt.errors import KpktError
from kpkt.flowcache import FLOW_CACHE_DEFAULT, FlowCache
from kpkt.html_report import MAX_HOPS, write_report
from kpkt.network import Network
from kpkt.spec import Topology


@dataclasses.dataclass
class Run(results.RunView):
    """A finished run. `run["node1/eth0"]` is a capture point's frames as a Scapy PacketList
    (a pod's points also by its bare name: `run["pod-a/eth0"]`); `steps` and `drops` are plain
    objects (kpkt/results.py)."""

    topology: Topology  # what ran (only its first `steps` steps when `run` was given `steps`)
    network: Network  # the network after the run: its journal holds every step's log
    folder: Path | None  # the output folder; None: the run was in memory
    files: dict  # Tap -> its capture's file name in `folder` (empty in memory)
    kept: dict[str, list[tuple[int, bytes]]] = dataclasses.field(default_factory=dict)
    # capture point -> its (t_ns, frame) records, for an in-memory run that kept them

    def frames(self, point: str) -> list[tuple[int, bytes]]:
        """A capture point's records as (t_ns, frame)."""
        name = results.capture_point(self.points, point)
        if self.folder is None:
            if self.network.journal.steps and not self.kept:
                raise KpktError("this in-memory run kept no captures: run it with keep=True")
            return self.kept.get(name, [])
        file = next((file for tap, file in self.files.items() if tap.name == name), None)
        return [] if file is None else read_pcap(self.folder / file)

    @property
    def steps(self) -> list[results.Step]:
        return results.steps(self.topology.steps, self.network.journal)


def run(
    topology: Topology,
    *,
    folder: Path | None = None,
    steps: int | None = None,
    keep_rows: dict[int, int] | None = None,
    progress=None,
    force: bool = False,
    max_frames: int | None = None,
    report: bool = True,
    keep: bool = False,
    flow_cache: bool = FLOW_CACHE_DEFAULT,
) -> Run:
    """Build `topology`'s network and run its traffic.

    `folder`: write the captures, manifest.json and (with `report`) report.html there, replacing
    the folder as a whole; `force` writes into a folder holding files kpkt did not write (they
    are kept). `steps`: run only the first `steps` steps (0: build the network, run nothing).
    `keep_rows`: step index -> how many of its hops its log keeps (`kpkt trace` keeps them all).
    `max_frames`: stop (KpktError) if the captures would hold more. `progress.tick` is called
    as the run goes (kpkt/progress.py). `keep`: an in-memory run keeps its captures (for
    `Run.frames` and `run[point]`). `flow_cache`: replay the recorded path of a flow's
    earlier packets (kpkt/flowcache.py; the output is the same byte for byte)."""
    with collector.paused():  # what the run makes lives until it ends (kpkt/engine/collector.py)
        if steps is not None:
            topology = dataclasses.replace(topology, steps=topology.steps[:steps])
        if folder is None:
            network, apps = _build(topology, keep_rows)
            kept = {}
            if apps:  # no steps: nothing would be captured
                with tempfile.TemporaryDirectory(prefix="kpkt-") as scratch:
                    files = _simulate(
                        network, apps, Path(scratch), progress, max_frames, flow_cache
                    )
                    if keep:
                        kept = {tap.name: read_pcap(Path(scratch) / f) for tap, f in files.items()}
            return Run(topology, network, None, {}, kept)
        with output.replacing(Path(folder), topology, force) as work:
            network, apps = _build(topology, keep_rows)
            files = _simulate(network, apps, work, progress, max_frames, flow_cache)
            manifest.write(work / "manifest.json", network.journal, topology, files)
            if report:
                write_report(work, manifest.document(network.journal, topology, files, MAX_HOPS))
        return Run(topology, network, Path(folder), files)


def _build(topology: Topology, keep_rows: dict[int, int] | None) -> tuple[Network, list]:
    network, apps = build(topology)
    network.journal.traced_rows.update(keep_rows or {})
    return network, apps


def _simulate(
    network: Network, apps: list, captures: Path, progress, max_frames, flow_cache: bool
) -> dict:
    """Run the steps with the captures written into `captures`; the files written, by tap."""
    if flow_cache:
        FlowCache(network).install()
    network.journal.open(captures)
    network.run(apps, progress, max_frames)
    return network.journal.close()
