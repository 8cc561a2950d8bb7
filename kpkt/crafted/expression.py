"""A Scapy expression from a topology file, read without running any code.

`IP(dst='10.1.2.10', ttl=1)/UDP(dport=53)/DNS(rd=1, qd=DNSQR(qname='web'))` is parsed with
`ast` and built by walking the tree: the only things allowed are calls of Scapy layer classes
(by name, from the Ethernet, ARP, IPv4, ICMP, UDP, TCP and DNS layers, plus Raw and Padding),
literals (strings, bytes, numbers, True, False, None, lists and tuples of them, a minus sign),
keyword arguments and `/`. Anything else (a name that is not a layer, an attribute, an index,
a comprehension, a lambda, an operator other than `/`, `**kwargs`) is refused with what it was
and where: a topology file cannot run code. Scapy is imported only when an expression is read.
"""

from __future__ import annotations

import ast
import ipaddress
from functools import cache
from typing import Any

MAX_LENGTH = 4096  # characters of an expression
_LITERALS = (str, bytes, int, float, bool, type(None))
_WHAT = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Lambda: "a lambda",
    ast.NamedExpr: "an assignment",
    ast.JoinedStr: "an f-string",
    ast.IfExp: "a conditional expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Starred: "unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class ExpressionError(ValueError):
    """An expression that is not a plain Scapy packet: why, in one line."""


@cache
def layers() -> dict[str, type]:
    """The Scapy layer classes an expression may call, by name."""
    import scapy.layers.dns
    import scapy.layers.inet
    import scapy.layers.l2
    import scapy.packet

    found = {}
    for module in (scapy.packet, scapy.layers.l2, scapy.layers.inet, scapy.layers.dns):
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, scapy.packet.Packet)
                and not name.startswith("_")
                and name not in ("Packet", "NoPayload")
            ):
                found[name] = value
    return found


def parse(text: str) -> Any:
    """The Scapy packet `text` describes (one packet: fields that make a set of packets, such as
    a list of ports or an address range, are refused)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{len(text)} characters: at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        message = f"not a Python expression: {error.msg} (column {error.offset})"
        raise ExpressionError(message) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("not a Python expression kpkt can read") from None
    try:
        packet = _value(tree.body)
    except RecursionError:
        raise ExpressionError("nested too deeply") from None
    from scapy.packet import Packet

    if not isinstance(packet, Packet):
        raise ExpressionError("not a packet: write layers like IP(dst='10.1.2.10')/UDP(dport=53)")
    _check_one_packet(packet)
    return packet


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, _LITERALS):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = node.operand
        if isinstance(operand, ast.Constant) and type(operand.value) in (int, float):
            return -operand.value if isinstance(node.op, ast.USub) else operand.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_value(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _value(node.left), _value(node.right)
        try:
            return left / right
        except Exception as error:  # Scapy's: what it says is the user's to fix
            message = f"cannot stack {_shown(right)} on {_shown(left)}: {error}"
            raise ExpressionError(message) from None
    if isinstance(node, ast.Call):
        return _call(node)
    raise ExpressionError(f"{_describe(node)} is not allowed{_column(node)}: {_ALLOWED}")


_ALLOWED = "only Scapy layers, literals, keyword arguments and / are"


def _call(node: ast.Call) -> Any:
    func = node.func
    if not isinstance(func, ast.Name):
        raise ExpressionError(
            f"calling {_describe(func)} is not allowed{_column(node)}: {_ALLOWED}"
        )
    layer = layers().get(func.id)
    if layer is None:
        raise ExpressionError(
            f"'{func.id}' is not a Scapy layer kpkt knows{_column(node)}: {_ALLOWED} "
            "(layers: Ether, ARP, IP, ICMP, UDP, TCP, DNS, DNSQR, DNSRR, Raw, IPOption_*, ...)"
        )
    args = [_value(arg) for arg in node.args]
    kwargs = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ExpressionError(f"**-unpacking is not allowed{_column(keyword)}: {_ALLOWED}")
        kwargs[keyword.arg] = _value(keyword.value)
    for name, value in kwargs.items():
        _check_field(layer, name, value)
    try:
        return layer(*args, **kwargs)
    except Exception as error:  # Scapy's: what it says is the user's to fix
        raise ExpressionError(f"{func.id}(...): {error}") from None


def _check_field(layer: type, name: str, value: Any) -> None:
    """Refuse what Scapy would look up on the machine kpkt runs on: a host name or an address
    range in an IPv4 address field (Scapy resolves names through DNS)."""
    from scapy.fields import IPField

    field = next((f for f in layer.fields_desc if f.name == name), None)
    if field is None:
        raise ExpressionError(f"{layer.__name__} has no field '{name}'")
    if isinstance(value, str) and any(isinstance(one, IPField) for one in _kinds(field)):
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ExpressionError(
                f"{layer.__name__}({name}={value!r}): write an IPv4 address such as 10.1.2.10"
            ) from None


def _kinds(field: Any) -> list[Any]:
    """The field classes behind `field`: Scapy wraps fields (Emph, ConditionalField) and lets
    some be one of several (MultipleTypeField)."""
    if hasattr(field, "flds"):
        return [*_kinds(field.dflt), *(kind for one, _ in field.flds for kind in _kinds(one))]
    if hasattr(field, "fld"):
        return _kinds(field.fld)
    return [field]


def _check_one_packet(packet: Any) -> None:
    try:
        count = packet.__iterlen__()
    except Exception as error:
        raise ExpressionError(f"the packet does not build: {error}") from None
    if count != 1:
        raise ExpressionError(
            f"describes {count} packets (a list or range in a field): give one; a step's "
            "count: sends it again"
        )


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name '{node.id}'"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__} constant"
    return _WHAT.get(type(node), f"a {type(node).__name__} expression")


def _column(node: ast.AST) -> str:
    offset = getattr(node, "col_offset", None)
    return "" if offset is None else f" (column {offset + 1})"


def _shown(value: Any) -> str:
    return type(value).__name__
