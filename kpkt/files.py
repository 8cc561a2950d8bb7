"""Reading a user's input file safely: a regular file of bounded size, checked before it is read
(a FIFO, a device or a folder would block, never end, or is no file), with one-line errors that
name the file. Used for topology files and for kubectl dumps."""

from __future__ import annotations

import stat
from pathlib import Path

from kpkt.errors import KpktError


def read_regular_file(
    path: Path, max_bytes: int, *, give: str, limit: str, error: type[KpktError] = KpktError
) -> bytes:
    """The bytes of `path`, at most `max_bytes`. `give` says what to pass instead of something
    that is no regular file, `limit` what the size limit is ("kpkt imports (1 GiB)")."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as problem:
        raise error(f"{path}: cannot read it: {problem.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise error(f"{path}: {what}; {give}")
    if info.st_size > max_bytes:
        raise error(f"{path}: {info.st_size} bytes is more than {limit}")
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as problem:
        raise error(f"{path}: cannot read it: {problem.strerror}") from None
    if len(data) > max_bytes:  # it grew after stat()
        raise error(f"{path}: more than {limit}")
    return data
