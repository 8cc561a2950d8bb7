"""A sweep file: which topologies to run, the parameters to vary (by YAML path, as a grid, a
list, or both) and what to keep of each run; loaded and expanded into one topology per run.

Every problem is reported with the sweep file's path and the key at fault (exit status 2); the
values themselves are the topology loader's to judge, run by run (a run whose topology does not
load is recorded as failed with the loader's error).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kpkt import __version__
from kpkt.errors import TopologyError
from kpkt.sweep import paths
from kpkt.sweep.summary import is_numeric_column
from kpkt.topology.examples import example_named
from kpkt.topology.fields import Fields, Report, show
from kpkt.topology.load import API_VERSION, parse_document, read_text

KIND = "Sweep"
SWEEP_KEYS = ("apiVersion", "kind", "topologies", "grid", "list", "keep", "plot")
RANGE_KEYS = ("from", "to", "step")
KEEP = ("all", "manifest", "summary")
MAX_RANGE = 100_000


@dataclass(frozen=True)
class Run:
    index: int  # from 1, in expansion order
    topology: str  # the base topology as the sweep file names it
    source: str  # its path
    params: dict[str, Any]  # YAML path -> value
    text: str  # the expanded topology, as YAML
    digest: str  # run_digest(text)


@dataclass(frozen=True)
class Sweep:
    source: str
    parameters: tuple[str, ...]  # every swept path, grid's first
    runs: tuple[Run, ...]
    keep: str
    plot: str | None  # the summary column plotted against each numeric parameter


def run_digest(text: str) -> str:
    """The content hash of a run's inputs: the expanded topology and the kpkt version."""
    return hashlib.sha256(f"kpkt {__version__}\n{text}".encode()).hexdigest()


def load_sweep(path: Path) -> Sweep:
    source = str(path)
    document = parse_document(read_text(path), source)
    if not isinstance(document, dict):
        raise TopologyError(
            f"{source}: expected a mapping with apiVersion, kind: {KIND}, topologies and grid "
            f"or list, got {'an empty file' if document is None else show(document)}"
        )
    report = Report(source)
    doc = Fields(document, "", report)
    doc.reject_unknown(SWEEP_KEYS)
    _check_header(doc)
    bases = _read_topologies(doc, path.parent)
    grid = _read_grid(doc)
    entries = _read_list(doc, grid)
    keep = doc.choice("keep", KEEP, "all")
    parameters = tuple(dict.fromkeys([*grid, *(key for entry in entries for key in entry)]))
    plot = _read_plot(doc, grid, entries)
    for name, _, base in bases:
        _check_paths(base, name, grid, entries, report)
    if report.errors:
        raise TopologyError(report.errors)
    runs = _expand(bases, grid, entries)
    _check_distinct(runs, source)
    return Sweep(source, parameters, tuple(runs), keep, plot)


def _check_header(doc: Fields) -> None:
    for key, wanted in (("apiVersion", API_VERSION), ("kind", KIND)):
        value = doc.get(key, required=f"add `{key}: {wanted}` at the top")
        if value is not None and value != wanted:
            doc.bad(key, f"expected {wanted}, got {show(value)}: this is not a kpkt sweep file")


def _read_topologies(doc: Fields, folder: Path) -> list[tuple[str, str, dict]]:
    """Each base topology: its name in the sweep file, its path, its document."""
    entries = doc.entries("topologies")
    if not entries and "topologies" not in doc.failed:
        doc.bad("topologies", "required; list the topology files to run (or shipped examples)")
    bases = []
    for at, name in entries:
        if not isinstance(name, str) or not name:
            doc.report.error(at, f"expected a topology file or example name, got {show(name)}")
            continue
        path = folder / name
        if not path.exists() and Path(name).parent == Path("."):
            try:
                path = example_named(name).path
            except TopologyError:
                doc.report.error(
                    at,
                    f"{show(name)}: no such file beside the sweep file ({path}), and no shipped "
                    "example of that name (`kpkt examples` lists them)",
                )
                continue
        base = parse_document(read_text(path), str(path))
        if not isinstance(base, dict):
            doc.report.error(at, f"{path}: expected a topology (a mapping), got {show(base)}")
            continue
        bases.append((name, str(path), base))
    return bases


