"""A small language for "a frame like this", for tests: `UDP.dport == 53 and IP.ttl < 64`.

Fields are named as `kpkt diff` names them: `Layer.field` with Scapy's layer and field names
(`IP.ttl`, `TCP.flags`), `inner.` for a layer after a VXLAN header (`inner.IP.dst`), `#2` for a
layer class seen again (`IP#2.src`), `frame.len` for the frame's length; case does not matter.
A clause is a field compared with a value (`==`, `!=`, `<`, `<=`, `>`, `>=`), or a bare layer
name (`ICMP`, `inner.UDP`): the frame has that layer. Clauses join with `and`; `not` negates
the clause after it. A value is a number (`53`, `0x35`) or a word or quoted string, compared with
the field as Scapy shows it (`IP.dst == 10.244.1.2`, `TCP.flags == SA`, `IP.flags == DF`,
`Raw.load == "hello"`). A field the frame lacks makes its clause false. The expression is parsed,
never evaluated as Python; a layer or field Scapy does not know is an error.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

OPERATORS: dict[str, Callable[[object, object], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
TOKEN = re.compile(r"\s*(==|!=|<=|>=|<|>|\"[^\"]*\"|'[^']*'|[^\s=!<>\"']+)")
NAME = re.compile(
    r"((?:inner\.)*)([A-Za-z_][A-Za-z0-9_]*)(#[0-9]+)?(?:\.([A-Za-z_][A-Za-z0-9_]*))?"
)


@dataclass(frozen=True)
class Clause:
    name: str  # lower case: `inner.ip.ttl`, or a layer `inner.udp`
    layer_only: bool
    op: str | None = None
    value: str | None = None
    negated: bool = False

    def holds(self, fields: dict[str, object]) -> bool:
        if self.layer_only:
            found = any(name.startswith(self.name + ".") for name in fields)
        elif self.name not in fields:
            found = False
        else:
            found = _compare(fields[self.name], self.op or "==", self.value or "")
        return found != self.negated


class Match:
    """A parsed expression: `Match("UDP.dport == 53")(fields)` with `fields` as
    kpkt.capture.diff.dissect gives them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.clauses = _parse(text)

    def __call__(self, fields: dict[str, object]) -> bool:
        lowered = {name.lower(): value for name, value in fields.items()}
        return all(clause.holds(lowered) for clause in self.clauses)

    def __repr__(self) -> str:
        return f"Match({self.text!r})"


def _parse(text: str) -> list[Clause]:
    tokens = _tokens(text)
    clauses = []
    while True:
        negated = False
        while tokens and tokens[0].lower() == "not":
            negated = not negated
            tokens.pop(0)
        if not tokens:
            _fail(text, "a field or layer name is missing at the end")
        name = tokens.pop(0)
        field, layer_only = _name(text, name)
        if tokens and tokens[0] in OPERATORS:
            op = tokens.pop(0)
            if not tokens or tokens[0] in OPERATORS:
                _fail(text, f"{name} {op}: a value is missing")
            if layer_only:
                _fail(text, f"{name} {op}: compare a field (Layer.field), not a layer")
            value = _unquoted(tokens.pop(0))
            if op not in ("==", "!=") and _number(value) is None:
                _fail(text, f"{name} {op} {value}: {op} compares numbers")
            clauses.append(Clause(field, False, op, value, negated))
        else:
            clauses.append(Clause(field, True, negated=negated))
        if not tokens:
            return clauses
        joiner = tokens.pop(0)
        if joiner.lower() != "and":
            _fail(text, f"{joiner!r} after {name}: clauses join with 'and'")


def _tokens(text: str) -> list[str]:
    tokens, at = [], 0
    while text[at:].strip():
        found = TOKEN.match(text, at)
        if not found:
            _fail(text, f"cannot read {text[at:].strip()!r}")
        tokens.append(found[1])
        at = found.end()
    if not tokens:
        _fail(text, "empty: give a layer or a comparison such as UDP.dport == 53")
    return tokens


def _name(text: str, name: str) -> tuple[str, bool]:
    """The lower-case field or layer name, checked against the layers and fields Scapy knows."""
    if name.lower() == "frame.len":
        return "frame.len", False
    found = NAME.fullmatch(name)
    if not found:
        _fail(text, f"{name!r} is not a field (Layer.field) or a layer name")
    prefix, layer, repeat, field = found.groups()
    known = _layers().get(layer.lower())
    if known is None:
        _fail(text, f"{layer!r} is not a Scapy layer")
    if field is not None and field not in known:
        fields = ", ".join(sorted(known)) or "none"
        _fail(text, f"{layer} has no field {field!r} (its fields: {fields})")
    return name.lower(), field is None


@cache
def _layers() -> dict[str, set[str]]:
    """Scapy's layer classes by lower-case name, each with its field names."""
    from scapy.config import conf

    import kpkt.capture.diff  # noqa: F401  (loads the layers kpkt dissects with, VXLAN bound)

    return {cls.__name__.lower(): {f.name for f in cls.fields_desc} for cls in conf.layers}


def _unquoted(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def _compare(field: object, op: str, value: str) -> bool:
    from scapy.fields import FlagValue

    number = _number(value)
    if number is not None and isinstance(field, int | FlagValue):
        return OPERATORS[op](int(field), number)
    shown = field.decode("latin-1") if isinstance(field, bytes) else str(field)
    return op in ("==", "!=") and OPERATORS[op](shown, value)


def _number(value: str) -> int | None:
    try:
        return int(value, 0)
    except ValueError:
        return None


def _fail(text: str, problem: str):
    raise ValueError(f"match expression {text!r}: {problem}")
