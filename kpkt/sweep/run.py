"""Running a sweep into its folder: skip the runs a previous sweep finished, hand the rest to
an executor, and write the summary tables and plots once every run has ended.

The sweep folder holds `runs/<hash>/` (one per run, see kpkt.sweep.resume), `summary.csv`,
`summary.jsonl` and the plots. It is made by kpkt or empty: anything else is refused.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from kpkt.errors import KpktError
from kpkt.sweep import resume
from kpkt.sweep.plot import plot_files
from kpkt.sweep.sweepfile import Run, Sweep
from kpkt.sweep.table import write_tables
from kpkt.sweep.task import RunDone, RunTask, failure, perform

RUNS = "runs"


@dataclass
class SweepResult:
    rows: list[dict]  # in run order, as the tables have them
    ran: int  # runs executed now
    skipped: int  # runs finished by an earlier sweep into the same folder
    failed: int
    files: list[Path]  # the tables and plots written


def run_sweep(
    sweep: Sweep, folder: Path, executor, collect: bool, max_frames: int, progress=None
) -> SweepResult:
    """Run `sweep` into `folder` on `executor`, each run failing beyond `max_frames` frames;
    `progress` (a SweepProgress, or None) is told of every run that ends."""
    folder = folder.absolute()
    created = not folder.exists()
    runs = _prepare(folder)
    try:
        return _run(sweep, runs, executor, collect, max_frames, progress)
    except KpktError:  # a problem of the input or the machine: leave no empty folder behind
        if created and not any(runs.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _run(
    sweep: Sweep, runs: Path, executor, collect: bool, max_frames: int, progress
) -> SweepResult:
    folder = runs.parent
    done: dict[int, RunDone] = {}
    pending: list[Run] = []
    for run in sweep.runs:
        summary = resume.finished(runs / resume.folder_name(run.digest), run.digest, sweep.keep)
        if summary is None:
            pending.append(run)
        else:
            done[run.index] = RunDone(summary)
    skipped = len(done)
    if progress is not None:
        progress.skipped = skipped
    tasks = [_task(run, runs, sweep.keep, collect, max_frames) for run in pending]
    failed = 0
    for position, result in executor.run(perform, tasks):
        run = pending[position]
        if isinstance(result, BaseException):  # the worker died, or the task never ran
            result = RunDone(None, failure(result))
        if result.files is not None:
            resume.install_files(result.files, runs / resume.folder_name(run.digest))
        done[run.index] = result
        failed += result.summary is None
        if progress is not None:
            progress.update(len(done) - skipped, failed)
    rows = [_row(run, done[run.index], sweep) for run in sweep.runs]
    files = write_tables(folder, sweep.parameters, rows)
    if sweep.plot is not None:
        for name, text in plot_files(sweep.parameters, rows, sweep.plot).items():
            files.append(_write_plot(folder / name, text))
    return SweepResult(rows, len(pending), skipped, failed, files)


def _prepare(folder: Path) -> Path:
    """The sweep folder's runs/ folder, made if need be, without the temporary folders (their
    names start with a dot) of runs an earlier sweep was stopped in."""
    runs = folder / RUNS
    try:
        foreign = folder.exists() and (
            not folder.is_dir() or (any(folder.iterdir()) and not runs.is_dir())
        )
        if not foreign:
            runs.mkdir(parents=True, exist_ok=True)
            for leftover in runs.glob(".*"):
                shutil.rmtree(leftover)
    except OSError as error:
        raise KpktError(
            f"{error.filename or folder}: cannot use it: {error.strerror}; choose another "
            "folder with -o"
        ) from None
    if foreign:
        raise KpktError(
            f"{folder}: exists and is not a kpkt sweep folder (no {RUNS}/); choose another "
            "folder with -o or remove it"
        )
    return runs


def _task(run: Run, runs: Path, keep: str, collect: bool, max_frames: int) -> RunTask:
    folder = runs / resume.folder_name(run.digest)
    return RunTask(run.text, run.source, run.digest, keep, str(folder), collect, max_frames)


def _row(run: Run, result: RunDone, sweep: Sweep) -> dict:
    row = {"run": run.index, "topology": run.topology, **run.params}
    ok = result.summary is not None
    row["status"] = "ok" if ok else "failed"
    row["error"] = result.error
    row["folder"] = f"{RUNS}/{resume.folder_name(run.digest)}" if ok else None
    return {**row, **(result.summary or {})}


def _write_plot(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise KpktError(f"{path}: cannot write it: {error.strerror}") from None
    return path
