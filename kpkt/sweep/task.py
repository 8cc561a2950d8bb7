"""One run of a sweep, as a worker process performs it: load the expanded topology, run it,
read the summary columns from its manifest, keep what the sweep keeps, and put the folder in
place (or hand its files back to the client with --collect). A failure is returned, not
raised, so that it is recorded and the sweep goes on."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kpkt import runner
from kpkt.errors import KpktError
from kpkt.sweep import resume
from kpkt.sweep.summary import manifest_columns
from kpkt.topology.load import load_topology_text


@dataclass(frozen=True)
class RunTask:
    text: str  # the expanded topology
    source: str  # the base topology's path, for messages and the manifest
    digest: str
    keep: str  # all, manifest or summary
    folder: str  # where the run's folder goes (absolute, on the workers' file system)
    collect: bool  # hand the files back instead of writing them to `folder`
    max_frames: int  # a run whose captures would hold more fails


@dataclass(frozen=True)
class RunDone:
    summary: dict | None  # the manifest's columns; None when the run failed
    error: str | None = None
    files: dict[str, bytes] | None = None  # with collect: the run folder's files


def perform(task: RunTask) -> RunDone:
    try:
        topology = load_topology_text(task.text, task.source)
        folder = Path(task.folder)
        beside = None if task.collect else folder.parent  # same file system: a rename
        if beside is not None and not beside.is_dir():
            return RunDone(
                None,
                f"{beside}: no such folder on this worker; put the sweep folder "
                "on a file system every worker shares, at the same path, or use --collect",
            )
        scratch = Path(tempfile.mkdtemp(prefix=".kpkt-run.", dir=beside))
        try:
            output = scratch / "run"
            runner.run(topology, folder=output, max_frames=task.max_frames, report=False)
            manifest = json.loads((output / resume.MANIFEST).read_text(encoding="utf-8"))
            summary = manifest_columns(manifest)
            resume.keep_only(output, task.keep)
            if task.keep != "summary":
                (output / resume.TOPOLOGY).write_text(task.text, encoding="utf-8")
            (output / resume.ROW).write_text(
                resume.record(task.digest, task.keep, summary), encoding="utf-8"
            )
            if task.collect:
                files = {path.name: path.read_bytes() for path in output.iterdir()}
                return RunDone(summary, files=files)
            resume.install(output, folder)
            return RunDone(summary)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except KpktError as error:
        return RunDone(None, "; ".join(error.problems))
    except Exception as error:  # recorded with the run: the sweep goes on
        return RunDone(None, failure(error))


def failure(error: BaseException) -> str:
    """How the table shows a run's internal error."""
    return f"internal error: {type(error).__name__}: {error}"
