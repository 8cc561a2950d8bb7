"""Captures compared frame by frame and field by field, each difference named by layer and field
(`node1__flannel.1.pcap frame 3: IP.ttl: 63 != 62`): the library behind `kpkt diff`.

Frames are dissected with Scapy. Layers after a VXLAN header are prefixed `inner.`
(`inner.IP.ttl`), a layer class seen again on the same side of the tunnel gets `#2` (`IP#2.ttl`),
and `frame.len` and `frame.time` stand for the record's length and timestamp, as in Wireshark.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from scapy.error import Scapy_Exception
from scapy.fields import FlagValue
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import NoPayload, bind_layers
from scapy.utils import rdpcap

from kpkt.capture.pcap import read_pcap
from kpkt.errors import KpktError

FLANNEL_VXLAN_PORT = 8472
LIMIT = 20
SHOWN_BYTES = 32
IGNORE_SYNTAX = re.compile(r"[A-Za-z0-9._#]+")


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
        return f"{self.field}: {_show(self.left)} != {_show(self.right)}"


@dataclass(frozen=True)
class DiffReport:
    """The differences between two captures or two output folders, and their counts."""

    lines: tuple[str, ...]
    compared: int
    differing: int
    frames: int
    only_a: int = 0
    only_b: int = 0

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


def dissect(frame: bytes) -> dict[str, object]:
    """Every field of every layer of an Ethernet frame, as {`IP.ttl`: 63}, in frame order."""
    fields: dict[str, object] = {"frame.len": len(frame)}
    prefix, seen = "", set()
    layer = Ether(frame)
    while not isinstance(layer, NoPayload):
        name = _unique(prefix + type(layer).__name__, seen)
        for field in layer.fields_desc:
            if field.name in layer.fields:
                fields[f"{name}.{field.name}"] = layer.fields[field.name]
        if isinstance(layer, VXLAN):
            prefix += "inner."
        layer = layer.payload
    return fields


def compare_frames(a: bytes, b: bytes, ignore: Collection[str]) -> list[FieldDiff]:
    """The fields that differ between two frames, in frame order, leaving out the ignored."""
    if a == b:
        return []
    left, right = dissect(a), dissect(b)
    names = list(left) + [name for name in right if name not in left]
    return [
        FieldDiff(name, left.get(name, ABSENT), right.get(name, ABSENT))
        for name in names
        if not _same(name, left, right) and not _ignored(name, ignore)
    ]


def compare_pcaps(
    a: Path, b: Path, ignore: Collection[str], times: bool = True, limit: int = LIMIT
) -> list[str]:
    """Every difference between two captures, one line each, named after `a`'s file."""
    return _diff_pcaps(Path(a), Path(b), ignore, times, limit)[0]


def compare_folders(
    a: Path, b: Path, ignore: Collection[str], times: bool = True, limit: int = LIMIT
) -> DiffReport:
    """Two output folders compared capture by capture (`*.pcap`, matched by file name)."""
    a, b = Path(a), Path(b)
    left, right = _pcap_names(a), _pcap_names(b)
    if not left and not right:
        raise KpktError(f"{a} and {b}: neither folder holds a .pcap file")
    lines: list[str] = []
    differing = frames = 0
    for name in sorted(left | right):
        if name not in right:
            lines.append(f"only in {a}: {name}")
        elif name not in left:
            lines.append(f"only in {b}: {name}")
        else:
            found, count = _diff_pcaps(a / name, b / name, ignore, times, limit)
            lines += found
            differing += bool(found)
            frames += count
    return DiffReport(
        tuple(lines), len(left & right), differing, frames, len(left - right), len(right - left)
    )


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
    found, frames = _diff_pcaps(a, b, ignore, times, limit)
    return DiffReport(tuple(found), 1, int(bool(found)), frames)


def read_frames(path: Path) -> list[tuple[int, bytes]]:
    """(t_ns, frame) for every record of a pcap: kpkt's own, or any other through Scapy."""
    try:
        return read_pcap(path)
    except ValueError:
        return _read_with_scapy(path)
    except struct.error:
        raise KpktError(f"{path}: the last record is cut short") from None


def _read_with_scapy(path: Path) -> list[tuple[int, bytes]]:
    try:
        packets = rdpcap(str(path))
    except Scapy_Exception as error:
        raise KpktError(f"{path}: not a pcap file ({error})") from None
    if not all(isinstance(packet, Ether) for packet in packets):
        raise KpktError(f"{path}: not an Ethernet capture")
    return [(int(packet.time * 1_000_000_000), bytes(packet)) for packet in packets]


def _diff_pcaps(
    a: Path, b: Path, ignore: Collection[str], times: bool, limit: int
) -> tuple[list[str], int]:
    """The difference lines (at most `limit`, then a count of the rest) and the number of frames
    that differ, counting those only one side has."""
    left, right = read_frames(a), read_frames(b)
    found, frames = [], abs(len(left) - len(right))
    if frames:
        found.append(f"{a.name}: frame count {len(left)} != {len(right)}")
    times = times and not _ignored("frame.time", ignore)
    for number, (record_a, record_b) in enumerate(zip(left, right, strict=False), start=1):
        here = _record_differences(record_a, record_b, ignore, times)
        found += [f"{a.name} frame {number}: {line}" for line in here]
        frames += bool(here)
    if len(found) > limit:
        found = found[:limit] + [f"… {len(found) - limit} more differences in {a.name}"]
    return found, frames


def _record_differences(
    a: tuple[int, bytes], b: tuple[int, bytes], ignore: Collection[str], times: bool
) -> list[str]:
    (t_a, frame_a), (t_b, frame_b) = a, b
    found = [f"frame.time: {_seconds(t_a)} != {_seconds(t_b)}"] if times and t_a != t_b else []
    return found + [str(diff) for diff in compare_frames(frame_a, frame_b, ignore)]


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


def _show(value: object) -> str:
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


def _bind_flannel_vxlan() -> None:
    """Dissect UDP 8472 (flannel's, and Linux's default, VXLAN port) as VXLAN. Scapy 2.5 and
    later bind it themselves; bind it only when a probe datagram shows that Scapy does not."""
    probe = struct.pack("!HHHH", 1, FLANNEL_VXLAN_PORT, 16, 0) + bytes([8, 0, 0, 0, 0, 0, 1, 0])
    if VXLAN not in UDP(probe):
        bind_layers(UDP, VXLAN, dport=FLANNEL_VXLAN_PORT)


_bind_flannel_vxlan()
