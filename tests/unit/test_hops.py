"""The capture layer's entry for the flow cache's replays (`Hops`, kpkt/capture/tap.py): the
hops of a segment written at once write what `Tap.seen` writes hop by hop, byte for byte, with
the same counts and hop logs, across the hop-log and table limits and the flushes; the newest
block can still be annotated; a remark pending on a tap reaches the frame's comment. Each with
notes known ahead, and with hops whose note is the one the packet was sent with (`SENT`: a
comment of its own per packet, of a length that changes), first, in the middle or last."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpkt.capture import pcap, pcapng, tap
from kpkt.capture.tap import SENT, Hops, Journal
from kpkt.engine.scheduler import Scheduler
from kpkt.observe import IN, OUT, Decision, Why

# three frames of a segment: lengths that put a '%' (37) and odd padding into the fixed bytes
FRAMES = [bytes(range(60)), bytes(range(37)), b"%" * 42]
# (interface, which frame, direction, note): one tap seen twice, notes with a '%' and a Decision
HOPS = [
    ("veth", 0, IN, ""),
    ("cni0", 0, IN, Decision(Why.FDB_LOCAL, b"\x02\x00\x00\x00\x00\x01")),
    ("flannel.1", 1, OUT, "100% routed"),
    ("eth0", 2, OUT, "encap"),
    ("cni0", 1, OUT, ""),
]
# the packet's own note at the first hop, in the middle (blocks after it move on with it)
SENT_FIRST = [("veth", 0, OUT, SENT), *HOPS[1:]]
SENT_MIDDLE = [*HOPS[:2], ("flannel.1", 1, OUT, SENT), *HOPS[3:]]
# ... and at the newest hop (its block the one a later note annotates)
SENT_LAST = [*HOPS[:2], HOPS[3], ("flannel.1", 1, OUT, SENT)]
# ... at a tap declared in all.pcapng by its first frame (lo), not before
LOOPBACK = [("lo", 0, OUT, SENT), ("lo", 0, IN, ""), *HOPS[1:]]
HOP_LISTS = {
    "notes known ahead": HOPS,
    "sent note first": SENT_FIRST,
    "sent note in the middle": SENT_MIDDLE,
    "sent note last": SENT_LAST,
    "sent note on a tap declared late": LOOPBACK,
}


def sent_note(n: int) -> Decision | str:
    """The note packet `n` is sent with: "udp send N/12" (one digit longer from the tenth), a
    text with a '%', or none."""
    if n in (3, 7):
        return ""
    return "100% sent" if n == 5 else Decision(Why.UDP_SEND, n + 1, 12)


class Capture:
    """A journal with five capture points (lo declared by its first frame), written into
    `folder`, and a flow whose packets cross `hops` (the flow labelled `label`: "" for none)."""

    def __init__(self, folder: Path, hops: list, label: str | None = None) -> None:
        self.clock = Scheduler()
        self.journal = Journal(self.clock)
        self.taps = {
            name: self.journal.tap("node1", name, "veth", "node1", None)
            for name in ("veth", "cni0", "flannel.1", "eth0")
        }
        self.taps["lo"] = self.journal.tap("node1", "lo", "loopback", "node1", None)
        folder.mkdir()
        self.folder = folder
        self.journal.open(folder)
        self.journal.new_step()
        self.flow = self.journal.new_flow(0)
        if label is not None:
            self.flow.label = label
        self.hops = [(self.taps[name], frame, way, note) for name, frame, way, note in hops]

    def packet(self, n: int, replayed: bool):
        """Packet `n` (its frames with an ID of its own) through the hops, at its own time."""
        self.clock.now = 1_000_000_000 * n + 7
        tag = self.journal.packet(self.flow)
        frames = [frame[:18] + bytes((n >> 8, n & 0xFF)) + frame[20:] for frame in FRAMES]
        sent = sent_note(n)
        if replayed:
            hops = Hops(self.hops, [len(frame) for frame in frames], tag.label)
            hops.seen(frames, tag, sent)
        else:
            for where, index, direction, note in self.hops:
                where.seen(frames[index], direction, tag, sent if note is SENT else note)
        return tag

    def files(self) -> dict[str, bytes]:
        self.journal.close()
        return {path.name: path.read_bytes() for path in sorted(self.folder.iterdir())}

    def logs(self) -> tuple:
        log = self.journal.steps[0]
        rows = [(row.t_ns, row.tap.name, row.index, row.pid, row.note) for row in log.rows]
        counts = [where.count for where in self.taps.values()]
        return log.hop_count, list(log.hops), rows, counts


def both(
    tmp_path: Path, hops: list, packets: int, between=None, label: str | None = None
) -> tuple[Capture, Capture]:
    """The same packets through `hops` with `Tap.seen` and with `Hops`; `between(capture, n,
    tag)` runs after each packet."""
    captures = []
    for replayed in (False, True):
        capture = Capture(tmp_path / f"replayed-{replayed}", hops, label)
        for n in range(packets):
            tag = capture.packet(n, replayed)
            if between is not None:
                between(capture, n, tag)
        captures.append(capture)
    return captures[0], captures[1]


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    """Limits a few packets cross: the hop log, the table rows, the files' flushes."""
    monkeypatch.setattr(tap, "MAX_HOPS_PER_STEP", 23)
    monkeypatch.setattr(tap, "MAX_TABLE_ROWS", 7)
    monkeypatch.setattr(tap, "FLUSH_BYTES", 300)
    monkeypatch.setattr(pcap, "FLUSH_BYTES", 300)
    monkeypatch.setattr(pcapng, "FLUSH_BYTES", 700)


