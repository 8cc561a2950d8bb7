"""Captures compared frame by frame and field by field, each difference named by layer and field
(`node1__eth0.pcap frame 3: IP.ttl: 63 != 62`): the library behind `kpkt diff`.

The files are read and checked by kpkt.capture.reader; their link types are compared. Frames
are lined up before they are compared (`line_up`), so a frame only one side has is reported as
such (`frame 5 only in B: ...`) and the rest pair again. Frames are dissected with Scapy from
their link layer up. Layers after a VXLAN header are prefixed `inner.` (`inner.IP.ttl`), a layer
class seen again on the same side of the tunnel gets `#2` (`IP#2.ttl`), and `frame.len` and
`frame.time` stand for the record's length and timestamp, as in Wireshark. A report renders as
lines or as JSON (kpkt/schemas/diff.schema.json).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import scapy.layers.dns  # noqa: F401  (binds port 53: DNS decoded as such in every process)
from scapy.fields import FlagValue
from scapy.layers.inet import UDP
from scapy.layers.vxlan import VXLAN
from scapy.packet import NoPayload, Packet, Raw, bind_layers

from kpkt.capture.pcap import LINKTYPE_ETHERNET
from kpkt.capture.reader import LINK_TYPES, Capture, link_type_name, read_capture
from kpkt.errors import KpktError
from kpkt.wire.udp import UDP_LEN, udp_header
from kpkt.wire.vxlan import PRE_IANA_PORT, VXLAN_LEN, vxlan_header

LIMIT = 20
DISSECTED = 1 << 14  # frames whose fields are remembered
SHOWN_BYTES = 32
IGNORE_SYNTAX = re.compile(r"[A-Za-z0-9._#]+")
VOLATILE = re.compile(r"\.(chksum|id|ttl|hlim)$")  # left out when lining up changed frames


class _Absent:
    """The value of a field that one side of a comparison does not have."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


@dataclass(frozen=True)
class FieldDiff:
    """One field that differs between two frames: `IP.ttl: 63 != 62`."""

    field: str
    left: object
    right: object

    def __str__(self) -> str:
        return f"{self.field}: {show_value(self.left)} != {show_value(self.right)}"


@dataclass(frozen=True)
class FramePair:
    """Two frames lined up with each other that differ: their numbers (from 1) and the fields."""

    a: int
    b: int
    fields: tuple[FieldDiff, ...]

    def lines(self, label: str) -> list[str]:
        where = f"frame {self.a}" if self.a == self.b else f"frame {self.a} ({self.b} in B)"
        return [f"{label} {where}: {field}" for field in self.fields]

    def to_json(self) -> dict[str, object]:
        return {
            "frame_a": self.a,
            "frame_b": self.b,
            "fields": [
                {"field": d.field, "expected": _value(d.left), "actual": _value(d.right)}
                for d in self.fields
            ],
        }


@dataclass(frozen=True)
class LoneFrame:
    """A frame only one capture has: its side (`A` or `B`), its number there, a summary."""

    side: str
    number: int
    summary: str

    def lines(self, label: str) -> list[str]:
        return [f"{label} frame {self.number} only in {self.side}: {self.summary}"]

    def to_json(self) -> dict[str, object]:
        return {"frame": self.number, "summary": self.summary}


@dataclass(frozen=True)
class CaptureDiff:
    """One capture compared: `a` or `b` is None for a capture only one folder has."""

    label: str
    a: Path | None
    b: Path | None
    frame_counts: tuple[int, int] = (0, 0)
    link_types: tuple[int, int] = (LINKTYPE_ETHERNET, LINKTYPE_ETHERNET)
    entries: tuple[FramePair | LoneFrame, ...] = ()

    @property
    def status(self) -> str:
        if self.a is None or self.b is None:
            return "only_in_b" if self.a is None else "only_in_a"
        return "different" if self.entries or self.link_types[0] != self.link_types[1] else "same"

    @property
    def frames(self) -> int:
        """How many frames differ, counting those only one side has."""
        return len(self.entries)

    def lone(self, side: str) -> list[LoneFrame]:
        return [e for e in self.entries if isinstance(e, LoneFrame) and e.side == side]

    def lines(self, limit: int) -> list[str]:
        """The differences, one a line: at most `limit`, then a count of the rest."""
        if self.a is None or self.b is None:
            present = self.a or self.b
            return [f"only in {present.parent}: {present.name}"]
        found = []
        if self.link_types[0] != self.link_types[1]:
            names = " != ".join(map(link_type_name, self.link_types))
            found.append(f"{self.label}: link type {names}")
        count_a, count_b = self.frame_counts
        if count_a != count_b:
            found.append(f"{self.label}: frame count {count_a} != {count_b}")
        for entry in self.entries:
            found += entry.lines(self.label)
        if len(found) > limit:
            found = found[:limit] + [f"… {len(found) - limit} more differences in {self.label}"]
        return found

    def to_json(self) -> dict[str, object]:
        pairs = [e for e in self.entries if isinstance(e, FramePair)]
        both = self.a is not None and self.b is not None
        return {
            "name": self.label,
            "a": None if self.a is None else str(self.a),
            "b": None if self.b is None else str(self.b),
            "status": self.status,
            "link_types": dict(zip("ab", self.link_types, strict=True)) if both else None,
            "frame_counts": dict(zip("ab", self.frame_counts, strict=True)) if both else None,
            "frames_only_in_a": [e.to_json() for e in self.lone("A")],
            "frames_only_in_b": [e.to_json() for e in self.lone("B")],
            "changed_frames": [e.to_json() for e in pairs],
            "counts": {
                "frames_differing": self.frames,
                "frames_only_in_a": len(self.lone("A")),
                "frames_only_in_b": len(self.lone("B")),
                "frames_changed": len(pairs),
                "field_differences": sum(len(e.fields) for e in pairs),
            },
        }


