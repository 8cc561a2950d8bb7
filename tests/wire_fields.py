"""Frames (Ethernet, or raw IP from a tunnel without a link layer) as field lists for comparison
with the reference kernel's captures, with the fields the reference documents as random blanked:
IP IDs (and so header checksums), the outer VXLAN UDP source port (and its checksum), ICMP echo
ids (and the timestamp opening the ping payload), TCP initial sequence numbers (sequence and
acknowledgement numbers are compared relative to them) and TCP timestamp values (and so TCP
checksums)."""

from __future__ import annotations

import struct
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from kpkt.capture.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, read_pcap
from kpkt.wire.vxlan import LINUX_PORT, PRE_IANA_PORT


class Fields:
    """One capture file's frames, in order: relative TCP numbers need the file's history."""

    def __init__(self) -> None:
        self.isn: dict[tuple, int] = {}

    def of(self, frame: bytes, link_type: int = LINKTYPE_ETHERNET) -> list[tuple[str, object]]:
        packet = IP(frame) if link_type == LINKTYPE_RAW else Ether(frame)
        fields = []
        depth = 0
        layer = packet
        outer_udp = None
        while layer is not None and layer.name != "NoPayload":
            values = dict(layer.fields)
            if isinstance(layer, IP):
                values.pop("id"), values.pop("chksum")
            if isinstance(layer, UDP) and isinstance(layer.payload, VXLAN):
                outer_udp = values
                values.pop("sport"), values.pop("chksum")
            if isinstance(layer, ICMP) and layer.type in (0, 8):
                values.pop("id"), values.pop("chksum")
                data = bytes(layer.payload)
                fields.append((f"{depth}:ICMP.data[16:]", data[16:]))
                fields.append((f"{depth}:ICMP.data.len", len(data)))
            if isinstance(layer, TCP):
                self._relative(layer, values)
            for name, value in sorted(values.items(), key=lambda item: item[0]):
                fields.append((f"{depth}:{layer.name}.{name}", value))
            if isinstance(layer, ICMP):
                break
            layer = layer.payload if layer.payload else None
            depth += 1
        assert outer_udp is None or outer_udp.get("dport") in (PRE_IANA_PORT, LINUX_PORT)
        return fields

    def _relative(self, tcp: TCP, values: dict) -> None:
        ip = tcp.underlayer
        mine = (ip.src, tcp.sport, ip.dst, tcp.dport)
        peer = (ip.dst, tcp.dport, ip.src, tcp.sport)
        self.isn.setdefault(mine, tcp.seq)
        values["seq"] = (tcp.seq - self.isn[mine]) % 2**32
        values["ack"] = (tcp.ack - self.isn[peer]) % 2**32 if peer in self.isn else tcp.ack > 0
        values.pop("chksum")
        values["options"] = [
            (kind, None if kind == "Timestamp" else value) for kind, value in tcp.options
        ]


def pcap_link_type(path: Path) -> int:
    """The link type in a pcap file's header."""
    return struct.unpack_from("<I", path.read_bytes(), 20)[0]


def assert_same_as_linux(reference_path: Path, our_path: Path) -> None:
    """kpkt's capture of an interface holds the reference capture's frames, field by field (the
    fields of wire_fields.Fields, TCP numbers relative to each file's history), and its link
    type."""
    kind = pcap_link_type(reference_path)
    assert pcap_link_type(our_path) == kind, "link type differs"
    reference = [frame for _, frame in read_pcap(reference_path)]
    ours = [frame for _, frame in read_pcap(our_path)]
    assert [len(f) for f in ours] == [len(f) for f in reference], "frame count or lengths differ"
    linux, kpkt = Fields(), Fields()
    for number, (want, got) in enumerate(zip(reference, ours, strict=True), start=1):
        want_fields, got_fields = linux.of(want, kind), kpkt.of(got, kind)
        assert [n for n, _ in want_fields] == [n for n, _ in got_fields], f"frame {number} layers"
        differences = [
            f"{name}: linux {w!r} != kpkt {g!r}"
            for (name, w), (_, g) in zip(want_fields, got_fields, strict=True)
            if w != g
        ]
        assert not differences, f"{reference_path.name} frame {number}: " + "; ".join(differences)
