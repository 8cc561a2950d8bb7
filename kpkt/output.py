"""The output folder of a run, which is replaced as a whole.

The run is staged beside the target and swapped into place at the end (kpkt/output_folder.py),
so an interrupted or failed run never leaves a mix of old and new files, and only what kpkt
wrote is ever replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kpkt import output_folder
from kpkt.spec import Topology


@contextmanager
def replacing(folder: Path, topology: Topology, force: bool) -> Iterator[Path]:
    """A staging folder to write the run of `topology` into; when the block ends without an
    error it replaces `folder`. `force`: write into a folder that holds files kpkt did not
    write (they are kept)."""
    target = output_folder.check_target(folder, _kept_folders(topology))
    previous = output_folder.inspect_target(target, force)
    output_folder.remove_stale(target)
    with output_folder.staging(target) as work:
        try:
            yield work
        except OSError as error:
            raise output_folder.problem(folder, "write the output", error) from None
        output_folder.commit(work, target, previous)


def _kept_folders(topology: Topology) -> dict[str, Path]:
    """The folders an output folder must stay below, by what they are."""
    kept = {
        "the current folder": Path.cwd().resolve(),
        "the topology file's folder": Path(os.path.realpath(topology.source)).parent,
    }
    if os.environ.get("HOME"):
        kept["the home folder"] = Path(os.path.realpath(os.environ["HOME"]))
    return kept
