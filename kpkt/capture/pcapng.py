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
from pathlib import Path

from kpkt.capture import pcap
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


def _option(code: int, value: bytes) -> bytes:
    length = len(value)
    return _OPTION_HEAD.pack(code, length) + value + _PADDING[-length % 4]


_OPTION_HEAD = struct.Struct("<HH")  # an option's code and length
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")  # to 32 bits, by how many bytes


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

    __slots__ = (
        "interfaces",
        "alongside",
        "_last_at",
        "_last_pid",
        "_comments",
        "_layouts",
        "_copy_layouts",
    )

    def __init__(self, path: Path, application: str) -> None:
        super().__init__(path, section_header(application))
        self.interfaces = 0
        self._last_at = 0  # where the newest packet's block starts in the buffer
        self._last_pid: int | None = None  # its packet id, None once it can't be annotated
        self._comments: dict[str, bytes] = {}  # comment text -> its encoded option
        self._layouts: dict[int, struct.Struct] = {}  # frame length << 16 | comment length
        self._copy_layouts: dict[tuple[int, int], struct.Struct] = {}  # by count and block size
        # pcap files written with it a record for each of its blocks, which do not look at
        # their own length (`append_lines`' callers): each flushed with it once past
        # pcap.FLUSH_BYTES, so none grows by more than this file's FLUSH_BYTES unflushed
        self.alongside: dict[AppendingFile, None] = {}

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

    def packet_each(
        self, interfaces: list[int], t_ns: int, frame: bytes, outbound: bool, pid: int, comment: str
    ) -> None:
        """`packet` for each of `interfaces` in turn, the rest the same (a flooded frame): the
        first block is made by `packet`, the others are copies with their own interface, all
        packed at once: each copy's interface, then the rest of its block and the start of the
        next (`_copies`), the last start taken off."""
        first, *others = interfaces
        self.packet(first, t_ns, frame, outbound, pid, comment)
        if not others:
            return
        buffer = self.buffer
        block = buffer[self._last_at :]
        head, tail = block[:8], block[12:]  # around the interface id
        count = len(others)
        self._last_at += count * len(block)
        args = [tail + head] * (2 * count)
        args[0::2] = others
        buffer += head
        buffer += self._copies(count, len(block)).pack(*args)
        del buffer[-8:]

    def _copies(self, count: int, size: int) -> struct.Struct:
        """The layout of `count` copies of a block of `size` bytes without their first 8 (as
        `packet_each` packs them): an interface, then the rest of the block and the next's
        first 8 bytes, for each."""
        layout = self._copy_layouts.get((count, size))
        if layout is None:
            layout = struct.Struct(f"<{f'I{size - 4}s' * count}")
            self._copy_layouts[count, size] = layout
        return layout

    def append_lines(
        self, bind, blocks: Blocks, frames: list[str], note: str | None = None
    ) -> list[str]:
        """Source lines that append `blocks`: what `packet` would write for each, the newest
        still open to annotation, with `now` (the time) and `pid` in hand, `frames` the
        expressions of the frames by index, `note` (for blocks with one, `Blocks`' `sent`)
        the expression of the text of the note the packet was sent with, which ends the
        comment of the block that has it; its constants named by `bind`. The blocks are made
        by one pack, straight into the buffer (a flow cache's replay writes them so,
        kpkt/capture/tap.py `Hops.lines`)."""
        writer, buffer = bind(self, "pcapng"), bind(self.buffer, "blocks_buffer")
        extend = bind(self.buffer.extend, "blocks_extend")
        lines = [f"if len({buffer}) >= {FLUSH_BYTES}:", f"    {writer}.flush()"]
        if blocks.sent:  # their layout, lengths and where the newest starts follow the note's
            fit = bind(blocks.around.get, "fit")
            lines += [
                f"text = ({note}).encode()",
                f"layout, length, size, moved = {fit}(len(text)) or"
                f" {bind(blocks.fit, 'fit')}(len(text))",
                f"{writer}._last_at = len({buffer}) + {blocks.last} + moved",
            ]
        else:
            lines.append(f"{writer}._last_at = len({buffer}) + {blocks.last}")
        return [
            *lines,
            "high, low = now >> 32, now & 0xFFFFFFFF",
            f"{extend}({blocks.expression(bind, frames)})",
            f"{writer}._last_pid = pid",
        ]

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
        for writer in self.alongside:
            if len(writer.buffer) >= pcap.FLUSH_BYTES:
                writer.flush()


