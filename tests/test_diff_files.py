"""`kpkt diff` on broken and unusual files: every pcap flavour is read, a corrupt or truncated
file is an `error:` naming the file and the byte offset (exit 2), a frame too short for its
headers is compared as it is, and a link-type difference is a difference. A hypothesis fuzz test
corrupts valid captures and holds the command to exit 0, 1 or 2, never an internal error."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diff_captures import (
    diff_in_process,
    diff_result,
    frames,
    kpkt,
    patch,
    udp_frame,
    vxlan_frame,
    write,
)

LINK_TYPE_AT, SNAPLEN_AT, RECORD_AT = 20, 16, 24
CAPLEN_AT, ORIG_AT = RECORD_AT + 8, RECORD_AT + 12  # the first record's lengths


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good.pcap", frames(3))


def broken(tmp_path: Path, data: bytes, name: str = "bad.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_error(good: Path, bad: Path, message: str) -> None:
    """The command exits 2 with exactly one line, `error: <bad>: <message>`, either way round."""
    for args in ((good, bad), (bad, good)):
        done = diff_result(*args)
        assert (done.exit_code, done.stdout, done.stderr) == (2, "", f"error: {bad}: {message}\n")


def test_a_frame_too_short_for_its_headers_is_compared_as_it_is(good: Path, tmp_path: Path) -> None:
    """Scapy's Ether() raises on fewer than 14 bytes (`unpack_from requires a buffer`)."""
    short = write(tmp_path / "short.pcap", [udp_frame(0)[:5], *frames(3)[1:]])
    done = kpkt("diff", good, short, "--ignore", "raw.load")
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[:2] == [
        "good.pcap vs short.pcap frame 1: frame.len: 52 != 5",
        "good.pcap vs short.pcap frame 1: Ether.dst: 02:00:0a:f4:01:06 != <absent>",
    ]
    assert diff_in_process(short, short) == (0, "1 capture identical\n")
    empty = write(tmp_path / "empty-frame.pcap", [b"", *frames(3)[1:]])
    assert diff_in_process(empty, good)[0] == 1


@pytest.mark.parametrize("length", [0, 4, 10, 23])
def test_a_file_cut_inside_its_header_is_not_an_empty_capture(
    good: Path, tmp_path: Path, length: int
) -> None:
    header_only = broken(tmp_path, good.read_bytes()[:24], "header-only.pcap")
    none = write(tmp_path / "none.pcap", [])
    assert diff_in_process(header_only, none) == (0, "1 capture identical\n")  # a valid empty one
    cut = broken(tmp_path, good.read_bytes()[:length])
    if length < 4:
        message = f"byte 0: not a pcap file (magic {cut.read_bytes()[:4].hex() or 'missing'})"
    else:
        message = f"byte {length}: the file header is cut short ({length} of 24)"
    assert_error(good, cut, message)


def test_link_types_are_compared(good: Path, tmp_path: Path) -> None:
    cooked = patch(broken(tmp_path, good.read_bytes(), "cooked.pcap"), LINK_TYPE_AT, "<I", 113)
    done = kpkt("diff", good, cooked)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "good.pcap vs cooked.pcap: link type 1 (Ethernet) != 113 (Linux cooked)",
        "1 of 1 captures differ (0 frames)",
    ]
    unknown = patch(broken(tmp_path, good.read_bytes()), LINK_TYPE_AT, "<I", 65535)
    assert_error(
        cooked,
        unknown,
        "byte 20: link type 65535 is not one kpkt diff reads (0 (BSD loopback), 1 (Ethernet), "
        "101 (raw IP), 113 (Linux cooked), 276 (Linux cooked v2))",
    )


def test_an_absurd_captured_length_is_an_error(good: Path, tmp_path: Path) -> None:
    for caplen in (0x7FFFFFFF, 0xFFFFFFFF):
        bad = broken(tmp_path, good.read_bytes())
        patch(patch(bad, CAPLEN_AT, "<I", caplen), ORIG_AT, "<I", caplen)
        assert_error(
            good, bad, f"byte 24: record 1 has {caplen} bytes, more than the snaplen 262144"
        )


def test_a_captured_length_above_the_original_length_is_an_error(good: Path, tmp_path: Path):
    bad = patch(broken(tmp_path, good.read_bytes()), ORIG_AT, "<I", 51)
    assert_error(good, bad, "byte 24: record 1 has 52 bytes, more than its original length 51")
    longer = patch(broken(tmp_path, good.read_bytes(), "longer.pcap"), ORIG_AT, "<I", 1500)
    # a frame cut by the snaplen is normal
    assert diff_in_process(good, longer) == (0, "1 capture identical\n")


def test_a_captured_length_above_the_snaplen_is_an_error(good: Path, tmp_path: Path) -> None:
    bad = patch(broken(tmp_path, good.read_bytes()), SNAPLEN_AT, "<I", 40)
    assert_error(good, bad, "byte 24: record 1 has 52 bytes, more than the snaplen 40")


@pytest.mark.parametrize("snaplen", [0, 262145, 0xFFFFFFFF])
def test_an_absurd_snaplen_is_an_error(good: Path, tmp_path: Path, snaplen: int) -> None:
    bad = patch(broken(tmp_path, good.read_bytes()), SNAPLEN_AT, "<I", snaplen)
    assert_error(good, bad, f"byte 16: snaplen {snaplen} is outside 1..262144")