@dataclass(frozen=True)
class DiffReport:
    """Two captures or two output folders compared, capture by capture."""

    a: Path
    b: Path
    captures: tuple[CaptureDiff, ...]
    ignore: frozenset[str] = frozenset()
    times: bool = True
    limit: int = LIMIT

    @property
    def compared(self) -> int:
        return sum(c.status in ("same", "different") for c in self.captures)

    @property
    def differing(self) -> int:
        return sum(c.status == "different" for c in self.captures)

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.captures)

    @property
    def only_a(self) -> int:
        return sum(c.status == "only_in_a" for c in self.captures)

    @property
    def only_b(self) -> int:
        return sum(c.status == "only_in_b" for c in self.captures)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(line for capture in self.captures for line in capture.lines(self.limit))

    @property
    def same(self) -> bool:
        return not (self.differing or self.only_a or self.only_b)

    @property
    def summary(self) -> str:
        if self.differing:
            frames = f"{self.frames} frame{'s' if self.frames != 1 else ''}"
            head = f"{self.differing} of {self.compared} captures differ ({frames})"
        else:
            head = f"{self.compared} capture{'s' if self.compared != 1 else ''} identical"
        only = [f"{n} only in {side}" for n, side in ((self.only_a, "A"), (self.only_b, "B")) if n]
        return f"{head}; {', '.join(only)}" if only else head

    def to_json(self) -> dict[str, object]:
        """The report as kpkt/schemas/diff.schema.json describes it."""
        return {
            "a": str(self.a),
            "b": str(self.b),
            "kind": "folders" if self.a.is_dir() else "files",
            "same": self.same,
            "ignored": sorted(self.ignore),
            "times": self.times,
            "counts": {
                "captures_compared": self.compared,
                "captures_differing": self.differing,
                "captures_only_in_a": self.only_a,
                "captures_only_in_b": self.only_b,
                "frames_differing": self.frames,
            },
            "captures": [capture.to_json() for capture in self.captures],
        }


def parse_ignore(entries: Iterable[str]) -> frozenset[str]:
    """The `--ignore` entries, lower-cased; a KpktError names any that cannot be a field name."""
    entries = tuple(entries)
    bad = [entry for entry in entries if not IGNORE_SYNTAX.fullmatch(entry)]
    if bad:
        raise KpktError(
            [
                f"--ignore {entry!r}: a field name has only letters, digits, '.', '_' and '#' "
                "(e.g. ip.id, inner.ip.ttl, frame.time)"
                for entry in bad
            ]
        )
    return frozenset(entry.lower() for entry in entries)


def dissect(frame: bytes, link_type: int = LINKTYPE_ETHERNET) -> dict[str, object]:
    """Every field of every layer of a frame, as {`IP.ttl`: 63}, in frame order."""
    return dict(_fields(frame, link_type))


@lru_cache(maxsize=DISSECTED)
def _fields(frame: bytes, link_type: int) -> dict[str, object]:
    """`dissect`, remembered: lining frames up and comparing them dissect the same frames."""
    fields: dict[str, object] = {"frame.len": len(frame)}
    prefix, seen = "", set()
    layer = _dissected(frame, link_type)
    while not isinstance(layer, NoPayload):
        name = _unique(prefix + type(layer).__name__, seen)
        for field in layer.fields_desc:
            if field.name in layer.fields:
                fields[f"{name}.{field.name}"] = layer.fields[field.name]
        if isinstance(layer, VXLAN):
            prefix += "inner."
        layer = layer.payload
    return fields


