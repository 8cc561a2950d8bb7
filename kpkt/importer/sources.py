"""What `kpkt run` and `kpkt import` are given: a kpkt topology alone, or kubectl dumps (files
or folders of them) with at most one overlay (overlay.py). Dumps are imported, the overlay laid
over them, and the result loaded as any topology."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpkt.errors import KpktError
from kpkt.importer.overlay import KIND, apply_overlay, read_overlay
from kpkt.importer.topology import Imported, import_files
from kpkt.importer.write import render
from kpkt.spec import Topology
from kpkt.topology.examples import find_topology
from kpkt.topology.load import load_topology, load_topology_document

SUFFIXES = (".yaml", ".yml", ".json")
HEAD_BYTES = 64 * 1024
_KIND = r"^kind:\s*[\"']?{}[\"']?\s*$"
_TOPOLOGY = re.compile(_KIND.format("Topology"), re.MULTILINE)
_OVERLAY = re.compile(_KIND.format(KIND), re.MULTILINE)


@dataclass(slots=True)
class Import:
    """An import and its text, with the file that names it in problems (the overlay, else the
    first dump)."""

    imported: Imported
    text: str
    source: Path


def load_cluster(arguments: list[Path], seed: int | None = None) -> Topology:
    """The topology the arguments of `kpkt run` describe."""
    if len(arguments) == 1 and not arguments[0].is_dir():
        path = find_topology(arguments[0])
        if _is_topology(path):
            return load_topology(path, seed=seed)
    result = import_arguments(arguments)
    return load_topology_document(result.imported.document, result.text, str(result.source), seed)


def import_arguments(arguments: list[Path], cni: str | None = None) -> Import:
    """Import the dumps among the arguments, with the overlay among them laid over; `cni`
    (`--cni`) overrides the overlay's and what the objects show."""
    files = _files(arguments)
    overlay: dict[str, Any] | None = None
    overlay_path: Path | None = None
    dumps = []
    for path in files:
        head = _head(path)
        if _TOPOLOGY.search(head):
            raise KpktError(
                f"{path}: a kpkt topology; give it alone (`kpkt run {path}`), or give kubectl "
                "dumps with an overlay (kind: Overlay)"
            )
        if not _OVERLAY.search(head):
            dumps.append(path)
        elif overlay_path is not None:
            raise KpktError(f"{path}: a second overlay (the first is {overlay_path}); merge them")
        else:
            overlay, overlay_path = read_overlay(str(path)), path
    if not dumps:
        raise KpktError(
            f"{arguments[0]}: no kubectl dump among the files; give `kubectl get -o yaml` output"
        )
    override = cni
    if override is None and overlay is not None:
        override = (overlay.get("cluster") or {}).get("cni")
    imported = import_files(dumps, override)
    if overlay is not None:
        apply_overlay(imported.document, overlay, str(overlay_path))
        imported.sources.append((str(overlay_path), _sha256(overlay_path)))
    source = overlay_path or dumps[0]
    return Import(imported, render(imported), source)


def _files(arguments: list[Path]) -> list[Path]:
    """The files the arguments name: a folder's YAML and JSON files, in name order."""
    files = []
    for argument in arguments:
        if argument.is_dir():
            inside = sorted(
                path
                for path in argument.iterdir()
                if path.suffix in SUFFIXES and not path.name.startswith(".") and path.is_file()
            )
            if not inside:
                raise KpktError(f"{argument}: a folder without .yaml, .yml or .json files")
            files.extend(inside)
        elif not argument.exists():
            raise KpktError(f"{argument}: no such file")
        else:
            files.append(argument)
    return files


def _is_topology(path: Path) -> bool:
    """Whether the file is a kpkt topology (`kind: Topology` at the top level); one that is
    not a readable regular file counts as one, so that loading it reports why."""
    return not path.is_file() or bool(_TOPOLOGY.search(_head(path)))


def _head(path: Path) -> str:
    """The start of a file, where a kpkt file says its kind ("" when it cannot be read: reading
    it as a dump reports why)."""
    if not path.is_file():
        return ""
    try:
        with path.open("rb") as file:
            return file.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
