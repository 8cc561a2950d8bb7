"""Checks the zone-file lines the upstream DNS server answers: `<name> <ttl> IN <type> <data>`."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from kpkt.topology.fields import did_you_mean, dns_name_problem, show

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")
MAX_TTL = 2_147_483_647  # RFC 2181: 31 bits
EXAMPLE = "'example.com. 300 IN A 198.51.100.10'"


def record_problem(line: str) -> str | None:
    """Why `line` is not one zone-file record kpkt's upstream can serve, or None."""
    parts = line.split(None, 4)
    if len(parts) < 5:
        return (
            f"{show(line)} is not a zone-file record: write '<name> <ttl> IN <type> <data>', "
            f"like {EXAMPLE}"
        )
    name, ttl, klass, rtype, data = parts
    if problem := dns_name_problem(name, wildcard=True):
        return f"the record's name: {problem}"
    if not (ttl.isascii() and ttl.isdigit()) or int(ttl) > MAX_TTL:
        return f"the record's TTL {show(ttl)} is not a number of seconds from 0 to {MAX_TTL}"
    if klass.upper() != "IN":
        return f"the record's class {show(klass)} is not IN: kpkt serves Internet records only"
    if rtype.upper() not in RECORD_TYPES:
        hint = did_you_mean(rtype, RECORD_TYPES)
        return f"unknown record type {show(rtype)}{hint}; use one of: {', '.join(RECORD_TYPES)}"
    return _data_problem(rtype.upper(), data.strip())


def _data_problem(rtype: str, data: str) -> str | None:
    kinds = {"A": (IPv4Address, "an IPv4 address"), "AAAA": (IPv6Address, "an IPv6 address")}
    if rtype not in kinds:
        return None
    kind, noun = kinds[rtype]
    try:
        kind(data)
    except ValueError:
        return f"an {rtype} record's data must be {noun}, got {show(data)}"
    return None
