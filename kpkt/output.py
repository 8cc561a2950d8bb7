"""Running a topology into an output folder, which is replaced as a whole.

The run writes into a temporary folder beside the target and renames it into place at the end,
so an interrupted or failed run never leaves a mix of old and new files. An existing folder is
replaced only if it is empty or was written by kpkt (it holds a manifest.json).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kpkt.capture import manifest
from kpkt.errors import KpktError
from kpkt.html_report import write_report
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
    topology: Topology, folder: Path, progress=None, report: bool = True
) -> RunResult:
    """Run `topology` into `folder`: its captures, manifest.json and (unless `report` is False)
    report.html."""
    folder = Path(folder)
    _check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    network, apps = build(topology)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    work.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary folder
    try:
        network.journal.open(work)
        network.run(apps, progress)
        files = network.journal.close()
        manifest.write(work / "manifest.json", network.journal, topology, files)
        if report:
            write_report(work)
        _replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return RunResult(topology, network, folder, files)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_replaceable(folder: Path) -> None:
    if folder.exists() and (
        not folder.is_dir() or (any(folder.iterdir()) and not (folder / "manifest.json").exists())
    ):
        raise KpktError(
            f"{folder}: exists and is not a kpkt output folder (no manifest.json); "
            "choose another folder with -o or remove it"
        )


def _replace(work: Path, folder: Path) -> None:
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        folder.rename(old / "previous")
    work.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
