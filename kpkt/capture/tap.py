"""Capture points (one per interface in a namespace) and the journal of hops and drops.

Every frame a device sends or receives passes its interface's tap: the tap appends it to that
interface's pcap and tells the journal, which keeps, per traffic step, the hops in the order they
happened and the frames that were dropped and why.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from kpkt import __version__
from kpkt.capture.decisions import render
from kpkt.capture.pcap import (
    FLUSH_BYTES,
    LINKTYPE_ETHERNET,
    RECORD_HALF,
    PcapWriter,
    record,
    record_lengths,
)
from kpkt.capture.pcapng import Blocks, PcapngWriter
from kpkt.compiled import Names
from kpkt.observe import OUT, Decision, Tag

ALL_PCAPNG = "all.pcapng"

# how each kind of capture point is described in all.pcapng
DESCRIPTIONS = {
    "pod-eth": "veth, the pod's end",
    "veth": "veth, the host's end (a port of cni0)",
    "node-veth": "veth with both ends in the node's namespace",
    "bridge": "Linux bridge",
    "vxlan": "VXLAN device",
    "ipip": "IPIP tunnel (raw IP, no link layer)",
    "underlay": "interface on the node network",
    "loopback": "loopback",
    "switch-port": "port of the node network's switch",
}

# how much of each step the journal keeps: hop entries for the manifest, frames for the table
MAX_HOPS_PER_STEP = 10_000
MAX_TABLE_ROWS = 80
TABLE_STEPS = 20  # steps whose hop tables are printed in full (and whose frames are kept)
# the start of every all.pcapng comment: which step and flow the packet belongs to (new_flow)
_LABEL = re.compile(r"(?:step \d+|background) flow \d+(?:: |$)")
SENT = object()  # a `Hops` hop's note that is the one its packet was sent with


@dataclass(slots=True)
class Hop:
    """One row of a printed hop table."""

    t_ns: int
    tap: Tap
    index: int  # the frame's position in the tap's pcap, from 0
    direction: str
    pid: int
    note: str
    frame: bytes


@dataclass(slots=True)
class Drop:
    t_ns: int
    where: str  # "<owner>/<ifname>" or "<owner>" for a namespace's stack
    reason: str  # a code from kpkt.net.drops
    detail: str
    step: int
    pid: int


@dataclass(slots=True)
class StepLog:
    # every hop (up to MAX_HOPS_PER_STEP) as 4 integers: tap number, index in the tap's pcap,
    # 1 if outbound, packet id; compact, so a run of millions of frames stays small
    hops: array = field(default_factory=lambda: array("q"))
    rows: list[Hop] = field(default_factory=list)  # the first `table_rows` hops, in full
    hop_count: int = 0
    drops: list[Drop] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0
    result: str = ""  # what the step's application saw, one line
    sent: int = 0  # what the application sent and received, in its own units
    received: int = 0
    outcome: str = ""  # a word of kpkt.outcome.OUTCOMES
    table_rows: int = 0  # how many of its hops keep their frame for the printed table
    probe: dict = field(default_factory=dict)  # a probe step's verdict (kpkt/apps/probe.py)


class Journal:
    """The run's record: taps in creation order, and per step its hops and drops."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.taps: list[Tap] = []
        self._retired: dict[str, Tap] = {}  # file name -> the tap of a deleted interface
        self.steps: list[StepLog] = []
        self.background = StepLog(table_rows=MAX_TABLE_ROWS)  # frames outside any step
        self.pcapng: PcapngWriter | None = None
        self.traced_rows: dict[int, int] = {}  # step index -> rows to keep (for `kpkt trace`)
        self.folder: Path | None = None  # where the captures go, once open
        self._pid = 0
        self._flow = 0
        self.remarked = 0  # taps with a remark pending (`Tap.remark`): a flood looks at each

    def open(self, folder: Path) -> None:
        """Start writing: a pcap per capture point and all.pcapng, into `folder`."""
        self._check_filenames()
        self.folder = folder
        self.pcapng = PcapngWriter(folder / ALL_PCAPNG, f"kpkt {__version__}")
        for tap in self.taps:
            tap.open(folder)
            if tap.kind != "loopback":  # lo is declared when something first uses it
                tap.declare()

    def tap(
        self,
        owner: str,
        ifname: str,
        kind: str,
        node: str | None,
        mac: str | None,
        what: str | None = None,
        link_type: int = LINKTYPE_ETHERNET,
    ) -> Tap:
        """The capture point of a new interface. One made while the run goes on (a pod a
        `create` step makes) writes at once; one named like a deleted interface of the same
        namespace (a pod created again with a deleted one's name) goes on in its file. In
        all.pcapng it goes on in its interface while it is described the same; one that is not
        (the pod was created on another node) gets a new interface block of the same name at
        its next frame, described as it is now: a block cannot change, and Wireshark then shows
        each frame where it was (`frame.interface_description`), while a filter on
        `frame.interface_name` still finds all of them."""
        tap = self._retired.pop(Tap.filename_of(owner, ifname), None)
        if tap is not None:
            what = what or DESCRIPTIONS.get(kind, kind)
            if (tap.node, tap.what, tap.link_type) != (node, what, link_type):
                tap.interface = None  # declared again by its next frame
            tap.kind, tap.node, tap.mac, tap.link_type, tap.what = kind, node, mac, link_type, what
            tap.peer, tap.retired = None, False
            return tap
        tap = Tap(self, owner, ifname, kind, node, mac, what, link_type)
        if self.folder is not None:
            tap.open(self.folder)
        return tap

    def _check_filenames(self) -> None:
        """Every capture point has a file of its own (the topology's checks make the names
        unique; this stops a run that would write two capture points into one file)."""
        by_name: dict[str, Tap] = {}
        for tap in self.taps:
            other = by_name.setdefault(tap.filename, tap)
            if other is not tap:
                problem = f"capture points {other.name} and {tap.name} share {tap.filename}"
                raise RuntimeError(problem)

    def close(self) -> dict[Tap, str]:
        """Flush every file; the capture points written, with their file names."""
        files = {}
        for tap in self.taps:
            if tap.kind == "loopback" and tap.count == 0:
                continue  # lo is written only when something used it
            tap.writer.flush()
            files[tap] = tap.filename
        self.pcapng.close()
        return files

    def _annotate(self, tag: Tag, comment: str) -> None:
        """Add `comment` to the pcapng record of the packet's newest hop."""
        if self.pcapng is not None:
            self.pcapng.annotate(tag.pid, comment, tag.label)

    def decided(self, tag: Tag, decision: Decision) -> None:
        """A device's decision about the packet's newest hop (no frame of its own)."""
        self._annotate(tag, render(decision))

    def new_flow(self, step: int, checked: bool = False) -> Tag:
        """A new flow of `step` (-1: outside any step), with no packet yet; `checked`: it
        carries crafted packets (see Tag)."""
        self._flow += 1
        where = f"step {step + 1}" if 0 <= step < len(self.steps) else "background"
        return Tag(step, 0, self._flow, self.log(step), f"{where} flow {self._flow}", checked)

    def packet(self, tag: Tag) -> Tag:
        """The tag of a new packet of `tag`'s flow: what every datagram or segment an
        application or the kernel sends gets (forwarding, NAT and tunnels keep the tag)."""
        self._pid += 1
        return Tag(tag.step, self._pid, tag.flow, tag.log, tag.label, tag.checked)

    def new_step(self) -> StepLog:
        rows = self.traced_rows.get(len(self.steps))
        if rows is None:
            rows = MAX_TABLE_ROWS if len(self.steps) < TABLE_STEPS else 0
        log = StepLog(table_rows=rows)
        self.steps.append(log)
        return log

    def log(self, step: int) -> StepLog:
        return self.steps[step] if 0 <= step < len(self.steps) else self.background

    def dropped(self, where: str, reason: str, decision: Decision, tag: Tag) -> None:
        """The packet was dropped at `where` (a namespace, or its interface) for `reason`, a
        code of kpkt/net/drops.py; `decision` says what happened."""
        detail = render(decision)
        tag.log.drops.append(Drop(self.clock.now, where, reason, detail, tag.step, tag.pid))
        self._annotate(tag, f"drop: {reason}: {detail}")


