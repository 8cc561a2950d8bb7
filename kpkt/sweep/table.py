"""The summary table: one row per run, written as CSV (summary.csv) and JSON Lines
(summary.jsonl), each file replaced whole.

Columns: `run`, `topology`, one per swept YAML path, `status` (ok or failed), `error`, `folder`
(the run's folder, relative to the sweep folder), then the manifest's columns
(kpkt.sweep.summary) over every run: a count a run does not have is 0, any other column it does
not have is empty (null in JSON Lines). Rows are in run order, whatever order the runs finished
in, and nothing depends on timing, so a sweep's tables are the same on every executor.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from kpkt.errors import KpktError
from kpkt.sweep.summary import COUNT_PREFIXES, COUNTS, column_order

FIXED_HEAD = ("run", "topology")
FIXED_TAIL = ("status", "error", "folder")
CSV = "summary.csv"
JSONL = "summary.jsonl"


def columns(parameters: tuple[str, ...], rows: list[dict]) -> list[str]:
    head = [*FIXED_HEAD, *parameters, *FIXED_TAIL]
    seen: dict[str, int] = {}
    for row in rows:
        for name in row:
            if name not in head:
                seen.setdefault(name, len(seen))
    return head + sorted(seen, key=lambda name: column_order(name, seen[name]))


def complete(row: dict, names: list[str]) -> dict[str, Any]:
    """`row` with every column: a missing count 0 (for a run that has a manifest), the rest
    None."""
    filled = {}
    for name in names:
        value = row.get(name)
        if value is None and row["status"] == "ok" and _is_count(name):
            value = 0
        filled[name] = value
    return filled


def _is_count(name: str) -> bool:
    return name in COUNTS or name.startswith(COUNT_PREFIXES)


def write_tables(folder: Path, parameters: tuple[str, ...], rows: list[dict]) -> list[Path]:
    names = columns(parameters, rows)
    table = [complete(row, names) for row in rows]
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([_csv_cell(row[name]) for name in names] for row in table)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in table)
    written = [folder / CSV, folder / JSONL]
    _write(written[0], text.getvalue())
    _write(written[1], lines)
    return written


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _write(path: Path, text: str) -> None:
    """Write `path` whole (a temporary file beside it, renamed over it)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise KpktError(f"{path}: cannot write it: {error.strerror}") from None
