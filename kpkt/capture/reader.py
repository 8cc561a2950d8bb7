"""Classic pcap files read for `kpkt diff`, trusting nothing in them.

Any of the four pcap flavours (microsecond or nanosecond timestamps, either byte order) is read;
everything else is refused with a KpktError naming the file, the byte offset and what is wrong
there: a header or record cut short, an unknown magic or version, a snaplen or captured length
beyond what libpcap writes, a captured length above the original length, a link type `kpkt diff`
cannot dissect. A frame that is merely too short for its protocol headers is read as it is.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from scapy.layers.inet6 import IPv46
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether, Loopback
from scapy.packet import Packet

from kpkt.errors import KpktError

MAGICS = {  # the first four bytes: (byte order, nanoseconds per timestamp unit)
    bytes.fromhex("d4c3b2a1"): ("<", 1000),
    bytes.fromhex("4d3cb2a1"): ("<", 1),
    bytes.fromhex("a1b2c3d4"): (">", 1000),
    bytes.fromhex("a1b23c4d"): (">", 1),
}
PCAPNG_MAGIC = bytes.fromhex("0a0d0d0a")
HEADER_LEN, RECORD_LEN = 24, 16
MAX_SNAPLEN = 262144  # the largest snaplen libpcap and Wireshark use for these link types
LINK_TYPES: dict[int, tuple[str, type[Packet]]] = {
    0: ("BSD loopback", Loopback),
    1: ("Ethernet", Ether),
    101: ("raw IP", IPv46),
    113: ("Linux cooked", CookedLinux),
    276: ("Linux cooked v2", CookedLinuxV2),
}


@dataclass(frozen=True)
class Capture:
    """A pcap file's link type and its records as (t_ns, frame)."""

    path: Path
    link_type: int
    frames: list[tuple[int, bytes]]


def link_type_name(link_type: int) -> str:
    return f"{link_type} ({LINK_TYPES[link_type][0]})"


def read_capture(path: Path) -> Capture:
    """Every record of a pcap file, each checked; a KpktError names the first thing wrong."""
    path = Path(path)
    if not path.is_file():
        raise KpktError(f"{path}: not a regular file; give a pcap file or an output folder")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise KpktError(f"{path}: cannot be read ({error.strerror})") from None
    order, unit = _file_format(path, data)
    major, minor, _, _, snaplen, link_type = struct.unpack_from(order + "HHiIII", data, 4)
    if major != 2:
        _broken(path, 4, f"pcap version {major}.{minor}, not 2.x")
    if not 0 < snaplen <= MAX_SNAPLEN:
        _broken(path, 16, f"snaplen {snaplen} is outside 1..{MAX_SNAPLEN}")
    if link_type not in LINK_TYPES:
        known = ", ".join(link_type_name(number) for number in LINK_TYPES)
        _broken(path, 20, f"link type {link_type} is not one kpkt diff reads ({known})")
    record = struct.Struct(order + "IIII")
    frames, offset, number = [], HEADER_LEN, 0
    while offset < len(data):
        number += 1
        if len(data) - offset < RECORD_LEN:
            _broken(path, offset, f"record {number}'s header is cut short: the file is truncated")
        seconds, fraction, caplen, length = record.unpack_from(data, offset)
        start = offset + RECORD_LEN
        problem = _record_problem(fraction * unit, caplen, length, snaplen, len(data) - start)
        if problem:
            _broken(path, offset, f"record {number} {problem}")
        frames.append((seconds * 1_000_000_000 + fraction * unit, data[start : start + caplen]))
        offset = start + caplen
    return Capture(path, link_type, frames)


def _file_format(path: Path, data: bytes) -> tuple[str, int]:
    """The byte order and timestamp unit the magic number says, or a KpktError."""
    if data[:4] == PCAPNG_MAGIC:
        _broken(path, 0, "a pcapng file: kpkt diff reads pcap files (an output folder's *.pcap)")
    if data[:4] not in MAGICS:
        _broken(path, 0, f"not a pcap file (magic {data[:4].hex() or 'missing'})")
    if len(data) < HEADER_LEN:
        _broken(path, len(data), f"the file header is cut short ({len(data)} of {HEADER_LEN})")
    return MAGICS[data[:4]]


def _record_problem(
    fraction_ns: int, caplen: int, length: int, snaplen: int, left: int
) -> str | None:
    """What is wrong with a record header, given the bytes `left` after it; None if nothing."""
    if fraction_ns >= 1_000_000_000:
        return f"has a timestamp fraction of a second or more ({fraction_ns} ns)"
    if caplen > snaplen:
        return f"has {caplen} bytes, more than the snaplen {snaplen}"
    if caplen > length:
        return f"has {caplen} bytes, more than its original length {length}"
    if left < caplen:
        return f"is cut short ({left} of {caplen} bytes): the file is truncated"
    return None


def _broken(path: Path, offset: int, what: str) -> NoReturn:
    raise KpktError(f"{path}: byte {offset}: {what}")
