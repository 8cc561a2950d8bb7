"""The bounds on what a topology file may ask of kpkt (docs/topology.md#limits): the file's size
and nesting, the characters of its text, and how many packets and how much time its traffic
takes. A file beyond them is the user's problem, found at load time, with its YAML path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kpkt.errors import TopologyError
from kpkt.files import read_regular_file
from kpkt.spec import NS_PER_SECOND, PacketStep, PingStep, Step, UdpStep
from kpkt.topology.fields import Report

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 50  # nested mappings and lists
MAX_COUNT = 1_000_000  # packets of one udp or ping step
MAX_SECONDS = 1_000_000  # `at`, `interval`, and the end of the run's last step
MAX_TIME_NS = MAX_SECONDS * NS_PER_SECOND
DEFAULT_MAX_PACKETS = 1_000_000  # frames a run writes in total (`kpkt run --max-packets`)

# C0 controls other than tab, newline and carriage return, DEL, and the C1 controls
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def read_topology_file(path: Path) -> bytes:
    """The bytes of a topology file: a regular file of at most MAX_FILE_BYTES."""
    return read_regular_file(
        path,
        MAX_FILE_BYTES,
        give="give the path of a YAML topology file",
        limit=f"a topology file may hold ({MAX_FILE_BYTES} bytes, 16 MiB)",
        error=TopologyError,
    )


def deep_nesting(depth: int) -> str | None:
    """Why a YAML node at `depth` (the document is 1) is refused, or None."""
    if depth <= MAX_DEPTH:
        return None
    return f"nested deeper than {MAX_DEPTH} levels of mappings and lists; flatten it"


def check_characters(document: Any, report: Report, read_from: str | None = None) -> None:
    """Report every key and string holding a control character (NUL, ESC, DEL, ...), shown
    escaped: such text has no place in a name, and printed raw it would reach the terminal.

    Each list and mapping is visited once, however many YAML aliases point at it. `read_from`: the
    YAML `document` was read from, if it was: one with no control character and no escape
    (`\\`, which a double-quoted string writes one with) gave no string one, and the document
    is not walked."""
    if read_from is not None and "\\" not in read_from and not _CONTROL.search(read_from):
        return
    for path, text, is_key in _strings(document):
        if found := _CONTROL.search(text):
            what = "key " if is_key else ""
            report.error(
                path or "(top level)",
                f"{what}{text!r} holds the control character {found[0]!r}; remove it",
            )


def _strings(document: Any) -> Iterator[tuple[str, str, bool]]:
    """Every string value and mapping key in `document`: its YAML path (a key's: its mapping's),
    the text, and whether it is a key. Iterative, so that no depth is too deep; a key with a
    control character is not descended into, so that every path is clean text."""
    seen: set[int] = set()
    todo: list[tuple[str, Any]] = [("", document)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, str):
            yield path, value, False
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            if isinstance(value, list):
                todo.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
                continue
            for key, item in value.items():
                if isinstance(key, str) and _CONTROL.search(key):
                    yield path, key, True
                else:
                    todo.append((f"{path}.{key}" if path else str(key), item))


def check_run_length(steps: list[tuple[str, Step]], report: Report) -> None:
    """Report the first step whose sending would end after MAX_SECONDS: steps run one after
    another, each from its `at:` or the end of the one before, whichever is later, and a udp
    ping or packet step sends its `count` packets `interval` apart."""
    end = 0
    for path, step in steps:
        start = max(end, step.at_ns or 0)
        sending = 0
        if isinstance(step, UdpStep | PingStep | PacketStep):
            sending = (step.count - 1) * step.interval_ns
        end = start + sending
        if end > MAX_TIME_NS:
            report.error(
                path,
                f"the run would last past {MAX_SECONDS} s (this step sends until "
                f"{end / NS_PER_SECOND:.0f} s); a run ends within {MAX_SECONDS} s: "
                "lower count, interval or at",
            )
            return