class Tap:
    """One capture point: `<owner>__<ifname>.pcap`, both directions, in the order seen."""

    __slots__ = (
        "owner",
        "ifname",
        "kind",
        "node",
        "mac",
        "what",
        "link_type",
        "ips",
        "peer",
        "journal",
        "clock",
        "writer",
        "count",
        "number",
        "pcapng",
        "interface",
        "buffer",
        "packet",
        "remarks",
        "retired",
    )

    def __init__(
        self,
        journal: Journal,
        owner: str,
        ifname: str,
        kind: str,
        node: str | None,
        mac: str | None,
        what: str | None = None,  # how all.pcapng describes it, if not as its kind
        link_type: int = LINKTYPE_ETHERNET,
    ) -> None:
        self.owner = owner
        self.ifname = ifname
        self.kind = kind
        self.node = node
        self.mac = mac
        self.what = what or DESCRIPTIONS.get(kind, kind)
        self.link_type = link_type  # of its pcap: Ethernet, or raw IP on a tunnel (LINKTYPE_RAW)
        self.ips: list[str] = []
        self.peer: Tap | None = None
        self.journal = journal
        self.clock = journal.clock
        self.writer: PcapWriter | None = None
        self.count = 0
        self.number = len(journal.taps)  # its position in the journal, for compact hop logs
        self.pcapng: PcapngWriter | None = None
        self.interface: int | None = None  # its interface id in all.pcapng, once declared
        self.remarks = ""  # events on the interface, for the comment of its next frame
        self.retired = False  # its interface was deleted (its pod was)
        journal.taps.append(self)

    def retire(self) -> None:
        """Its interface was deleted: an interface of the same name made later (a pod created
        again) goes on in this capture."""
        self.retired = True
        self.journal._retired[self.filename] = self

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.ifname}"

    @property
    def filename(self) -> str:
        return Tap.filename_of(self.owner, self.ifname)

    @staticmethod
    def filename_of(owner: str, ifname: str) -> str:
        return f"{owner}__{ifname}.pcap"

    def open(self, folder: Path) -> None:
        self.writer = PcapWriter(folder / self.filename, self.link_type)
        self.pcapng = self.journal.pcapng
        # bound once: hot path
        self.buffer, self.packet = self.writer.buffer, self.pcapng.packet

    def declare(self) -> None:
        """Give this capture point its interface block in all.pcapng."""
        where = f" on {self.node}" if self.node and self.node != self.owner else ""
        description = f"{self.what} {self.ifname} of {self.owner}"
        self.interface = self.pcapng.add_interface(self.name, description + where, self.link_type)

    def seen(self, frame: bytes, direction: str, tag: Tag, note: Decision | str = "") -> None:
        """Append `frame` to this capture point's pcap and to its step's hop log (the hot path
        of every run: kept to a few operations): a device's observer (kpkt/observe.py)."""
        index = self.count
        self.count = index + 1
        now = self.clock.now
        # the pcap record, as `PcapWriter.write` appends it, without the call: 1.5% of an
        # uncached datagram's instructions (357,100 with it, 351,800 without)
        buffer = self.buffer
        buffer += record(now, frame)
        if len(buffer) >= FLUSH_BYTES:
            self.writer.flush()
        if self.interface is None:
            self.declare()
        outbound = direction is OUT
        pid = tag.pid
        if self.remarks:
            note = self._with_remarks(note)
        if note:
            if type(note) is not str:  # a Decision: its text, rendered once
                note = note.text or render(note)
            self.packet(self.interface, now, frame, outbound, pid, f"{tag.label}: {note}")
        else:
            self.packet(self.interface, now, frame, outbound, pid, tag.label)
        log = tag.log
        count = log.hop_count = log.hop_count + 1
        if count <= MAX_HOPS_PER_STEP:
            log.hops.extend((self.number, index, outbound, pid))
            if count <= log.table_rows:
                log.rows.append(Hop(now, self, index, direction, tag.pid, note, frame))

    @staticmethod
    def seen_each(
        taps: list[Tap], frame: bytes, direction: str, tag: Tag, note: Decision | str
    ) -> None:
        """`tap.seen(frame, direction, tag, note)` for each of `taps` in turn, at one instant
        (a flooded frame), with what they share made once: the pcap record, the comment, the
        all.pcapng block but for its interface. Each takes `seen` itself when one of them is
        not declared yet or has a remark pending, or when the step's log keeps their rows for
        the table or reaches its limit among them."""
        log = tag.log
        count = log.hop_count
        end = count + len(taps)
        interfaces = [tap.interface for tap in taps]
        first = taps[0]
        if (
            count < log.table_rows
            or count < MAX_HOPS_PER_STEP < end
            or None in interfaces
            or (first.journal.remarked and any(tap.remarks for tap in taps))
        ):
            for tap in taps:
                tap.seen(frame, direction, tag, note)
            return
        now = first.clock.now
        made = record(now, frame)
        outbound, pid = direction is OUT, tag.pid
        indexes = [tap.count for tap in taps]
        for tap in taps:
            tap.count += 1
            buffer = tap.buffer
            buffer += made
            if len(buffer) >= FLUSH_BYTES:
                tap.writer.flush()
        if note:
            comment = f"{tag.label}: {note if type(note) is str else note.text or render(note)}"
        else:
            comment = tag.label
        first.pcapng.packet_each(interfaces, now, frame, outbound, pid, comment)
        log.hop_count = end
        if end <= MAX_HOPS_PER_STEP:
            log.hops.extend(_hop_entries([tap.number for tap in taps], indexes, outbound, pid))

    def remark(self, event: Decision) -> None:
        """An event on the interface (a fault or lifecycle step): its time and text go into
        the all.pcapng comment of the interface's next frame."""
        text = f"event at {self.clock.now / 1e9:.9f} s: {render(event)}"
        if self.remarks:
            self.remarks = f"{self.remarks}; {text}"
        else:
            self.remarks = text
            self.journal.remarked += 1

    def _with_remarks(self, note: Decision | str) -> str:
        text = note if type(note) is str else note.text or render(note)
        remarks, self.remarks = self.remarks, ""
        self.journal.remarked -= 1
        return f"{remarks}; {text}" if text else remarks


