"""The loader's robustness fuzz, shared by the topology and the services tests: put any value at
any spot of a valid document, and the result either loads or is a TopologyError whose every line
names the file (never another exception)."""

from __future__ import annotations

import yaml

from kpkt.errors import TopologyError
from kpkt.topology.load import load_topology_text


def loads_or_reports(document: dict, changes: list[tuple[tuple, object]]) -> None:
    for spot, value in changes:
        place(document, spot, value)
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        load_topology_text(text, "fuzz.yaml")
    except TopologyError as error:
        assert error.problems and all(line.startswith("fuzz.yaml: ") for line in error.problems)


def place(document: dict, spot: tuple, value) -> None:
    """Set the value at `spot` (keys and list indexes) when earlier changes left a way there."""
    *way, last = spot
    parent = document
    for key in way:
        parent = child(parent, key)
    if isinstance(parent, dict) or child(parent, last) is not None:
        parent[last] = value


def child(parent, key):
    if isinstance(parent, dict):
        return parent.get(key)
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        return parent[key]
    return None
