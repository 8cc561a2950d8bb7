"""Reads a `packet` step: a packet crafted with a Scapy expression (`scapy:`), or given as hex
(`packetHex:` an IPv4 packet, `frameHex:` a whole Ethernet frame), sent `count` times from a
pod, node or external host. The expression is read by kpkt/crafted/expression.py, which runs no
code; Scapy is imported only when a topology has such a step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kpkt.crafted.packet import Crafted, CraftError, crafted, given
from kpkt.spec import PacketStep
from kpkt.topology.fields import Fields, show
from kpkt.topology.limits import MAX_COUNT, MAX_SECONDS

if TYPE_CHECKING:
    from kpkt.topology.traffic import Directory

PACKET_KEYS = ("from", "scapy", "packetHex", "frameHex", "count", "interval", "at", "expect")
_SOURCES = ("scapy", "packetHex", "frameHex")


def read_packet(f: Fields, text: str, directory: Directory) -> PacketStep | None:
    src = directory.sender(f)
    given = [key for key in _SOURCES if f.given(key)]
    count = f.integer("count", 1, MAX_COUNT, default=1)
    interval_ns = f.duration("interval", 1_000_000, MAX_SECONDS)
    at_ns = f.duration("at", None, MAX_SECONDS)
    if len(given) != 1:
        what = f", not {' and '.join(given)}" if given else ""
        f.bad(given[-1] if given else "scapy", f"give one of scapy, packetHex or frameHex{what}")
        return None
    crafted = _crafted(f, given[0])
    if src is None or crafted is None:
        return None
    return PacketStep(
        text, src, crafted.data, crafted.frame, crafted.fill, count, interval_ns, at_ns
    )


def _crafted(f: Fields, key: str) -> Crafted | None:
    value = f.string(key)
    if value is None:
        return None
    if key != "scapy":
        try:
            data = bytes.fromhex(value)
        except ValueError:
            f.bad(key, f"{show(value)} is not hex: write pairs of hex digits like 4500001c")
            return None
        try:
            return given(data, key == "frameHex")
        except CraftError as error:
            f.bad(key, str(error))
            return None
    from kpkt.crafted.expression import ExpressionError, parse  # imports Scapy

    try:
        return crafted(parse(value))
    except (ExpressionError, CraftError) as error:
        f.bad(key, str(error))
        return None
