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
    return json.dumps(document, indent=2) + "\n"


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
