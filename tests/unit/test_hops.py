"""The capture layer's entry for the flow cache's replays (`Hops`, kpkt/capture/tap.py): the
hops of a segment written at once write what `Tap.seen` writes hop by hop, byte for byte, with
the same counts and hop logs, across the hop-log and table limits and the flushes; the newest
block can still be annotated; a remark pending on a tap reaches the frame's comment."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpkt.capture import pcap, pcapng, tap
from kpkt.capture.tap import Hops, Journal
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


class Capture:
    """A journal with four capture points, written into `folder`."""

    def __init__(self, folder: Path) -> None:
        self.clock = Scheduler()
        self.journal = Journal(self.clock)
        self.taps = {
            name: self.journal.tap("node1", name, "veth", "node1", None)
            for name in ("veth", "cni0", "flannel.1", "eth0")
        }
        folder.mkdir()
        self.folder = folder
        self.journal.open(folder)
        self.journal.new_step()
        self.flow = self.journal.new_flow(0)
        self.hops = [(self.taps[name], frame, way, note) for name, frame, way, note in HOPS]

    def packet(self, n: int, replayed: bool):
        """Packet `n` (its frames with an ID of its own) through the hops, at its own time."""
        self.clock.now = 1_000_000_000 * n + 7
        tag = self.journal.packet(self.flow)
        frames = [frame[:18] + bytes((n >> 8, n & 0xFF)) + frame[20:] for frame in FRAMES]
        if replayed:
            hops = Hops(self.hops, [len(frame) for frame in frames], tag.label)
            hops.seen(frames, tag)
        else:
            for where, index, direction, note in self.hops:
                where.seen(frames[index], direction, tag, note)
        return tag

    def files(self) -> dict[str, bytes]:
        self.journal.close()
        return {path.name: path.read_bytes() for path in sorted(self.folder.iterdir())}

    def logs(self) -> tuple:
        log = self.journal.steps[0]
        rows = [(row.t_ns, row.tap.name, row.index, row.pid, row.note) for row in log.rows]
        counts = [where.count for where in self.taps.values()]
        return log.hop_count, list(log.hops), rows, counts


def both(tmp_path: Path, packets: int, between=None) -> tuple[Capture, Capture]:
    """The same packets through `Tap.seen` and through `Hops`; `between(capture, n, tag)` runs
    after each packet."""
    captures = []
    for replayed in (False, True):
        capture = Capture(tmp_path / f"replayed-{replayed}")
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


def test_replayed_hops_write_what_each_hop_writes(tmp_path: Path) -> None:
    slow, replayed = both(tmp_path, 12)
    assert replayed.logs() == slow.logs()
    assert replayed.logs()[0] == 12 * len(HOPS)  # past the hop log's limit: counted, not kept
    assert len(replayed.logs()[2]) == 7  # the table's rows, kept by the first hops
    assert replayed.files() == slow.files()


def test_a_note_after_replayed_hops_lands_in_the_newest_block(tmp_path: Path) -> None:
    def decide(capture: Capture, n: int, tag) -> None:
        capture.journal.decided(tag, Decision(Why.UDP_SEND, n, 12))

    slow, replayed = both(tmp_path, 12, decide)
    files = replayed.files()
    assert files == slow.files()
    assert b"udp send 11/12" in files["all.pcapng"]


def test_a_remark_pending_on_a_tap_reaches_a_replayed_frame(tmp_path: Path) -> None:
    def remark(capture: Capture, n: int, tag) -> None:
        if n in (5, 9):
            capture.taps["eth0"].remark(f"link down {n}")

    slow, replayed = both(tmp_path, 12, remark)
    files = replayed.files()
    assert files == slow.files()
    assert b"link down 9; encap" in files["all.pcapng"]
