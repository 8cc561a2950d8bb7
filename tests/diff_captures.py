"""Small captures for the `kpkt diff` tests: distinct frames written with kpkt's own pcap writer,
and the command run in-process (click's runner) or as a user runs it."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from kpkt.capture.pcap import PcapWriter
from kpkt.cli import main

STEP_NS = 1_000_000


def udp_frame(n: int, ttl: int = 64, ip_id: int = 0) -> bytes:
    """A UDP datagram told apart from the others by its source port and payload."""
    return bytes(
        Ether(src="02:00:0a:f4:01:05", dst="02:00:0a:f4:01:06")
        / IP(src="10.244.1.5", dst="10.244.1.6", ttl=ttl, id=ip_id)
        / UDP(sport=40000 + n, dport=8080)
        / Raw(f"datagram {n}".encode())
    )


def vxlan_frame(n: int) -> bytes:
    """A ping request inside flannel's VXLAN (UDP 8472)."""
    inner = IP(src="10.244.1.5", dst="10.244.2.5", ttl=63) / ICMP(id=7, seq=n) / Raw(b"x" * 8)
    return bytes(
        Ether(src="02:00:c0:a8:32:01", dst="02:00:c0:a8:32:02")
        / IP(src="192.168.50.1", dst="192.168.50.2")
        / UDP(sport=51000, dport=8472)
        / VXLAN(vni=1)
        / Ether(src="aa:aa:aa:aa:aa:01", dst="aa:aa:aa:aa:aa:02")
        / inner
    )


def frames(count: int) -> list[bytes]:
    return [udp_frame(n) for n in range(count)]


def write(path: Path, frame_list: list[bytes], times: list[int] | None = None) -> Path:
    """A pcap of the frames, a millisecond apart unless `times` (ns) are given, in place of
    any file at `path` (kpkt's writer never replaces a file)."""
    path.unlink(missing_ok=True)
    writer = PcapWriter(path)
    for n, frame in enumerate(frame_list):
        writer.write(times[n] if times else n * STEP_NS, frame)
    writer.flush()
    return path


def patch(path: Path, offset: int, fmt: str, value: int) -> Path:
    """Overwrite one header field of a file (`fmt` a struct format, e.g. `<I`)."""
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))
    return path


def diff_in_process(*args: object) -> tuple[int, str]:
    """`kpkt diff ARGS` through click's runner: (exit status, standard output and error)."""
    result = diff_result(*args)
    return result.exit_code, result.output


def diff_result(*args: object) -> Result:
    """`kpkt diff ARGS` through click's runner, its standard output and error apart."""
    return CliRunner().invoke(main, ["diff", *map(str, args)])


def kpkt(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
