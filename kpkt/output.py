"""Running a topology into an output folder, which is replaced as a whole.

The run is staged beside the target and swapped into place at the end (kpkt/output_folder.py),
so an interrupted or failed run never leaves a mix of old and new files, and only what kpkt
wrote is ever replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kpkt import output_folder
from kpkt.capture import manifest
from kpkt.network import Network
from kpkt.topology.build import build
from kpkt.topology.spec import Topology


@dataclass
class RunResult:
    topology: Topology
    network: Network
    folder: Path
    files: dict  # Tap -> file name


def run_to_folder(
    topology: Topology,
    folder: Path,
    progress=None,
    force: bool = False,
    max_frames: int | None = None,
) -> RunResult:
    """Run `topology` into `folder`. `force`: write into a folder that holds files kpkt did not
    write (they are kept). `max_frames`: stop (KpktError) if the captures would hold more."""
    target = output_folder.check_target(Path(folder), _kept_folders(topology))
    previous = output_folder.inspect_target(target, force)
    output_folder.remove_stale(target)
    network, apps = build(topology)
    with output_folder.staging(target) as work:
        try:
            network.journal.open(work)
            network.run(apps, progress, max_frames)
            files = network.journal.close()
            manifest.write(work / "manifest.json", network.journal, topology, files)
        except OSError as error:
            raise output_folder.problem(Path(folder), "write the output", error) from None
        output_folder.commit(work, target, previous)
    return RunResult(topology, network, Path(folder), files)


def _kept_folders(topology: Topology) -> dict[str, Path]:
    """The folders an output folder must stay below, by what they are."""
    kept = {
        "the current folder": Path.cwd().resolve(),
        "the topology file's folder": Path(os.path.realpath(topology.source)).parent,
    }
    if os.environ.get("HOME"):
        kept["the home folder"] = Path(os.path.realpath(os.environ["HOME"]))
    return kept
