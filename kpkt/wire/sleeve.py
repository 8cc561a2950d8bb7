"""Sleeve, the userspace UDP encapsulation of an L2 overlay router (unencrypted): one datagram
carries the sending peer's 6-byte name, then one or more frames, each as the capturing (source)
peer's name, the destination peer's name, the frame's length (2 bytes, big-endian) and the
Ethernet frame itself. Wireshark has no dissector for it: kpkt's summaries decode it here."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from kpkt.wire.ethernet import mac_str

SLEEVE_PORT = 6783  # both ends: the router's socket is bound to it
NAME_LEN = 6  # a peer name, MAC-shaped
FRAME_HEADER_LEN = 2 * NAME_LEN + 2  # source peer, destination peer, frame length
MAX_FRAMES = 100  # frames batched into one datagram at most

_FRAME_HEADER = struct.Struct("!6s6sH")


def sleeve_frame(src_peer: bytes, dst_peer: bytes, frame: bytes) -> bytes:
    """One frame's record: its peers and length, then the frame."""
    return _FRAME_HEADER.pack(src_peer, dst_peer, len(frame)) + frame


def sleeve_frames(payload: bytes) -> tuple[bytes, list[tuple[bytes, bytes, bytes]]]:
    """The sender's name and the `(src peer, dst peer, frame)` records of a datagram's payload.
    Raises ValueError on a truncated payload."""
    if len(payload) < NAME_LEN:
        raise ValueError(f"sleeve: {len(payload)} bytes, shorter than a peer name")
    return payload[:NAME_LEN], list(_records(payload, NAME_LEN))


def _records(payload: bytes, at: int) -> Iterator[tuple[bytes, bytes, bytes]]:
    while at < len(payload):
        if len(payload) - at < FRAME_HEADER_LEN:
            raise ValueError("sleeve: truncated frame header")
        src, dst, length = _FRAME_HEADER.unpack_from(payload, at)
        at += FRAME_HEADER_LEN
        if len(payload) - at < length:
            raise ValueError(f"sleeve: frame of {length} bytes, {len(payload) - at} left")
        yield src, dst, payload[at : at + length]
        at += length


def sleeve_summary(payload: bytes, inner, peer=mac_str) -> str:
    """`sleeve from <sender> N frame(s) [<src peer> > <dst peer>: <inner>; ...]`, `inner` summing
    up each frame and `peer` naming each peer name."""
    try:
        sender, records = sleeve_frames(payload)
    except ValueError as error:
        return f"{error}"
    frames = "; ".join(f"{peer(s)} > {peer(d)}: {inner(f)}" for s, d, f in records)
    count = f"{len(records)} frame{'s' if len(records) != 1 else ''}"
    return f"sleeve from {peer(sender)} {count} [{frames}]"
