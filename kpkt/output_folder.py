"""The output folder on disk: which paths `-o` may name, which folders kpkt may replace, and how
it replaces one without ever leaving the destination missing or half-written.

A folder is kpkt's when it holds the marker `.kpkt-output.json` (kpkt's version and the files
that run wrote), or when it is the output of a kpkt from before the marker (a `manifest.json`
with a `version` and a `captures` list, which name the files). Only the files a run wrote are
ever removed; anything else in the folder is the user's and is kept (moved into the new folder
with `force`) or makes the replacement an error.

A run is staged in `.<name>.<pid>.<random>.tmp` beside the target (holding a marker that says
everything in it is kpkt's), then swapped with the target in one step (`renameat2` with
`RENAME_EXCHANGE`; two renames where the system lacks it), and the previous output is removed.
Staging folders left by a run that was killed are removed by the next run to the same target,
once their process is gone.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from kpkt import __version__
from kpkt.errors import KpktError

MARKER = ".kpkt-output.json"
_CAUSES = {
    errno.EROFS: "the file system is read-only; choose -o on a writable one",
    errno.EACCES: "permission denied; choose -o in a folder you can write",
    errno.EPERM: "operation not permitted; choose -o in a folder you can write",
    errno.ENOSPC: "no space left on the device; free some or choose -o on another disk",
    errno.EDQUOT: "disk quota exceeded; free some or choose -o on another disk",
}


def problem(path: Path, action: str, error: OSError) -> KpktError:
    """A file-system failure at `path` as the user's problem: the place, the cause, the fix."""
    cause = _CAUSES.get(error.errno, error.strerror or str(error))
    return KpktError(f"{path}: cannot {action}: {cause}")


def check_target(folder: Path, keep_above: dict[str, Path]) -> Path:
    """The real path of the folder `-o` names, or the reason it cannot be an output folder.

    `keep_above`: folders by what they are ("the current folder") that the output must stay
    strictly below, since replacing the output folder would replace them.
    """
    shown = os.fspath(folder)
    if Path(folder).name in ("", ".", ".."):
        raise KpktError(f"{shown}: not a folder name kpkt can replace; name a new folder (-o out)")
    if Path(folder).is_symlink() and not Path(folder).exists():
        raise KpktError(
            f"{shown}: a symbolic link to {os.readlink(folder)}, which does not exist; "
            "remove the link or choose another folder with -o"
        )
    target = Path(os.path.realpath(folder))
    for what, kept in keep_above.items():
        if target == kept or target in kept.parents:
            relation = "is" if target == kept else "holds"
            raise KpktError(
                f"{shown}: {relation} {what} ({kept}), and kpkt replaces its output folder; "
                "name a new folder below it (-o out)"
            )
    existing = next(p for p in [target, *target.parents] if p.exists() or p.is_symlink())
    if not existing.is_dir():
        what = "exists and is not a folder" if existing == target else f"{existing} is a file"
        raise KpktError(f"{shown}: {what}; choose another folder with -o")
    if os.path.ismount(target):
        raise KpktError(
            f"{shown}: a mount point, which kpkt cannot replace; choose a folder inside it "
            f"(-o {Path(shown) / 'out'})"
        )
    return target


@dataclass(frozen=True)
class Previous:
    """What is in the target folder before the run: the files kpkt wrote there (`files`), and
    the rest (`extras`, the user's). `legacy`: written by a kpkt from before the marker."""

    files: tuple[str, ...]
    extras: tuple[str, ...]
    legacy: bool = False


def inspect_target(target: Path, force: bool) -> Previous:
    """The target's current content, or why the run may not replace it."""
    if not target.exists():
        return Previous((), ())
    try:
        names = sorted(p.name for p in target.iterdir())
    except OSError as error:
        raise problem(target, "read the folder", error) from None
    written, legacy = _written_files(target)
    if written is None:
        if names and not force:
            raise KpktError(
                f"{target}: not a kpkt output folder (it holds files and no {MARKER}); choose "
                "another folder with -o, or add --force to write into it (its files are kept)"
            )
        return Previous((), tuple(names))
    extras = tuple(n for n in names if n not in written and n != MARKER)
    if extras and not force:
        shown = ", ".join(extras[:3]) + (f" and {len(extras) - 3} more" if len(extras) > 3 else "")
        raise KpktError(
            f"{target}: holds files kpkt did not write ({shown}); move them away, "
            "or add --force to keep them beside the new output"
        )
    return Previous(tuple(n for n in written if n in names), extras, legacy)


