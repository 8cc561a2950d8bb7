"""IPv4 in IPv4 (RFC 2003, IP protocol 4): an outer IPv4 header directly before the inner packet,
no header of its own, 20 bytes of overhead. Raw IP on a tunnel device (LINKTYPE_RAW): a frame
there starts with the IPv4 header."""

from __future__ import annotations

from kpkt.wire.ipv4 import DF, FLAGS, PROTO_IPIP, TOS, TTL, ipv4_packet

IPIP_OVERHEAD = 20  # the outer IPv4 header
ECN_MASK = 0x03  # the ECN bits of the TOS byte, which the outer header copies


def ipip_packet(src: bytes, dst: bytes, inner: bytes, *, ident: int) -> bytes:
    """`inner` behind an outer header as Linux's fallback tunnel (`ttl inherit`, `tos 0`,
    `nopmtudisc`) builds it in `ip_tunnel_xmit`: the outer TTL is the inner TTL, DF is copied
    from the inner header, the TOS carries only the inner ECN bits."""
    return ipv4_packet(
        src,
        dst,
        PROTO_IPIP,
        inner,
        ident=ident,
        ttl=inner[TTL],
        df=bool(inner[FLAGS] & DF),
        tos=inner[TOS] & ECN_MASK,
    )
