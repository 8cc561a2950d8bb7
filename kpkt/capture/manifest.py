"""`manifest.json`: the run's index of capture points, steps with their results (as data and
as a line of prose) and hops, and drops.

It is streamed to the file piece by piece (a run of millions of frames never holds the whole
document in memory), indented for people, with one line per capture, per hop and per drop.
`document` is the same document as data with its hops cut to a budget: what the run hands its
report (kpkt/html_report), which shows only the first hops, instead of the file to read back.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring_ascii
from pathlib import Path

from kpkt import __version__
from kpkt.capture.tap import Drop, Journal, StepLog, Tap
from kpkt.outcome import step_outcome


def write(path: Path, journal: Journal, topology, files: dict[Tap, str]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(_document(journal, topology, files))


def document(journal: Journal, topology, files: dict[Tap, str], max_hops: int) -> dict:
    """The document `write` writes, as json.loads reads it back, but with its lists of hops cut
    to `max_hops` hops in all (in the document's order: the steps', then the background's):
    what a reader that keeps only the first hops needs, without writing or parsing the rest."""
    names = [_json(tap.name) for tap in journal.taps]
    heads = _heads(names, indent=0)
    budget = max_hops

    def cut(log: StepLog) -> list[dict]:
        nonlocal budget
        hops = json.loads(_hops(log.hops[: 4 * budget], heads, indent=2))
        budget -= len(hops)
        return hops

    return {
        **_head(topology),
        "captures": [_capture(tap, files[tap]) for tap in journal.taps if tap in files],
        "steps": [
            {**_fields(log, first), "hops": cut(log)} for first, log in _firsts(journal, topology)
        ],
        "background": {**_fields(journal.background, {}), "hops": cut(journal.background)},
        "drops": [_drop(drop) for drop in _all_drops(journal)],
    }


def _document(journal: Journal, topology, files: dict[Tap, str]) -> Iterator[str]:
    yield "{\n"
    for key, value in _head(topology).items():
        yield f"  {json.dumps(key)}: {json.dumps(value)},\n"
    captures = (_capture(tap, files[tap]) for tap in journal.taps if tap in files)
    yield '  "captures": '
    yield from _lines(captures, indent=4)
    yield ',\n  "steps": ['
    names = [_json(tap.name) for tap in journal.taps]
    heads = _heads(names, indent=8)
    for first, log in _firsts(journal, topology):
        yield "," if first["index"] else ""
        yield "\n    {"
        yield from _step(log, heads, first, indent=6)
        yield "\n    }"
    yield "\n  ],\n" if journal.steps else "],\n"
    yield '  "background": {'
    yield from _step(journal.background, _heads(names, indent=6), {}, indent=4)
    yield '\n  },\n  "drops": '
    yield from _lines((_drop(drop) for drop in _all_drops(journal)), indent=4)
    yield "\n}\n"


def _head(topology) -> dict:
    """The document's first fields: which topology ran, with which seed and kpkt."""
    return {
        "topology": topology.name,
        "source": Path(topology.source).name,
        "sourceSha256": topology.sha256,
        "seed": topology.seed,
        "version": __version__,
    }


def _firsts(journal: Journal, topology) -> Iterator[tuple[dict, StepLog]]:
    """Each step's first fields (its index, text and outcome) with its log."""
    pairs = zip(topology.steps, journal.steps, strict=True)
    for index, (step, log) in enumerate(pairs):
        yield {"index": index, "text": step.text, **step_outcome(step, log)}, log


def _all_drops(journal: Journal) -> Iterator[Drop]:
    """The run's drops: the steps' in order, then the background's."""
    for log in [*journal.steps, journal.background]:
        yield from log.drops


def _step(log: StepLog, heads: list[str], first: dict, indent: int) -> Iterator[str]:
    """The step's fields, its hops last (`heads`: as `_hops` takes them, indented two more)."""
    pad = " " * indent
    fields = _fields(log, first)
    yield ",".join(f"\n{pad}{_json(k)}: {_json(v)}" for k, v in fields.items())
    yield f',\n{pad}"hops": '
    yield _hops(log.hops, heads, indent + 2)


def _fields(log: StepLog, first: dict) -> dict:
    """A step's fields but its hops: `first`, then what its log counted."""
    return {
        **first,
        "startNs": log.start_ns,
        "endNs": log.end_ns,
        "result": log.result,
        "frames": log.hop_count,
        "hopsTruncated": log.hop_count - len(log.hops) // 4,
        "drops": len(log.drops),
    }


def _json(value) -> str:
    """`json.dumps(value)`; whole numbers and text (most of a step's fields, and the names of
    all) without the encoder it makes for each call."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        return encode_basestring_ascii(value)
    return json.dumps(value)


def _heads(names: list[str], indent: int) -> list[str]:
    """The start of a hop's line at each capture point, by tap number, for `_hops`: `names`
    holds each capture point's name as a JSON string."""
    pad = " " * indent
    return [f'{pad}{{"capture": {name}, "index": ' for name in names]


def _hops(hops: array, heads: list[str], indent: int) -> str:
    """A hop log's hops (StepLog.hops) as a JSON list, one per line, as `_lines` writes each hop's
    `{"capture": ..., "index": ..., "direction": ..., "packet": ...}`, each line the head of
    its capture point (`_heads`) and its numbers (a run of a million hops spends its manifest
    here: no dict and no json.dumps a hop, and the hop log's four numbers a hop read in
    fours)."""
    if not hops:
        return "[]"
    fours = [iter(hops)] * 4
    lines = [
        f"{heads[tap]}{index}{_WAY[out]}{pid}}}"
        for tap, index, out, pid in zip(*fours, strict=True)
    ]
    return "[\n" + ",\n".join(lines) + "\n" + " " * (indent - 2) + "]"


# what follows a hop's index, by its direction (the hop log's 1 if outbound)
_WAY = (', "direction": "in", "packet": ', ', "direction": "out", "packet": ')


def _lines(items: Iterable[dict], indent: int) -> Iterator[str]:
    """A JSON list with one compact item per line."""
    pad = " " * indent
    empty = True
    for item in items:
        yield ("[\n" if empty else ",\n") + pad + json.dumps(item)
        empty = False
    yield "[]" if empty else "\n" + " " * (indent - 2) + "]"


def _capture(tap: Tap, file: str) -> dict:
    peer = {"owner": tap.peer.owner, "interface": tap.peer.ifname} if tap.peer else None
    return {
        "file": file,
        "owner": tap.owner,
        "interface": tap.ifname,
        "kind": tap.kind,
        "mac": tap.mac,
        "linkType": tap.link_type,
        "ips": tap.ips,
        "node": tap.node,
        "peer": peer,
        "packets": tap.count,
    }


def _drop(drop: Drop) -> dict:
    return {
        "tNs": drop.t_ns,
        "where": drop.where,
        "reason": drop.reason,
        "detail": drop.detail,
        "step": drop.step,
        "packet": drop.pid,
    }