def compare_frames(
    a: bytes,
    b: bytes,
    ignore: Collection[str],
    link_types: tuple[int, int] = (LINKTYPE_ETHERNET, LINKTYPE_ETHERNET),
) -> list[FieldDiff]:
    """The fields that differ between two frames, in frame order, leaving out the ignored."""
    if a == b:
        return []
    left, right = _fields(a, link_types[0]), _fields(b, link_types[1])
    names = list(left) + [name for name in right if name not in left]
    return [
        FieldDiff(name, left.get(name, ABSENT), right.get(name, ABSENT))
        for name in names
        if not _same(name, left, right) and not _ignored(name, ignore)
    ]


def compare_pcaps(
    a: Path, b: Path, ignore: Collection[str], times: bool = True, limit: int = LIMIT
) -> list[str]:
    """Every difference between two captures, one line each (at most `limit`, then a count)."""
    return compare_captures(Path(a), Path(b), ignore, times).lines(limit)


def compare_captures(a: Path, b: Path, ignore: Collection[str], times: bool = True) -> CaptureDiff:
    """Two capture files compared frame by frame, the frames lined up first (`line_up`); named
    after `a`'s file, or both files' when their names differ."""
    left, right = read_capture(a), read_capture(b)
    times = times and not _ignored("frame.time", ignore)
    link_types = (left.link_type, right.link_type)
    entries: list[FramePair | LoneFrame] = []
    for i, j in line_up(left, right, ignore):
        if j is None:
            entries.append(LoneFrame("A", i + 1, _summary(left, i)))
        elif i is None:
            entries.append(LoneFrame("B", j + 1, _summary(right, j)))
        else:
            fields = _record_differences(left.frames[i], right.frames[j], ignore, times, link_types)
            if fields:
                entries.append(FramePair(i + 1, j + 1, tuple(fields)))
    label = a.name if a.name == b.name else f"{a.name} vs {b.name}"
    counts = (len(left.frames), len(right.frames))
    return CaptureDiff(label, a, b, counts, link_types, tuple(entries))


def line_up(
    left: Capture, right: Capture, ignore: Collection[str]
) -> list[tuple[int, int] | tuple[int, None] | tuple[None, int]]:
    """The frame indexes of two captures lined up, in order: (i, j) a pair, (i, None) a frame
    only in `left`, (None, j) one only in `right`. Equal frames line up first (difflib over the
    bytes); between them, frames line up again by their fields without the ignored and the
    volatile ones (checksums, IDs, TTLs), so a changed frame still pairs with its counterpart;
    what is left pairs in order, and the surplus of the longer side is on its own."""

    def stretch(i1: int, i2: int, j1: int, j2: int) -> list:
        if i2 - i1 == 1 and j2 - j1 == 1:
            return [(i1, j1)]
        shapes_a = [_shape(frame, left.link_type, ignore) for _, frame in left.frames[i1:i2]]
        shapes_b = [_shape(frame, right.link_type, ignore) for _, frame in right.frames[j1:j2]]
        return [
            (None if i is None else i + i1, None if j is None else j + j1)
            for i, j in _matched(shapes_a, shapes_b, _in_order)
        ]

    frames_a = [frame for _, frame in left.frames]
    frames_b = [frame for _, frame in right.frames]
    return _matched(frames_a, frames_b, stretch)


def compare_folders(
    a: Path,
    b: Path,
    ignore: Collection[str],
    times: bool = True,
    limit: int = LIMIT,
) -> DiffReport:
    """Two output folders compared capture by capture (`*.pcap`, matched by file name)."""
    a, b = Path(a), Path(b)
    left, right = _pcap_names(a), _pcap_names(b)
    if not left and not right:
        raise KpktError(f"{a} and {b}: neither folder holds a .pcap file")
    captures = []
    for name in sorted(left | right):
        if name not in right:
            captures.append(CaptureDiff(name, a / name, None))
        elif name not in left:
            captures.append(CaptureDiff(name, None, b / name))
        else:
            captures.append(compare_captures(a / name, b / name, ignore, times))
    return DiffReport(a, b, tuple(captures), frozenset(ignore), times, limit)


def compare_paths(
    a: Path, b: Path, ignore: Collection[str], times: bool = True, limit: int = LIMIT
) -> DiffReport:
    """Two capture files or two output folders compared; a KpktError for anything else."""
    a, b = Path(a), Path(b)
    missing = [f"{path}: no such file or folder" for path in (a, b) if not path.exists()]
    if missing:
        raise KpktError(missing)
    if a.is_dir() and b.is_dir():
        return compare_folders(a, b, ignore, times, limit)
    if a.is_dir() or b.is_dir():
        raise KpktError(f"{a} and {b}: compare two capture files or two folders, not one of each")
    capture = compare_captures(a, b, ignore, times)
    return DiffReport(a, b, (capture,), frozenset(ignore), times, limit)


