"""DNS over TCP: each message is preceded by its length in two bytes (RFC 1035 4.2.2)."""

from __future__ import annotations

MAX_LENGTH = 0xFFFF


def frame(message: bytes) -> bytes:
    """The message with its two-byte length in front."""
    if len(message) > MAX_LENGTH:
        raise ValueError(f"a DNS message over TCP is at most {MAX_LENGTH} bytes")
    return len(message).to_bytes(2, "big") + message


class Deframer:
    """Cuts a TCP byte stream into DNS messages, whatever the segment boundaries."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by `data`, in order."""
        self.push(data)
        return list(iter(self.next, None))

    def push(self, data: bytes) -> None:
        """Append received bytes; take the messages out with `next`."""
        self._buffer += data

    def next(self) -> bytes | None:
        """The first whole message received and not taken yet, or None."""
        if len(self._buffer) < 2:
            return None
        end = 2 + int.from_bytes(self._buffer[:2], "big")
        if len(self._buffer) < end:
            return None
        message = bytes(self._buffer[2:end])
        del self._buffer[:end]
        return message

    @property
    def pending(self) -> int:
        """Bytes received and not taken as a message yet."""
        return len(self._buffer)
