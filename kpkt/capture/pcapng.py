"""`all.pcapng`: every capture point in one file, written by kpkt itself.

One interface description block per capture point (its link type: Ethernet, or raw IP for a
tunnel without a link layer; `if_name` `<owner>/<ifname>`, a description naming the device kind,
nanosecond `if_tsresol`), then one enhanced packet block per frame in the
order they happened, each with its direction (`epb_flags`), the pcapng packet ID option (the same
number at every hop of the same packet: Wireshark's `frame.packet_id`) and a comment saying what
the device decided. The newest block is held back until the next one arrives, so a drop or a
note decided just after a frame was recorded still lands in that frame's comment.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from pathlib import Path

from kpkt.capture.pcap import LINKTYPE_ETHERNET, AppendingFile

SHB_TYPE, IDB_TYPE, EPB_TYPE = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_END, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
EPB_FLAGS, EPB_PACKETID = 2, 5
FLAG_INBOUND, FLAG_OUTBOUND = 1, 2
SNAPLEN = 262144
FLUSH_BYTES = 1 << 20
COMMENT_CACHE = 4096


def _epb_layout(frame_length: int, comment_length: int) -> struct.Struct:
    """An enhanced packet block as one struct (one pack a packet): type, length, interface,
    time high/low, lengths, the frame padded to 32 bits, the flags and packet id options, the
    comment option (already padded), end of options, the length again."""
    pad = -frame_length % 4
    return struct.Struct(f"<7I{frame_length}s{pad}xHHIHHQ{comment_length}sII")


_EPB_FIXED = 28  # type, length, interface, time, lengths: where the frame starts
_EPB_COMMENT = 20  # after the flags (8 bytes) and packet id (12) options: the comment option
_U32 = struct.Struct("<I")
_TIME = struct.Struct("<II")  # a block's time: high and low 32 bits
_PID = struct.Struct("<Q")  # the packet id option's value
_OPTION = struct.Struct("<HH")  # an option's code and length
_PADS = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")  # after a value of length 0 to 3 mod 4


def _option(code: int, value: bytes) -> bytes:
    return _OPTION.pack(code, len(value)) + value + _PADS[len(value) & 3]


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + _U32.pack(length)


def section_header(application: str) -> bytes:
    options = _option(SHB_USERAPPL, application.encode()) + _option(OPT_END, b"")
    return _block(SHB_TYPE, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + options)


def interface_description(name: str, description: str, link_type: int) -> bytes:
    options = (
        _option(IF_NAME, name.encode())
        + _option(IF_DESCRIPTION, description.encode())
        + _option(IF_TSRESOL, b"\x09")
        + _option(OPT_END, b"")
    )
    return _block(IDB_TYPE, struct.pack("<HHI", link_type, 0, SNAPLEN) + options)


class PcapngWriter(AppendingFile):
    """Streams all.pcapng: interfaces are declared when `add_interface` is called, packets are
    appended with `packet`, and the newest packet may still be annotated (its block is read
    back and written again: annotations are rare, so the common path writes each block once)."""

    __slots__ = ("interfaces", "_last_at", "_last_pid", "_comments", "_layouts")

    def __init__(self, path: Path, application: str) -> None:
        super().__init__(path, section_header(application))
        self.interfaces = 0
        self._last_at = 0  # where the newest packet's block starts in the buffer
        self._last_pid: int | None = None  # its packet id, None once it can't be annotated
        self._comments: dict[str, bytes] = {}  # comment text -> its encoded option
        self._layouts: dict[int, struct.Struct] = {}  # frame length << 16 | comment length

    def add_interface(self, name: str, description: str, link_type: int = LINKTYPE_ETHERNET) -> int:
        self.buffer += interface_description(name, description, link_type)
        self._last_pid = None
        self.interfaces += 1
        return self.interfaces - 1

    def packet(
        self, interface: int, t_ns: int, frame: bytes, outbound: bool, pid: int, comment: str
    ) -> None:
        buffer = self.buffer
        at = len(buffer)
        if at >= FLUSH_BYTES:
            self.flush()
            at = 0
        option = self._comments.get(comment) if comment else b""
        if option is None:
            option = self._comment_option(comment)
        length = len(frame)
        key = length << 16 | len(option)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = _epb_layout(length, len(option))
        self._last_at = at
        self._last_pid = pid
        buffer += layout.pack(
            EPB_TYPE,
            layout.size,
            interface,
            t_ns >> 32,
            t_ns & 0xFFFFFFFF,
            length,
            length,
            frame,
            EPB_FLAGS,
            4,
            FLAG_OUTBOUND if outbound else FLAG_INBOUND,
            EPB_PACKETID,
            8,
            pid,
            option,
            0,
            layout.size,
        )

    def append(
        self, blocks: Blocks, t_ns: int, pid: int, frames: list[bytes], note: str = ""
    ) -> None:
        """Append `blocks` of packet `pid` at `t_ns`, of `frames`: what `packet` would write
        for each, with `note` (the text of the note the packet was sent with) at the end of
        the comment of the block that has it (`Blocks`' `sent`); the newest may still be
        annotated."""
        buffer = self.buffer
        if len(buffer) >= FLUSH_BYTES:
            self.flush()
        time = _TIME.pack(t_ns >> 32, t_ns & 0xFFFFFFFF)
        if blocks.sent:  # the note, in its comment option (as `_option` encodes it)
            text = note.encode()
            around = blocks.around.get(len(text))
            if around is None:
                around = blocks.fit(len(text))
            head, tail, size, moved = around
            self._last_at = len(buffer) + blocks.last + moved
            values = [time, _PID.pack(pid), head, text, tail, size, *frames]
        else:
            self._last_at = len(buffer) + blocks.last
            values = [time, _PID.pack(pid), *frames]
        self._last_pid = pid
        buffer += blocks.format % blocks.holes(values)

    def _comment_option(self, comment: str) -> bytes:
        """The encoded option for `comment`, remembered: most comments repeat (routes, FDB
        entries); the per-packet ones do not, so the memory is bounded by a reset."""
        if len(self._comments) >= COMMENT_CACHE:
            self._comments.clear()
        option = self._comments[comment] = _option(OPT_COMMENT, comment.encode())
        return option

    def annotate(self, pid: int, comment: str, label: str = "") -> None:
        """Add to the comment of the newest packet, if it is packet `pid`: its block is read
        back from the buffer and written again with the longer comment. A comment that is only
        the packet's `label` ("step 1 flow 1") gets the first note after a colon, as `record`
        writes it; later ones follow a semicolon."""
        if self._last_pid != pid:
            return
        block = bytes(self.buffer[self._last_at :])
        interface, t_high, t_low, length = struct.unpack_from("<IIII", block, 8)
        frame = block[_EPB_FIXED : _EPB_FIXED + length]
        options = _EPB_FIXED + length + (-length % 4)
        outbound = block[options + 4] == FLAG_OUTBOUND  # the flags option's value
        comment_at = options + _EPB_COMMENT
        code, size = struct.unpack_from("<HH", block, comment_at)
        old = block[comment_at + 4 : comment_at + 4 + size].decode() if code == OPT_COMMENT else ""
        del self.buffer[self._last_at :]
        if not old:
            joined = comment
        elif old == label:
            joined = f"{label}: {comment}"
        else:
            joined = f"{old}; {comment}"
        self.packet(interface, t_high << 32 | t_low, frame, outbound, pid, joined)

    def close(self) -> None:
        self.flush()

    def flush(self) -> None:
        super().flush()
        self._last_pid = None  # written: too late to annotate


class Blocks:
    """Packet blocks that follow one another for one packet at one instant, whose interfaces,
    frame lengths, directions and comments are known ahead (the hops of a segment the flow
    cache replays), but for one block's comment, which may end with the note the packet was
    sent with (a datagram's "udp send N/M"): their fixed bytes are made once, as
    `PcapngWriter.packet` lays them out, and `PcapngWriter.append` fills in only the time, the
    packet id, the frames, and that note with its option's length, its padding and its
    block's two lengths, with one formatting."""

    __slots__ = ("format", "holes", "last", "sent", "start", "size", "shift", "around")

    def __init__(self, blocks: list[tuple[int, int, int, bool, str]], sent: int = -1) -> None:
        """`blocks`: (interface, frame index, frame length, outbound, comment) of each, in
        order; the frame index is the frame's position in the frames `append` is given.
        `sent`: the block (if any) whose comment is its `comment` then the packet's note."""
        pieces: list[bytes] = []  # the fixed bytes between two holes
        # what fills each hole: its position in [time, pid, *frames], or with a block that
        # has the packet's note in [time, pid, the option's code and length, the note, the
        # padding, end of options and the block's length, the block's length, *frames]
        holes: list[int] = []
        self.sent = sent >= 0
        # per length of a note: the bytes around it, and how far it moves the newest block on
        self.around: dict[int, tuple[bytes, bytes, bytes, int]] = {}
        first = 6 if self.sent else 2  # where the frames start among the values
        fixed, at = b"", 0
        for number, (interface, frame, length, outbound, comment) in enumerate(blocks):
            if number == sent:
                option = b""  # made for each packet
            else:
                option = _option(OPT_COMMENT, comment.encode()) if comment else b""
            layout = _epb_layout(length, len(option))
            size, flags = layout.size, FLAG_OUTBOUND if outbound else FLAG_INBOUND
            sample = layout.pack(
                EPB_TYPE, size, interface, 0, 0, length, length, b"",
                EPB_FLAGS, 4, flags, EPB_PACKETID, 8, 0, option, 0, size,
            )  # fmt: skip
            pid_at = _EPB_FIXED + length + (-length % 4) + 12
            if number == sent:
                start = comment.encode()
                self.start, self.size = len(start), size
                self.shift = number < len(blocks) - 1  # it moves the newest block on
                pieces += [
                    fixed + sample[:4],
                    sample[8:12],
                    sample[20:_EPB_FIXED],
                    sample[_EPB_FIXED + length : pid_at],
                    b"",
                    start,
                    b"",
                ]
                holes += [5, 0, first + frame, 1, 2, 3, 4]
                fixed = b""
            else:
                pieces += [
                    fixed + sample[:12],
                    sample[20:_EPB_FIXED],
                    sample[_EPB_FIXED + length : pid_at],
                ]
                holes += [0, first + frame, 1]
                fixed = sample[pid_at + 8 :]
            self.last = at  # where the newest block starts (before the note's option)
            at += size
        pieces.append(fixed)
        self.format = b"%b".join(piece.replace(b"%", b"%%") for piece in pieces)
        self.holes = itemgetter(*holes)

    def fit(self, length: int) -> tuple[bytes, bytes, bytes, int]:
        """For a note of `length` bytes: its option's code and length, then (after the note)
        its padding, the end of options and the block's length, the block's length, and how
        far the newest block moves on."""
        length += self.start
        grow = (length + 7) & -4  # the option: code and length, the comment padded
        size = _U32.pack(self.size + grow)
        tail = _PADS[length & 3] + _U32.pack(OPT_END) + size
        around = self.around[length - self.start] = (
            _OPTION.pack(OPT_COMMENT, length),
            tail,
            size,
            grow if self.shift else 0,
        )
        return around