def _read_grid(doc: Fields) -> dict[str, list[Any]]:
    """Each grid path with its values (a list, or a range {from, to, step})."""
    value = doc.get("grid")
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        doc.bad("grid", f"expected a mapping of YAML paths to lists of values, got {show(value)}")
        return {}
    grid = {}
    for path, values in value.items():
        if _parsed(path, "grid", doc.report) is None:
            continue
        if isinstance(values, dict):
            values = _range(values, f"grid: {show(path)}", doc.report)
        elif not isinstance(values, list) or not values:
            doc.report.error(
                "grid",
                f"{show(path)}: expected a list of values or {{from, to, step}}, "
                f"got {show(values)}",
            )
            continue
        if values:
            grid[path] = values
    return grid


def _read_list(doc: Fields, grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The list's entries: each a mapping of YAML paths to one value."""
    entries = []
    for at, entry in doc.entries("list"):
        if not isinstance(entry, dict) or not entry:
            doc.report.error(at, f"expected a mapping of YAML paths to values, got {show(entry)}")
            continue
        for path in entry:
            if _parsed(path, at, doc.report) is not None and path in grid:
                doc.report.error(at, f"{show(path)} is also in grid; vary it in one place")
        entries.append(entry)
    return entries


def _parsed(path: Any, at: str, report: Report) -> tuple[paths.Step, ...] | None:
    try:
        return paths.parse(path)
    except paths.PathError as error:
        report.error(at, str(error))
        return None


def _range(spec: dict, at: str, report: Report) -> list[Any]:
    """{from: 0, to: 0.2, step: 0.05}: from `from` to `to` (included when a step lands on it)."""
    f = Fields.check(spec, at, report, RANGE_KEYS)
    if f is None:
        return []
    numbers = {}
    for key in RANGE_KEYS:
        value = f.get(key, required="a range takes from, to and step")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            f.bad(key, f"expected a number, got {show(value)}")
        elif value is not None:
            numbers[key] = value
    if len(numbers) < len(RANGE_KEYS):
        return []
    start, stop, step = numbers["from"], numbers["to"], numbers["step"]
    if not step > 0 or not start <= stop or not math.isfinite(stop - start):
        f.bad(
            "step",
            f"expected from <= to and a step above 0, got from {start}, to {stop}, step {step}",
        )
        return []
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RANGE:
        f.bad("step", f"{count} values is too many (at most {MAX_RANGE}); take a larger step")
        return []
    if all(isinstance(number, int) for number in numbers.values()):
        return [start + index * step for index in range(count)]
    return [round(start + index * step, 12) for index in range(count)]


def _read_plot(doc: Fields, grid: dict[str, list[Any]], entries: list[dict]) -> str | None:
    column = doc.string("plot")
    if column is None:
        return None
    if not is_numeric_column(column):
        doc.bad(
            "plot",
            f"{show(column)} is not a numeric column of the summary: steps, drops, expect.met, "
            "expect.missed, outcome.<outcome>, drop.<reason> or packets.<owner>/<interface>",
        )
    values: dict[str, list[Any]] = {path: list(values) for path, values in grid.items()}
    for entry in entries:
        for path, value in entry.items():
            values.setdefault(path, []).append(value)
    if not any(all(map(_is_number, found)) for found in values.values()):
        doc.bad("plot", "no swept parameter has numeric values to plot it against")
    return column


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_paths(
    base: dict, name: str, grid: dict[str, list[Any]], entries: list[dict], report: Report
) -> None:
    places = [("grid", path) for path in grid]
    places += [(f"list[{index}]", path) for index, entry in enumerate(entries) for path in entry]
    for at, path in places:
        steps = paths.parse(path)
        try:
            paths.check(base, steps)
        except paths.PathError as error:
            report.error(at, f"{show(path)} does not fit topology {name}: {error}")


def _expand(bases: list[tuple[str, str, dict]], grid: dict, entries: list[dict]) -> list[Run]:
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    runs = []
    for name, source, base in bases:
        for entry in entries or [{}]:
            for point in points:
                params = {**entry, **point}
                document = copy.deepcopy(base)
                for path, value in params.items():
                    paths.set_value(document, paths.parse(path), copy.deepcopy(value))
                text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
                run = Run(len(runs) + 1, name, source, params, text, run_digest(text))
                runs.append(run)
    return runs


def _check_distinct(runs: list[Run], source: str) -> None:
    first: dict[str, Run] = {}
    problems = []
    for run in runs:
        if run.digest in first:
            problems.append(
                f"{source}: runs {first[run.digest].index} and {run.index} are the same "
                f"topology ({_shown(run)}); list each combination once"
            )
        first.setdefault(run.digest, run)
    if problems:
        raise TopologyError(problems)


def _shown(run: Run) -> str:
    return ", ".join([run.topology, *(f"{key}={show(value)}" for key, value in run.params.items())])
