"""Classic pcap files, written by kpkt itself so a Scapy upgrade can never change a golden file.

Little-endian, nanosecond timestamps (magic 0xa1b23c4d), snaplen 262144, link type 1 (Ethernet)
or, for a device without a link layer (an IPIP tunnel), 101 (raw IP): what `tcpdump -i IF -w
FILE` writes on Linux. Records are buffered and appended in chunks, so a capture of any length
costs bounded memory and no file handle stays open.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

SNAPLEN = 262144
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # frames start with the IPv4 header
MAGIC = struct.pack("<I", 0xA1B23C4D)
RECORD = struct.Struct("<IIII")
RECORD_HALF = struct.Struct("<II")  # half a record's header: its time, or its two lengths
FLUSH_BYTES = 1 << 18


def file_header(link_type: int) -> bytes:
    return MAGIC + struct.pack("<HHiIII", 2, 4, 0, 0, SNAPLEN, link_type)


FILE_HEADER = file_header(LINKTYPE_ETHERNET)


class AppendingFile:
    """A file written in chunks: bytes gather in `buffer`, and `flush` appends them (the first
    flush creates the file, and never replaces one), so no handle stays open however many
    files a run writes."""

    __slots__ = ("path", "buffer", "_started")

    def __init__(self, path: Path, head: bytes) -> None:
        self.path = path
        self.buffer = bytearray(head)
        self._started = False

    def flush(self) -> None:
        """Append the buffer to the file (created by the first flush, which fails if the file
        exists): with the os module's calls, not a file object (a run creates one file per
        capture point: 20,801 in a 10,000-pod run)."""
        buffer = self.buffer
        fd = os.open(self.path, _APPEND if self._started else _CREATE, 0o666)
        try:
            written = os.write(fd, buffer)
            while written < len(buffer):  # a short write: the rest
                written += os.write(fd, buffer[written:])
        finally:
            os.close(fd)
        self._started = True
        self.buffer.clear()


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # as open(path, "xb")
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND  # as open(path, "ab")


class PcapWriter(AppendingFile):
    """Appends records to one pcap file, flushing every FLUSH_BYTES."""

    __slots__ = ()

    def __init__(self, path: Path, link_type: int = LINKTYPE_ETHERNET) -> None:
        super().__init__(path, file_header(link_type))

    def write(self, t_ns: int, frame: bytes) -> None:
        buffer = self.buffer
        buffer += record(t_ns, frame)
        if len(buffer) >= FLUSH_BYTES:
            self.flush()


def record(t_ns: int, frame: bytes) -> bytes:
    """A pcap record: its header (time, captured and original length), then the frame."""
    length = len(frame)
    return RECORD.pack(t_ns // 1_000_000_000, t_ns % 1_000_000_000, length, length) + frame


def record_lengths(length: int) -> bytes:
    """The second half of a record's header: the captured and the original length (the first
    half, the time, is `RECORD_HALF.pack(seconds, nanoseconds)`)."""
    return RECORD_HALF.pack(length, length)


def read_pcap(path: Path) -> list[tuple[int, bytes]]:
    """(t_ns, frame) for every record of a file this module wrote (tests and `kpkt diff`)."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not a little-endian nanosecond pcap")
    records, offset = [], len(FILE_HEADER)
    while offset < len(data):
        sec, nsec, caplen, _ = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        records.append((sec * 1_000_000_000 + nsec, data[offset : offset + caplen]))
        offset += caplen
    return records
