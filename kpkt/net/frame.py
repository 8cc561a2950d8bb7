"""Header views and edits on raw Ethernet frames: fixed offsets, checksums, no Scapy.

Between hops a frame is plain `bytes`; devices read the few fields they need here and make the
edits a kernel makes (MAC rewrite, TTL decrement with the checksum redone, tunnel headers).
Offsets assume an untagged Ethernet header and an IPv4 header (IHL from the packet).
"""

from __future__ import annotations

import struct

ETH_LEN = 14
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

_H = struct.Struct("!H")
_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def is_multicast(mac: bytes) -> bool:
    """True for broadcast and multicast destinations (the group bit of the first octet)."""
    return bool(mac[0] & 1)


# --- checksums --------------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`.

    The ones' complement sum of the 16-bit words is the data read as one big-endian number,
    modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), except that a nonzero sum folds to 0xFFFF, never
    to 0: one big-integer remainder in C instead of a loop over the words."""
    if len(data) & 1:
        data = data + b"\x00"  # not +=: a bytearray argument is the caller's
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and any(data):
        total = 0xFFFF
    return ~total & 0xFFFF


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """The UDP/TCP checksum of `segment` (its checksum field zeroed) with the IPv4 pseudo-header.

    A UDP result of 0 is sent as 0xffff (RFC 768)."""
    pseudo = src + dst + bytes((0, proto)) + _H.pack(len(segment))
    value = checksum(pseudo + segment)
    return 0xFFFF if value == 0 and proto == PROTO_UDP else value


def ipv4_header_checksum(header: bytes) -> int:
    return checksum(header[:10] + b"\x00\x00" + header[12:])


# --- Ethernet ---------------------------------------------------------------------------------


def eth_header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    return _ETH.pack(dst, src, ethertype)


def eth_dst(frame: bytes) -> bytes:
    return frame[0:6]


def eth_src(frame: bytes) -> bytes:
    return frame[6:12]


def ethertype(frame: bytes) -> int:
    return (frame[12] << 8) | frame[13]


# --- ARP --------------------------------------------------------------------------------------

ARP_REQUEST = 1
ARP_REPLY = 2


def arp_frame(op: int, eth_dst_mac: bytes, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """An Ethernet/ARP frame as Linux sends it: 42 bytes, no padding."""
    return _ETH.pack(eth_dst_mac, sha, ETH_P_ARP) + _ARP.pack(
        1, ETH_P_IP, 6, 4, op, sha, spa, tha, tpa
    )


def arp_fields(frame: bytes) -> tuple[int, bytes, bytes, bytes, bytes]:
    """(op, sha, spa, tha, tpa) of an ARP frame."""
    _, _, _, _, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, ETH_LEN)
    return op, sha, spa, tha, tpa


# --- IPv4 -------------------------------------------------------------------------------------


def ipv4_packet(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes,
    *,
    ident: int,
    ttl: int = 64,
    df: bool = True,
    tos: int = 0,
) -> bytes:
    """An IPv4 header (no options) followed by `payload`, with a valid header checksum."""
    header = _IPV4.pack(
        0x45, tos, 20 + len(payload), ident, 0x4000 if df else 0, ttl, proto, 0, src, dst
    )
    csum = checksum(header)
    return header[:10] + _H.pack(csum) + header[12:] + payload


def ip_src(packet: bytes) -> bytes:
    return packet[12:16]


def ip_dst(packet: bytes) -> bytes:
    return packet[16:20]


def ip_proto(packet: bytes) -> int:
    return packet[9]


def ip_ttl(packet: bytes) -> int:
    return packet[8]


def ip_header_len(packet: bytes) -> int:
    return (packet[0] & 0x0F) * 4


def ip_df(packet: bytes) -> bool:
    return bool(packet[6] & 0x40)


def decrement_ttl(packet: bytes) -> bytes:
    """The packet with TTL - 1 and the header checksum updated incrementally (RFC 1624),
    as `ip_decrease_ttl` does."""
    edited = bytearray(packet)
    edited[8] -= 1
    csum = ((packet[10] << 8) | packet[11]) + 0x0100
    _H.pack_into(edited, 10, (csum + (csum >= 0xFFFF)) & 0xFFFF)  # the kernel's fold: 0xffff is 0
    return bytes(edited)


def with_ip_id(packet: bytes, ident: int) -> bytes:
    """The packet with a new IP ID and the header checksum redone."""
    header = packet[:4] + _H.pack(ident) + packet[6:10] + b"\x00\x00" + packet[12:20]
    return header[:10] + _H.pack(checksum(header)) + header[12:] + packet[20:]


def l4_ports(packet: bytes) -> tuple[int, int]:
    """(source port, destination port) of the UDP/TCP segment after the IPv4 header."""
    ihl = ip_header_len(packet)
    return (packet[ihl] << 8) | packet[ihl + 1], (packet[ihl + 2] << 8) | packet[ihl + 3]


# --- UDP --------------------------------------------------------------------------------------


def udp_segment(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header and payload with the checksum complete (what a NIC would send)."""
    length = 8 + len(payload)
    segment = _UDP.pack(sport, dport, length, 0) + payload
    return segment[:6] + _H.pack(l4_checksum(src, dst, PROTO_UDP, segment)) + segment[8:]


# --- TCP --------------------------------------------------------------------------------------

_TCP = struct.Struct("!HHIIBBHHH")


def tcp_segment(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    """A TCP header (options padded to 32 bits by the caller) and payload, checksum complete."""
    offset = (20 + len(options)) // 4
    header = _TCP.pack(sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    segment = header + payload
    csum = l4_checksum(src, dst, PROTO_TCP, segment)
    return segment[:16] + _H.pack(csum) + segment[18:]
