"""The imported topology as a file: a comment header (the kpkt version, each source file with
its sha256, what was left out), then the YAML. It is checked with kpkt's own loader before a
byte is written, and written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from kpkt import __version__
from kpkt.errors import KpktError, TopologyError
from kpkt.importer.topology import Imported
from kpkt.topology.load import load_topology_document

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def render(imported: Imported) -> str:
    """The topology file's text."""
    header = [f"Imported by kpkt {__version__} (`kpkt import`) from:"]
    header += [f"  {path}  sha256 {digest}" for path, digest in imported.sources]
    lines = imported.notes.lines()
    if lines:
        header.append("Left out or changed (count, why, which objects):")
        header += [f"  {line}" for line in lines]
    comment = "".join(f"# {line}\n" for line in header)
    body = yaml.dump(
        imported.document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100
    )
    return comment + body


def check(imported: Imported, text: str, source: str) -> None:
    """Load the topology as `kpkt run` would (from the document `text` holds, without parsing
    the text again): a problem is the import's, named as such."""
    try:
        load_topology_document(imported.document, text, source)
    except TopologyError as error:
        raise KpktError(
            [f"the imported topology does not load: {problem}" for problem in error.problems]
        ) from None


def write_file(text: str, output: Path) -> None:
    """Write `text` to `output` whole: into a temporary file beside it, then renamed."""
    folder = output.parent
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    except OSError as error:
        raise KpktError(f"{output}: cannot write it: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, output)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise KpktError(f"{output}: cannot write it: {error.strerror}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
