"""DNS messages as the pod's stub resolvers write and read them, over the shared codec (wire.py).

A query is packed by wire.py from the name the libc's mkquery accepted (glibc.py, musl.py). A
reply is read leniently, as far as it goes: both libcs follow compression pointers in any
direction (glibc `ns_name_unpack` in resolv/ns_name.c, musl `__dn_expand`), check no name length
on the way, and keep the records read before a malformed one. Names and record data are
rendered in presentation form for lookup results and capture notes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from kpkt.dns import names, wire
from kpkt.dns.message import (
    AAAA,
    CNAME,
    IN,
    MX,
    NS,
    PTR,
    SOA,
    SRV,
    TXT,
    A,
    Message,
    Question,
    type_name,
)
from kpkt.dns.names import Name

# Pointers may point forward; the loop guard (65 pointers) is kpkt's, neither libc counts them.
LIBC_NAMES = wire.NameRules(max_pointers=65, backward_only=False, max_octets=None)

# Presentation: only "." and "\\" escaped, every byte outside 0x21-0x7E as \\DDD.
_SPECIALS = frozenset(b".\\")
_LOWEST_PLAIN = 0x21


def name_text(name: Name) -> str:
    """A name in presentation form with its trailing dot ("." for the root)."""
    return names.to_text(name, _SPECIALS, _LOWEST_PLAIN)


def query_message(qname: Name, qtype: int, qid: int, *, ad: bool = False) -> bytes:
    """A query as both libcs' mkquery builds it: RD (and AD if asked), one question of class IN,
    no EDNS."""
    query = Message(id=qid & 0xFFFF, rd=True, ad=ad, question=[Question(qname, qtype, IN)])
    return wire.pack(query)


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record of a reply, in presentation form."""

    name: str  # owner, absolute, as in the reply
    type: str  # "A", "SRV", ...
    ttl: int
    data: str  # "10.96.0.50", "0 100 80 web.default.svc.cluster.local."
    rclass: int = IN

    def __str__(self) -> str:
        klass = "IN" if self.rclass == IN else f"CLASS{self.rclass}"
        return f"{self.name} {self.ttl} {klass} {self.type} {self.data}"


@dataclass(frozen=True, slots=True)
class Reply:
    """The parts of a DNS message the stub resolvers look at."""

    id: int
    qr: bool
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    ad: bool
    cd: bool
    rcode: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int
    questions: tuple[tuple[str, int, int], ...]  # (name, type, class), as far as they parse
    answers: tuple[Record, ...]  # the answer records before the first malformed one


def parse_message(data: bytes) -> Reply | None:
    """Parse a DNS message as far as it goes; None if even the header is short."""
    if len(data) < wire.HEADER_SIZE:
        return None
    header, (qdcount, ancount, nscount, arcount) = wire.read_header(data)
    offset = wire.HEADER_SIZE
    questions: list[tuple[str, int, int]] = []
    answers: list[Record] = []
    complete = True
    for _ in range(qdcount):
        read = _name_at(data, offset)
        if read is None or read[1] + 4 > len(data):
            complete = False
            break
        qname, offset = read
        qtype, qclass = struct.unpack("!HH", data[offset : offset + 4])
        offset += 4
        questions.append((qname, qtype, qclass))
    if complete:
        for _ in range(ancount):
            try:
                head = wire.read_rr_header(data, offset, LIBC_NAMES)
            except wire.WireError:
                break
            text = _rdata_text(data, head.rdata_at, head.rtype, head.rdlength)
            answers.append(
                Record(name_text(head.name), type_name(head.rtype), head.ttl, text, head.rclass)
            )
            offset = head.end
    return Reply(
        id=header.id,
        qr=header.qr,
        opcode=header.opcode,
        aa=header.aa,
        tc=header.tc,
        rd=header.rd,
        ra=header.ra,
        ad=header.ad,
        cd=header.cd,
        rcode=header.rcode,
        qdcount=qdcount,
        ancount=ancount,
        nscount=nscount,
        arcount=arcount,
        questions=tuple(questions),
        answers=tuple(answers),
    )


def _name_at(data: bytes, offset: int) -> tuple[str, int] | None:
    """The name at `offset` in presentation form and the offset after it, or None."""
    try:
        name, end = wire.read_name(data, offset, LIBC_NAMES)
    except wire.WireError:
        return None
    return name_text(name), end


def _rdata_text(data: bytes, offset: int, rtype: int, length: int) -> str:
    """The data in presentation form; RFC 3597's `\\# length hex` when it does not parse."""
    rdata = data[offset : offset + length]
    try:
        if rtype == A and length == 4:
            return str(ipaddress.IPv4Address(rdata))
        if rtype == AAAA and length == 16:
            return str(ipaddress.IPv6Address(rdata))
        if rtype in (NS, CNAME, PTR):
            read = _name_at(data, offset)
            if read is not None:
                return read[0]
        if rtype == SRV and length >= 7:
            priority, weight, port = struct.unpack("!HHH", rdata[:6])
            read = _name_at(data, offset + 6)
            if read is not None:
                return f"{priority} {weight} {port} {read[0]}"
        if rtype == MX and length >= 3:
            read = _name_at(data, offset + 2)
            if read is not None:
                return f"{struct.unpack('!H', rdata[:2])[0]} {read[0]}"
        if rtype == SOA:
            mname = _name_at(data, offset)
            if mname is not None:
                rname = _name_at(data, mname[1])
                if rname is not None and rname[1] + 20 <= offset + length:
                    numbers = struct.unpack("!IIIII", data[rname[1] : rname[1] + 20])
                    return f"{mname[0]} {rname[0]} " + " ".join(str(n) for n in numbers)
        if rtype == TXT:
            parts, i = [], 0
            while i < length:
                size = rdata[i]
                chunk = rdata[i + 1 : i + 1 + size].decode("latin-1")
                parts.append('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"')
                i += 1 + size
            return " ".join(parts)
    except (ValueError, struct.error, IndexError):
        pass
    return f"\\# {length} {rdata.hex()}" if length else "\\# 0"


def names_equal(a: str, b: str) -> bool:
    """DNS names compare without regard to ASCII case."""
    return a.rstrip(".").lower() == b.rstrip(".").lower()
