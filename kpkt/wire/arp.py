"""ARP for IPv4 over Ethernet: operations, a builder and the fields of a received frame."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from kpkt.wire.ethernet import ETH_LEN, ETH_P_ARP, ETH_P_IP, eth_header, mac_str

ARP_REQUEST = 1
ARP_REPLY = 2

_ARP = struct.Struct("!HHBBH6s4s6s4s")
ARP_LEN = _ARP.size  # an Ethernet/IPv4 ARP message


def arp_frame(op: int, eth_dst_mac: bytes, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """An Ethernet/ARP frame as Linux sends it: 42 bytes, no padding."""
    return eth_header(eth_dst_mac, sha, ETH_P_ARP) + _ARP.pack(
        1, ETH_P_IP, 6, 4, op, sha, spa, tha, tpa
    )


def arp_fields(frame: bytes) -> tuple[int, bytes, bytes, bytes, bytes]:
    """(op, sha, spa, tha, tpa) of an ARP frame, unpacked as they are returned."""
    return _FIELDS.unpack_from(frame, _FIELDS_AT)


# the fields arp_fields returns: the message after its hardware and protocol types and sizes
_FIELDS = struct.Struct("!H6s4s6s4s")
_FIELDS_AT = ETH_LEN + _ARP.size - _FIELDS.size


def arp_summary(frame: bytes) -> str:
    """One line, as tcpdump puts it: `ARP who-has 10.0.0.1 tell 10.0.0.2`."""
    op, sha, spa, _tha, tpa = arp_fields(frame)
    if op == ARP_REQUEST:
        return f"ARP who-has {IPv4Address(tpa)} tell {IPv4Address(spa)}"
    if op == ARP_REPLY:
        return f"ARP {IPv4Address(spa)} is-at {mac_str(sha)}"
    return f"ARP op {op}"