@pytest.fixture(params=list(HOP_LISTS))
def hops(request) -> list:
    return HOP_LISTS[request.param]


def test_replayed_hops_write_what_each_hop_writes(tmp_path: Path, hops: list) -> None:
    slow, replayed = both(tmp_path, hops, 12)
    assert replayed.logs() == slow.logs()
    assert replayed.logs()[0] == 12 * len(hops)  # past the hop log's limit: counted, not kept
    assert len(replayed.logs()[2]) == 7  # the table's rows, kept by the first hops
    files = replayed.files()
    assert files == slow.files()
    if hops is not HOPS:  # the packet's own notes, of both lengths, with a '%', and none
        for text in (b"flow 1: udp send 9/12", b"flow 1: udp send 12/12", b"flow 1: 100% sent"):
            assert text in files["all.pcapng"]


def test_a_note_after_replayed_hops_lands_in_the_newest_block(tmp_path: Path, hops: list) -> None:
    def decide(capture: Capture, n: int, tag) -> None:
        capture.journal.decided(tag, Decision(Why.DNS_ANSWER))

    slow, replayed = both(tmp_path, hops, 12, decide)
    files = replayed.files()
    assert files == slow.files()
    assert files["all.pcapng"].count(b"dns answer") == 12


def test_a_remark_pending_on_a_tap_reaches_a_replayed_frame(tmp_path: Path, hops: list) -> None:
    def remark(capture: Capture, n: int, tag) -> None:
        if n in (5, 9):
            for name in ("veth", "eth0", "flannel.1", "lo"):
                capture.taps[name].remark(f"link down {n}")

    slow, replayed = both(tmp_path, hops, 12, remark)
    files = replayed.files()
    assert files == slow.files()
    pcapng = files["all.pcapng"]
    # the first hop at a remarked tap after the remark has it
    assert b"link down 9; encap" in pcapng
    assert (b"link down 9; udp send 11/12" in pcapng) is (hops is not HOPS)


def test_a_packet_without_a_note_or_a_label_has_no_comment(tmp_path: Path) -> None:
    slow, replayed = both(tmp_path, SENT_FIRST, 12, label="")
    files = replayed.files()
    assert files == slow.files()
    assert b"100% sent" in files["all.pcapng"] and b"flow 1" not in files["all.pcapng"]


def test_one_hop_of_a_run_has_the_packet_s_note(tmp_path: Path) -> None:
    capture = Capture(tmp_path / "capture", HOPS)
    taps = capture.taps
    with pytest.raises(ValueError, match="more than one hop"):
        Hops([(taps["veth"], 0, OUT, SENT), (taps["eth0"], 0, OUT, SENT)], [60], "step 1 flow 1")
