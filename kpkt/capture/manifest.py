"""`manifest.json`: the run's index of capture points, steps with their hops, and drops."""

from __future__ import annotations

import json

from kpkt import __version__
from kpkt.capture.tap import Drop, Journal, StepLog, Tap


def manifest(journal: Journal, topology, files: dict[Tap, str]) -> dict:
    steps = []
    for index, (step, log) in enumerate(zip(topology.steps, journal.steps, strict=True)):
        steps.append({"index": index, "text": step.text, **_step_body(log)})
    all_drops = [d for log in [*journal.steps, journal.background] for d in log.drops]
    return {
        "topology": topology.name,
        "source": topology.source,
        "seed": topology.seed,
        "version": __version__,
        "captures": [_capture(tap, files.get(tap)) for tap in journal.taps if tap in files],
        "steps": steps,
        "background": _step_body(journal.background),
        "drops": [_drop(d) for d in all_drops],
    }


def dumps(document: dict) -> str:
    """Indented JSON with one line per hop: readable, and fast to write (the C encoder does the
    hop lists, which can hold thousands of entries)."""
    lists: dict[str, list] = {}

    def hold(body: dict) -> dict:
        key = f"@hops{len(lists)}@"
        lists[key] = body["hops"]
        return {**body, "hops": key}

    shaped = {
        **document,
        "steps": [hold(step) for step in document["steps"]],
        "background": hold(document["background"]),
    }
    text = json.dumps(shaped, indent=2)
    for key, hops in lists.items():
        lines = ",".join(f"\n        {json.dumps(hop)}" for hop in hops)
        text = text.replace(f'"{key}"', f"[{lines}\n      ]" if hops else "[]", 1)
    return text + "\n"


def _capture(tap: Tap, file: str) -> dict:
    peer = {"owner": tap.peer.owner, "interface": tap.peer.ifname} if tap.peer else None
    return {
        "file": file,
        "owner": tap.owner,
        "interface": tap.ifname,
        "kind": tap.kind,
        "mac": tap.mac,
        "ips": tap.ips,
        "node": tap.node,
        "peer": peer,
        "packets": tap.count,
    }


def _step_body(log: StepLog) -> dict:
    return {
        "startNs": log.start_ns,
        "endNs": log.end_ns,
        "result": log.result,
        "frames": log.hop_count,
        "hops": [
            {"capture": h.tap.name, "index": h.index, "direction": h.direction, "packet": h.pid}
            for h in log.hops
        ],
        "hopsTruncated": log.hop_count - len(log.hops),
        "drops": len(log.drops),
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
