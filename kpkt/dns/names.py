"""Domain names as CoreDNS handles them: a tuple of raw labels, without the root.

Labels keep their bytes and their case. Comparisons are case-insensitive (ASCII only, as Go's
strings.ToLower on miekg's escaped presentation form is). `to_text` escapes exactly as miekg/dns
prints a name, so a label CoreDNS compares with a Kubernetes name is the same string here.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

import dns.exception
import dns.name

Name = tuple[bytes, ...]

ROOT: Name = ()
MAX_WIRE_OCTETS = 255  # RFC 1035 2.3.4

_SPECIAL = frozenset(b".  '@;()\"\\")  # miekg isDomainNameLabelSpecial


def from_text(text: str) -> Name:
    """The name written in presentation format (a missing final dot is added)."""
    return tuple(dns.name.from_text(text, origin=dns.name.root).labels[:-1])


def from_dnspython(name: dns.name.Name) -> Name:
    """A dnspython name (absolute, or taken as relative to the root)."""
    labels = name.labels
    return tuple(labels[:-1] if labels and labels[-1] == b"" else labels)


def parse_text(text: str) -> Name | None:
    """`from_text`, or None when `text` is not a domain name."""
    try:
        return from_text(text)
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None


def label_text(label: bytes, specials: frozenset[int] = _SPECIAL, lowest_plain: int = 0x20) -> str:
    """One label as miekg/dns prints it (by default): `specials` escaped with a backslash, other
    bytes outside `lowest_plain`..0x7E as \\DDD."""
    out = []
    for byte in label:
        if byte in specials:
            out.append("\\" + chr(byte))
        elif byte < lowest_plain or byte > 0x7E:
            out.append(f"\\{byte:03d}")
        else:
            out.append(chr(byte))
    return "".join(out)


def to_text(name: Name, specials: frozenset[int] = _SPECIAL, lowest_plain: int = 0x20) -> str:
    """Presentation format with the final dot; the root is "."."""
    if not name:
        return "."
    return ".".join(label_text(label, specials, lowest_plain) for label in name) + "."


def lower(name: Name) -> Name:
    return tuple(label.lower() for label in name)


def keys(name: Name) -> list[str]:
    """The labels as lower-case escaped text: what CoreDNS compares with Kubernetes names."""
    return [label_text(label.lower()) for label in name]


def is_subdomain(child: Name, parent: Name) -> bool:
    """Whether `child` is `parent` or below it (case-insensitive)."""
    if len(parent) > len(child):
        return False
    if not parent:
        return True
    return lower(child[len(child) - len(parent) :]) == lower(parent)


def wire_length(name: Name) -> int:
    return sum(len(label) + 1 for label in name) + 1


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    """Go's net.ParseIP: dotted quad without leading zeros, or IPv6 text (no zone)."""
    if not text or "%" in text or not text.isascii():
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def host_ip(text: str) -> IPv4Address | IPv6Address | None:
    """The address a msg.Service host stands for, as HostType() reads it: an IPv4-mapped IPv6
    address is IPv4 (Go's To4())."""
    ip = parse_ip(text)
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_from_reverse(name_text: str) -> IPv4Address | IPv6Address | None:
    """CoreDNS dnsutil.ExtractAddressFromReverse on a lower-case presentation name: the address
    a full in-addr.arpa or ip6.arpa name stands for, or None."""
    if name_text.endswith(".in-addr.arpa."):
        labels = name_text[: -len(".in-addr.arpa.")].split(".")
        ip = parse_ip(".".join(reversed(labels)))
        if isinstance(ip, IPv6Address):
            ip = ip.ipv4_mapped
        return ip if isinstance(ip, IPv4Address) else None
    if name_text.endswith(".ip6.arpa."):
        labels = list(reversed(name_text[: -len(".ip6.arpa.")].split(".")))
        groups = ["".join(labels[i * 4 : i * 4 + 4]) for i in range(len(labels) // 4)]
        ip = parse_ip(":".join(groups))
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped  # Go's String() prints a mapped address as IPv4
        return ip if isinstance(ip, IPv6Address) else None
    return None
