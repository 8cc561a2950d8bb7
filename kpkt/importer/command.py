"""`kpkt import`: import, check that the topology loads, print what was left out, write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from kpkt.importer.sources import import_arguments
from kpkt.importer.write import check, write_file


def import_command(
    files: list[Path], output: Path | None, cni: str | None, echo: Callable[..., None]
) -> None:
    result = import_arguments(files, cni)
    check(result.imported, result.text, str(result.source))
    for line in result.imported.notes.lines():
        click.echo(f"note: {line}", err=True)
    if output is None:
        echo(result.text, nl=False)
        return
    write_file(result.text, output)
    pods = sum(len(node.get("pods", [])) for node in result.imported.document["nodes"])
    nodes = len(result.imported.document["nodes"])
    services = len(result.imported.document.get("services", []))
    click.echo(f"wrote {output}: {nodes} nodes, {pods} pods, {services} services", err=True)
