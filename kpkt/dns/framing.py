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
        self._buffer += data
        messages = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + length:
                break
            messages.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
        return messages

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole message yet."""
        return len(self._buffer)
