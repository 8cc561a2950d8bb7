"""A Scapy packet as kpkt sends it: its bytes, whether it is a whole Ethernet frame, and what
the sender's stack fills in when it is sent (the `fill` of kpkt.spec.PacketStep).

What a real socket of that kind completes is left to the stack, unless the packet sets it:
an IP packet (a raw IP socket) gets the source address of its route and the next IP ID of the
namespace, and the IPv4 header checksum and the UDP or TCP checksum are redone over them; a
frame (`Ether()/...`, a packet socket) gets eth0's MAC as its source, and its IP header the
same as above. Nothing is taken from the machine kpkt runs on: a frame without a destination
MAC is sent to ff:ff:ff:ff:ff:ff (Scapy would ask this machine's ARP table). Every other field
is Scapy's default, so the bytes are the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kpkt.wire.ethernet import ETH_LEN
from kpkt.wire.ipv4 import IP_MIN_LEN

MAX_BYTES = 65535 + ETH_LEN  # an IPv4 packet of the largest total length, in an Ethernet frame


@dataclass(frozen=True, slots=True)
class Crafted:
    data: bytes
    frame: bool
    fill: frozenset[str]


class CraftError(ValueError):
    """A packet kpkt cannot send: why, in one line."""


def given(data: bytes, frame: bool) -> Crafted:
    """Bytes from elsewhere, sent byte for byte: an IPv4 packet, or with `frame` an Ethernet
    frame (at least a header of either)."""
    least = ETH_LEN if frame else IP_MIN_LEN
    if not least <= len(data) <= MAX_BYTES:
        what = "an Ethernet frame" if frame else "an IPv4 packet"
        raise CraftError(f"{len(data)} bytes: {what} has {least} to {MAX_BYTES} bytes")
    return Crafted(bytes(data), frame, frozenset())


def crafted(packet: Any) -> Crafted:
    """`packet` (a Scapy packet, or bytes: an IPv4 packet sent byte for byte) ready to send."""
    if isinstance(packet, bytes | bytearray):
        return given(packet, frame=False)
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Packet

    if not isinstance(packet, Packet):
        raise CraftError(f"expected a Scapy packet or bytes, got {type(packet).__name__}")
    packet = packet.copy()
    frame = isinstance(packet, Ether)
    if not frame and not isinstance(packet, IP):
        raise CraftError(
            f"a packet starting with {type(packet).__name__}: start with IP(...) (sent as a raw "
            "IP socket sends it) or Ether(...) (a whole frame onto eth0)"
        )
    fill = set()
    if frame:
        if packet.fields.get("src") is None:
            packet.src = "00:00:00:00:00:00"
            fill.add("ether-src")
        if packet.fields.get("dst") is None:
            packet.dst = "ff:ff:ff:ff:ff:ff"
    ip = packet if not frame else packet.payload
    if type(ip) is IP:
        if ip.fields.get("src") is None:
            ip.src = "0.0.0.0"
            fill.add("src")
        if ip.fields.get("id") is None:
            fill.add("id")
        if fill & {"src", "id"} and ip.fields.get("chksum") is None:
            fill.add("chksum")
        transport = ip.payload
        unset = isinstance(transport, UDP | TCP) and transport.fields.get("chksum") is None
        if "src" in fill and unset:
            fill.add("l4-chksum")
    try:
        data = bytes(packet)
    except Exception as error:  # Scapy's: what it says is the user's to fix
        raise CraftError(f"the packet does not build: {error}") from None
    if len(data) > MAX_BYTES:
        raise CraftError(f"{len(data)} bytes: larger than any IPv4 packet in a frame")
    return Crafted(data, frame, frozenset(fill))
