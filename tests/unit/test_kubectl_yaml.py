"""The fast reader of kubectl's YAML: what it returns is what libyaml returns, and what it does
not read raises Unsupported (documents.py then reads the text with libyaml)."""

from __future__ import annotations

import random

import pytest
import yaml

from kpkt.importer.kubectl_yaml import Unsupported, parse_documents

from conftest import ROOT

READ = {
    "folded plain scalar": "a:\n  b: one two\n    three four\n\n    five\n  c: 1\n",
    "literal blocks": "a: |\n  x\n\n   y\n\nb: |-\n  z\n  # not a comment\nc: |+\n  k\n\n\nd: 1\n",
    "quotes": "a: 'it''s: #1'\nb: \"tab\\there \\u00e9\"\n'c: d': \"\"\n",
    "typed": "a: 'true'\nb: true\nc: \"0\"\nd: 0\ne: 1.5\nf: null\ng: ~\nh: yes\ni: -3\n",
    "keys with colons": 'f:metadata:\n  .: {}\n  k:{"type":"Ready"}: {}\n  v:"10.1.1.0/24": []\n',
    "sequences": "a:\n- b: 1\n  c:\n  - x\n  - y\n- 2\n- {}\nd: []\n",
    "documents": "# head\n---\na: 1\n---\n# nothing\n---\nb: 2\n",
    "comments": "a: 1\n# line\nb:\n  # inside\n  c: 2\n",
    "empty values": "a:\nb:\n  c:\nd: x\n",
}
FALLS_BACK = {
    "anchor": "a: &x 1\nb: *x\n",
    "flow mapping": "a: {b: 1}\n",
    "timestamp": "a: 2026-12-01T10:02:14Z\n",
    "sexagesimal": "a: 1:20\n",
    "hex": "a: 0x1F\n",
    "multi-line quote": "a: 'one\n  two'\n",
    "nested inline sequence": "- - 1\n",
    "tag": "a: !!str 1\n",
    "folded block": "a: >\n  x\n",
    "trailing comment": "a: 1 # one\n",
}


@pytest.mark.parametrize("case", READ)
def test_it_reads_what_libyaml_reads(case: str):
    text = READ[case]
    assert parse_documents(text) == list(yaml.safe_load_all(text))


@pytest.mark.parametrize("case", FALLS_BACK)
def test_what_it_does_not_read_is_unsupported(case: str):
    with pytest.raises(Unsupported):
        parse_documents(FALLS_BACK[case])


def test_the_fixture_dumps_read_the_same():
    for path in (ROOT / "tests" / "import").glob("*.yaml"):
        text = path.read_text()
        try:
            got = parse_documents(text)
        except Unsupported:
            continue
        assert got == list(yaml.safe_load_all(text)), path.name
    flannel = (ROOT / "tests" / "import" / "two-node-flannel.yaml").read_text()
    assert parse_documents(flannel) == list(yaml.safe_load_all(flannel))


WORDS = ["a", "b:c", "x y", "true", "0", "1.5", "-", "#", "- z", "it's", 'q"', "", "é", "a: b"]
WORDS += ["null", "~", "yes", "0x10", "1e3", "{}", "[]", "k: v #c", "1:2", "2026-01-01", "é " * 50]


def _value(rng: random.Random, depth: int):
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice([*WORDS, 0, -7, 1.25, True, False, None, "line\nbreak\n", "x\n\n"])
    if roll < 0.7:
        return {rng.choice(WORDS) or "k": _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_random_documents_read_the_same_or_are_unsupported():
    rng = random.Random(19)
    read = 0
    for _ in range(600):
        document = {"items": [_value(rng, 0) for _ in range(3)]}
        for options in ({}, {"width": 30}, {"default_style": None, "allow_unicode": True}):
            text = yaml.safe_dump(document, **options)
            try:
                got = parse_documents(text)
            except Unsupported:
                continue
            read += 1
            assert got == list(yaml.safe_load_all(text)), text
    assert read > 250  # many are read, not all handed to libyaml
