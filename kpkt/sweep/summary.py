"""A run's columns of the sweep's summary table, read from its manifest.json: step outcomes,
expectations met and missed, drops by reason and packets per capture point."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kpkt.outcome import OUTCOMES

COUNTS = ("steps", "expect.met", "expect.missed", "drops")
# columns named by a prefix and what follows it: counts (0 when a run has none) and not
COUNT_PREFIXES = ("outcome.", "drop.")
NUMERIC_PREFIXES = (*COUNT_PREFIXES, "packets.")


def manifest_columns(manifest: dict) -> dict[str, Any]:
    """`steps`, `outcome.<outcome>` (steps that ended so), `expect.met` and `expect.missed`
    (steps with an `expect:`), `drops` and `drop.<reason>` (the run's drops, background
    included), `step.<n>` (step n's outcome, from 1) and `packets.<owner>/<interface>`."""
    steps = manifest["steps"]
    met = [step["met"] for step in steps if "met" in step]
    outcomes = Counter(step["outcome"] for step in steps)
    reasons = Counter(drop["reason"] for drop in manifest["drops"])
    columns: dict[str, Any] = {"steps": len(steps)}
    columns |= {f"outcome.{word}": count for word, count in sorted(outcomes.items())}
    columns |= {"expect.met": met.count(True), "expect.missed": met.count(False)}
    columns["drops"] = len(manifest["drops"])
    columns |= {f"drop.{reason}": count for reason, count in sorted(reasons.items())}
    columns |= {f"step.{step['index'] + 1}": step["outcome"] for step in steps}
    for capture in manifest["captures"]:
        columns[f"packets.{capture['owner']}/{capture['interface']}"] = capture["packets"]
    return columns


def is_numeric_column(name: str) -> bool:
    """Whether `name` is (or could be, in some run) a numeric column of manifest_columns."""
    if name in COUNTS:
        return True
    if name.startswith("outcome."):
        return name.removeprefix("outcome.") in OUTCOMES
    return name.startswith(NUMERIC_PREFIXES) and "." in name and not name.endswith(".")


def column_order(name: str, seen: int) -> tuple:
    """Where a manifest column goes in the table: counts, then outcomes in the order OUTCOMES
    gives them, drops by reason, steps by number, packets as first seen."""
    words = list(OUTCOMES)
    if name in COUNTS[:3]:
        return (0, COUNTS.index(name))
    if name.startswith("outcome."):
        return (1, words.index(name.removeprefix("outcome.")))
    if name == "drops":
        return (2, 0)
    if name.startswith("drop."):
        return (3, name)
    if name.startswith("step."):
        return (4, int(name.removeprefix("step.")))
    return (5, seen)
