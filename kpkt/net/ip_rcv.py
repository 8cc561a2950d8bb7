"""The kernel's checks of a received IPv4 header (`ip_rcv_core()`, and `br_validate_ipv4()` for
br_netfilter), for packets of checked flows only: kpkt builds its own packets correctly, so
only crafted packets (kpkt/net/raw.py) can fail them, and the fast path never runs them.

In the kernel's order: shorter than a header, version not 4 or IHL under 5, IHL past the
end, a total length past the end or inside the header: `malformed`; a header checksum that does
not verify: `bad-checksum`. A frame longer than its total length is trimmed (Ethernet padding).
All are silent drops: the kernel sends no ICMP error for them.

At local delivery (`ip_local_deliver()`) a fragment would be reassembled; kpkt does not model
reassembly, and drops each fragment there with reason `fragment`. Fragments are forwarded
unchanged (the defragmentation conntrack does on a node is not modelled either).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from kpkt.observe import Tag
from kpkt.wire.ipv4 import IP_HEADER_LEN, IP_MIN_LEN, IP_SRC, checksum

_H = struct.Struct("!H")
_MORE_FRAGMENTS = 0x2000
_OFFSET = 0x1FFF


def checked(stack, packet: bytes, tag: Tag, where: str | None = None) -> bytes | None:
    """`packet` as `ip_rcv_core()` leaves it (trimmed to its total length), or None when it
    fails a check (dropped, with the reason, at `where`: by default the stack)."""
    problem = _problem(packet)
    if problem is not None:
        reason, detail = problem
        stack.drop(reason, detail, tag, where)
        return None
    return packet[: _H.unpack_from(packet, 2)[0]]


def _problem(packet: bytes) -> tuple[str, str] | None:
    size = len(packet)
    if size < IP_MIN_LEN:
        return "malformed", f"{size} bytes: shorter than an IPv4 header"
    version, ihl = packet[0] >> 4, IP_HEADER_LEN[packet[0]]
    if version != 4 or ihl < IP_MIN_LEN:
        return "malformed", f"ipv4 header with version {version}, header length {ihl}"
    if ihl > size:
        return "malformed", f"header length {ihl} > the {size} bytes received"
    if checksum(packet[:ihl]):
        stated = _H.unpack_from(packet, 10)[0]
        right = checksum(packet[:10] + b"\x00\x00" + packet[12:ihl])
        detail = f"ipv4 header checksum 0x{stated:04x} from {IPv4Address(packet[IP_SRC])}"
        return "bad-checksum", f"{detail}, should be 0x{right:04x}"
    total = _H.unpack_from(packet, 2)[0]
    if total > size:
        return "malformed", f"total length {total} > the {size} bytes received"
    if total < ihl:
        return "malformed", f"total length {total} < header length {ihl}"
    return None


def fragment(packet: bytes) -> str | None:
    """What makes `packet` a fragment ("offset 185, more fragments"), or None."""
    flags = _H.unpack_from(packet, 6)[0]
    if not flags & (_MORE_FRAGMENTS | _OFFSET):
        return None
    more = ", more fragments" if flags & _MORE_FRAGMENTS else ", the last"
    return f"offset {(flags & _OFFSET) * 8}{more}"
