"""Raw sockets: how a namespace sends a packet an application built whole (a `packet:` step,
`send` on a live network).

An IPv4 packet goes as a raw IP socket with IP_HDRINCL sends it: the stack routes it, fills
in what the sender left unset (the source address the route chooses, the next IP ID) and redoes
the checksums that covered those fields, then the packet takes the OUTPUT path of any packet of
the namespace (kube-proxy's NAT on a node, ARP). A whole Ethernet frame goes as a packet
socket sends it: onto eth0 as given, after the same filling in (and eth0's MAC as the source
when unset). Nothing else is checked or corrected: the receivers apply the kernel's rules
(kpkt/net/sanity.py).
"""

from __future__ import annotations

import struct

from kpkt.net import sanity
from kpkt.observe import Decision, Tag, Why
from kpkt.wire.ethernet import ETH_LEN, ETH_SRC, ETH_TYPE, ETH_TYPE_IP
from kpkt.wire.ipv4 import (
    CHECKSUM,
    IP_DST,
    IP_HEADER_LEN,
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_TCP,
    PROTO_UDP,
    checksum,
    l4_checksum,
)

_H = struct.Struct("!H")
_L4_CHECKSUM_AT = {PROTO_UDP: 6, PROTO_TCP: 16}
_MORE_FRAGMENTS_OR_OFFSET = 0x3FFF


def send_raw(
    stack, data: bytes, frame: bool, fill: frozenset[str], tag: Tag, note: Decision | str
) -> None:
    """Send `data` (an IPv4 packet, or with `frame` an Ethernet frame) from `stack`."""
    if frame:
        eth0 = next(dev for dev in stack.devices if dev.name == "eth0")
        if "ether-src" in fill:
            data = data[:6] + eth0.mac + data[ETH_SRC.stop :]
        if data[ETH_TYPE] == ETH_TYPE_IP and len(data) >= ETH_LEN + IP_MIN_LEN:
            packet = _complete(stack, data[ETH_LEN:], fill)
            data = data[:ETH_LEN] + packet if packet is not None else data
        eth0.xmit(data, tag, note)
        return
    if len(data) < IP_MIN_LEN:
        detail = f"a raw packet of {len(data)} bytes is no IPv4 header"
        stack.drop(Decision(Why.MALFORMED, detail), tag)
        return
    packet = _complete(stack, data, fill)
    if packet is None:
        stack.drop(Decision(Why.UNREACHABLE, data[IP_DST]), tag)
        return
    if stack.netfilter is not None and (cut := sanity.truncated(packet)):
        # the node's own OUTPUT: conntrack finds the packet INVALID, kube-proxy drops it
        stack.drop(Decision(Why.MALFORMED, cut), tag)
        return
    stack.send_ip_packet(packet, tag, note)


def _complete(stack, packet: bytes, fill: frozenset[str]) -> bytes | None:
    """`packet` with the fields in `fill` filled in (None: the source was to be filled in and
    there is no route to the destination)."""
    ihl = IP_HEADER_LEN[packet[0]]
    if not fill or not IP_MIN_LEN <= ihl <= len(packet):
        return packet  # raw_send_hdrinc() fills in nothing in a header that lies about its length
    edited = bytearray(packet)
    if "src" in fill:
        src = stack.source_address(packet[IP_DST])
        if src is None:
            return None
        edited[IP_SRC] = src
    if "id" in fill:
        _H.pack_into(edited, 4, stack.ids.ip_id())
    if "chksum" in fill:
        edited[CHECKSUM] = b"\x00\x00"
        _H.pack_into(edited, 10, checksum(bytes(edited[:ihl])))
    at = _L4_CHECKSUM_AT.get(packet[PROTO])
    whole = not _H.unpack_from(packet, 6)[0] & _MORE_FRAGMENTS_OR_OFFSET
    if "l4-chksum" in fill and at is not None and whole and len(packet) >= ihl + at + 2:
        edited[ihl + at : ihl + at + 2] = b"\x00\x00"
        segment = bytes(edited[ihl:])
        value = l4_checksum(bytes(edited[IP_SRC]), bytes(edited[IP_DST]), packet[PROTO], segment)
        _H.pack_into(edited, ihl + at, value)
    return bytes(edited)
