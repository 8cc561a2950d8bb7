"""kpkt's own pcap writer: header, nanosecond records, chunked flushing, Scapy compatibility."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from scapy.layers.l2 import ARP, Ether
from scapy.utils import PcapReader, rdpcap

from kpkt.capture import pcap
from kpkt.capture.pcap import FILE_HEADER, FLUSH_BYTES, PcapWriter, read_pcap
from kpkt.wire.arp import ARP_REQUEST, arp_frame
from kpkt.wire.ethernet import BROADCAST, ZERO_MAC

EXPECTED_HEADER = bytes.fromhex(
    "4d3cb2a1"  # magic 0xa1b23c4d little-endian: nanosecond timestamps
    "0200" "0400"  # version 2.4
    "00000000"  # thiszone
    "00000000"  # sigfigs
    "00000400"  # snaplen 262144
    "01000000"  # LINKTYPE_ETHERNET
)  # fmt: skip


def arp(i: int) -> bytes:
    return arp_frame(
        ARP_REQUEST,
        BROADCAST,
        bytes((0x0A, 0x58, 0x0A, 0xF4, 0x01, i & 0xFF)),
        bytes((10, 244, 1, i & 0xFF)),
        ZERO_MAC,
        b"\x0a\xf4\x01\x01",
    )


def record(t_ns: int, frame: bytes) -> bytes:
    sec, nsec = divmod(t_ns, 1_000_000_000)
    return struct.pack("<IIII", sec, nsec, len(frame), len(frame)) + frame


def test_file_header_constant():
    assert len(FILE_HEADER) == 24
    assert FILE_HEADER == EXPECTED_HEADER
    assert pcap.SNAPLEN == 262144
    assert pcap.LINKTYPE_ETHERNET == 1


def test_header_written_with_no_records(tmp_path):
    path = tmp_path / "empty.pcap"
    PcapWriter(path).flush()
    data = path.read_bytes()
    assert data == EXPECTED_HEADER
    assert data[:4] == b"\x4d\x3c\xb2\xa1"
    assert struct.unpack("<HH", data[4:8]) == (2, 4)
    assert struct.unpack("<I", data[16:20]) == (262144,)
    assert struct.unpack("<I", data[20:24]) == (1,)
    assert read_pcap(path) == []


def test_nothing_is_written_before_a_flush(tmp_path):
    path = tmp_path / "lazy.pcap"
    writer = PcapWriter(path)
    writer.write(1, arp(1))
    assert not path.exists()
    writer.flush()
    assert path.read_bytes() == EXPECTED_HEADER + record(1, arp(1))


def test_records_round_trip_with_nanoseconds(tmp_path):
    path = tmp_path / "trace.pcap"
    records = [
        (0, arp(1)),
        (1, arp(2)),
        (999_999_999, arp(3)),
        (1_000_000_000, arp(4)),
        (5_123_456_789, b"\x00" * 60),
        (4_000_000_000 * 1_000_000_000 + 7, arp(5)),  # seconds near the top of 32 bits
        (6_000_000_000, b""),
    ]
    writer = PcapWriter(path)
    for t_ns, frame in records:
        writer.write(t_ns, frame)
    writer.flush()
    assert read_pcap(path) == records
    data = path.read_bytes()
    # the 5th record: seconds and nanoseconds stored separately, little-endian
    offset = 24 + sum(16 + len(f) for _, f in records[:4])
    assert struct.unpack_from("<IIII", data, offset) == (5, 123_456_789, 60, 60)


def test_flush_twice_appends(tmp_path):
    path = tmp_path / "two.pcap"
    writer = PcapWriter(path)
    writer.write(10, arp(1))
    writer.flush()
    writer.write(20, arp(2))
    writer.flush()
    writer.flush()  # nothing buffered: nothing added
    assert path.read_bytes() == EXPECTED_HEADER + record(10, arp(1)) + record(20, arp(2))


def test_writing_more_than_flush_bytes_gives_the_same_file(tmp_path):
    frames = [(i * 1_000 + 17, bytes([i & 0xFF]) * (1400 + i % 101)) for i in range(500)]
    total = sum(16 + len(f) for _, f in frames)
    assert total > 2 * FLUSH_BYTES  # at least two automatic flushes

    chunked = tmp_path / "chunked.pcap"
    writer = PcapWriter(chunked)
    flushed_early = False
    for t_ns, frame in frames:
        writer.write(t_ns, frame)
        flushed_early = flushed_early or chunked.exists()
    assert flushed_early
    assert len(writer.buffer) < FLUSH_BYTES
    writer.flush()

    expected = EXPECTED_HEADER + b"".join(record(t, f) for t, f in frames)
    assert chunked.read_bytes() == expected
    assert read_pcap(chunked) == frames


def test_a_new_writer_never_replaces_an_old_file(tmp_path):
    # each capture point has a file of its own: one that exists is another's, and is kept
    path = tmp_path / "reused.pcap"
    path.write_bytes(b"old contents" * 100)
    writer = PcapWriter(path)
    writer.write(1, arp(1))
    with pytest.raises(FileExistsError):
        writer.flush()
    assert path.read_bytes() == b"old contents" * 100


def test_read_pcap_rejects_other_formats(tmp_path):
    path = tmp_path / "usec.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    with pytest.raises(ValueError):
        read_pcap(path)


def test_scapy_reads_the_file(tmp_path):
    path = tmp_path / "scapy.pcap"
    records = [(1_234_567_891, arp(1)), (2_000_000_001, arp(2)), (3_500_000_000, arp(3))]
    writer = PcapWriter(path)
    for t_ns, frame in records:
        writer.write(t_ns, frame)
    writer.flush()

    packets = rdpcap(str(path))
    assert len(packets) == len(records)
    for packet, (t_ns, frame) in zip(packets, records, strict=True):
        assert bytes(packet) == frame
        assert packet.haslayer(Ether) and packet.haslayer(ARP)
        assert Decimal(packet.time) == Decimal(t_ns) / Decimal(1_000_000_000)
    assert packets[0][ARP].psrc == "10.244.1.1"
    assert packets[0][ARP].pdst == "10.244.1.1"
    assert packets[1][ARP].hwsrc == "0a:58:0a:f4:01:02"

    with PcapReader(str(path)) as reader:
        assert reader.linktype == 1
        assert reader.nano is True


def test_pcapng_comment_cache_is_bounded(tmp_path):
    # per-packet comments ("udp send 7/200000") never repeat: remembering them all would make
    # memory grow with the packet count
    from kpkt.capture.pcapng import COMMENT_CACHE, PcapngWriter

    writer = PcapngWriter(tmp_path / "all.pcapng", "test")
    interface = writer.add_interface("a/eth0", "test")
    for n in range(COMMENT_CACHE * 2 + 5):
        writer.packet(interface, n, b"\x00" * 60, True, n, f"udp send {n}")
    assert len(writer._comments) <= COMMENT_CACHE
    writer.close()
    assert (tmp_path / "all.pcapng").stat().st_size > 0


def test_pcapng_annotations_join_on_the_newest_packet_only(tmp_path):
    # a drop or a note decided after the frame was recorded lands in that frame's comment; the
    # block is read back and rewritten, so nothing else of it may change
    from scapy.utils import PcapNgReader

    from kpkt.capture.pcapng import PcapngWriter

    path = tmp_path / "all.pcapng"
    writer = PcapngWriter(path, "test")
    interface = writer.add_interface("a/eth0", "test")
    writer.packet(interface, 5_000_000_123, b"\x01" * 61, True, 7, "")
    writer.annotate(7, "first")
    writer.annotate(7, "second")
    writer.annotate(8, "not the newest packet: ignored")
    writer.packet(interface, 6_000_000_000, b"\x02" * 60, False, 8, "fdb: local")
    writer.annotate(8, "drop: ttl")
    writer.annotate(7, "too late")
    writer.flush()
    writer.annotate(8, "written already: too late")
    writer.close()

    packets = list(PcapNgReader(str(path)))
    assert [bytes(p) for p in packets] == [b"\x01" * 61, b"\x02" * 60]
    assert [p.comments for p in packets] == [[b"first; second"], [b"fdb: local; drop: ttl"]]
    assert [p.direction for p in packets] == [2, 1]  # outbound, inbound
    assert [Decimal(p.time) for p in packets] == [Decimal("5.000000123"), Decimal(6)]


def test_the_first_annotation_after_a_bare_label_follows_a_colon(tmp_path):
    # record() writes "step 1 flow 1: note", or the bare label when the hop has no note; a
    # later annotation must read the same way, not "step 1 flow 1; fdb learn ..."
    from scapy.utils import PcapNgReader

    from kpkt.capture.pcapng import PcapngWriter

    path = tmp_path / "all.pcapng"
    writer = PcapngWriter(path, "test")
    interface = writer.add_interface("a/eth0", "test")
    writer.packet(interface, 1, b"\x01" * 60, True, 1, "step 1 flow 1")
    writer.annotate(1, "fdb learn 02:00:00:00:00:01 on veth-a", "step 1 flow 1")
    writer.annotate(1, "drop: ttl", "step 1 flow 1")
    writer.packet(interface, 2, b"\x02" * 60, True, 2, "step 1 flow 1: fdb: local")
    writer.annotate(2, "drop: ttl", "step 1 flow 1")
    writer.close()

    assert [p.comments for p in PcapNgReader(str(path))] == [
        [b"step 1 flow 1: fdb learn 02:00:00:00:00:01 on veth-a; drop: ttl"],
        [b"step 1 flow 1: fdb: local; drop: ttl"],
    ]


def test_comment_notes_leave_out_the_step_and_flow_label():
    from kpkt.capture.tap import comment_notes

    assert comment_notes("step 1 flow 1") == ""
    assert comment_notes("step 12 flow 3: fdb: local; drop: ttl") == "fdb: local; drop: ttl"
    assert comment_notes("background flow 7: arp who-has 10.1.1.1 (try 1)").startswith("arp")
    assert comment_notes("step 1 flowers") == "step 1 flowers"  # not a label: kept whole


def test_a_raw_ip_capture_has_link_type_101_and_scapy_reads_ip(tmp_path):
    # tunl0 has no link layer: tcpdump writes LINKTYPE_RAW and frames start with IPv4
    from scapy.layers.inet import IP

    from kpkt.wire.ipv4 import PROTO_UDP, ipv4_packet

    path = tmp_path / "node1__tunl0.pcap"
    packet = ipv4_packet(b"\x0a\xf5\x01\x02", b"\x0a\xf5\x02\x02", PROTO_UDP, bytes(18), ident=1)
    writer = PcapWriter(path, pcap.LINKTYPE_RAW)
    writer.write(5, packet)
    writer.flush()
    data = path.read_bytes()
    assert data[:20] == EXPECTED_HEADER[:20]
    assert struct.unpack("<I", data[20:24]) == (101,)
    assert read_pcap(path) == [(5, packet)]
    (read,) = rdpcap(str(path))
    assert read.haslayer(IP) and bytes(read) == packet


def test_pcapng_interfaces_carry_their_own_link_type(tmp_path):
    from scapy.utils import PcapNgReader

    from kpkt.capture.pcapng import PcapngWriter

    path = tmp_path / "all.pcapng"
    writer = PcapngWriter(path, "test")
    eth0 = writer.add_interface("node1/eth0", "underlay")
    tunl0 = writer.add_interface("node1/tunl0", "ipip", pcap.LINKTYPE_RAW)
    writer.packet(eth0, 1, arp(1), True, 1, "")
    writer.packet(tunl0, 2, b"\x45" + bytes(19), True, 2, "")
    writer.close()
    with PcapNgReader(str(path)) as reader:
        list(reader)
        assert [linktype for linktype, _, _ in reader.interfaces] == [1, 101]
