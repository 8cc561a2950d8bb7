"""A fast reader of the YAML kubectl writes: block mappings and sequences two spaces deep (the
sequences of a mapping at its own indentation), plain and quoted one-line scalars, plain scalars
folded over lines, literal blocks (`|`, `|-`, `|+`), `{}` and `[]`. libyaml builds Python objects
at about 1 MiB/s; this reads a 5,000-pod dump several times faster. Any document that uses
anything else (anchors, tags, flow collections, multi-line quotes, ...) raises Unsupported, and
documents.py reads the file with libyaml instead: what this returns is what libyaml returns."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import yaml


class Unsupported(Exception):
    """Text outside the subset: read it with a full YAML parser."""


_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+][0-9]+)?")
_NULLS = ("", "~", "null", "Null", "NULL")
_BOOLS = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_JSON_ESCAPES = re.compile(r'\\(?![\\"/bfnrt]|u[0-9a-fA-F]{4})')
_SPECIAL_START = tuple("&*!|>%@`[{?#,")
_RESOLVER = yaml.resolver.Resolver()  # PyYAML's implicit typing of plain scalars (YAML 1.1)
_STR = "tag:yaml.org,2002:str"


def parse_documents(text: str) -> list[Any]:
    """The documents of `text`, as yaml.safe_load_all would give them."""
    lines = text.split("\n")
    if any("\t" in line or "\r" in line for line in lines):
        raise Unsupported("tabs or carriage returns")
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line == "---":
            chunks.append([])
        elif line.startswith(("--- ", "...", "%")):
            raise Unsupported("a document marker with content, an end marker or a directive")
        else:
            chunks[-1].append(line)
    documents = []
    for number, chunk in enumerate(chunks):
        reader = _Lines(chunk)
        if reader.more():
            documents.append(reader.node(0))
            if reader.more():
                raise Unsupported("text after the document")
        elif number > 0:  # an explicit document (after ---) with nothing in it
            documents.append(None)
    return documents


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        # each line's indentation, -1 for a blank or comment line
        self.indents = [
            -1
            if not (stripped := line.lstrip(" ")) or stripped[0] == "#"
            else len(line) - len(stripped)
            for line in lines
        ]
        self.at = 0
        self._skip()

    def _skip(self) -> None:
        """Past blank and comment lines."""
        indents, at = self.indents, self.at
        while at < len(indents) and indents[at] < 0:
            at += 1
        self.at = at

    def more(self) -> bool:
        return self.at < len(self.lines)

    def indent(self) -> int:
        return self.indents[self.at]

    def node(self, indent: int) -> Any:
        """The block node whose first line is the current one, at `indent`."""
        content = self.lines[self.at][indent:]
        if content.startswith("- ") or content == "-":
            return self.sequence(indent)
        if _key_split(content) is not None:
            return self.mapping(indent)
        raise Unsupported("a bare scalar document")

    def sequence(self, indent: int) -> list[Any]:
        items = []
        while self.more() and self.indent() == indent:
            content = self.lines[self.at][indent:]
            if not content.startswith("- "):
                if content == "-":
                    raise Unsupported("empty sequence item")
                break
            rest = content[2:]
            inner = indent + 2 + (len(rest) - len(rest.lstrip(" ")))
            rest = rest.lstrip(" ")
            if rest.startswith("- ") or rest == "-":
                raise Unsupported("nested inline sequence")
            if _key_split(rest) is not None:
                items.append(self.mapping(inner, first=rest))
            else:
                items.append(self.scalar_value(rest, indent))
        return items

    def mapping(self, indent: int, first: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            if first is not None:
                content, first = first, None
            elif self.more() and self.indent() == indent:
                content = self.lines[self.at][indent:]
                if content.startswith("- ") or content == "-":
                    break
            else:
                break
            split = _key_split(content)
            if split is None:
                raise Unsupported(f"not a key: {content[:40]!r}")
            key, value = split
            if key in result:
                raise Unsupported("duplicate key")
            if value == "":
                self.at += 1
                self._skip()
                if self.more() and (
                    self.indent() > indent
                    or (self.indent() == indent and self.lines[self.at][indent:].startswith("- "))
                ):
                    result[key] = self.node(self.indent())
                else:
                    result[key] = None
            elif value[0] == "|":
                result[key] = self.literal(value, indent)
            else:
                result[key] = self.scalar_value(value, indent)
        return result

    def scalar_value(self, value: str, indent: int) -> Any:
        """An inline scalar at the current line (and a plain one's folded continuation lines)."""
        self.at += 1
        parts = [value]
        blank = 0
        indents = self.indents
        while self.at < len(indents):
            spaces = indents[self.at]
            if spaces < 0:
                if self.lines[self.at].strip():
                    break  # a comment ends a plain scalar
                blank += 1
                self.at += 1
                continue
            if spaces <= indent:
                break
            line = self.lines[self.at]
            parts.append("\n" * blank if blank else " ")
            parts.append(line.strip())
            blank = 0
            self.at += 1
        self.at -= blank  # blank lines after the scalar are not its own
        self._skip()
        if len(parts) > 1:
            text = "".join(parts)
            if value[0] in "'\"" or ": " in text or " #" in text or text.endswith(":"):
                raise Unsupported("a multi-line quoted or ambiguous scalar")
            if value.startswith(_SPECIAL_START) or value.startswith(("- ", "---")):
                raise Unsupported("special plain scalar")
            return text  # a folded plain scalar is text, whatever its first line looks like
        return _scalar(value)

    def literal(self, header: str, indent: int) -> str:
        if header not in ("|", "|-", "|+"):
            raise Unsupported(f"block scalar header {header!r}")
        self.at += 1
        block: list[str] = []
        content_indent = None
        while self.at < len(self.lines):
            line = self.lines[self.at]
            if not line.strip():
                block.append("")
                self.at += 1
                continue
            spaces = len(line) - len(line.lstrip(" "))
            if spaces <= indent:
                break
            if content_indent is None:
                content_indent = spaces
            elif spaces < content_indent:
                raise Unsupported("a literal block line less indented than its first")
            block.append(line[content_indent:])
            self.at += 1
        trailing = 0
        while block and block[-1] == "":
            block.pop()
            trailing += 1
        self.at -= trailing
        self._skip()
        if content_indent is None:
            return ""
        text = "\n".join(block)
        if header == "|-":
            return text
        if header == "|+":
            return text + "\n" * (trailing + 1)
        return text + "\n"


@lru_cache(maxsize=65536)
def _key_split(content: str) -> tuple[str, str] | None:
    """(key, the rest after `: `) of a `key: value` or `key:` line, or None."""
    if content.startswith(("'", '"')):
        quote = content[0]
        end = _closing_quote(content, quote)
        if end is None or not content[end + 1 :].startswith(":"):
            return None
        after = content[end + 2 :]
        if after and not after.startswith(" "):
            return None
        return str(_quoted(content[: end + 1])), after.strip()
    if content.startswith(_SPECIAL_START) or content.startswith(("- ", "-\n")):
        return None
    cut = content.find(": ")
    if cut < 0:
        if not content.endswith(":"):
            return None
        key, value = content[:-1], ""
    else:
        key, value = content[:cut], content[cut + 2 :].strip()
    if " #" in key or key != key.strip() or not key:
        raise Unsupported("unusual key")
    if _tag(key) != _STR:
        raise Unsupported("a key that is not a string")
    return key, value


def _closing_quote(text: str, quote: str) -> int | None:
    index = 1
    while True:
        index = text.find(quote, index)
        if index < 0:
            return None
        if quote == "'" and text[index + 1 : index + 2] == "'":
            index += 2
            continue
        if quote == '"':
            backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
            if backslashes % 2:
                index += 1
                continue
        return index


def _quoted(text: str) -> str:
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    if _JSON_ESCAPES.search(text):
        raise Unsupported("a YAML-only escape")
    return json.loads(text)


def _scalar(value: str) -> Any:
    """One line's scalar, typed as YAML 1.1 (PyYAML's SafeLoader) types it."""
    if value in ("{}", "[]"):
        return {} if value == "{}" else []
    if value[0] in "'\"":
        end = _closing_quote(value, value[0])
        if end is None:
            raise Unsupported("a quoted scalar over several lines")
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise Unsupported("text after a quoted scalar")
        return _quoted(value[: end + 1])
    if value.startswith(_SPECIAL_START) or " #" in value or value.startswith(("- ", "---")):
        raise Unsupported(f"special scalar {value[:20]!r}")
    if value.endswith(":") or ": " in value:
        raise Unsupported("a colon in a plain scalar")
    tag = _tag(value)
    if tag == _STR:
        return value
    if value in _NULLS:
        return None
    if value in _BOOLS:
        return _BOOLS[value]
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    raise Unsupported(f"a scalar of type {tag}: {value[:20]!r}")


@lru_cache(maxsize=65536)
def _tag(value: str) -> str:
    return _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
