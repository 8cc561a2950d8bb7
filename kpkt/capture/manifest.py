"""`manifest.json`: the run's index of capture points, steps with their results (as data and
as a line of prose) and hops, and drops.

It is streamed to the file piece by piece (a run of millions of frames never holds the whole
document in memory), indented for people, with one line per capture, per hop and per drop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from kpkt import __version__
from kpkt.capture.tap import Drop, Journal, StepLog, Tap
from kpkt.outcome import step_outcome


def write(path: Path, journal: Journal, topology, files: dict[Tap, str]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(_document(journal, topology, files))


def _document(journal: Journal, topology, files: dict[Tap, str]) -> Iterator[str]:
    head = {
        "topology": topology.name,
        "source": Path(topology.source).name,
        "sourceSha256": topology.sha256,
        "seed": topology.seed,
        "version": __version__,
    }
    yield "{\n"
    for key, value in head.items():
        yield f"  {json.dumps(key)}: {json.dumps(value)},\n"
    captures = (_capture(tap, files[tap]) for tap in journal.taps if tap in files)
    yield '  "captures": '
    yield from _lines(captures, indent=4)
    yield ',\n  "steps": ['
    pairs = zip(topology.steps, journal.steps, strict=True)
    for index, (step, log) in enumerate(pairs):
        yield "," if index else ""
        yield "\n    {"
        first = {"index": index, "text": step.text, **step_outcome(step, log)}
        yield from _step(log, journal.taps, first, indent=6)
        yield "\n    }"
    yield "\n  ],\n" if journal.steps else "],\n"
    yield '  "background": {'
    yield from _step(journal.background, journal.taps, {}, indent=4)
    yield '\n  },\n  "drops": '
    all_drops = (_drop(d) for log in [*journal.steps, journal.background] for d in log.drops)
    yield from _lines(all_drops, indent=4)
    yield "\n}\n"


def _step(log: StepLog, taps: list[Tap], first: dict, indent: int) -> Iterator[str]:
    pad = " " * indent
    fields = {
        **first,
        "startNs": log.start_ns,
        "endNs": log.end_ns,
        "result": log.result,
        "frames": log.hop_count,
        "hopsTruncated": log.hop_count - len(log.hops) // 4,
        "drops": len(log.drops),
    }
    yield ",".join(f"\n{pad}{json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items())
    yield f',\n{pad}"hops": '
    yield from _lines(_hops(log, taps), indent + 2)


def _hops(log: StepLog, taps: list[Tap]) -> Iterator[dict]:
    hops = log.hops
    for at in range(0, len(hops), 4):
        tap, index, outbound, pid = hops[at : at + 4]
        yield {
            "capture": taps[tap].name,
            "index": index,
            "direction": "out" if outbound else "in",
            "packet": pid,
        }


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
