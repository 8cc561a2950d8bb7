"""The report of what an import leaves out: one line per object or field kpkt ignores, grouped
by reason, with a count, so that nothing is dropped silently."""

from __future__ import annotations

from collections import defaultdict


class Notes:
    """What the import ignored or changed, by reason; each reason lists the objects it concerns."""

    def __init__(self) -> None:
        self._objects: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, obj: str) -> None:
        """Note that `obj` (`Kind namespace/name`) was ignored or changed for `reason`."""
        self._objects[reason].append(obj)

    def lines(self, shown: int = 3) -> list[str]:
        """One line per reason: the count, the reason and the first `shown` objects."""
        lines = []
        for reason, objects in self._objects.items():
            listed = ", ".join(objects[:shown])
            more = f", and {len(objects) - shown} more" if len(objects) > shown else ""
            lines.append(f"{len(objects)}x {reason}: {listed}{more}")
        return lines
