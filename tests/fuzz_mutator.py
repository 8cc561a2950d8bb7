"""A seeded mutator over the example topologies shipped in kpkt/examples/: each mutant is an
example with one to three changes at random spots: a number pushed to an extreme, a name made
long, alike another, reserved or holding a control character, a key deleted, a list item
duplicated, a value of the wrong type, or a value nested deep. The same seed gives the same
mutants, so a failure is replayed by its index."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "kpkt" / "examples").glob("*.yaml"))

NUMBERS = [0, -1, 1, 2, 255, 256, 65535, 65536, 2**31, 2**32, 2**63, 2**64, 10**12]
NUMBERS += [999_999, 1_000_000, 1_000_001, 0.5, 1e308, float("inf"), float("nan")]
DURATIONS = ["0s", "1ns", "999999s", "1000000s", "1000001s", "4294967296s", "1e300s", "-1s"]
WRONG_TYPES: list[Any] = [None, True, [], {}, "text", 3, [1, 2], {"x": 1}]
NAMES = ["underlay", "upstream-dns", "br-ul", "lo", "eth0", "cni0", "flannel.1", "", "-a", "A"]
NAMES += ["a" * 63, "a" * 64, "worker-node-0001", "worker-node-0002", "worker-node-0003"]
NAMES += ["veth-pod-a", "ul-node1", "x" * 15, "x" * 16, "a.b", "a__b", "a/b", "..", " "]
CONTROLS = [0x00, 0x07, 0x08, 0x0B, 0x1B, 0x7F, 0x85, 0x9B]


@dataclass(frozen=True)
class Mutant:
    label: str  # `<example>#<index>: <changes>`
    text: str

    @property
    def has_expectations(self) -> bool:
        return "expect" in self.text


def mutants(count: int, seed: int) -> Iterator[Mutant]:
    """`count` mutants of the examples, the same ones for the same seed."""
    rng = random.Random(seed)
    bases = [(path.stem, yaml.safe_load(path.read_text(encoding="utf-8"))) for path in EXAMPLES]
    for index in range(count):
        name, base = bases[index % len(bases)]
        document = copy.deepcopy(base)
        changes = [_mutate(document, rng) for _ in range(rng.randint(1, 3))]
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
        yield Mutant(f"{name}#{index}: {'; '.join(changes)}", text)


def _spots(value: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, container, key-or-index) of the document."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in list(items):
        where = f"{path}[{key}]" if isinstance(value, list) else f"{path}.{key}"
        yield where, value, key
        yield from _spots(item, where)


def _mutate(document: dict, rng: random.Random) -> str:
    spots = list(_spots(document))
    path, container, key = rng.choice(spots)
    old = container[key]
    kind = rng.choice(["number", "name", "delete", "duplicate", "type", "deep", "hosts"])
    if kind == "number":
        numeric = [s for s in spots if isinstance(s[1][s[2]], int | float)]
        path, container, key = rng.choice(numeric or spots)
        container[key] = rng.choice(NUMBERS + DURATIONS)
    elif kind == "name":
        named = [s for s in spots if isinstance(s[1][s[2]], str)]
        path, container, key = rng.choice(named or spots)
        container[key] = _name(rng, [s[1][s[2]] for s in named])
    elif kind == "delete":
        del container[key]
    elif kind == "duplicate":
        lists = [s for s in spots if isinstance(s[1][s[2]], list) and s[1][s[2]]]
        if lists:
            path, container, key = rng.choice(lists)
            items = container[key]
            items.append(copy.deepcopy(rng.choice(items)))
    elif kind == "type":
        container[key] = copy.deepcopy(rng.choice(WRONG_TYPES))
    elif kind == "deep":
        depth = rng.choice([10, 48, 49, 50, 51, 200])
        nested: Any = old
        for _ in range(depth):
            nested = [nested]
        container[key] = nested
    else:  # the nodes renamed alike, as generated clusters name them
        path = "nodes[*].name"
        for number, node in enumerate(document.get("nodes") or [], 1):
            if isinstance(node, dict):
                node["name"] = f"worker-node-{number:04d}"
    return f"{kind} {path}"


def _name(rng: random.Random, taken: list[str]) -> str:
    choice = rng.randrange(3)
    if choice == 0 and taken:
        return rng.choice(taken)  # alike another name of the document
    if choice == 1:
        return rng.choice(NAMES)
    control = chr(rng.choice(CONTROLS))
    return f"pod{control}-{rng.randrange(10)}"