def _hop_entries(numbers: list[int], indexes: list[int], outbound: bool, pid: int) -> array:
    """The hop log's entries (`StepLog.hops`) of hops of one packet at one instant in one
    direction (a flood's, at tap `numbers[i]`, frame `indexes[i]` of its pcap), laid out
    column by column: an array extended from a list converts each number on its own, and a
    flood's two columns that repeat need not be."""
    count = len(numbers)
    entries = array("q", bytes(32 * count))
    entries[0::4] = array("q", numbers)
    entries[1::4] = array("q", indexes)
    entries[2::4] = array("q", [outbound]) * count
    entries[3::4] = array("q", [pid]) * count
    return entries


class Hops:
    """What a segment the flow cache replays (kpkt/flowcache.py) shows capture points, one
    after another at one instant, for one packet: each hop a tap, which of the segment's frames
    it sees, a direction and a note (for at most one hop `SENT`: the note the packet was sent
    with, given to `seen`). Made for one flow's label (the start of every comment): the
    records' bytes are made ahead, and a packet fills in only its time, frames, packet id and
    the text of its own note. `seen` writes what `Tap.seen` would for each hop, byte for byte,
    with the same counts and hop log; a hop that keeps a row of the printed table, a tap with
    a remark pending, or a packet sent without a note for a `SENT` hop takes `Tap.seen`
    itself."""

    __slots__ = (
        "hops",
        "taps",
        "clock",
        "records",
        "logged",
        "blocks",
        "pcapng",
        "sent",
        "frame_count",
        "seen",
    )

    def __init__(
        self, hops: list[tuple[Tap, int, str, object]], lengths: list[int], label: str
    ) -> None:
        """`hops`: (tap, frame index, direction, note: a Decision, a text or `SENT`) of each,
        in order; `lengths`: the length of each frame."""
        self.hops = hops
        self.taps = tuple(dict.fromkeys(tap for tap, *_ in hops))
        self.clock = hops[0][0].clock
        self.records = []  # per hop: its tap, its pcap's buffer, lengths and writer, its frame
        self.logged = []  # per hop: its tap's number, its tap, earlier hops there, outbound
        self.blocks: Blocks | None = None  # its all.pcapng blocks, once every tap is declared
        self.pcapng = hops[0][0].pcapng
        sent = [number for number, (*_, note) in enumerate(hops) if note is SENT]
        if len(sent) > 1:
            raise ValueError("Hops: more than one hop with the note the packet was sent with")
        self.sent = bool(sent)
        self.frame_count = len(lengths)
        blocks, earlier = [], dict.fromkeys(self.taps, 0)
        for tap, index, direction, note in hops:
            outbound = direction is OUT
            writer = tap.writer
            self.records.append((tap, writer.buffer, record_lengths(lengths[index]), index, writer))
            self.logged.append((tap.number, tap, earlier[tap], outbound))
            earlier[tap] += 1
            if note is SENT:
                comment = f"{label}: "  # then the packet's note, as `Tap.seen` writes it
            elif note:
                comment = f"{label}: {note if type(note) is str else note.text or render(note)}"
            else:
                comment = label
            blocks.append((tap.interface, index, lengths[index], outbound, comment))
        if all(tap.interface is not None for tap in self.taps):
            self.blocks = Blocks(blocks, sent[0] if sent else -1)
        # the hops of packet `tag`, whose frames are `frames`, sent with `note`
        self.seen = self.each if self.blocks is None else self._compiled()

    def _compiled(self):
        """`seen` once every tap is declared: a function written for these hops, straight
        through: each record's fixed bytes, buffer and tap bound, the all.pcapng blocks made
        ahead filled in (`PcapngWriter.append_lines`). A packet that keeps a row of the printed
        table, finds a remark pending on a tap, or was sent without the note a hop shows
        goes hop by hop (`each`)."""
        names = Names()
        frames = [f"frames[{index}]" for index in range(self.frame_count)]
        lines = [
            "def seen(frames, tag, note=''):",
            "    log = tag.log",
            "    count = log.hop_count",
            f"    if {self.hop_by_hop(names.bind)}:",
            f"        return {names.bind(self.each, 'each')}(frames, tag, note)",
            *self.lines(names.bind, frames, "    "),
        ]
        return names.function(lines)

    def hop_by_hop(self, bind) -> str:
        """The condition (on `count`, the step's hops so far, `log`, its log, and `note`) under
        which a packet goes hop by hop (`each`), in source whose constants `bind` names."""
        slow = ["count < log.table_rows", *(f"{bind(tap, 'tap')}.remarks" for tap in self.taps)]
        if self.sent:
            slow.append("not note")  # the hop's comment ends with the note: none to write
        return " or ".join(slow)

    def lines(self, bind, frames: list[str], indent: str) -> list[str]:
        """The source that writes what `seen` writes for a packet that does not go hop by hop
        (`hop_by_hop`), with `tag`, `note`, `log` and `count` (as `hop_by_hop`) in hand,
        `frames` the expressions of the frames by index, each line starting with `indent`;
        its constants named by `bind`."""
        taps = {tap: bind(tap, "tap") for tap in self.taps}
        lines = [
            "pid = tag.pid",
            f"if count < {MAX_HOPS_PER_STEP}:",
            f"    {bind(self._log_hops, 'log_hops')}(log, count, pid)",
            f"log.hop_count = count + {len(self.hops)}",
            f"now = {bind(self.clock, 'clock')}.now",
            f"time = {bind(RECORD_HALF.pack, 'time_of')}(now // {10**9}, now % {10**9})",
        ]
        # the records' files are flushed with all.pcapng, which grows more (`alongside`); a
        # frame several taps see has one record, made once
        made: dict[int, str] = {}
        for tap, buffer, lengths, index, writer in self.records:
            self.pcapng.alongside[writer] = None
            lines.append(f"{taps[tap]}.count += 1")
            if index not in made:
                made[index] = f"record{index}"
                fixed = bind(lengths, "lengths")
                lines.append(f"record{index} = b''.join((time, {fixed}, {frames[index]}))")
            lines.append(f"{bind(buffer.extend, 'record')}({made[index]})")
        text = f"note if type(note) is str else note.text or {bind(render, 'render')}(note)"
        lines += self.pcapng.append_lines(bind, self.blocks, frames, text if self.sent else None)
        return [indent + line for line in lines]

    def _log_hops(self, log: StepLog, count: int, pid: int) -> None:
        """The hops' entries in the step's hop log, as many as it still takes."""
        extend = log.hops.extend
        for number, tap, before, outbound in self.logged[: MAX_HOPS_PER_STEP - count]:
            extend((number, tap.count + before, outbound, pid))

    def each(self, frames: list[bytes], tag: Tag, note: Decision | str = "") -> None:
        for tap, index, direction, hop_note in self.hops:
            tap.seen(frames[index], direction, tag, note if hop_note is SENT else hop_note)


def comment_notes(comment: str) -> str:
    """What the devices noted in an all.pcapng comment, without its "step N flow M" label."""
    label = _LABEL.match(comment)
    return comment[label.end() :] if label else comment