def _written_files(folder: Path) -> tuple[list[str] | None, bool]:
    """The files kpkt wrote into `folder` by its marker, or by the manifest of a kpkt from before
    the marker (legacy: True); None if it is not kpkt's."""
    marker = _read_json(folder / MARKER)
    if isinstance(marker, dict) and isinstance(marker.get("files"), list):
        return [_plain_name(n) for n in marker["files"] if _plain_name(n)], False
    old = _read_json(folder / "manifest.json")
    if isinstance(old, dict) and "version" in old and isinstance(old.get("captures"), list):
        files = [c.get("file") for c in old["captures"] if isinstance(c, dict)]
        names = [_plain_name(n) for n in [*files, "all.pcapng", "manifest.json"]]
        return [n for n in names if n], True
    return None, False


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _plain_name(name) -> str | None:
    """`name` if it names a file directly in the folder (never a path out of it)."""
    ok = isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
    return name if ok and "\0" not in name else None


def _write_marker(folder: Path, files: list[str] | None) -> None:
    """Write the marker atomically; files None: the folder is a staging folder, all kpkt's."""
    content = {"kpkt": __version__}
    content |= {"staging": True} if files is None else {"files": sorted(files)}
    part = folder / (MARKER + ".part")
    part.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    part.replace(folder / MARKER)


def remove_stale(target: Path) -> None:
    """Remove what runs to `target` that were killed left beside it: staging and previous
    folders whose process is gone, each only by its marker."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[A-Za-z0-9_]+\.(tmp|old)")
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return
    for path in candidates:
        found = pattern.fullmatch(path.name)
        stale = found and not _alive(int(found[1])) and not path.is_symlink()
        if stale and (path / MARKER).is_file():
            discard(path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def discard(folder: Path) -> None:
    """Remove a folder of kpkt's by its marker: all of a staging folder; of an output only the
    files it lists (anything else keeps the folder, and is kept). A folder that is not kpkt's
    loses nothing (it is removed only if empty)."""
    marker = _read_json(folder / MARKER)
    if isinstance(marker, dict) and marker.get("staging") is True:
        shutil.rmtree(folder, ignore_errors=True)
        return
    written, _ = _written_files(folder)
    for name in [*(written or []), MARKER]:
        with suppress(OSError):
            (folder / name).unlink()
    with suppress(OSError):
        folder.rmdir()


@contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A new staging folder beside `target` (its missing parents created); on any failure or
    interruption it is removed, with the parents this created."""
    created = [p for p in [target.parent, *target.parent.parents] if not p.exists()][::-1]
    work = None
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            work = Path(
                tempfile.mkdtemp(
                    prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
                )
            )
            work.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result is ordinary
            _write_marker(work, None)
        except OSError as error:
            raise problem(target.parent, "create the output folder there", error) from None
        yield work
    except BaseException:
        with _signals_held():  # a second Ctrl-C does not leave it half removed
            if work is not None:
                discard(work)
            for parent in reversed(created):
                try:
                    parent.rmdir()
                except OSError:
                    break
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def commit(work: Path, target: Path, previous: Previous) -> None:
    """Put the staged output in place of `target` and remove the previous output; the user's
    files in it are moved into the new folder. Ctrl-C and SIGTERM wait until this is done."""
    new = sorted(p.name for p in work.iterdir() if p.name != MARKER)
    clash = sorted(set(previous.extras) & set(new))
    if clash:
        raise KpktError(
            f"{target / clash[0]}: not written by kpkt, and the new output has a file of that "
            "name; move it away"
        )
    with _signals_held():
        try:
            _write_marker(work, new)
            if previous.legacy:
                _write_marker(target, list(previous.files))
            old = _swap(work, target)
        except OSError as error:
            raise problem(target, "replace it", error) from None
        if old is None:
            return
        for name in previous.extras:
            with suppress(OSError):  # else it stays in the previous folder, which is then kept
                (old / name).rename(target / name)
        discard(old)


def _swap(work: Path, target: Path) -> Path | None:
    """Move `work` to `target`; where the previous output went now (None: there was none)."""
    if not target.exists():
        work.rename(target)
        return None
    if _exchange(work, target):
        return work
    old = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.old")
    target.rename(old)
    try:
        work.rename(target)
    except OSError:
        old.rename(target)
        raise
    return old


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    path, fd = ctypes.c_char_p, ctypes.c_int
    function.argtypes = [fd, path, fd, path, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where the C
    library or the file system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    number = ctypes.get_errno()
    if number in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(number, os.strerror(number), os.fspath(b))


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while the block runs (a signal that came meanwhile is
    delivered after it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
