"""VXLAN (RFC 7348): the 8-byte header after UDP, carrying an Ethernet frame."""

from __future__ import annotations

import struct

VXLAN_LEN = 8
VXLAN_FLAGS = 0x08  # the I flag (in the first byte): the VNI is valid
LINUX_PORT = 4789  # the IANA port, Linux's default
PRE_IANA_PORT = 8472  # Linux's default before the IANA port, still CNIs' choice

_HEADER = struct.Struct("!II")


def vxlan_header(vni: int) -> bytes:
    return _HEADER.pack(VXLAN_FLAGS << 24, vni << 8)


VNI = slice(4, 7)  # `int.from_bytes(header[VNI], "big")`
