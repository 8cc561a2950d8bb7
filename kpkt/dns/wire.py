"""DNS wire format with miekg/dns's rules (the library CoreDNS runs on, v1.1.72).

- Parsing: names with backward-only compression pointers (at most 126 of them) and at most 255
  octets; a question may stop after its name (type and class 0); a section count larger than
  what the message holds is a lie that is forgiven; RR data must fill its RDLENGTH exactly
  (checked by dnspython for the types it knows; an empty RDATA is always accepted).
- What a server does with a datagram (`accept`): serveDNS and defaultMsgAcceptFunc.
- Packing: miekg's name compression (case-sensitive suffixes, offsets below 16384, SRV targets
  never compressed but remembered), and `truncate` as Msg.Truncate.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.rdata
import dns.wire

from kpkt.dns.message import (
    AAAA,
    CNAME,
    FORMERR,
    HEADER_SIZE,
    MIN_UDP_SIZE,
    MX,
    NOTIFY,
    NOTIMP,
    NS,
    OPT,
    PTR,
    QUERY,
    RR,
    SOA,
    SRV,
    A,
    Message,
    NameField,
    Question,
    Rdata,
    opt_extended_rcode,
    rdata_bytes,
)
from kpkt.dns.names import MAX_WIRE_OCTETS, Name, from_dnspython

MAX_POINTERS = (MAX_WIRE_OCTETS + 1) // 2 - 2  # miekg maxCompressionPointers
MAX_COMPRESSION_OFFSET = 2 << 13

_QR, _AA, _TC, _RD, _RA, _Z, _AD, _CD = (
    0x8000,
    0x0400,
    0x0200,
    0x0100,
    0x0080,
    0x0040,
    0x0020,
    0x0010,
)
_FIXED_SIZE = {A: 4, AAAA: 16}


class WireError(ValueError):
    """Bytes that are not a DNS message (or not the part of one that was expected)."""


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class NameRules:
    """How far a reader trusts a compressed name: how many pointers it follows, whether a
    pointer may point forward, and the longest name it takes (None: no limit)."""

    max_pointers: int
    backward_only: bool
    max_octets: int | None


MIEKG_NAMES = NameRules(MAX_POINTERS, backward_only=True, max_octets=MAX_WIRE_OCTETS)


def read_name(buf: bytes, pos: int, rules: NameRules = MIEKG_NAMES) -> tuple[Name, int]:
    """The name at `pos` and the offset after it (after the first pointer, if any)."""
    labels = []
    budget = rules.max_octets
    pointers = 0
    after = pos
    size = len(buf)
    while True:
        if pos >= size:
            raise WireError("name runs past the end")
        length = buf[pos]
        pos += 1
        kind = length & 0xC0
        if kind == 0:
            if length == 0:
                break
            if pos + length > size:
                raise WireError("label runs past the end")
            if budget is not None:
                budget -= length + 1
                if budget <= 0:
                    raise WireError(f"name longer than {rules.max_octets} octets")
            labels.append(buf[pos : pos + length])
            pos += length
        elif kind == 0xC0:
            if pos >= size:
                raise WireError("pointer runs past the end")
            target = (length & 0x3F) << 8 | buf[pos]
            pos += 1
            if pointers == 0:
                after = pos
            pointers += 1
            if pointers > rules.max_pointers:
                raise WireError("too many compression pointers")
            if rules.backward_only and target >= pos:
                raise WireError("pointer not to a prior occurrence")
            pos = target
        else:
            raise WireError("reserved label type")
    return tuple(labels), (after if pointers else pos)


def read_question(buf: bytes, pos: int) -> tuple[Question, int]:
    name, pos = read_name(buf, pos)
    numbers = [0, 0]
    for i in range(2):  # a question may end after its name, or after its type
        if pos < len(buf):
            if pos + 2 > len(buf):
                raise WireError("question cut inside a number")
            numbers[i] = int.from_bytes(buf[pos : pos + 2], "big")
            pos += 2
    return Question(name, numbers[0], numbers[1]), pos


@dataclass(frozen=True, slots=True)
class RRHeader:
    """An RR up to its data: the data is `rdlength` bytes at `rdata_at`."""

    name: Name
    rtype: int
    rclass: int
    ttl: int
    rdlength: int
    rdata_at: int

    @property
    def end(self) -> int:
        return self.rdata_at + self.rdlength


def read_rr_header(buf: bytes, pos: int, rules: NameRules = MIEKG_NAMES) -> RRHeader:
    """The RR starting at `pos`, its data left unread (but known to lie inside `buf`)."""
    name, pos = read_name(buf, pos, rules)
    if pos + 10 > len(buf):
        raise WireError("RR header cut short")
    rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", buf, pos)
    pos += 10
    if pos + rdlength > len(buf):
        raise WireError("bad rdlength")
    return RRHeader(name, rtype, rclass, ttl, rdlength, pos)


def read_rr(buf: bytes, pos: int) -> tuple[RR, int]:
    head = read_rr_header(buf, pos)
    rdata = read_rdata(buf, head.rdata_at, head.rdlength, head.rtype)
    return RR(head.name, head.rtype, head.rclass, head.ttl, rdata), head.end


def read_rdata(buf: bytes, pos: int, size: int, rtype: int) -> Rdata:
    if size == 0:
        return ()
    if rtype == OPT:
        data = bytes(buf[pos : pos + size])
        at = 0
        while at < size:
            if at + 4 > size:
                raise WireError("EDNS0 option header cut short")
            at += 4 + int.from_bytes(data[at + 2 : at + 4], "big")
            if at > size:
                raise WireError("EDNS0 option runs past the record")
        return (data,)
    if rtype in _FIXED_SIZE:
        if size != _FIXED_SIZE[rtype]:
            raise WireError("bad rdlength")
        return (bytes(buf[pos : pos + size]),)
    parser = dns.wire.Parser(buf, pos)
    try:
        with parser.restrict_to(size):
            rdata = dns.rdata.from_wire_parser(1, rtype, parser)
    except Exception as error:  # dnspython's many ways of saying "malformed"
        raise WireError(f"bad RR data: {error}") from error
    return rdata_parts(rdata)


def rdata_parts(rdata: dns.rdata.Rdata) -> Rdata:
    """dnspython RR data as parts, the names kept apart so that they can be compressed."""
    rtype = rdata.rdtype
    if rtype in (NS, CNAME, PTR):
        return (NameField(from_dnspython(rdata.target), True),)
    if rtype == MX:
        return (
            rdata.preference.to_bytes(2, "big"),
            NameField(from_dnspython(rdata.exchange), True),
        )
    if rtype == SRV:
        fixed = struct.pack("!HHH", rdata.priority, rdata.weight, rdata.port)
        return (fixed, NameField(from_dnspython(rdata.target), False))
    if rtype == SOA:
        numbers = (rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum)
        return (
            NameField(from_dnspython(rdata.mname), True),
            NameField(from_dnspython(rdata.rname), True),
            struct.pack("!IIIII", *numbers),
        )
    return (rdata.to_wire(),)


def read_header(buf: bytes) -> tuple[Message, tuple[int, int, int, int]]:
    """The header as a message with empty sections, and the four section counts."""
    ident, bits, qd, an, ns, ar = struct.unpack_from("!HHHHHH", buf, 0)
    message = Message(
        id=ident,
        qr=bool(bits & _QR),
        opcode=(bits >> 11) & 0xF,
        aa=bool(bits & _AA),
        tc=bool(bits & _TC),
        rd=bool(bits & _RD),
        ra=bool(bits & _RA),
        z=bool(bits & _Z),
        ad=bool(bits & _AD),
        cd=bool(bits & _CD),
        rcode=bits & 0xF,
    )
    return message, (qd, an, ns, ar)


def _read_sections(buf: bytes, counts: tuple[int, int, int, int], message: Message) -> None:
    """Fill the sections as miekg Msg.unpack does; on an error the section being read keeps
    what was read before it, and WireError is raised."""
    pos = HEADER_SIZE
    if pos == len(buf):  # just a header: no sections, no error
        return
    readers = (read_question, read_rr, read_rr, read_rr)
    sections = (message.question, message.answer, message.authority, message.additional)
    for count, reader, section in zip(counts, readers, sections, strict=True):
        for _ in range(count):
            if pos == len(buf):  # the count is a lie: forgiven
                break
            item, pos = reader(buf, pos)
            section.append(item)
    opt = message.opt()
    if opt is not None:
        message.rcode |= opt_extended_rcode(opt)


def unpack(buf: bytes) -> Message:
    """A whole message (a reply from a server, say); WireError if it is not one."""
    if len(buf) < HEADER_SIZE:
        raise WireError("shorter than a header")
    message, counts = read_header(buf)
    _read_sections(buf, counts, message)
    return message


def accept(buf: bytes) -> Message | bytes | None:
    """What a miekg/dns server makes of a datagram: the query to serve, the header-only error
    reply to send at once (FORMERR or NOTIMP), or None to drop it silently."""
    if len(buf) < HEADER_SIZE:
        return None  # "Let client hang, they are sending crap"
    request, (qd, an, ns, ar) = read_header(buf)
    if request.qr:
        return None  # MsgIgnore
    if request.opcode not in (QUERY, NOTIFY):
        return _reject(request, NOTIMP)
    if qd != 1 or an > 1 or ns > 1 or ar > 2:
        return _reject(request, FORMERR)
    try:
        _read_sections(buf, (qd, an, ns, ar), request)
    except WireError:
        return _reject(request, FORMERR)  # the question read so far stays
    return request


def _reject(request: Message, rcode: int) -> bytes:
    """serveDNS's MsgReject: the request's own header turned into a reply (SetRcodeFormatError),
    its other sections removed."""
    reply = request.copy()
    reply.qr = True
    reply.aa = False
    reply.z = False
    reply.rcode = rcode
    if rcode == FORMERR:
        reply.opcode = QUERY
    reply.answer, reply.authority, reply.additional = [], [], []
    return pack(reply)


# ---------------------------------------------------------------- packing


class _Packer:
    __slots__ = ("buf", "table")

    def __init__(self, compress: bool):
        self.buf = bytearray(HEADER_SIZE)
        self.table: dict[Name, int] | None = {} if compress else None

    def name(self, name: Name, compress: bool = True) -> None:
        buf = self.buf
        table = self.table
        for i, label in enumerate(name):
            if table is not None:
                suffix = name[i:]
                pointer = table.get(suffix)
                if pointer is not None:
                    if compress:
                        buf += (0xC000 | pointer).to_bytes(2, "big")
                        return
                elif len(buf) < MAX_COMPRESSION_OFFSET:
                    table[suffix] = len(buf)
            buf.append(len(label))
            buf += label
        buf.append(0)

    def question(self, question: Question) -> None:
        self.name(question.name)
        self.buf += struct.pack("!HH", question.qtype & 0xFFFF, question.qclass & 0xFFFF)

    def rr(self, rr: RR) -> None:
        buf = self.buf
        self.name(rr.name)
        buf += struct.pack("!HHI", rr.rtype & 0xFFFF, rr.rclass & 0xFFFF, rr.ttl & 0xFFFFFFFF)
        at = len(buf)
        buf += b"\0\0"
        for part in rr.rdata:
            if isinstance(part, NameField):
                self.name(part.name, part.compress)
            else:
                buf += part
        buf[at : at + 2] = (len(buf) - at - 2).to_bytes(2, "big")


def pack(message: Message) -> bytes:
    """The message on the wire, compressed if message.compress (and there is anything to
    compress). WireError when an extended rcode has no OPT record to travel in."""
    additional = message.additional
    opt = message.opt()
    if opt is not None:
        ttl = (opt.ttl & 0x00FFFFFF) | ((message.rcode >> 4) & 0xFF) << 24
        additional = [rr.with_ttl(ttl) if rr is opt else rr for rr in additional]
    elif message.rcode > 0xF:
        raise WireError("an extended rcode needs an OPT record")
    compressible = len(message.question) > 1 or message.answer or message.authority or additional
    packer = _Packer(bool(message.compress and compressible))
    for question in message.question:
        packer.question(question)
    for section in (message.answer, message.authority, additional):
        for rr in section:
            packer.rr(rr)
    bits = (message.opcode & 0xF) << 11 | (message.rcode & 0xF)
    for flag, bit in (
        (message.qr, _QR),
        (message.aa, _AA),
        (message.tc, _TC),
        (message.rd, _RD),
        (message.ra, _RA),
        (message.z, _Z),
        (message.ad, _AD),
        (message.cd, _CD),
    ):
        if flag:
            bits |= bit
    packer.buf[:HEADER_SIZE] = struct.pack(
        "!HHHHHH",
        message.id & 0xFFFF,
        bits,
        len(message.question),
        len(message.answer),
        len(message.authority),
        len(additional),
    )
    return bytes(packer.buf)


def plain_length(message: Message) -> int:
    """The length without compression (miekg Len with Compress off)."""
    length = HEADER_SIZE
    for question in message.question:
        length += _name_length(question.name) + 4
    for section in (message.answer, message.authority, message.additional):
        for rr in section:
            length += rr_plain_length(rr)
    return length


def rr_plain_length(rr: RR) -> int:
    return _name_length(rr.name) + 10 + len(rdata_bytes(rr))


def _name_length(name: Name) -> int:
    return sum(len(label) for label in name) + len(name) + 1


def truncate(message: Message, size: int) -> None:
    """miekg Msg.Truncate: nothing to do if the message fits uncompressed; otherwise turn
    compression on and keep whole RRs, answer then authority then additional, while they fit
    (the OPT record always stays). TC is set when any RR was left out."""
    size = max(size, MIN_UDP_SIZE)
    if plain_length(message) <= size:
        message.compress = False
        return
    message.compress = True
    opt = None
    for i in range(len(message.additional) - 1, -1, -1):
        if message.additional[i].rtype == OPT:
            opt = message.additional.pop(i)
            size -= rr_plain_length(opt)
            break
    packer = _Packer(True)
    for question in message.question:
        packer.question(question)
    length = len(packer.buf)
    kept = []
    for section in (message.answer, message.authority, message.additional):
        count = 0
        if length < size:
            for i, rr in enumerate(section):
                packer.rr(rr)
                length = len(packer.buf)
                if length > size:
                    length, count = size, i
                    break
                if length == size:
                    count = i + 1
                    break
            else:
                count = len(section)
        kept.append(count)
    sections = (message.answer, message.authority, message.additional)
    if any(len(section) > count for section, count in zip(sections, kept, strict=True)):
        message.tc = True
    message.answer = message.answer[: kept[0]]
    message.authority = message.authority[: kept[1]]
    message.additional = message.additional[: kept[2]]
    if opt is not None:
        message.additional.append(opt)
