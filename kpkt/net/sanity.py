"""The kernel's checks of what a namespace receives, for frames of checked flows only: kpkt
builds its own packets correctly, so only crafted ones (kpkt/net/raw.py) can fail them, and
the fast path never runs them.

The IPv4 header as `ip_rcv_core()` (and `br_validate_ipv4()` for br_netfilter) checks it, in
the kernel's order: shorter than a header, version not 4 or IHL under 5, IHL past the end, a
total length past the end or inside the header: `malformed`; a header checksum that does not
verify: `bad-checksum`. A frame longer than its total length is trimmed (Ethernet padding).
Then the transport header the stack reads (UDP 8 bytes, TCP 20 and its data offset, ICMP 8;
8 bytes of any fragment): a packet cut inside it is `malformed`, as the transport layer (and,
on a node, kube-proxy's DROP of conntrack INVALID packets) drops it. An ARP frame shorter than
its message is `malformed` too. All are silent drops: the kernel sends no ICMP error for them.

At local delivery (`ip_local_deliver()`) a fragment would be reassembled; kpkt does not model
reassembly, and drops each fragment there with reason `fragment`. Fragments are forwarded
unchanged (the defragmentation conntrack does on a node is not modelled either).
"""

from __future__ import annotations

import struct

from kpkt.observe import Decision, Tag, Why
from kpkt.wire.arp import ARP_LEN
from kpkt.wire.ethernet import ETH_LEN
from kpkt.wire.ipv4 import (
    IP_HEADER_LEN,
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    checksum,
)

_H = struct.Struct("!H")
_TRANSPORT = {PROTO_UDP: ("udp", 8), PROTO_TCP: ("tcp", 20), PROTO_ICMP: ("icmp", 8)}
_TCP_OFFSET_AT = 12
_MORE_FRAGMENTS = 0x2000
_OFFSET = 0x1FFF


def ipv4(stack, packet: bytes, tag: Tag, where: str | None = None) -> bytes | None:
    """`packet` as `ip_rcv_core()` leaves it (trimmed to its total length), or None when it
    fails a check (dropped, with the reason, at `where`: by default the stack)."""
    problem = _problem(packet)
    if problem is not None:
        stack.drop(problem, tag, where)
        return None
    return packet[: _H.unpack_from(packet, 2)[0]]


def _problem(packet: bytes) -> Decision | None:
    size = len(packet)
    if size < IP_MIN_LEN:
        return Decision(Why.MALFORMED, f"{size} bytes: shorter than an IPv4 header")
    version, ihl = packet[0] >> 4, IP_HEADER_LEN[packet[0]]
    if version != 4 or ihl < IP_MIN_LEN:
        return Decision(Why.MALFORMED, f"ipv4 header with version {version}, header length {ihl}")
    if ihl > size:
        return Decision(Why.MALFORMED, f"header length {ihl} > the {size} bytes received")
    if checksum(packet[:ihl]):
        stated = _H.unpack_from(packet, 10)[0]
        right = checksum(packet[:10] + b"\x00\x00" + packet[12:ihl])
        return Decision(Why.BAD_CHECKSUM, stated, packet[IP_SRC], right)
    total = _H.unpack_from(packet, 2)[0]
    if total > size:
        return Decision(Why.MALFORMED, f"total length {total} > the {size} bytes received")
    if total < ihl:
        return Decision(Why.MALFORMED, f"total length {total} < header length {ihl}")
    cut = truncated(packet[:total])
    return None if cut is None else Decision(Why.MALFORMED, cut)


def truncated(packet: bytes) -> str | None:
    """What cuts the transport header of `packet` (a whole IPv4 packet) short, or None."""
    known = _TRANSPORT.get(packet[PROTO])
    if known is None:
        return None
    name, need = known
    ihl = IP_HEADER_LEN[packet[0]]
    first = not _H.unpack_from(packet, 6)[0] & _OFFSET
    have = len(packet) - ihl
    if have < (need if first else 8):
        return f"{have} bytes after the ipv4 header: cut inside the {name} header"
    if first and name == "tcp":
        offset = (packet[ihl + _TCP_OFFSET_AT] >> 4) * 4
        if not need <= offset <= have:
            return f"tcp data offset {offset} with {have} bytes of segment"
    return None


def arp(frame: bytes) -> bool:
    """Whether an ARP frame holds a whole ARP message (`arp_rcv()`'s pskb_may_pull)."""
    return len(frame) >= ETH_LEN + ARP_LEN


def fragment(packet: bytes) -> Decision | None:
    """The drop of `packet` at local delivery if it is a fragment (its offset and whether more
    fragments follow), or None."""
    flags = _H.unpack_from(packet, 6)[0]
    if not flags & (_MORE_FRAGMENTS | _OFFSET):
        return None
    return Decision(Why.FRAGMENT, (flags & _OFFSET) * 8, bool(flags & _MORE_FRAGMENTS))