class Blocks:
    """Packet blocks that follow one another for one packet at one instant, whose interfaces,
    frame lengths, directions and comments are known ahead (the hops of a segment the flow
    cache replays), but for one block's comment, which may end with the note the packet was
    sent with (a datagram's "udp send N/M"): laid out once, as `PcapngWriter.packet` lays them
    out, as one struct whose fixed bytes are bound constants, so they are made with one pack
    of the time, the packet id, the frames, and that note with its option's length and its
    block's length, in the source `PcapngWriter.append_lines` writes (`expression`)."""

    __slots__ = (
        "last",
        "sent",
        "start",
        "size",
        "shift",
        "around",
        "_format",
        "_layout",
        "_args",
        "_names",
    )

    def __init__(self, blocks: list[tuple[int, int, int, bool, str]], sent: int = -1) -> None:
        """`blocks`: (interface, frame index, frame length, outbound, comment) of each, in
        order; the frame index is the frame's position in the frames `append_lines` is given.
        `sent`: the block (if any) whose comment is its `comment` then the packet's note."""
        codes: list[str] = []  # the struct's codes, in order
        args: list[str] = []  # what each code packs, in the source of `pack`
        names: dict[str, object] = {}  # the constants the pack binds (`expression`)
        pending = b""  # fixed bytes not yet given a code

        def fixed() -> None:
            nonlocal pending
            if pending:
                name = f"c{len(names)}"
                names[name] = pending
                codes.append(f"{len(pending)}s")
                args.append(name)
                pending = b""

        def add(code: str, arg: str) -> None:
            fixed()
            codes.append(code)
            args.append(arg)

        self.sent = sent >= 0
        # per length of a note: the layout, the option's length, the block's length, and how
        # far the newest block moves on
        self.around: dict[int, tuple] = {}
        at = 0
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
                pending += sample[:4]
                add("I", "size")
                pending += sample[8:12]
            else:
                pending += sample[:12]
            add("II", "high, low")
            pending += sample[20:_EPB_FIXED]
            add(f"{length}s", f"frames[{frame}]")
            pending += sample[_EPB_FIXED + length : pid_at]
            add("Q", "pid")
            if number == sent:  # the option: code and length, the comment, padded
                add("HH", f"{OPT_COMMENT}, length")
                pending += start
                add("{}s{}x", "text")
                pending += sample[pid_at + 8 : pid_at + 12]
                add("I", "size")
            else:
                pending += sample[pid_at + 8 :]
            self.last = at  # where the newest block starts (before the note's option)
            at += size
        fixed()
        self._format = "<" + "".join(codes)
        # the struct's pack, but for blocks with a note, whose layout follows its length (`fit`)
        self._layout = None if self.sent else struct.Struct(self._format).pack
        self._args, self._names = args, names

    def expression(self, bind, frames: list[str]) -> str:
        """The pack of these blocks as an expression of a function's source, with `high`,
        `low` and `pid` in hand (and for blocks with a note, `layout`, `length`, `text` and
        `size`, as `fit` has them), `frames` the expressions of the frames by index, its
        constants named by `bind`."""
        names, args = self._names, []
        for arg in self._args:
            if arg in names:
                arg = bind(names[arg], "fixed")
            elif arg.startswith("frames["):
                arg = frames[int(arg[len("frames[") : -1])]
            args.append(arg)
        layout = "layout" if self.sent else bind(self._layout, "layout")
        return f"{layout}({', '.join(args)})"

    def fit(self, length: int) -> tuple:
        """For a note of `length` bytes: the layout of the blocks, its option's length, its
        block's length, and how far the newest block moves on."""
        total = self.start + length
        grow = (total + 7) & -4  # the option: code and length, the comment padded
        layout = struct.Struct(self._format.format(length, -total % 4)).pack
        fit = self.around[length] = (layout, total, self.size + grow, grow if self.shift else 0)
        return fit
