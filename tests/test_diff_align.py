"""`kpkt diff` lines frames up before comparing them: a frame added or missing is reported as such
and the rest pair again; both names show when two differently named files are compared; --json
follows kpkt/schemas/diff.schema.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from scapy.layers.l2 import Ether

from kpkt.capture.diff import compare_captures
from kpkt.capture.pcap import read_pcap

from conftest import ROOT
from diff_captures import STEP_NS, diff_in_process, frames, kpkt, udp_frame, vxlan_frame, write

SCHEMA = json.loads((ROOT / "kpkt" / "schemas" / "diff.schema.json").read_text())
COUNT = 8


def summary(frame: bytes) -> str:
    return Ether(frame).summary()


@pytest.fixture
def a(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    return write(tmp_path / "a" / "x.pcap", frames(COUNT))


def b_path(tmp_path: Path) -> Path:
    (tmp_path / "b").mkdir(exist_ok=True)
    return tmp_path / "b" / "x.pcap"


def assert_one_lone_frame(a: Path, b: Path, line: str, *options: str) -> None:
    """`kpkt diff A B` finds one frame only one side has, reported in `line`, and nothing else."""
    status, output = diff_in_process(a, b, *options)
    count_b = len(read_pcap(b))
    assert (status, output.splitlines()) == (
        1,
        [
            f"x.pcap: frame count {COUNT} != {count_b}",
            line,
            "1 of 1 captures differ (1 frame)",
        ],
    )


@pytest.mark.parametrize("at", [0, COUNT // 2, COUNT])
def test_one_frame_inserted_is_only_in_b_and_the_rest_lines_up(
    a: Path, tmp_path: Path, at: int
) -> None:
    extra = udp_frame(99)
    frame_list = frames(COUNT)
    frame_list.insert(at, extra)
    # the frames keep their own timestamps; the new one takes its successor's
    times = [n * STEP_NS for n in range(COUNT)]
    times.insert(at, at * STEP_NS)
    b = write(b_path(tmp_path), frame_list, times)
    assert_one_lone_frame(a, b, f"x.pcap frame {at + 1} only in B: {summary(extra)}")


def test_one_frame_dropped_is_only_in_a(a: Path, tmp_path: Path) -> None:
    frame_list, times = frames(COUNT), [n * STEP_NS for n in range(COUNT)]
    del frame_list[3], times[3]
    b = write(b_path(tmp_path), frame_list, times)
    assert_one_lone_frame(a, b, f"x.pcap frame 4 only in A: {summary(udp_frame(3))}")


def test_a_changed_frame_after_an_inserted_one_pairs_with_its_counterpart(
    a: Path, tmp_path: Path
) -> None:
    frame_list = frames(COUNT)
    frame_list[5] = udp_frame(5, ttl=63)
    frame_list.insert(2, udp_frame(99))
    times = [n * STEP_NS for n in range(COUNT)]
    times.insert(2, 2 * STEP_NS)
    b = write(b_path(tmp_path), frame_list, times)
    status, output = diff_in_process(a, b, "--ignore", "ip.chksum")
    assert status == 1
    assert output.splitlines() == [
        f"x.pcap: frame count {COUNT} != {COUNT + 1}",
        f"x.pcap frame 3 only in B: {summary(udp_frame(99))}",
        "x.pcap frame 6 (7 in B): IP.ttl: 64 != 63",
        "1 of 1 captures differ (2 frames)",
    ]


def test_a_changed_frame_alone_is_compared_field_by_field(a: Path, tmp_path: Path) -> None:
    frame_list = frames(COUNT)
    frame_list[4] = udp_frame(4, ttl=1)
    b = write(b_path(tmp_path), frame_list)
    status, output = diff_in_process(a, b, "--ignore", "chksum")
    assert (status, output.splitlines()) == (
        1,
        ["x.pcap frame 5: IP.ttl: 64 != 1", "1 of 1 captures differ (1 frame)"],
    )


def test_ignored_fields_differing_everywhere_do_not_stop_the_lining_up(
    a: Path, tmp_path: Path
) -> None:
    """Every frame of B has another IP ID (and so another checksum): no frame is equal byte for
    byte, yet the one frame B lacks is found, by the fields less the ignored ones."""
    frame_list = [udp_frame(n, ip_id=1000 + n) for n in range(COUNT)]
    del frame_list[2]
    times = [n * STEP_NS for n in range(COUNT) if n != 2]
    b = write(b_path(tmp_path), frame_list, times)
    line = f"x.pcap frame 3 only in A: {summary(udp_frame(2))}"
    assert_one_lone_frame(a, b, line, "--ignore", "ip.id", "--ignore", "ip.chksum")


def test_captures_of_different_lengths(a: Path, tmp_path: Path) -> None:
    """Frames left over on both sides pair in order (field by field); the surplus of the longer
    side is on its own."""
    tail = [vxlan_frame(n) for n in range(3)]
    b = write(b_path(tmp_path), frames(5) + tail)
    status, output = diff_in_process(a, b, "--no-times", "--limit", "1000")
    lines = output.splitlines()
    assert status == 1 and lines[-1] == "1 of 1 captures differ (3 frames)"
    assert lines[0] == "x.pcap frame 6: frame.len: 52 != 100"
    assert {line.split(":")[0] for line in lines[:-1]} == {f"x.pcap frame {n}" for n in (6, 7, 8)}
    longer = write(tmp_path / "b" / "x.pcap", frames(COUNT) + tail)
    status, output = diff_in_process(a, longer)
    assert output.splitlines() == [
        f"x.pcap: frame count {COUNT} != {COUNT + 3}",
        *(f"x.pcap frame {n} only in B: {summary(tail[n - 9])}" for n in (9, 10, 11)),
        "1 of 1 captures differ (3 frames)",
    ]


def test_limit_counts_the_rest(a: Path, tmp_path: Path) -> None:
    b = write(b_path(tmp_path), [udp_frame(n + 50) for n in range(COUNT)])
    status, output = diff_in_process(a, b, "--limit", "3", "--no-times")
    lines = output.splitlines()
    assert status == 1 and len(lines) == 5
    assert lines[3].startswith("… ") and lines[3].endswith(" more differences in x.pcap")
    assert lines[4] == f"1 of 1 captures differ ({COUNT} frames)"


def test_two_files_of_different_names_are_both_named(a: Path, tmp_path: Path) -> None:
    frame_list = frames(COUNT)
    frame_list[0] = udp_frame(0, ttl=9)
    other = write(tmp_path / "other.pcap", frame_list)
    done = kpkt("diff", a, other, "--ignore", "ip.chksum")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "x.pcap vs other.pcap frame 1: IP.ttl: 64 != 9",
        "1 of 1 captures differ (1 frame)",
    ]


def test_lining_up_keeps_paired_frames_of_a_real_run_field_by_field(tmp_path: Path) -> None:
    """A real capture with VXLAN frames: one frame dropped from the middle and one changed."""
    source = ROOT / "tests" / "golden" / "two-node" / "expected" / "node1__eth0.pcap"
    records = read_pcap(source)
    assert len(records) >= 6
    a = tmp_path / "node1__eth0.pcap"
    shutil.copy(source, a)
    changed = bytearray(records[4][1])
    changed[-1] ^= 0xFF  # the last payload byte of frame 5
    kept = [records[n] for n in range(len(records)) if n != 2]
    kept[3] = (kept[3][0], bytes(changed))
    b = write(tmp_path / "b.pcap", [f for _, f in kept], [t for t, _ in kept])
    diff = compare_captures(a, b, set())
    assert [line.split(":")[0] for line in diff.lines(20)] == [
        "node1__eth0.pcap vs b.pcap",  # the frame count
        "node1__eth0.pcap vs b.pcap frame 3 only in A",
        "node1__eth0.pcap vs b.pcap frame 5 (4 in B)",
    ]
    assert diff.lines(20)[2].startswith("node1__eth0.pcap vs b.pcap frame 5 (4 in B): inner.")


# --- --json -------------------------------------------------------------------------------


def test_json_of_two_files_follows_the_schema(a: Path, tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    frame_list, times = frames(COUNT), [n * STEP_NS for n in range(COUNT)]
    frame_list[6] = udp_frame(6, ttl=2)
    del frame_list[1], times[1]
    b = write(tmp_path / "b.pcap", frame_list, times)
    done = kpkt("diff", "--json", a, b, "--ignore", "IP.chksum", "--limit", "1")
    assert done.returncode == 1 and done.stderr == ""
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["kind"] == "files" and report["same"] is False
    assert report["ignored"] == ["ip.chksum"] and report["times"] is True
    assert report["counts"] == {
        "captures_compared": 1,
        "captures_differing": 1,
        "captures_only_in_a": 0,
        "captures_only_in_b": 0,
        "frames_differing": 2,
    }
    (capture,) = report["captures"]
    assert capture["name"] == "x.pcap vs b.pcap" and capture["status"] == "different"
    assert (capture["a"], capture["b"]) == (str(a), str(b))
    assert capture["frame_counts"] == {"a": COUNT, "b": COUNT - 1}
    assert capture["link_types"] == {"a": 1, "b": 1}
    assert capture["frames_only_in_a"] == [{"frame": 2, "summary": summary(udp_frame(1))}]
    assert capture["frames_only_in_b"] == []
    assert capture["changed_frames"] == [  # --limit shapes the text only
        {
            "frame_a": 7,
            "frame_b": 6,
            "fields": [{"field": "IP.ttl", "expected": "64", "actual": "2"}],
        }
    ]
    assert capture["counts"] == {
        "frames_differing": 2,
        "frames_only_in_a": 1,
        "frames_only_in_b": 0,
        "frames_changed": 1,
        "field_differences": 1,
    }


def test_json_of_two_folders_follows_the_schema(a: Path, tmp_path: Path) -> None:
    write(tmp_path / "a" / "only-a.pcap", frames(1))
    b = b_path(tmp_path)
    shutil.copy(a, b)
    write(tmp_path / "b" / "only-b.pcap", frames(2))
    short = write(tmp_path / "a" / "short.pcap", [udp_frame(1)[:20]])  # IP cut after 6 bytes
    write(tmp_path / "b" / "short.pcap", [udp_frame(1)[:20]], [5])
    status, output = diff_in_process("--json", a.parent, b.parent)
    assert status == 1
    report = json.loads(output)
    jsonschema.validate(report, SCHEMA)
    assert report["kind"] == "folders"
    assert report["counts"] == {
        "captures_compared": 2,
        "captures_differing": 1,
        "captures_only_in_a": 1,
        "captures_only_in_b": 1,
        "frames_differing": 1,
    }
    by_name = {capture["name"]: capture for capture in report["captures"]}
    assert list(by_name) == ["only-a.pcap", "only-b.pcap", "short.pcap", "x.pcap"]
    assert by_name["only-a.pcap"]["status"] == "only_in_a"
    assert by_name["only-a.pcap"]["b"] is None and by_name["only-a.pcap"]["frame_counts"] is None
    assert by_name["only-b.pcap"]["status"] == "only_in_b"
    assert by_name["x.pcap"]["status"] == "same"
    assert by_name["short.pcap"]["a"] == str(short)
    assert by_name["short.pcap"]["changed_frames"] == [
        {
            "frame_a": 1,
            "frame_b": 1,
            "fields": [{"field": "frame.time", "expected": "0.000000000", "actual": "0.000000005"}],
        }
    ]


def test_json_of_identical_captures_exits_0(a: Path) -> None:
    status, output = diff_in_process("--json", a, a)
    assert status == 0
    report = json.loads(output)
    jsonschema.validate(report, SCHEMA)
    assert report["same"] is True and report["captures"][0]["status"] == "same"


def test_a_field_one_frame_lacks_is_null_in_json(a: Path, tmp_path: Path) -> None:
    frame_list = frames(COUNT)
    frame_list[0] = frame_list[0][: 14 + 20]  # the UDP header and payload gone
    b = write(tmp_path / "b.pcap", frame_list)
    report = json.loads(diff_in_process("--json", a, b)[1])
    jsonschema.validate(report, SCHEMA)
    fields = report["captures"][0]["changed_frames"][0]["fields"]
    assert {"field": "UDP.sport", "expected": "40000", "actual": None} in fields
