"""The example topologies shipped inside the package (kpkt/examples/*.yaml, package data), and
how a command's TOPOLOGY argument finds one: an existing file is read as given; a name that is
not a file (`two-node`, `two-node.yaml`) is the shipped example of that name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from kpkt.errors import TopologyError

FOLDER = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class Example:
    name: str
    path: Path

    @property
    def description(self) -> str:
        """Its metadata.description, on one line."""
        document = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        return " ".join(str(document["metadata"].get("description", "")).split())


def shipped() -> list[Example]:
    """Every shipped example, by name."""
    return [Example(path.stem, path) for path in sorted(FOLDER.glob("*.yaml"))]


def find_topology(argument: Path) -> Path:
    """The file a TOPOLOGY argument names: the file itself if it exists (or if it has a folder:
    then reading it reports what is wrong), else the shipped example of that name."""
    if argument.exists() or argument.parent != Path("."):
        return argument
    return example_named(argument.name).path


def example_named(name: str) -> Example:
    """The shipped example `name` (with or without .yaml); an unknown name is an error that lists
    the shipped ones."""
    wanted = name.removesuffix(".yaml")
    for example in shipped():
        if example.name == wanted:
            return example
    names = ", ".join(example.name for example in shipped())
    raise TopologyError(
        f"{name}: no such file, and no shipped example of that name "
        f"(shipped: {names}; `kpkt examples` lists them)"
    )
