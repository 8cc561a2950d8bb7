"""DNS messages as miekg/dns (CoreDNS's library) holds them: header bits, a question, three
sections of resource records. Packing and parsing live in wire.py.

An RR's data is a tuple of parts: raw bytes, or a NameField for a domain name inside the data
(whether the packer may compress it follows RFC 3597 and miekg: CNAME, NS, PTR, MX, SOA yes;
SRV no).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address

from kpkt.dns import names
from kpkt.dns.names import Name

# RR types
A = 1
NS = 2
CNAME = 5
SOA = 6
PTR = 12
HINFO = 13
MX = 15
TXT = 16
AAAA = 28
SRV = 33
NAPTR = 35
OPT = 41
DS = 43
RRSIG = 46
DNSKEY = 48
SVCB = 64
HTTPS = 65
IXFR = 251
AXFR = 252
ANY = 255
CAA = 257

# the mnemonics a user may write for a type (RFC 3597: any other type is TYPEnnn)
TYPE_NUMBERS = {
    "A": A,
    "NS": NS,
    "CNAME": CNAME,
    "SOA": SOA,
    "PTR": PTR,
    "HINFO": HINFO,
    "MX": MX,
    "TXT": TXT,
    "AAAA": AAAA,
    "SRV": SRV,
    "NAPTR": NAPTR,
    "OPT": OPT,
    "DS": DS,
    "RRSIG": RRSIG,
    "DNSKEY": DNSKEY,
    "SVCB": SVCB,
    "HTTPS": HTTPS,
    "AXFR": AXFR,
    "ANY": ANY,
    "CAA": CAA,
}
_TYPE_NAMES = {number: name for name, number in TYPE_NUMBERS.items()}

# classes
IN = 1
CH = 3
HS = 4

# opcodes
QUERY = 0
IQUERY = 1
STATUS = 2
NOTIFY = 4
UPDATE = 5

# rcodes (BADVERS needs an OPT record: the upper 8 bits travel there)
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16

# EDNS0 options CoreDNS copies from a query's OPT into its reply (request/edns0.go)
OPTION_NSID = 3
OPTION_EXPIRE = 9
OPTION_COOKIE = 10
OPTION_TCP_KEEPALIVE = 11
OPTION_PADDING = 12
ECHOED_OPTIONS = frozenset(
    {OPTION_NSID, OPTION_EXPIRE, OPTION_COOKIE, OPTION_TCP_KEEPALIVE, OPTION_PADDING}
)
DO_BIT = 0x8000

HEADER_SIZE = 12
MIN_UDP_SIZE = 512  # miekg MinMsgSize
MAX_MSG_SIZE = 65535  # miekg MaxMsgSize


def type_number(rtype: str | int) -> int:
    """Type mnemonic or number -> number: "AAAA" -> 28, "TYPE65280" -> 65280."""
    if isinstance(rtype, int):
        return rtype
    upper = rtype.upper()
    if upper in TYPE_NUMBERS:
        return TYPE_NUMBERS[upper]
    if upper.startswith("TYPE") and upper[4:].isdigit():
        return int(upper[4:])
    raise ValueError(f"unknown DNS type {rtype!r}")


def type_name(number: int) -> str:
    """The mnemonic of a type number, TYPEnnn for the others."""
    return _TYPE_NAMES.get(number, f"TYPE{number}")


@dataclass(frozen=True, slots=True)
class NameField:
    """A domain name inside RR data."""

    name: Name
    compress: bool


Part = bytes | NameField
Rdata = tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Question:
    name: Name
    qtype: int
    qclass: int


@dataclass(frozen=True, slots=True)
class RR:
    name: Name
    rtype: int
    rclass: int
    ttl: int
    rdata: Rdata = ()

    def with_ttl(self, ttl: int) -> RR:
        return replace(self, ttl=ttl)


@dataclass(slots=True)
class Message:
    id: int = 0
    qr: bool = False
    opcode: int = QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    z: bool = False
    ad: bool = False
    cd: bool = False
    rcode: int = NOERROR  # 12 bits: the upper 8 are the OPT record's extended rcode
    question: list[Question] = field(default_factory=list)
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    compress: bool = False  # miekg Msg.Compress: pack with name compression

    def opt(self) -> RR | None:
        """The OPT record (miekg IsEdns0: the last one in the additional section)."""
        for rr in reversed(self.additional):
            if rr.rtype == OPT:
                return rr
        return None

    def copy(self) -> Message:
        return replace(
            self,
            question=list(self.question),
            answer=list(self.answer),
            authority=list(self.authority),
            additional=list(self.additional),
        )

    def reply(self) -> Message:
        """miekg SetReply: the ID, opcode and question echoed; RD and CD copied for QUERY."""
        query = self.opcode == QUERY
        return Message(
            id=self.id,
            qr=True,
            opcode=self.opcode,
            rd=self.rd if query else False,
            cd=self.cd if query else False,
            question=self.question[:1],
        )

    def reply_rcode(self, rcode: int) -> Message:
        """miekg SetRcode."""
        message = self.reply()
        message.rcode = rcode
        return message

    def answers(self, question: Question) -> bool:
        """request.Match: a response with exactly this question (name case-insensitively)."""
        return (
            self.qr
            and len(self.question) == 1
            and names.lower(self.question[0].name) == names.lower(question.name)
            and self.question[0].qtype == question.qtype
        )


# ---------------------------------------------------------------- RR data builders


def a_rr(owner: Name, ip: IPv4Address, ttl: int) -> RR:
    return RR(owner, A, IN, ttl, (ip.packed,))


def aaaa_rr(owner: Name, ip: IPv6Address, ttl: int) -> RR:
    return RR(owner, AAAA, IN, ttl, (ip.packed,))


def address_rr(owner: Name, ip: IPv4Address | IPv6Address, ttl: int) -> RR:
    return a_rr(owner, ip, ttl) if isinstance(ip, IPv4Address) else aaaa_rr(owner, ip, ttl)


def cname_rr(owner: Name, target: Name, ttl: int) -> RR:
    return RR(owner, CNAME, IN, ttl, (NameField(target, True),))


def ptr_rr(owner: Name, target: Name, ttl: int) -> RR:
    return RR(owner, PTR, IN, ttl, (NameField(target, True),))


def ns_rr(owner: Name, target: Name, ttl: int) -> RR:
    return RR(owner, NS, IN, ttl, (NameField(target, True),))


def srv_rr(owner: Name, priority: int, weight: int, port: int, target: Name, ttl: int) -> RR:
    fixed = priority.to_bytes(2, "big") + weight.to_bytes(2, "big") + port.to_bytes(2, "big")
    return RR(owner, SRV, IN, ttl, (fixed, NameField(target, False)))


def txt_rr(owner: Name, text: bytes, ttl: int) -> RR:
    return RR(owner, TXT, IN, ttl, (bytes([len(text)]) + text,))


def soa_rr(
    owner: Name, mname: Name, rname: Name, numbers: tuple[int, int, int, int, int], ttl: int
) -> RR:
    fixed = b"".join(number.to_bytes(4, "big") for number in numbers)
    return RR(owner, SOA, IN, ttl, (NameField(mname, True), NameField(rname, True), fixed))


def rdata_names(rr: RR) -> list[Name]:
    return [part.name for part in rr.rdata if isinstance(part, NameField)]


def rdata_bytes(rr: RR) -> bytes:
    """The data uncompressed (names written out in full)."""
    out = bytearray()
    for part in rr.rdata:
        if isinstance(part, NameField):
            for label in part.name:
                out.append(len(label))
                out += label
            out.append(0)
        else:
            out += part
    return bytes(out)


# ---------------------------------------------------------------- OPT (EDNS0)


def opt_rr(udp_size: int, ttl: int, options: list[tuple[int, bytes]]) -> RR:
    data = b"".join(
        code.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value for code, value in options
    )
    return RR((), OPT, udp_size, ttl, (data,) if data else ())


def opt_options(rr: RR) -> list[tuple[int, bytes]]:
    """The options of a well-formed OPT record (wire.py checks the form when parsing)."""
    data = rdata_bytes(rr)
    options = []
    pos = 0
    while pos + 4 <= len(data):
        code = int.from_bytes(data[pos : pos + 2], "big")
        size = int.from_bytes(data[pos + 2 : pos + 4], "big")
        options.append((code, data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return options


def opt_version(rr: RR) -> int:
    return (rr.ttl >> 16) & 0xFF


def opt_do(rr: RR) -> bool:
    return bool(rr.ttl & DO_BIT)


def opt_extended_rcode(rr: RR) -> int:
    return (rr.ttl >> 24) << 4
