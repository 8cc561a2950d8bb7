"""YAML paths into a topology document: `cluster.cni`, `traffic[2].udp.count`,
`nodes[0].devices["cni0"].mac`. Parsing one, and setting a value at one in a copy of the
document."""

from __future__ import annotations

import re
from typing import Any

from kpkt.topology.fields import show

_STEP = re.compile(r'\.([A-Za-z_][\w-]*)|\[(\d+)\]|\["([^"]+)"\]')
_FIRST = re.compile(r'([A-Za-z_][\w-]*)|\["([^"]+)"\]')

Step = str | int  # a mapping key or a list index


class PathError(ValueError):
    """A path that is malformed or does not fit the document; the message says why."""


def parse(path: str) -> tuple[Step, ...]:
    """The keys and indexes of `path`, in order."""
    if not isinstance(path, str):
        raise PathError(f"expected a YAML path like cluster.cni, got {show(path)}")
    first = _FIRST.match(path)
    if first is None:
        raise PathError(f"{show(path)} does not start with a key (like cluster.cni)")
    steps: list[Step] = [first[1] or first[2]]
    at = first.end()
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            raise PathError(
                f"{show(path)} is not a YAML path: at {show(path[at:])} expected .key, [index] or "
                '["key.with.dots"]'
            )
        key, index, quoted = match.groups()
        steps.append(int(index) if index is not None else key or quoted)
        at = match.end()
    return tuple(steps)


def check(document: Any, steps: tuple[Step, ...]) -> None:
    """That `steps` fit `document`: every step but the last names something that is there
    (a key of a mapping, an index within a list); the last may add a key to a mapping."""
    here = document
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        where = text(steps[:depth]) or "the top level"
        if isinstance(step, int):
            if not isinstance(here, list):
                raise PathError(f"[{step}]: {where} is {show(here)}, not a list")
            if step >= len(here):
                raise PathError(f"[{step}]: {where} has {len(here)} item(s) (from [0])")
        else:
            if not isinstance(here, dict):
                raise PathError(f"{show(step)}: {where} is {show(here)}, not a mapping")
            if step not in here:
                if last:
                    return
                raise PathError(f"{show(step)}: {where} has no key {show(step)}")
        here = here[step]


def set_value(document: Any, steps: tuple[Step, ...], value: Any) -> None:
    """Put `value` at `steps` in `document` (checked with check() first)."""
    here = document
    for step in steps[:-1]:
        here = here[step]
    here[steps[-1]] = value


def text(steps: tuple[Step, ...]) -> str:
    """`steps` written as a path again."""
    parts: list[str] = []
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif not re.fullmatch(r"[A-Za-z_][\w-]*", step):
            parts.append(f'["{step}"]')
        else:
            parts.append(f".{step}" if parts else step)
    return "".join(parts)
