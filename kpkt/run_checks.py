"""A run's output folder read for tests: its captures as Scapy packets by capture point, and the
assertions people write about a run (a point saw a frame like this, a step ended as allowed, no
drops but these), each failing with a message that shows what the run did instead.

A capture point is `owner/interface` as manifest.json names it (`node1/eth0`,
`pod-a.default/eth0`, `underlay/br-ul`); a pod's name without its namespace (`pod-a/eth0`) is
accepted when only one namespace has it. A frame is matched by a function of its Scapy packet
(`lambda p: UDP in p and p[UDP].dport == 53`) or by an expression (kpkt/packet_match.py:
`"UDP.dport == 53"`). Steps are numbered from 0, as in manifest.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kpkt.capture.pcap import read_pcap
from kpkt.capture.summary import interface_names, summarize
from kpkt.outcome import OUTCOMES
from kpkt.results import packet_list

SHOWN = 30  # frames or drops a failure message lists


class RunFolder:
    """The output folder of one run (`kpkt run`, or kpkt.golden.produce)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        self._files = {
            f"{c['owner']}/{c['interface']}": c["file"] for c in self.manifest["captures"]
        }
        # a capture's link type by file: Ethernet, or raw IP on a tunnel without a link layer
        self._link_types = {c["file"]: c["linkType"] for c in self.manifest["captures"]}

    def packets(self, point: str):
        """Every frame `point` captured, as a Scapy PacketList (Ether, or IP for a raw IP
        capture; VXLAN decoded on both its ports)."""
        file = self._file(point)
        return packet_list(point, read_pcap(self.folder / file), self._link_types[file])

    def saw(self, point: str, match: str | Callable):
        """The frames `point` captured that `match` accepts, as a PacketList (empty: none)."""
        if not isinstance(match, str):
            return self.packets(point).filter(match)
        from kpkt.capture.diff import dissect
        from kpkt.packet_match import Match

        expression = Match(match)
        file = self._file(point)
        link_type = self._link_types[file]
        frames = read_pcap(self.folder / file)
        return packet_list(
            point,
            [(t, frame) for t, frame in frames if expression(dissect(frame, link_type))],
            link_type,
        )

    def assert_saw(self, point: str, match: str | Callable, count: int | None = None):
        """The frames `point` captured that `match` accepts; AssertionError when there is none
        (or, with `count`, not exactly that many), listing what the point saw."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        found = self.saw(point, match)
        if (count is None and found) or len(found) == count:
            return found
        wanted = "a frame" if count is None else f"{count} frames"
        lines = [f"{point}: expected {wanted} matching {_shown(match)}, found {len(found)}"]
        lines += self._frame_lines(point)
        raise AssertionError("\n".join(lines))

    def outcome(self, step: int) -> str:
        """How step `step` ended: one of kpkt/outcome.py's words (`delivered`, `refused`...)."""
        steps = self.manifest["steps"]
        if not 0 <= step < len(steps):
            raise IndexError(f"step {step}: the run has steps 0..{len(steps) - 1}")
        return steps[step]["outcome"]

    def assert_outcome(self, step: int, *allowed: str) -> str:
        """Step `step`'s outcome, which must be one of `allowed`; AssertionError otherwise,
        with the step, its result and its drops."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        unknown = [word for word in allowed if word not in OUTCOMES]
        if unknown or not allowed:
            raise ValueError(f"outcomes {unknown or 'none given'}: give some of {list(OUTCOMES)}")
        got = self.outcome(step)
        if got in allowed:
            return got
        entry = self.manifest["steps"][step]
        lines = [
            f"step {step} ({entry['text']}): outcome {got!r}, allowed {' or '.join(allowed)}",
            f"  result: {entry['result']}",
        ]
        lines += [_drop_line(drop) for drop in self.drops() if drop["step"] == step][:SHOWN]
        raise AssertionError("\n".join(lines))

    def drops(self) -> list[dict]:
        """Every drop of the run, as manifest.json lists them (`reason`, `where`, `step`...)."""
        return self.manifest["drops"]

    def assert_drops(self, *reasons: str) -> None:
        """No drops but ones whose reason is among `reasons` (none given: no drops at all);
        AssertionError listing the others."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        others = [drop for drop in self.drops() if drop["reason"] not in reasons]
        if not others:
            return
        allowed = f"but {', '.join(reasons)}" if reasons else "at all"
        lines = [f"expected no drops {allowed}; {len(others)} other drops:"]
        lines += [_drop_line(drop) for drop in others[:SHOWN]]
        raise AssertionError("\n".join(lines))

    def _file(self, point: str) -> str:
        if point in self._files:
            return self._files[point]
        owner, _, interface = point.partition("/")
        named = [
            name
            for name in self._files
            if name.partition("/")[2] == interface
            and name.partition("/")[0].partition(".")[0] == owner
        ]
        if len(named) == 1:
            return self._files[named[0]]
        raise KeyError(f"no capture point {point!r}; the run has {', '.join(sorted(self._files))}")

    def _frame_lines(self, point: str) -> list[str]:
        names = interface_names(self.manifest)
        file = self._file(point)
        link_type = self._link_types[file]
        frames = read_pcap(self.folder / file)
        lines = [
            f"  {number:>4} {summarize(frame, names, link_type=link_type)}"
            for number, (_, frame) in enumerate(frames[:SHOWN], start=1)
        ]
        if len(frames) > SHOWN:
            lines.append(f"  ... and {len(frames) - SHOWN} more")
        return [f"{point} captured {len(frames)} frames:", *lines]


def _shown(match: str | Callable) -> str:
    return repr(match) if isinstance(match, str) else getattr(match, "__name__", repr(match))


def _drop_line(drop: dict) -> str:
    return (
        f"  drop at {drop['where']} (step {drop['step']}, t={drop['tNs']} ns): "
        f"{drop['reason']}: {drop['detail']}"
    )
