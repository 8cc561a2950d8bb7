"""A run's folder in the sweep folder, and how a rerun of the sweep knows a run is done.

`runs/<hash>/` (the first 16 hex digits of the run's content hash) is written in a temporary
folder beside it and renamed into place whole, with `row.json` (the hash, the keep mode and the
run's summary columns) among its files: a folder there with a row.json for the same hash and
keep mode, and the files that keep mode keeps, is a finished run, and is not run again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from kpkt.errors import KpktError

ROW = "row.json"
TOPOLOGY = "topology.yaml"
MANIFEST = "manifest.json"


def folder_name(digest: str) -> str:
    return digest[:16]


def record(digest: str, keep: str, summary: dict) -> str:
    """row.json's text."""
    return json.dumps({"hash": digest, "keep": keep, "summary": summary}, indent=1) + "\n"


def finished(folder: Path, digest: str, keep: str) -> dict | None:
    """The summary columns of the finished run in `folder`, or None when it must run."""
    try:
        saved = json.loads((folder / ROW).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or (saved.get("hash"), saved.get("keep")) != (digest, keep):
        return None
    if keep != "summary" and not _complete(folder, keep == "all"):
        return None
    return saved.get("summary")


def _complete(folder: Path, captures: bool) -> bool:
    """The manifest and topology.yaml are there, and with `captures` every capture it lists."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = [TOPOLOGY]
    if captures:
        wanted += ["all.pcapng", *(capture["file"] for capture in manifest["captures"])]
    return all((folder / name).is_file() for name in wanted)


def keep_only(folder: Path, keep: str) -> None:
    """Delete from a run's output folder what `keep` does not keep: `manifest` keeps
    manifest.json, `summary` nothing (row.json is written after)."""
    if keep == "all":
        return
    for path in folder.iterdir():
        if keep == "summary" or path.name != MANIFEST:
            path.unlink()


def install(staged: Path, folder: Path) -> None:
    """Put the finished run `staged` (a folder on the same file system) in place as `folder`,
    replacing an older one."""
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        folder.rename(old / "previous")
        staged.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(folder)


def install_files(files: dict[str, bytes], folder: Path) -> None:
    """Write a run's files, as a worker returned them (--collect), into place as `folder`."""
    try:
        scratch = Path(
            tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent)
        )
    except OSError as error:
        raise KpktError(f"{folder.parent}: cannot write a run there: {error.strerror}") from None
    try:
        staged = scratch / "run"
        staged.mkdir()
        for name, data in files.items():
            (staged / name).write_bytes(data)
        install(staged, folder)
    except OSError as error:
        raise KpktError(f"{folder}: cannot write the run's files: {error.strerror}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