def test_a_truncated_last_record_is_an_error(good: Path, tmp_path: Path) -> None:
    data = good.read_bytes()
    last = len(data) - 16 - 52
    cut = broken(tmp_path, data[:-10])
    assert_error(
        good, cut, f"byte {last}: record 3 is cut short (42 of 52 bytes): the file is truncated"
    )
    cut = broken(tmp_path, data[: last + 15], "header.pcap")
    assert_error(good, cut, f"byte {last}: record 3's header is cut short: the file is truncated")


def test_a_bad_version_and_timestamp_are_errors(good: Path, tmp_path: Path) -> None:
    bad = patch(broken(tmp_path, good.read_bytes()), 4, "<H", 3)
    assert_error(good, bad, "byte 4: pcap version 3.4, not 2.x")
    bad = patch(broken(tmp_path, good.read_bytes(), "time.pcap"), RECORD_AT + 4, "<I", 10**9)
    assert_error(
        good,
        bad,
        "byte 24: record 1 has a timestamp fraction of a second or more (1000000000 ns)",
    )


def test_every_pcap_flavour_is_read(tmp_path: Path) -> None:
    """Microsecond and nanosecond timestamps, in either byte order: the same frames and times."""
    frame_list = [udp_frame(0), vxlan_frame(1)]
    times = [1_700_000_000_000_001_000, 1_700_000_000_500_000_000]
    nano = write(tmp_path / "nano.pcap", frame_list, times)
    for order, name in (("<", "little"), (">", "big")):
        for magic, unit in ((0xA1B2C3D4, 1000), (0xA1B23C4D, 1)):
            data = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
            for t_ns, frame in zip(times, frame_list, strict=True):
                seconds, fraction = divmod(t_ns, 1_000_000_000)
                head = (seconds, fraction // unit, len(frame), len(frame))
                data += struct.pack(order + "IIII", *head) + frame
            other = broken(tmp_path, data, f"{name}-{unit}.pcap")
            assert diff_in_process(nano, other) == (0, "1 capture identical\n"), (name, unit)


def test_pcapng_and_other_files_are_refused_by_name(good: Path, tmp_path: Path) -> None:
    pcapng = broken(tmp_path, bytes.fromhex("0a0d0d0a") + bytes(24), "all.pcapng")
    assert_error(
        good,
        pcapng,
        "byte 0: a pcapng file: kpkt diff reads pcap files (an output folder's *.pcap)",
    )
    fifo = tmp_path / "fifo.pcap"
    os.mkfifo(fifo)
    done = kpkt("diff", good, fifo, timeout=60)  # never read: it would block
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {fifo}: not a regular file; give a pcap file or an output folder\n",
    )


def test_a_broken_capture_in_a_folder_is_named(tmp_path: Path) -> None:
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        write(tmp_path / side / "ok.pcap", frames(2))
    write(tmp_path / "a" / "x.pcap", frames(3))
    bad = broken(
        tmp_path / "b", write(tmp_path / "a" / "x.pcap", frames(3)).read_bytes()[:-1], "x.pcap"
    )
    done = kpkt("diff", tmp_path / "a", tmp_path / "b")
    assert done.returncode == 2 and done.stdout == ""
    cut_short = "record 3 is cut short (51 of 52 bytes): the file is truncated"
    assert done.stderr == f"error: {bad}: byte 160: {cut_short}\n"


# --- fuzzing -------------------------------------------------------------------------------

FUZZ_FRAMES = [udp_frame(0), vxlan_frame(1), udp_frame(2, ttl=1)]
U32_FIELDS = st.sampled_from([4, 16, 20, 24, 28, 32, 36])  # version, snaplen, link type, record 1


@st.composite
def corrupted(draw) -> bytes:
    """A valid capture with a few corruptions: cut short, bytes set, header fields replaced."""
    writer_frames = draw(st.lists(st.sampled_from(FUZZ_FRAMES), max_size=4))
    data = bytearray(b"\xd4\xc3\xb2\xa1" if draw(st.booleans()) else b"\x4d\x3c\xb2\xa1")
    data += struct.pack("<HHiIII", 2, 4, 0, 0, 262144, 1)
    for n, frame in enumerate(writer_frames):
        data += struct.pack("<IIII", n, 0, len(frame), len(frame)) + frame
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "byte", "u32", "link"]))
        if kind == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "u32":
            at = draw(U32_FIELDS)
            if at + 4 <= len(data):
                value = draw(
                    st.sampled_from([0, 1, 13, 14, 51, 52, 65535, 262144, 2**31, 2**32 - 1])
                )
                struct.pack_into("<I", data, at, value)
        elif kind == "link" and len(data) >= 24:
            struct.pack_into("<I", data, 20, draw(st.sampled_from([0, 1, 101, 113, 276, 65535])))
    return bytes(data)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(corrupted(), st.booleans())
def test_fuzz_corrupted_captures_exit_0_1_or_2_never_an_internal_error(
    tmp_path_factory, data: bytes, first: bool
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    good = write(folder / "good.pcap", FUZZ_FRAMES)
    bad = broken(folder, data)
    status, output = diff_in_process(*((bad, good) if first else (good, bad)))
    assert "internal error" not in output and "Traceback" not in output, output
    assert status in (0, 1, 2), output
    if status == 2:
        assert output.startswith(f"error: {bad}: byte ") and output.count("\n") == 1, output
    else:
        last = "1 capture identical" if status == 0 else "1 of 1 captures differ ("
        assert output.splitlines()[-1].startswith(last), output
