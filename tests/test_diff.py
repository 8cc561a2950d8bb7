"""`kpkt diff` and kpkt.capture.diff: real runs of the reference cluster, edited byte by byte in
copies, compared field by field through the command a user runs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from kpkt import runner
from kpkt.capture.diff import (
    compare_folders,
    compare_frames,
    compare_pcaps,
    dissect,
    parse_ignore,
    read_frames,
)
from kpkt.capture.pcap import read_pcap
from kpkt.errors import KpktError
from kpkt.topology.load import load_topology
from kpkt.wire.ipv4 import ipv4_header_checksum

from conftest import ROOT

REFERENCE = ROOT / "topologies" / "flannel-reference.yaml"
CAPTURES = 14
ETH, IPV4, UDP_LEN, VXLAN_LEN = 14, 20, 8, 8
TTL = 8  # the TTL's offset in an IPv4 header
INNER_IP = (
    ETH + IPV4 + UDP_LEN + VXLAN_LEN + ETH
)  # where the inner IPv4 header of a VXLAN frame starts


def kpkt(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("diff") / "a"
    runner.run(load_topology(REFERENCE, seed=0), folder=folder)
    return folder


@pytest.fixture
def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "b"))


def record_offsets(path: Path) -> list[int]:
    """Where each record header of a pcap starts."""
    data = path.read_bytes()
    offsets, at = [], 24
    while at < len(data):
        offsets.append(at)
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    return offsets


def set_frame_byte(path: Path, number: int, offset: int, value: int) -> int:
    """Set byte `offset` of frame `number` (from 1) and return what it was."""
    data = bytearray(path.read_bytes())
    at = record_offsets(path)[number - 1] + 16 + offset
    old, data[at] = data[at], value
    path.write_bytes(bytes(data))
    return old


def fix_ip_checksum(path: Path, number: int, ip_at: int) -> tuple[int, int]:
    """Recompute the IPv4 header checksum at `ip_at` in frame `number`: (old, new)."""
    data = bytearray(path.read_bytes())
    at = record_offsets(path)[number - 1] + 16 + ip_at
    old = int.from_bytes(data[at + 10 : at + 12], "big")
    new = ipv4_header_checksum(bytes(data[at : at + IPV4]))
    data[at + 10 : at + 12] = new.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return old, new


# --- the command ------------------------------------------------------------------------------


def test_two_runs_are_identical(run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    runner.run(load_topology(REFERENCE, seed=0), folder=again)
    done = kpkt("diff", run, again)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"{CAPTURES} captures identical\n",
        "",
    )
    assert compare_folders(run, again, set()).same


def test_a_changed_ttl_is_named_by_file_frame_and_field(run: Path, copy: Path) -> None:
    assert set_frame_byte(copy / "node1__flannel.1.pcap", 1, ETH + TTL, 62) == 63
    done = kpkt("diff", run, copy)
    assert done.returncode == 1, done.stderr
    # the checksum was left as it was: its field is equal on both sides, only the TTL differs
    assert done.stdout.splitlines() == [
        "node1__flannel.1.pcap frame 1: IP.ttl: 63 != 62",
        f"1 of {CAPTURES} captures differ (1 frame)",
    ]


def test_a_fixed_checksum_differs_too_unless_ignored(run: Path, copy: Path) -> None:
    capture = copy / "node1__flannel.1.pcap"
    set_frame_byte(capture, 1, ETH + TTL, 62)
    old, new = fix_ip_checksum(capture, 1, ETH)
    done = kpkt("diff", run, copy)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "node1__flannel.1.pcap frame 1: IP.ttl: 63 != 62",
        f"node1__flannel.1.pcap frame 1: IP.chksum: {old} != {new}",
        f"1 of {CAPTURES} captures differ (1 frame)",
    ]
    done = kpkt("diff", run, copy, "--ignore", "ip.chksum")
    assert done.stdout.splitlines()[0] == "node1__flannel.1.pcap frame 1: IP.ttl: 63 != 62"
    assert len(done.stdout.splitlines()) == 2
    done = kpkt("diff", run, copy, "--limit", "1")
    assert done.stdout.splitlines() == [
        "node1__flannel.1.pcap frame 1: IP.ttl: 63 != 62",
        "… 1 more differences in node1__flannel.1.pcap",
        f"1 of {CAPTURES} captures differ (1 frame)",
    ]


def test_two_files_are_compared_the_same_way(run: Path, copy: Path) -> None:
    set_frame_byte(copy / "node1__flannel.1.pcap", 1, ETH + TTL, 62)
    done = kpkt("diff", run / "node1__flannel.1.pcap", copy / "node1__flannel.1.pcap")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "node1__flannel.1.pcap frame 1: IP.ttl: 63 != 62",
        "1 of 1 captures differ (1 frame)",
    ]
    done = kpkt("diff", run / "node1__eth0.pcap", copy / "node1__eth0.pcap")
    assert (done.returncode, done.stdout) == (0, "1 capture identical\n")


def test_ignore_matches_inner_and_outer_by_suffix(run: Path, copy: Path) -> None:
    capture = copy / "node1__eth0.pcap"
    frame = read_pcap(capture)[2][1]  # frame 3: the first VXLAN packet (after the ARP exchange)
    assert dissect(frame)["VXLAN.vni"] == 1
    assert set_frame_byte(capture, 3, INNER_IP + TTL, 62) == 63
    inner = "node1__eth0.pcap frame 3: inner.IP.ttl: 63 != 62"
    assert kpkt("diff", run, copy).stdout.splitlines()[0] == inner
    for ignore in ("ip.ttl", "inner.ip.ttl", "IP.TTL", "ttl"):
        done = kpkt("diff", run, copy, "--ignore", ignore)
        assert (done.returncode, done.stdout) == (0, f"{CAPTURES} captures identical\n"), ignore

    assert set_frame_byte(capture, 3, ETH + TTL, 63) == 64
    outer = "node1__eth0.pcap frame 3: IP.ttl: 64 != 63"
    assert kpkt("diff", run, copy).stdout.splitlines()[:2] == [outer, inner]
    done = kpkt("diff", run, copy, "--ignore", "inner.ip.ttl")
    assert done.stdout.splitlines() == [outer, f"1 of {CAPTURES} captures differ (1 frame)"]
    assert kpkt("diff", run, copy, "--ignore", "ip.ttl").returncode == 0


def test_a_missing_last_frame_is_a_frame_count_difference(run: Path, copy: Path) -> None:
    capture = copy / "node2__eth0.pcap"
    count = len(record_offsets(capture))
    capture.write_bytes(capture.read_bytes()[: record_offsets(capture)[-1]])
    done = kpkt("diff", run, copy)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"node2__eth0.pcap: frame count {count} != {count - 1}",
        f"node2__eth0.pcap frame {count} only in A: "
        "Ether / IP / UDP / VXLAN / Ether / IP / ICMP 10.244.2.2 > 10.244.1.2 echo-reply 0 / Raw",
        f"1 of {CAPTURES} captures differ (1 frame)",
    ]


def test_captures_only_in_one_folder(run: Path, copy: Path) -> None:
    (copy / "node2__veth-pod-b.pcap").unlink()
    done = kpkt("diff", run, copy)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"only in {run}: node2__veth-pod-b.pcap",
        f"{CAPTURES - 1} captures identical; 1 only in A",
    ]
    shutil.copy(run / "node1__eth0.pcap", copy / "extra.pcap")
    (copy / "all.pcapng").unlink()  # neither all.pcapng nor manifest.json is compared here
    (copy / "manifest.json").write_text("{}")
    done = kpkt("diff", run, copy)
    assert done.stdout.splitlines() == [
        f"only in {copy}: extra.pcap",
        f"only in {run}: node2__veth-pod-b.pcap",
        f"{CAPTURES - 1} captures identical; 1 only in A, 1 only in B",
    ]


def test_timestamps_are_compared_unless_told_not_to(run: Path, copy: Path) -> None:
    capture = copy / "node1__eth0.pcap"
    data = bytearray(capture.read_bytes())
    at = record_offsets(capture)[1] + 4  # frame 2's nanoseconds
    struct.pack_into("<I", data, at, struct.unpack_from("<I", data, at)[0] + 1000)
    capture.write_bytes(bytes(data))
    (t_ns, _), (t_ns_b, _) = read_pcap(run / "node1__eth0.pcap")[1], read_pcap(capture)[1]
    done = kpkt("diff", run, copy)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"node1__eth0.pcap frame 2: frame.time: 0.{t_ns:09d} != 0.{t_ns_b:09d}",
        f"1 of {CAPTURES} captures differ (1 frame)",
    ]
    for option in (["--no-times"], ["--ignore", "frame.time"]):
        done = kpkt("diff", run, copy, *option)
        assert (done.returncode, done.stdout) == (0, f"{CAPTURES} captures identical\n"), option


def test_a_microsecond_pcap_from_tcpdump_or_scapy(run: Path, tmp_path: Path) -> None:
    records = read_pcap(run / "node1__eth0.pcap")
    packets = []
    for t_ns, frame in records:
        packet = Ether(frame)
        packet.time = Decimal(1_700_000_000) + Decimal(t_ns // 1000) / 1_000_000
        packets.append(packet)
    micro = tmp_path / "node1__eth0.pcap"
    wrpcap(str(micro), packets)
    assert micro.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")  # microseconds, little-endian
    assert read_frames(micro) == [
        (1_700_000_000_000_000_000 + t_ns // 1000 * 1000, frame) for t_ns, frame in records
    ]
    done = kpkt("diff", micro, micro)
    assert (done.returncode, done.stdout, done.stderr) == (0, "1 capture identical\n", "")
    done = kpkt("diff", run / "node1__eth0.pcap", micro, "--no-times")
    assert (done.returncode, done.stdout) == (0, "1 capture identical\n")


def test_bad_inputs_exit_2_without_a_traceback(run: Path, tmp_path: Path) -> None:
    file = run / "node1__eth0.pcap"
    done = kpkt("diff", file, run)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {file} and {run}: compare two capture files or two folders, not one of each\n"
    )
    done = kpkt("diff", run, tmp_path / "nope")
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {tmp_path / 'nope'}: no such file or folder\n",
    )
    done = kpkt("diff", run, run, "--ignore", "ip id")
    assert done.returncode == 2 and "--ignore 'ip id'" in done.stderr
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"not a capture at all")
    done = kpkt("diff", garbage, garbage)
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {garbage}: byte 0: not a pcap file (magic 6e6f7420)\n",
    )
    cut = tmp_path / "cut.pcap"
    last = record_offsets(file)[-1]
    cut.write_bytes(file.read_bytes()[: last + 6])  # half a record header
    done = kpkt("diff", cut, file)
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {cut}: byte {last}: record {len(record_offsets(file))}'s header is cut short: "
        "the file is truncated\n",
    )
    for done in (kpkt("diff", file, run), kpkt("diff", garbage, garbage)):
        assert "Traceback" not in done.stderr


def test_help_shows_an_example() -> None:
    done = kpkt("diff", "--help")
    assert done.returncode == 0 and "kpkt diff tests/golden/" in done.stdout


# --- the library ------------------------------------------------------------------------------


def test_dissect_names_every_layer_and_prefixes_the_tunnel(run: Path) -> None:
    fields = dissect(read_pcap(run / "node1__eth0.pcap")[2][1])
    assert fields["frame.len"] == 111
    assert fields["IP.ttl"] == 64 and fields["inner.IP.ttl"] == 63
    assert fields["UDP.dport"] == 8472 and fields["VXLAN.vni"] == 1
    assert fields["inner.Ether.src"] == "02:00:0a:f4:01:00"
    assert fields["inner.Raw.load"] == b"kref-udp-cross-node"


def test_a_repeated_layer_is_numbered_and_icmp_quotes_keep_scapys_names() -> None:
    fields = dissect(bytes(Ether() / IP(ttl=5) / IP(ttl=6) / UDP()))
    assert (fields["IP.ttl"], fields["IP#2.ttl"]) == (5, 6)
    quoted = dissect(bytes(Ether() / IP() / ICMP(type=11) / IP(ttl=1) / UDP(dport=33434)))
    assert quoted["IPerror.ttl"] == 1 and quoted["UDPerror.dport"] == 33434


def test_field_differences_show_absent_fields_and_truncate_payloads() -> None:
    udp = Ether() / IP() / UDP(sport=1000, dport=2000)
    a, b = bytes(udp / Raw(bytes(40))), bytes(udp / Raw(bytes(39) + b"\x01"))
    diffs = [str(d) for d in compare_frames(a, b, {"ip.chksum", "udp.chksum"})]
    assert diffs == [f"Raw.load: {'00' * 32}… != {'00' * 32}…"]
    short = bytes(Ether() / Raw(b"\x00\x01"))  # an Ethernet header and two bytes
    diffs = [str(d) for d in compare_frames(a, short, {"raw.load", "frame.len", "ether.type"})]
    assert diffs[0] == "IP.version: 4 != <absent>"
    assert "UDP.dport: 2000 != <absent>" in diffs


def test_compare_pcaps_returns_the_lines(run: Path, copy: Path) -> None:
    set_frame_byte(copy / "node1__flannel.1.pcap", 1, ETH + TTL, 62)
    lines = compare_pcaps(copy / "node1__flannel.1.pcap", run / "node1__flannel.1.pcap", set())
    assert lines == ["node1__flannel.1.pcap frame 1: IP.ttl: 62 != 63"]


def test_ignore_entries_are_validated() -> None:
    assert parse_ignore(["IP.id", "inner.ip.ttl", "IP#2.ttl", "frame.time"]) == {
        "ip.id",
        "inner.ip.ttl",
        "ip#2.ttl",
        "frame.time",
    }
    with pytest.raises(KpktError) as error:
        parse_ignore(["ip.id", "ip-id", ""])
    assert len(error.value.problems) == 2
