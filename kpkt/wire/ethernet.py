"""Ethernet II headers (untagged): MAC addresses, EtherTypes, field offsets."""

from __future__ import annotations

import struct

ETH_LEN = 14
ETH_DST = slice(0, 6)
ETH_SRC = slice(6, 12)
ETH_ADDRS = slice(0, 12)  # destination and source together
ETH_TYPE = slice(12, 14)
ETH_SRC_TYPE = slice(6, 14)  # the header after the destination: source and EtherType

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
# the EtherType field as bytes, to compare with frame[ETH_TYPE] without decoding it
ETH_TYPE_IP = ETH_P_IP.to_bytes(2, "big")
ETH_TYPE_ARP = ETH_P_ARP.to_bytes(2, "big")
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

_ETH = struct.Struct("!6s6sH")


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def mac_str(mac: bytes) -> str:
    return mac.hex(":")


def is_multicast(mac: bytes) -> bool:
    """True for broadcast and multicast destinations (the group bit of the first octet)."""
    return bool(mac[0] & 1)


def eth_header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    return _ETH.pack(dst, src, ethertype)


def ethertype(frame: bytes) -> int:
    return (frame[12] << 8) | frame[13]
