"""Typed readers for the mappings of a topology file that report each problem with its YAML path."""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from kpkt.errors import one_line
from kpkt.spec import NS_PER_SECOND

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_NAME_LABEL = re.compile(r"[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|s)?")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": NS_PER_SECOND}
_SCALARS = (bool, int, float, datetime.date)


@dataclass
class Report:
    """The problems and warnings found in one file, each a line `<source>: <path>: <message>`."""

    source: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{self.source}: {path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(one_line(f"{self.source}: {path}: {message}"))


def show(value: Any) -> str:
    """A YAML value as a message shows it: strings quoted, YAML's own words for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the choice closest to `word` ignoring case (the first one
    given among equally close ones), or ''."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    lowered = list(by_lower)
    close = difflib.get_close_matches(word.lower(), lowered, n=max(len(lowered), 1))
    if not close:
        return ""
    score = {
        choice: difflib.SequenceMatcher(None, word.lower(), choice).ratio() for choice in close
    }
    best = max(close, key=lambda choice: (score[choice], -lowered.index(choice)))
    return f" (did you mean '{by_lower[best]}'?)"


def unknown_key(key: str, keys: Iterable[str]) -> str:
    keys = list(keys)
    return "unknown key" + (did_you_mean(key, keys) or f"; expected one of: {', '.join(keys)}")


def label_problem(name: str) -> str | None:
    """Why `name` is not an RFC 1123 DNS label (with a suggestion), or None when it is one."""
    if _DNS_LABEL.fullmatch(name):
        return None
    fixed = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    hint = f" (try '{fixed}')" if fixed else ""
    return (
        f"'{name}' is not a DNS label: use lowercase letters, digits and '-', starting and "
        f"ending with a letter or digit, at most 63 characters{hint}"
    )


def dns_name_problem(name: str, wildcard: bool = False) -> str | None:
    """Why `name` is not a DNS name to look up (labels of letters, digits, '-' and '_', as in
    `_http._tcp.web`, a trailing dot allowed, at most 253 characters), or None when it is one.
    `wildcard` lets the first label be `*`, as in a zone-file record."""
    bare = name[:-1] if name.endswith(".") else name
    labels = bare.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:] or ["x"]
    if not bare or len(bare) > 253 or not all(map(_DNS_NAME_LABEL.fullmatch, labels)):
        return (
            f"{show(name)} is not a DNS name: dot-separated labels of up to 63 letters, "
            "digits, '-' or '_' (not starting or ending with '-'), at most 253 characters, "
            "like web.default.svc.cluster.local"
        )
    return None


def duration_ns(value: Any) -> int | None:
    """A duration (`2s`, `500ms`, `1.5s`, or a bare number of seconds) in whole nanoseconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        amount, unit = Decimal(repr(value)), "s"
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        amount, unit = Decimal(match[1]), match[2] or "s"
    else:
        return None
    ns = amount * _UNIT_NS[unit]
    if not ns.is_finite() or ns < 0 or ns != ns.to_integral_value():
        return None
    return int(ns)


@dataclass
class Fields:
    """One YAML mapping and its path: each read checks the type and range, reports a problem
    with the key's path, and then returns the default, so that reading goes on."""

    data: dict[Any, Any]
    path: str
    report: Report
    failed: set[str] = field(default_factory=set)  # keys given with a value that was rejected

    @classmethod
    def check(cls, value: Any, path: str, report: Report, keys: Iterable[str]) -> Fields | None:
        """`value` as a mapping, reporting any key outside `keys`; None if it is no mapping."""
        if not isinstance(value, dict):
            report.error(path, f"expected a mapping, got {show(value)}")
            return None
        fields = cls(value, path, report)
        fields.reject_unknown(keys)
        return fields

    def reject_unknown(self, keys: Iterable[str]) -> None:
        """Report every key outside `keys`, with a "did you mean" hint where one is close."""
        keys = list(keys)
        for key in self.data:
            if str(key) not in keys:
                self.report.error(self.at(str(key)), unknown_key(str(key), keys))

    def at(self, key: str) -> str:
        return join(self.path, key)

    def given(self, key: str) -> bool:
        return self.data.get(key) is not None

    def bad(self, key: str, message: str) -> None:
        self.failed.add(key)
        self.report.error(self.at(key), message)

    def get(self, key: str, required: str | None = None) -> Any:
        """The raw value or None; `required` says how to fix a missing one."""
        value = self.data.get(key)
        if value is None and required:
            self.bad(key, f"required; {required}")
        return value

    def string(
        self, key: str, default: str | None = None, required: str | None = None
    ) -> str | None:
        value = self.get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            hint = " (put it in quotes)" if isinstance(value, _SCALARS) else ""
            self.bad(key, f"expected a string, got {show(value)}{hint}")
            return default
        return value

    def integer(
        self,
        key: str,
        low: int,
        high: int | None = None,
        default: int | None = None,
        required: str | None = None,
    ) -> int | None:
        value = self.get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(key, f"expected an integer, got {show(value)}")
        elif value < low or (high is not None and value > high):
            limits = f"from {low} to {high}" if high is not None else f"of at least {low}"
            self.bad(key, f"{value} is out of range: use an integer {limits}")
        else:
            return value
        return default

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {show(value)}")
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            hint = did_you_mean(value, choices)
            self.bad(key, f"{show(value)} is not one of: {', '.join(choices)}{hint}")
            return default
        return value

    def label(
        self, key: str, default: str | None = None, required: str | None = None
    ) -> str | None:
        """A DNS label; a malformed one is reported but returned, so later checks can use it."""
        value = self.string(key, default, required)
        if self.given(key) and key not in self.failed and (problem := label_problem(value)):
            self.bad(key, problem)
        return value

    def ipv4(self, key: str) -> IPv4Address | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return IPv4Address(value)
            except ValueError:
                pass
        self.bad(key, f"expected an IPv4 address like 10.244.1.2, got {show(value)}")
        return None

    def network(self, key: str, default: IPv4Network | None = None) -> IPv4Network | None:
        """A CIDR such as 10.244.1.0/24; a given but malformed one gives None, not the default."""
        value = self.get(key)
        if value is None:
            return default
        net, problem = parse_cidr(value, "10.244.1.0/24")
        if problem is not None:
            self.bad(key, problem)
        return net

    def mac(self, key: str) -> str | None:
        """A unicast MAC like 02:00:0a:f4:01:02, in lower case."""
        value = self.string(key)
        if value is None:
            return None
        mac = value.lower()
        if not _MAC.fullmatch(mac):
            self.bad(key, f"{show(value)} is not a MAC address like 02:00:0a:f4:01:02")
        elif int(mac[:2], 16) & 1:
            self.bad(key, f"{value} is a multicast MAC (the first octet's low bit is set); try 02")
        elif mac == "00:00:00:00:00:00":
            self.bad(key, f"{value} is the all-zero MAC; leave mac out to derive one")
        else:
            return mac
        return None

    def duration(
        self, key: str, default: int | None = None, high_s: int | None = None
    ) -> int | None:
        """A duration in nanoseconds, of at most `high_s` seconds when that is given."""
        value = self.get(key)
        if value is None:
            return default
        ns = duration_ns(value)
        if ns is None:
            self.bad(
                key,
                f"expected a duration like 500ms, 2s or 1.5s (ns, us, ms or s; a bare number is "
                f"seconds) in whole nanoseconds, got {show(value)}",
            )
            return default
        if high_s is not None and ns > high_s * NS_PER_SECOND:
            self.bad(key, f"{show(value)} is out of range: at most {high_s} s")
            return default
        return ns

    def child(self, key: str, keys: Iterable[str]) -> Fields | None:
        """The mapping under `key` (None when absent or not a mapping)."""
        value = self.get(key)
        if value is None:
            return None
        child = Fields.check(value, self.at(key), self.report, keys)
        if child is None:
            self.failed.add(key)
        return child

    def entries(self, key: str) -> list[tuple[str, Any]]:
        """The items of the list under `key`, each with its path; [] when absent."""
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(key, f"expected a list, got {show(value)}")
            return []
        return [(f"{self.at(key)}[{index}]", item) for index, item in enumerate(value)]

    def string_map(self, key: str) -> list[tuple[str, str]]:
        """The string-to-string mapping under `key`, in order; wrong entries are reported."""
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, dict):
            self.bad(key, f"expected a mapping of strings, got {show(value)}")
            return []
        inner = Fields(value, self.at(key), self.report)
        needed = 'give it a value ("" for an empty one)'
        pairs = [
            (name, inner.string(name, required=needed)) for name in value if isinstance(name, str)
        ]
        for name in value:
            if not isinstance(name, str):
                inner.bad(str(name), f"expected a string key, got {show(name)} (put it in quotes)")
        if inner.failed:
            self.failed.add(key)
        return [(name, text) for name, text in pairs if text is not None]


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse_cidr(value: Any, example: str) -> tuple[IPv4Network | None, str | None]:
    """A CIDR in subnet form (no host bits set, as the API server validates them): the network,
    or None and what is wrong with `value` (`example` shows the form)."""
    if isinstance(value, str) and "/" in value:
        try:
            return IPv4Network(value), None
        except ValueError:
            pass
        try:
            fixed = IPv4Network(value, strict=False)
        except ValueError:
            pass
        else:
            return None, f"{value} has host bits set (did you mean {fixed}?)"
    return None, f"expected a CIDR like {example}, got {show(value)}"