def read_frames(path: Path) -> list[tuple[int, bytes]]:
    """(t_ns, frame) for every record of a pcap file, checked as `read_capture` checks it."""
    return read_capture(path).frames


def _matched(keys_a: list, keys_b: list, stretch) -> list:
    """difflib's matching blocks as index pairs; each stretch in between goes to `stretch`."""
    if keys_a == keys_b:
        return list(zip(range(len(keys_a)), range(len(keys_b)), strict=True))
    pairs = []
    matcher = SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += zip(range(i1, i2), range(j1, j2), strict=True)
        else:
            pairs += stretch(i1, i2, j1, j2)
    return pairs


def _in_order(i1: int, i2: int, j1: int, j2: int) -> list:
    """Frames paired in order; the longer side's surplus on its own."""
    n = min(i2 - i1, j2 - j1)
    return [
        *zip(range(i1, i1 + n), range(j1, j1 + n), strict=True),
        *((i, None) for i in range(i1 + n, i2)),
        *((None, j) for j in range(j1 + n, j2)),
    ]


def _shape(frame: bytes, link_type: int, ignore: Collection[str]) -> tuple:
    """What identifies a frame when lining up a changed stretch: its fields, less the ignored
    and the volatile."""
    return tuple(
        (name, show_value(value))
        for name, value in _fields(frame, link_type).items()
        if not VOLATILE.search(name) and not _ignored(name, ignore)
    )


def _dissected(frame: bytes, link_type: int) -> Packet:
    """The frame dissected from its link layer up. Scapy turns a layer it cannot dissect into
    Raw bytes, except the first: a frame too short for its link-layer header raises (struct.error
    and others, by field type), and is then compared as the bytes it has."""
    try:
        return LINK_TYPES[link_type][1](frame)
    except Exception:
        return Raw(frame)


def _summary(capture: Capture, index: int) -> str:
    return _dissected(capture.frames[index][1], capture.link_type).summary()


def _record_differences(
    a: tuple[int, bytes],
    b: tuple[int, bytes],
    ignore: Collection[str],
    times: bool,
    link_types: tuple[int, int],
) -> list[FieldDiff]:
    (t_a, frame_a), (t_b, frame_b) = a, b
    found = [FieldDiff("frame.time", _seconds(t_a), _seconds(t_b))] if times and t_a != t_b else []
    return found + compare_frames(frame_a, frame_b, ignore, link_types)


def _pcap_names(folder: Path) -> set[str]:
    return {path.name for path in folder.glob("*.pcap") if path.is_file()}


def _same(name: str, left: dict[str, object], right: dict[str, object]) -> bool:
    """Both sides have the field, with equal values (Scapy's flag values compare only with
    numbers, so a missing field is never compared with a present one)."""
    return name in left and name in right and left[name] == right[name]


def _unique(name: str, seen: set[str]) -> str:
    """`IP` for the first IP layer, then `IP#2`, `IP#3`: a layer class seen again."""
    unique, count = name, 1
    while unique in seen:
        count += 1
        unique = f"{name}#{count}"
    seen.add(unique)
    return unique


def _ignored(field: str, ignore: Collection[str]) -> bool:
    """True if an entry names the field exactly or ends it at a dot (`ip.id` for `inner.IP.id`)."""
    name = field.lower()
    return any(name == entry.lower() or name.endswith("." + entry.lower()) for entry in ignore)


def _value(value: object) -> str | None:
    """A field's value in JSON: as the text shows it, null for a field the frame lacks."""
    return None if value is ABSENT else show_value(value)


def show_value(value: object) -> str:
    """A field's value as text: bytes in hex (the first 32), flags as number and names."""
    if isinstance(value, bytes):
        return _hex(value)
    if isinstance(value, FlagValue):
        return f"{int(value)} ({value})" if str(value) else "0"
    return str(value)


def _hex(data: bytes) -> str:
    if not data:
        return "''"
    return data[:SHOWN_BYTES].hex() + ("…" if len(data) > SHOWN_BYTES else "")


def _seconds(t_ns: int) -> str:
    return f"{t_ns // 1_000_000_000}.{t_ns % 1_000_000_000:09d}"


def _bind_vxlan_8472() -> None:
    """Dissect UDP 8472 (Linux's VXLAN port before the IANA one, and CNIs') as VXLAN. Scapy 2.5 and
    later bind it themselves; bind it only when a probe datagram shows that Scapy does not."""
    probe = udp_header(1, PRE_IANA_PORT, UDP_LEN + VXLAN_LEN) + vxlan_header(1)
    if VXLAN not in UDP(probe):
        bind_layers(UDP, VXLAN, dport=PRE_IANA_PORT)


_bind_vxlan_8472()
