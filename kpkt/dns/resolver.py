"""A pod's stub resolver, glibc or musl, as a sans-IO state machine.

The resolver builds the DNS queries byte for byte as the libc does, says on which socket each one
goes out, and decides from the replies (or from timeouts and socket errors) what it sends next and
what the lookup returns. It never touches a socket or a clock: the emulation sends the queries,
delivers the replies, and tells it the virtual time.

Driving it:

    resolver = Resolver("glibc", ResolvConf.for_pod("default"), "web", next_id=ids)
    queries = resolver.start(now_ns)              # send these
    ...
    queries = resolver.on_reply(query.socket, reply_bytes, now_ns)   # a reply arrived
    queries = resolver.on_timeout(now_ns)         # when now_ns reaches resolver.deadline_ns
    queries = resolver.on_error(socket, now_ns, "ECONNREFUSED")      # ICMP error / TCP reset
    ...
    resolver.done, resolver.result, resolver.result.summary()

`Query.socket` numbers the lookup's sockets (1, 2, ...): queries with the same number leave from
the same socket (one UDP source port, or one TCP connection), a new number is a new socket.
Replies to a socket that is no longer in `open_sockets` reach a closed port.

What is modelled, from the sources (bminor/glibc `resolv/res_query.c`, `res_send.c` and
`res_mkquery.c` at 6d7e8eda (2023), `sysdeps/posix/getaddrinfo.c`; musl 1.2.4+ `res_msend.c` (the
TCP fallback), `lookup_name.c` (EAI_NODATA, distinct ids), `res_mkquery.c` (AD), `res_query.c`,
`resolvconf.c`, read partly from verbatim ports where the stored upstream copy was older):

glibc (`getaddrinfo` = nss_dns `gethostbyname4_r` = `__res_context_search(T_QUERY_A_AND_AAAA)`;
a single qtype = `res_search`):
- Candidates: as-is first when dots >= ndots or the name ends in a dot (and only that with a
  trailing dot), then every search domain, then as-is if not tried yet. NO_DATA and
  HOST_NOT_FOUND keep searching (NO_DATA remembered), TRY_AGAIN with a SERVFAIL answer keeps
  searching, anything else ends the search (the as-is name is still tried), ECONNREFUSED ends the
  lookup. Final h_errno: the first as-is try's, else NO_DATA, else TRY_AGAIN, else the last.
- Queries: `__res_context_mkquery`: a fresh random id each (A then AAAA: two independent ids),
  RD=1, AD=0 (AD only with `trust-ad`), no EDNS (no `edns0`), QDCOUNT 1, class IN, the name as
  given (case kept, `\\.` escapes understood).
- `send_dg`: one connected UDP socket per candidate (closed when the candidate is done, so every
  candidate has its own source port), A and AAAA sent together (sendmmsg). A reply is taken when
  its id and question match. SERVFAIL, NOTIMP, REFUSED, or a "lame" NOERROR (no answer, AA=0,
  RA=0, no additional) counts as no reply unless the other reply already came. TC=1: the socket is
  closed and both queries go again, same ids, in one write on one TCP connection (`send_vc`, which
  takes any rcode and has no timeout). Timeouts: `retrans << ns` seconds (5 s) per try, `attempts`
  tries (2) over all nameservers, the same socket and ids each try. If one reply of the pair came
  and the other timed out, glibc switches to `single-request` (sends A, waits, sends AAAA) and then
  to `single-request-reopen` (a new socket for the AAAA), for the rest of the lookup.
- Success: a reply with NOERROR and ANCOUNT > 0 in the pair (`__res_context_query`).
- getaddrinfo errors: h_errno HOST_NOT_FOUND -> EAI_NONAME, NO_DATA -> EAI_NODATA,
  TRY_AGAIN -> EAI_AGAIN, NO_RECOVERY -> EAI_FAIL.

musl (`getaddrinfo` = `name_from_dns_search`; a single qtype = `res_query`, which is also
`res_search`: no search list at all):
- Candidates: no search when dots >= ndots or the name ends in a dot; otherwise every search
  domain first, then the name as-is. (A search line of 256 characters or more is ignored.)
- Queries: `__res_mkquery` (RD=1, AD=1, no EDNS, the name split at dots, one trailing dot
  dropped); getaddrinfo clears AD and, if the AAAA id's high byte equals the A id's, adds 1 to it.
- `__res_msend_rc`: a new unconnected UDP socket per candidate, both queries sent to every
  nameserver at once, resent at every `timeout/attempts` (2.5 s) while unanswered, given up after
  `timeout` (5 s). Replies are matched by id only. NOERROR and NXDOMAIN are kept; SERVFAIL makes
  it resend that query at once (at most 2 x nqueries times per interval) and is otherwise ignored,
  like every other rcode. TC=1 (or a reply longer than the buffer): that one query goes again
  over its own TCP connection. The answer buffer of getaddrinfo is 512 bytes.
- Per candidate, in query order (A, AAAA): no answer -> EAI_AGAIN (stop), NXDOMAIN -> next
  candidate, another non-zero rcode -> EAI_FAIL (stop); then the addresses (AAAA answer parsed
  first); none -> EAI_NODATA (stop). After the last candidate's NXDOMAIN: EAI_NONAME.
- `res_query` h_errno: no answer TRY_AGAIN, NXDOMAIN HOST_NOT_FOUND, NOERROR without answers
  NO_DATA.

Not modelled: the RFC 3484/6724 destination sort of getaddrinfo (addresses come in answer order,
IPv4 before IPv6 as in a pod without IPv6), nscd, HOSTALIASES, `rotate`, `use-vc`, `edns0`,
`trust-ad`, `no-aaaa`, res_hnok name checks, the musl TCP Fast Open details.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass

from kpkt.dns.resolv_conf import ResolvConf, parse_hosts, pod_hosts_text

NS_PER_SECOND = 1_000_000_000
DNS_PORT = 53

GLIBC = "glibc"
MUSL = "musl"

# RCODEs (RFC 1035, 2136)
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = range(6)
RCODE_NAMES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
}

QTYPES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "HINFO": 13,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "NAPTR": 35,
    "OPT": 41,
    "DS": 43,
    "RRSIG": 46,
    "DNSKEY": 48,
    "SVCB": 64,
    "HTTPS": 65,
    "AXFR": 252,
    "ANY": 255,
    "CAA": 257,
}
QTYPE_NAMES = {number: name for name, number in QTYPES.items()}
CLASS_IN = 1

# h_errno values (<netdb.h>)
HOST_NOT_FOUND = "HOST_NOT_FOUND"
TRY_AGAIN = "TRY_AGAIN"
NO_RECOVERY = "NO_RECOVERY"
NO_DATA = "NO_DATA"

# getaddrinfo errors
EAI_NONAME = "EAI_NONAME"
EAI_AGAIN = "EAI_AGAIN"
EAI_FAIL = "EAI_FAIL"
EAI_NODATA = "EAI_NODATA"

GLIBC_GAI_ERROR = {
    HOST_NOT_FOUND: EAI_NONAME,
    NO_DATA: EAI_NODATA,
    TRY_AGAIN: EAI_AGAIN,
    NO_RECOVERY: EAI_FAIL,
}

PACKETSZ = 512  # glibc: a query longer than this goes over TCP from the start
MAXDNAME = 1025  # glibc <arpa/nameser.h>
MUSL_ANSWER_SIZE = 512  # musl name_from_dns: unsigned char abuf[2][512]
MUSL_MAXADDRS = 48  # musl lookup.h
MUSL_LINE_MAX = 256  # musl resolvconf.c: char line[256]


# ---------------------------------------------------------------------------------------------
# Wire format


def qtype_number(qtype: str | int) -> int:
    """Type mnemonic or number -> number: "AAAA" -> 28, "TYPE65280" -> 65280."""
    if isinstance(qtype, int):
        return qtype
    upper = qtype.upper()
    if upper in QTYPES:
        return QTYPES[upper]
    if upper.startswith("TYPE") and upper[4:].isdigit():
        return int(upper[4:])
    raise ValueError(f"unknown DNS type {qtype!r}")


def qtype_name(number: int) -> str:
    return QTYPE_NAMES.get(number, f"TYPE{number}")


def _glibc_name(name: str) -> bytes | None:
    """`ns_name_pton`: dots separate labels, `\\c` and `\\DDD` escape; None if it refuses."""
    labels: list[bytes] = []
    label = bytearray()
    i = 0
    while i < len(name):
        char = name[i]
        if char == "\\":
            digits = name[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit():
                value = int(digits)
                if value > 255:
                    return None
                label.append(value)
                i += 4
                continue
            if i + 1 >= len(name):
                return None
            label.extend(name[i + 1].encode("latin-1", "replace"))
            i += 2
            continue
        if char == ".":
            if not label:
                # an empty label: fine only as the root ("." alone, or a trailing dot)
                if i == len(name) - 1 and not labels:
                    return b"\x00"
                return None
            labels.append(bytes(label))
            label = bytearray()
            i += 1
            continue
        label.extend(char.encode("utf-8"))
        i += 1
    if label:
        labels.append(bytes(label))
    if any(len(part) > 63 for part in labels):
        return None
    wire = b"".join(bytes([len(part)]) + part for part in labels) + b"\x00"
    return wire if len(wire) <= 255 else None


def _musl_name(name: str) -> bytes | None:
    """`__res_mkquery`: one trailing dot dropped, split at dots, no escapes; None if it refuses."""
    raw = name.encode("utf-8")
    if raw.endswith(b"."):
        raw = raw[:-1]
        if raw.endswith(b"."):
            return None
    if len(raw) > 253:
        return None
    if not raw:
        return b"\x00"
    labels = raw.split(b".")
    if any(not 1 <= len(part) <= 63 for part in labels):
        return None
    return b"".join(bytes([len(part)]) + part for part in labels) + b"\x00"


def make_query(libc: str, name: str, qtype: int, qid: int, *, ad: bool = False) -> bytes | None:
    """The query message the libc's mkquery builds, or None when it refuses the name."""
    if libc == MUSL:
        if qtype > 255:  # musl: `type>255u` -> -1
            return None
        qname = _musl_name(name)
    else:
        qname = _glibc_name(name)
    if qname is None:
        return None
    flags = 0x0100 | (0x0020 if ad else 0)  # RD, AD
    header = struct.pack("!HHHHHH", qid & 0xFFFF, flags, 1, 0, 0, 0)
    return header + qname + struct.pack("!HH", qtype, CLASS_IN)


def _read_name(data: bytes, offset: int) -> tuple[str, int] | None:
    """Decompress the name at `offset`: (presentation form with trailing dot, offset after)."""
    labels: list[str] = []
    end = None
    hops = 0
    while True:
        if offset >= len(data):
            return None
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or hops > 64:
                return None
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            hops += 1
            continue
        if length & 0xC0:
            return None
        offset += 1
        if length == 0:
            break
        if offset + length > len(data):
            return None
        labels.append(_label_text(data[offset : offset + length]))
        offset += length
    return (".".join(labels) + "." if labels else "."), (end if end is not None else offset)


def _label_text(label: bytes) -> str:
    out = []
    for byte in label:
        char = chr(byte)
        if char in ".\\":
            out.append("\\" + char)
        elif 0x21 <= byte <= 0x7E:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record of a reply, in presentation form."""

    name: str  # owner, absolute, as in the reply
    type: str  # "A", "SRV", ...
    ttl: int
    data: str  # "10.96.0.50", "0 100 80 web.default.svc.cluster.local."
    rclass: int = CLASS_IN

    def __str__(self) -> str:
        klass = "IN" if self.rclass == CLASS_IN else f"CLASS{self.rclass}"
        return f"{self.name} {self.ttl} {klass} {self.type} {self.data}"


@dataclass(frozen=True, slots=True)
class Message:
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
    questions: tuple[tuple[str, int, int], ...]  # (name, type, class)
    answers: tuple[Record, ...]
    complete: bool  # every section parsed


def parse_message(data: bytes) -> Message | None:
    """Parse a DNS message as far as it goes; None if even the header is short."""
    if len(data) < 12:
        return None
    qid, flags, qdcount, ancount, nscount, arcount = struct.unpack("!HHHHHH", data[:12])
    offset = 12
    questions: list[tuple[str, int, int]] = []
    answers: list[Record] = []
    complete = True
    for _ in range(qdcount):
        read = _read_name(data, offset)
        if read is None or read[1] + 4 > len(data):
            complete = False
            break
        qname, offset = read
        qtype, qclass = struct.unpack("!HH", data[offset : offset + 4])
        offset += 4
        questions.append((qname, qtype, qclass))
    if complete:
        for _ in range(ancount):
            parsed = _read_record(data, offset)
            if parsed is None:
                complete = False
                break
            record, offset = parsed
            answers.append(record)
    return Message(
        id=qid,
        qr=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        aa=bool(flags & 0x0400),
        tc=bool(flags & 0x0200),
        rd=bool(flags & 0x0100),
        ra=bool(flags & 0x0080),
        ad=bool(flags & 0x0020),
        cd=bool(flags & 0x0010),
        rcode=flags & 0xF,
        qdcount=qdcount,
        ancount=ancount,
        nscount=nscount,
        arcount=arcount,
        questions=tuple(questions),
        answers=tuple(answers),
        complete=complete,
    )


def _read_record(data: bytes, offset: int) -> tuple[Record, int] | None:
    read = _read_name(data, offset)
    if read is None:
        return None
    owner, offset = read
    if offset + 10 > len(data):
        return None
    rtype, rclass, ttl, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
    offset += 10
    if offset + rdlength > len(data):
        return None
    text = _rdata_text(data, offset, rtype, rdlength)
    return Record(owner, qtype_name(rtype), ttl, text, rclass), offset + rdlength


def _rdata_text(data: bytes, offset: int, rtype: int, length: int) -> str:
    rdata = data[offset : offset + length]
    try:
        if rtype == 1 and length == 4:
            return str(ipaddress.IPv4Address(rdata))
        if rtype == 28 and length == 16:
            return str(ipaddress.IPv6Address(rdata))
        if rtype in (2, 5, 12):  # NS, CNAME, PTR
            read = _read_name(data, offset)
            if read is not None:
                return read[0]
        if rtype == 33 and length >= 7:  # SRV
            priority, weight, port = struct.unpack("!HHH", rdata[:6])
            read = _read_name(data, offset + 6)
            if read is not None:
                return f"{priority} {weight} {port} {read[0]}"
        if rtype == 15 and length >= 3:  # MX
            read = _read_name(data, offset + 2)
            if read is not None:
                return f"{struct.unpack('!H', rdata[:2])[0]} {read[0]}"
        if rtype == 6:  # SOA
            mname = _read_name(data, offset)
            if mname is not None:
                rname = _read_name(data, mname[1])
                if rname is not None and rname[1] + 20 <= offset + length:
                    numbers = struct.unpack("!IIIII", data[rname[1] : rname[1] + 20])
                    return f"{mname[0]} {rname[0]} " + " ".join(str(n) for n in numbers)
        if rtype == 16:  # TXT
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


def _names_equal(a: str, b: str) -> bool:
    """DNS names compare without regard to ASCII case."""
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _glibc_queries_match(query: bytes, reply: bytes) -> bool:
    """`__libc_res_queriesmatch`: same QDCOUNT and every question of the query in the reply."""
    asked = parse_message(query)
    got = parse_message(reply)
    if asked is None or got is None:
        return False
    if asked.opcode == 5 and got.opcode == 5:  # UPDATE replies carry only a header
        return True
    if asked.qdcount != got.qdcount:
        return False
    return all(
        any(
            _names_equal(qname, gname) and qtype == gtype and qclass == gclass
            for gname, gtype, gclass in got.questions
        )
        for qname, qtype, qclass in asked.questions
    )


def _musl_addresses(answer: bytes, rrtype: int, out: list[str]) -> None:
    """musl `__dns_parse` + `dns_parse_callback`: NOERROR only, names skipped byte-wise, every
    record of the asked type taken (owner names are not checked), at most MAXADDRS."""
    rlen = len(answer)
    if rlen < 12 or answer[3] & 15:
        return
    qdcount = answer[4] * 256 + answer[5]
    ancount = answer[6] * 256 + answer[7]
    p = 12
    for _ in range(qdcount):
        while p < rlen and 1 <= answer[p] <= 127:
            p += 1
        if p > rlen - 6:
            return
        p += 5 + (1 if answer[p] else 0)
    for _ in range(ancount):
        while p < rlen and 1 <= answer[p] <= 127:
            p += 1
        if p > rlen - 12:
            return
        p += 1 + (1 if answer[p] else 0)
        rtype = answer[p + 1]  # musl reads the low byte of the type only
        length = answer[p + 8] * 256 + answer[p + 9]
        if length + 10 > rlen - p:
            return
        data = answer[p + 10 : p + 10 + length]
        if rtype != 5 and len(out) < MUSL_MAXADDRS and rtype == rrtype:
            if rtype == 1:
                if length != 4:
                    return
                out.append(str(ipaddress.IPv4Address(data)))
            elif rtype == 28:
                if length != 16:
                    return
                out.append(str(ipaddress.IPv6Address(data)))
        p += 10 + length


def _glibc_addresses(answer: bytes, qname: str) -> list[str]:
    """nss_dns `gaih_getanswer_slice`: A/AAAA records owned by the query name or by a name a
    CNAME in the answer points to."""
    message = parse_message(answer)
    if message is None or message.rcode != NOERROR:
        return []
    aliases = [qname]
    out: list[str] = []
    for record in message.answers:
        if not any(_names_equal(record.name, alias) for alias in aliases):
            continue
        if record.type == "CNAME":
            aliases.append(record.data)
        elif record.type in ("A", "AAAA"):
            out.append(record.data)
    return out


def _ipv4_first(addresses: Sequence[str]) -> tuple[str, ...]:
    v4 = [a for a in addresses if ":" not in a]
    v6 = [a for a in addresses if ":" in a]
    return tuple(v4 + v6)


# ---------------------------------------------------------------------------------------------
# Public data


@dataclass(frozen=True, slots=True)
class Query:
    """One DNS message the resolver sends."""

    transport: str  # "udp" | "tcp"
    socket: int  # the lookup's socket number: same number, same source port / TCP connection
    server: str  # the nameserver's address (port 53)
    qid: int
    qname: str  # as on the wire, absolute: "web.default.svc.cluster.local."
    qtype: str  # "A", "AAAA", "SRV", ...
    wire: bytes  # the DNS message (over TCP without its 2-byte length)
    retransmit: bool = False  # the same message (same id) sent before

    @property
    def port(self) -> int:
        return DNS_PORT

    @property
    def framed(self) -> bytes:
        """What goes into the TCP stream: the 2-byte length, then the message. glibc writes both
        queries of a pair with one writev; musl gives each query its own connection."""
        return struct.pack("!H", len(self.wire)) + self.wire

    def describe(self) -> str:
        again = " (again)" if self.retransmit else ""
        return (
            f"{self.transport} #{self.socket} id {self.qid:#06x} {self.qtype} {self.qname}{again}"
        )


@dataclass(frozen=True, slots=True)
class Result:
    """How a lookup ended."""

    name: str
    libc: str
    qtype: str | None  # None: getaddrinfo (A and AAAA)
    ok: bool
    addresses: tuple[str, ...] = ()  # getaddrinfo
    records: tuple[Record, ...] = ()  # single qtype: the answer section
    error: str | None = None  # getaddrinfo: EAI_*; a single qtype: the h_errno name
    h_errno: str | None = None  # glibc, and musl res_query
    candidates: tuple[str, ...] = ()  # the names queried, in order, as on the wire
    queries: int = 0  # DNS messages sent, retransmissions and TCP retries included
    source: str = "dns"  # "dns" | "hosts" (/etc/hosts) | "literal" (an IP address)
    started_ns: int = 0
    finished_ns: int = 0

    @property
    def elapsed_ns(self) -> int:
        return self.finished_ns - self.started_ns

    def summary(self) -> str:
        """One printable line: "web -> 10.96.0.50 (2 queries)"."""
        what = self.name if self.qtype is None else f"{self.name} {self.qtype}"
        if self.source == "hosts":
            how = "from /etc/hosts"
        elif self.source == "literal":
            how = "numeric, no query"
        else:
            how = f"{self.queries} {'query' if self.queries == 1 else 'queries'}"
        if self.ok:
            items = list(self.addresses) if self.qtype is None else [r.data for r in self.records]
            shown = ", ".join(items[:4])
            if len(items) > 4:
                shown += f" and {len(items) - 4} more"
            return f"{what} -> {shown} ({how})"
        error = self.error or "failed"
        if self.qtype is None and self.h_errno and self.libc == GLIBC:
            error = f"{error} ({self.h_errno})"
        return f"{what} -> {error} ({how})"


# ---------------------------------------------------------------------------------------------
# The resolver


@dataclass(slots=True)
class _Q:
    qid: int
    qname: str
    qtype: int
    wire: bytes


@dataclass(slots=True)
class _Event:
    kind: str  # "reply" | "timeout" | "error"
    socket: int = 0
    data: bytes = b""
    src: tuple[str, int] | None = None
    errno: str = ""


@dataclass(slots=True)
class _GlibcOptions:
    single_request: bool = False  # RES_SNGLKUP, set by send_dg after a half-answered timeout
    single_request_reopen: bool = False  # RES_SNGLKUPREOP


@dataclass(slots=True)
class _Exchange:
    """The answer buffers of one `__res_context_send` (glibc) and what was read into them."""

    ans1: bytes = b""
    ans2: bytes = b""
    resplen2: int = 0
    buf1_rcode: int = NOERROR  # `hp->rcode` of the caller's answer buffer

    def store(self, data: bytes, first: bool) -> None:
        """An answer read into the caller's buffer (`first`) or the second one."""
        if first:
            self.ans1 = data
            if len(data) >= 4:
                self.buf1_rcode = data[3] & 15
        else:
            self.ans2 = data
            self.resplen2 = len(data)


_Coroutine = Generator[int | None, _Event, object]


class Resolver:
    """One getaddrinfo (qtype None) or res_search (one qtype) call of a pod's libc."""

    def __init__(
        self,
        libc: str,
        conf: ResolvConf,
        name: str,
        qtype: str | int | None = None,
        *,
        next_id: Callable[[], int],
        hosts: Mapping[str, Sequence[str]] | None = None,
        answer_size: int = 65536,
    ) -> None:
        if libc not in (GLIBC, MUSL):
            raise ValueError(f"libc must be {GLIBC!r} or {MUSL!r}, not {libc!r}")
        if not conf.nameservers:
            raise ValueError("resolv.conf names no nameserver")
        self.libc = libc
        self.conf = conf
        self.name = name
        self.qtype = None if qtype is None else qtype_number(qtype)
        self.next_id = next_id
        self.hosts = hosts or {}
        self.answer_size = answer_size  # the res_search caller's buffer
        self.sent: list[Query] = []
        self.result: Result | None = None
        self.deadline_ns: int | None = None
        self._outbox: list[Query] = []
        self._open: dict[int, str] = {}  # socket -> "udp" | "tcp"
        self._socket_count = 0
        self._sent_before: set[tuple[int, bytes]] = set()
        self._candidates: list[str] = []
        self._now = 0
        self._started_ns = 0
        self._accept: set[int] = set()  # the sockets the current wait reads
        self._gen: _Coroutine | None = None
        # glibc's resolver state for this lookup
        self._glibc_options = _GlibcOptions()
        self._h_errno = HOST_NOT_FOUND
        self._errno = ""  # errno after the last res_send
        self._terrno = "ETIMEDOUT"
        self._gotsomewhere = False
        self._buf1_rcode = NOERROR
        self._udp: dict[int, int | None] = {}  # nameserver index -> open UDP socket
        self._answer: _Exchange | None = None  # the successful candidate's answers
        self._answer_qname = ""
        # musl
        self._musl_found: list[str] = []

    # -- the emulation's side -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def open_sockets(self) -> frozenset[int]:
        return frozenset(self._open)

    def socket_transport(self, socket: int) -> str | None:
        return self._open.get(socket)

    @property
    def timeout_ns(self) -> int:
        """`options timeout:` (5 s): glibc's wait per try, musl's whole-candidate budget."""
        return self.conf.timeout * NS_PER_SECOND

    @property
    def attempts(self) -> int:
        return self.conf.attempts

    def start(self, now_ns: int = 0) -> list[Query]:
        """Begin the lookup; returns the queries to send now (none if it needs no DNS)."""
        if self._gen is not None:
            raise RuntimeError("the lookup has already started")
        self._now = self._started_ns = now_ns
        self._gen = self._lookup()
        return self._advance(None)

    def on_reply(
        self, socket: int, data: bytes, now_ns: int, src: tuple[str, int] | None = None
    ) -> list[Query]:
        """A DNS message arrived on `socket` (over TCP: one whole message, no length prefix).
        `src`, if given, is the (address, port) it came from: musl ignores replies from other
        addresses, and glibc's connected UDP socket never sees them."""
        if src is not None:
            src = (str(src[0]), int(src[1]))
        return self._feed(_Event("reply", socket, bytes(data), src), now_ns)

    def on_timeout(self, now_ns: int) -> list[Query]:
        """Virtual time reached `deadline_ns` with nothing else arriving."""
        if self.deadline_ns is None or now_ns < self.deadline_ns:
            return []
        return self._feed(_Event("timeout"), now_ns)

    def on_error(self, socket: int, now_ns: int, errno: str = "ECONNREFUSED") -> list[Query]:
        """A socket error: an ICMP unreachable on a UDP socket (glibc's connected socket reports
        it, musl's unconnected one does not), or over TCP a refused connect ("ECONNREFUSED"), a
        reset ("ECONNRESET") or the peer closing early ("EOF")."""
        return self._feed(_Event("error", socket, errno=errno), now_ns)

    # -- plumbing -----------------------------------------------------------------------------

    def _feed(self, event: _Event, now_ns: int) -> list[Query]:
        if self._gen is None or self.done:
            return []
        if event.kind != "timeout" and event.socket not in self._accept:
            return []  # a socket the libc is not reading now
        self._now = max(self._now, now_ns)
        return self._advance(event)

    def _advance(self, event: _Event | None) -> list[Query]:
        assert self._gen is not None
        try:
            deadline = self._gen.send(event) if event is not None else next(self._gen)
        except StopIteration as stop:
            result = stop.value
            assert isinstance(result, Result)
            self.result = result
            self.deadline_ns = None
            self._accept = set()
            for socket in list(self._open):
                self._close(socket)
        else:
            self.deadline_ns = None if deadline is None else int(deadline)
        out, self._outbox = self._outbox, []
        return out

    def _wait(
        self, deadline: int | None, sockets: set[int]
    ) -> Generator[int | None, _Event, _Event]:
        """Block until a reply or error on one of `sockets`, or the deadline."""
        self._accept = set(sockets)
        while True:
            if deadline is not None and self._now >= deadline:
                return _Event("timeout")
            event = yield deadline
            if event.kind == "timeout" or event.socket in sockets:
                return event

    def _new_socket(self, transport: str) -> int:
        self._socket_count += 1
        self._open[self._socket_count] = transport
        return self._socket_count

    def _close(self, socket: int | None) -> None:
        if socket is not None:
            self._open.pop(socket, None)

    def _send(self, transport: str, socket: int, server: str, query: _Q) -> None:
        key = (query.qid, query.wire)
        again = key in self._sent_before
        self._sent_before.add(key)
        message = Query(
            transport=transport,
            socket=socket,
            server=server,
            qid=query.qid,
            qname=query.qname,
            qtype=qtype_name(query.qtype),
            wire=query.wire,
            retransmit=again,
        )
        self._outbox.append(message)
        self.sent.append(message)

    def _make(self, name: str, qtype: int, *, ad: bool = False) -> _Q | None:
        qid = self.next_id() & 0xFFFF
        wire = make_query(self.libc, name, qtype, qid, ad=ad)
        if wire is None:
            return None
        parsed = parse_message(wire)
        assert parsed is not None
        return _Q(qid, parsed.questions[0][0], qtype, wire)

    def _finish(self, ok: bool, **fields) -> Result:
        qtype = None if self.qtype is None else qtype_name(self.qtype)
        return Result(
            name=self.name,
            libc=self.libc,
            qtype=qtype,
            ok=ok,
            candidates=tuple(self._candidates),
            queries=len(self.sent),
            started_ns=self._started_ns,
            finished_ns=self._now,
            **fields,
        )

    def _lookup(self) -> Generator[int | None, _Event, Result]:
        if self.qtype is None:
            early = self._before_dns()
            if early is not None:
                return early
        if self.libc == GLIBC:
            return (yield from self._glibc_search())
        if self.qtype is None:
            return (yield from self._musl_getaddrinfo())
        return (yield from self._musl_res_query())

    def _before_dns(self) -> Result | None:
        """getaddrinfo answers numeric addresses and /etc/hosts names without DNS."""
        name = self.name
        if not name or len(name) >= 255:
            return self._finish(False, error=EAI_NONAME)
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return self._finish(True, addresses=(str(address),), source="literal")
        for entry, addresses in self.hosts.items():
            # glibc's files backend compares without case, musl's name_from_hosts with it
            same = entry.lower() == name.lower() if self.libc == GLIBC else entry == name
            if same and addresses:
                return self._finish(True, addresses=_ipv4_first(addresses), source="hosts")
        return None

    # -- glibc ------------------------------------------------------------------------------

    def _glibc_search(self) -> Generator[int | None, _Event, Result]:
        """`__res_context_search`."""
        self._h_errno = HOST_NOT_FOUND  # "True if we never query."
        self._errno = ""
        self._buf1_rcode = NOERROR
        self._answer = None
        name = self.name
        dots = name.count(".")
        trailing_dot = name.endswith(".")
        got_nodata = got_servfail = root_on_list = 0
        tried_as_is = False
        saved_herrno: str | None = None

        if dots >= self.conf.ndots or trailing_dot:
            if (yield from self._glibc_querydomain(name, None)) or trailing_dot:
                return self._glibc_result()
            saved_herrno = self._h_errno
            tried_as_is = True

        # RES_DEFNAMES and RES_DNSRCH are on by default
        if not dots or not trailing_dot:
            for domain in self.conf.search:
                if domain.startswith("."):
                    domain = domain[1:]
                if not domain:
                    root_on_list += 1
                if (yield from self._glibc_querydomain(name, domain)):
                    return self._glibc_result()
                if self._errno == "ECONNREFUSED":
                    self._h_errno = TRY_AGAIN
                    return self._glibc_result()
                if self._h_errno == NO_DATA:
                    got_nodata += 1
                elif self._h_errno == HOST_NOT_FOUND:
                    pass
                elif self._h_errno == TRY_AGAIN and self._buf1_rcode == SERVFAIL:
                    got_servfail += 1
                else:
                    break

        # RES_NOTLDQUERY is off by default, so the as-is name is always tried once
        if not (tried_as_is or root_on_list) and (yield from self._glibc_querydomain(name, None)):
            return self._glibc_result()

        if saved_herrno is not None:
            self._h_errno = saved_herrno
        elif got_nodata:
            self._h_errno = NO_DATA
        elif got_servfail:
            self._h_errno = TRY_AGAIN
        self._answer = None
        return self._glibc_result()

    def _glibc_result(self) -> Result:
        exchange = self._answer
        if exchange is None:
            h_errno = self._h_errno
            error = GLIBC_GAI_ERROR.get(h_errno, EAI_FAIL) if self.qtype is None else h_errno
            return self._finish(False, error=error, h_errno=h_errno)
        answers = [a for a in (exchange.ans1, exchange.ans2) if len(a) >= 12]
        if self.qtype is None:
            addresses: list[str] = []
            for answer in answers:
                addresses.extend(_glibc_addresses(answer, self._answer_qname))
            if not addresses:
                # the pair said NOERROR with answers, but no usable address among them
                return self._finish(False, error=EAI_NODATA, h_errno=NO_DATA)
            return self._finish(True, addresses=_ipv4_first(addresses))
        records: list[Record] = []
        for answer in answers[:1]:
            message = parse_message(answer[: self.answer_size])
            if message is not None:
                records.extend(message.answers)
        return self._finish(True, records=tuple(records))

    def _glibc_querydomain(
        self, name: str, domain: str | None
    ) -> Generator[int | None, _Event, bool]:
        """`__res_context_querydomain` + `__res_context_query`; True on success."""
        if domain is None:
            if len(name) - 1 >= MAXDNAME - 1:
                self._h_errno = NO_RECOVERY
                return False
            longname = name
        else:
            if len(name) + len(domain) + 1 >= MAXDNAME:
                self._h_errno = NO_RECOVERY
                return False
            longname = f"{name}.{domain}"

        self._buf1_rcode = NOERROR  # hp->rcode = NOERROR
        if self.qtype is None:
            q1 = self._make(longname, QTYPES["A"])
            q2 = self._make(longname, QTYPES["AAAA"]) if q1 is not None else None
            if q1 is None or q2 is None:
                self._h_errno = NO_RECOVERY
                return False
        else:
            q1, q2 = self._make(longname, self.qtype), None
            if q1 is None:
                self._h_errno = NO_RECOVERY
                return False
        self._candidates.append(q1.qname)

        exchange = _Exchange()
        n = yield from self._glibc_send(q1, q2, exchange)
        self._buf1_rcode = exchange.buf1_rcode
        if n < 0:
            self._h_errno = TRY_AGAIN
            return False
        self._errno = ""

        hp = parse_message(exchange.ans1) if n >= 12 else None
        if q2 is None or exchange.resplen2 < 12:
            hp2 = hp
        else:
            hp2 = parse_message(exchange.ans2)
            if n < 12:
                hp = hp2
                exchange.ans1 = b""
        if hp is None or hp2 is None:  # cannot happen: res_send hands back whole headers
            self._h_errno = NO_RECOVERY
            return False
        if q2 is None or exchange.resplen2 < 12:
            exchange.ans2 = b""

        def answered(m: Message) -> bool:
            return m.rcode == NOERROR and m.ancount > 0

        if not answered(hp) and not answered(hp2):
            rcode = hp2.rcode if hp.rcode == NOERROR else hp.rcode
            if rcode == NXDOMAIN:
                self._h_errno = HOST_NOT_FOUND
            elif rcode == SERVFAIL:
                self._h_errno = TRY_AGAIN
            elif rcode == NOERROR:
                self._h_errno = NO_DATA
            else:
                self._h_errno = NO_RECOVERY
            return False
        self._answer = exchange
        self._answer_qname = q1.qname
        return True

    def _glibc_send(
        self, q1: _Q, q2: _Q | None, exchange: _Exchange
    ) -> Generator[int | None, _Event, int]:
        """`__res_context_send`: returns the first answer's length, 0 when only the second
        answer is good, -1 on failure (with self._errno)."""
        nameservers = self.conf.nameservers
        retry = max(self.conf.attempts, 1)
        v_circuit = len(q1.wire) > PACKETSZ or (q2 is not None and len(q2.wire) > PACKETSZ)
        self._gotsomewhere = False
        self._terrno = "ETIMEDOUT"
        self._udp = {}
        attempt = 0
        while attempt < retry:
            for ns in range(len(nameservers)):
                while True:  # same_ns
                    if v_circuit:
                        attempt = retry  # "Use VC; at most one attempt per server."
                        n = yield from self._glibc_send_vc(q1, q2, ns, exchange)
                        if n == 0 and (q2 is None or exchange.resplen2 == 0):
                            break  # next_ns
                    else:
                        n, v_circuit = yield from self._glibc_send_dg(q1, q2, ns, exchange)
                        if n == 0 and (q2 is None or exchange.resplen2 == 0):
                            break  # next_ns
                        if v_circuit:
                            continue  # same_ns, over TCP
                    for socket in self._udp.values():
                        self._close(socket)
                    return n
            attempt += 1
        for socket in self._udp.values():
            self._close(socket)
        if not v_circuit:
            self._errno = "ETIMEDOUT" if self._gotsomewhere else "ECONNREFUSED"
        else:
            self._errno = self._terrno
        return -1

    def _glibc_reopen(self, ns: int) -> int:
        socket = self._udp.get(ns)
        if socket is None or socket not in self._open:
            socket = self._new_socket("udp")
            self._udp[ns] = socket
        return socket

    def _glibc_close_udp(self, ns: int) -> None:
        self._close(self._udp.get(ns))
        self._udp[ns] = None

    def _glibc_send_dg(
        self, q1: _Q, q2: _Q | None, ns: int, exchange: _Exchange
    ) -> Generator[int | None, _Event, tuple[int, bool]]:
        """`send_dg`: returns (n, v_circuit) and fills `exchange` (resplen2 included)."""
        server = self.conf.nameservers[ns]
        nscount = len(self.conf.nameservers)
        seconds = self.conf.timeout << ns
        if ns > 0:
            seconds //= nscount
        seconds = max(seconds, 1)
        options = self._glibc_options
        single_request_reopen = options.single_request_reopen
        single_request = options.single_request or single_request_reopen
        save_gotsomewhere = self._gotsomewhere
        resplen = 0
        reopen = True
        while True:
            if reopen:  # retry_reopen
                socket = self._glibc_reopen(ns)
            reopen = False
            # retry:
            finish = self._now + seconds * NS_PER_SECOND
            nwritten = 0
            recv1, recv2 = False, q2 is None
            want_send = True  # POLLOUT
            again = False
            while True:
                if want_send:
                    if nwritten == 0 and q2 is not None and not single_request:
                        self._send("udp", socket, server, q1)  # sendmmsg
                        self._send("udp", socket, server, q2)
                        nwritten = 2
                        want_send = False
                    else:
                        self._send("udp", socket, server, q2 if nwritten and q2 else q1)
                        want_send = not (nwritten != 0 or q2 is None or single_request)
                        nwritten += 1
                    continue
                event = yield from self._wait(finish, {socket})
                if event.kind == "timeout":
                    if resplen > 1 and (recv1 or (q2 is not None and recv2)):
                        # one reply came, the other did not: go serial for the rest of the lookup
                        if not single_request:
                            options.single_request = single_request = True
                            self._gotsomewhere = save_gotsomewhere
                            again = True
                            break
                        if not single_request_reopen:
                            options.single_request_reopen = single_request_reopen = True
                            self._gotsomewhere = save_gotsomewhere
                            self._glibc_close_udp(ns)
                            again = reopen = True
                            break
                        exchange.resplen2 = 1
                        return resplen, False
                    self._gotsomewhere = True
                    exchange.resplen2 = 0
                    return 0, False
                if event.kind == "error":  # POLLERR: an ICMP error on the connected socket
                    self._glibc_close_udp(ns)
                    exchange.resplen2 = 0
                    return 0, False
                if event.src is not None and event.src != (server, DNS_PORT):
                    continue  # a connected socket only hears its peer
                data = event.data
                first_buffer = (not recv1 and not recv2) or q2 is None
                exchange.store(data, first_buffer)
                if first_buffer:
                    resplen = len(data)
                self._gotsomewhere = True
                if len(data) < 12:  # undersized: EMSGSIZE
                    self._terrno = "EMSGSIZE"
                    self._glibc_close_udp(ns)
                    exchange.resplen2 = 0
                    return 0, False
                reply = parse_message(data)
                assert reply is not None
                matching = 0
                if not recv1 and reply.id == q1.qid and _glibc_queries_match(q1.wire, data):
                    matching = 1
                if (
                    q2 is not None
                    and not recv2
                    and reply.id == q2.qid
                    and _glibc_queries_match(q2.wire, data)
                ):
                    matching = 2
                if matching == 0:
                    continue  # spurious: keep waiting
                lame = (
                    reply.rcode == NOERROR
                    and reply.ancount == 0
                    and not reply.aa
                    and not reply.ra
                    and reply.arcount == 0
                )
                if reply.rcode in (SERVFAIL, NOTIMP, REFUSED) or lame:
                    # next_ns: no data from this reply
                    if recv1 or (q2 is not None and recv2):
                        exchange.resplen2 = 0
                        return resplen, False
                    if q2 is not None:
                        resplen = 0
                        if matching == 1:
                            recv1 = True
                        else:
                            recv2 = True
                        continue
                    self._glibc_close_udp(ns)
                    exchange.resplen2 = 0
                    return 0, False
                if reply.tc:
                    # "To get the rest of answer, use TCP with same server."
                    self._glibc_close_udp(ns)
                    exchange.resplen2 = 0
                    return 1, True
                if matching == 1:
                    recv1 = True
                else:
                    recv2 = True
                if not (recv1 and recv2):
                    if single_request:
                        want_send = True
                        if single_request_reopen:
                            self._glibc_close_udp(ns)
                            socket = self._glibc_reopen(ns)
                    continue
                return resplen, False
            if not again:
                return 0, False

    def _glibc_send_vc(
        self, q1: _Q, q2: _Q | None, ns: int, exchange: _Exchange
    ) -> Generator[int | None, _Event, int]:
        """`send_vc`: both queries on one TCP connection, replies matched by id only."""
        server = self.conf.nameservers[ns]
        connreset = False
        while True:  # same_ns
            socket = self._new_socket("tcp")
            self._send("tcp", socket, server, q1)  # one writev: length, query, length, query
            if q2 is not None:
                self._send("tcp", socket, server, q2)
            recv1, recv2 = False, q2 is None
            resplen = 0
            while True:
                event = yield from self._wait(None, {socket})  # blocking reads, no timeout
                if event.kind != "reply":
                    self._terrno = event.errno or "ETIMEDOUT"
                    self._close(socket)
                    if self._terrno == "ECONNRESET" and not connreset:
                        connreset = True
                        break  # requery the same server once
                    exchange.resplen2 = 0
                    return 0
                data = event.data
                first_buffer = (not recv1 and not recv2) or q2 is None
                exchange.store(data, first_buffer)
                if first_buffer:
                    resplen = len(data)
                if len(data) < 12:
                    self._terrno = "EMSGSIZE"
                    self._close(socket)
                    exchange.resplen2 = 0
                    return 0
                qid = (data[0] << 8) | data[1]
                if (recv1 or qid != q1.qid) and (recv2 or q2 is None or qid != q2.qid):
                    continue
                if not recv1 and qid == q1.qid:
                    recv1 = True
                else:
                    recv2 = True
                if not (recv1 and recv2):
                    continue
                self._close(socket)
                return resplen

    # -- musl -------------------------------------------------------------------------------

    def _musl_search_list(self) -> tuple[str, ...]:
        line = "search " + " ".join(self.conf.search) + "\n"
        if not self.conf.search or len(line) >= MUSL_LINE_MAX:
            return ()  # musl skips a resolv.conf line that does not fit its 256-byte buffer
        return self.conf.search

    def _musl_getaddrinfo(self) -> Generator[int | None, _Event, Result]:
        """`__lookup_name` -> `name_from_dns_search`."""
        name = self.name
        dots = name.count(".")
        search = self._musl_search_list()
        if dots >= self.conf.ndots or name.endswith("."):
            search = ()
        length = len(name) - 1 if name.endswith(".") else len(name)
        if not length or name[length - 1] == ".":
            return self._finish(False, error=EAI_NONAME)
        base = name[:length]
        count: int | str = 0
        for domain in search:
            if len(domain) < 256 - length - 1:
                count = yield from self._musl_name_from_dns(f"{base}.{domain}")
                if count:
                    break
        else:
            count = yield from self._musl_name_from_dns(name)
        if isinstance(count, str):
            return self._finish(False, error=count)
        if count == 0:
            return self._finish(False, error=EAI_NONAME)
        return self._finish(True, addresses=_ipv4_first(self._musl_found))

    def _musl_name_from_dns(self, name: str) -> Generator[int | None, _Event, int | str]:
        """`name_from_dns`: the address count, 0 for NXDOMAIN, or an EAI_* error."""
        queries: list[_Q] = []
        for qtype in (QTYPES["A"], QTYPES["AAAA"]):
            query = self._make(name, qtype)  # getaddrinfo clears AD (qbuf[nq][3] = 0)
            if query is None:
                return 0
            if queries and query.wire[0] == queries[0].wire[0]:
                # "Ensure query IDs are distinct."
                high = (query.wire[0] + 1) & 0xFF
                query.wire = bytes([high]) + query.wire[1:]
                query.qid = (high << 8) | query.wire[1]
            queries.append(query)
        self._candidates.append(queries[0].qname)
        answers, alens = yield from self._musl_msend(queries, MUSL_ANSWER_SIZE)
        for answer, alen in zip(answers, alens, strict=True):
            if alen < 4 or answer[3] & 15 == SERVFAIL:
                return EAI_AGAIN
            if answer[3] & 15 == NXDOMAIN:
                return 0
            if answer[3] & 15 != NOERROR:
                return EAI_FAIL
        found: list[str] = []
        for i in range(len(queries) - 1, -1, -1):
            size = min(alens[i], MUSL_ANSWER_SIZE)
            _musl_addresses(answers[i][:size], queries[i].qtype, found)
        if found:
            self._musl_found = found
            return len(found)
        return EAI_NODATA

    def _musl_res_query(self) -> Generator[int | None, _Event, Result]:
        """`res_query` (also `res_search`): the name as given, one query with AD set."""
        assert self.qtype is not None
        query = self._make(self.name, self.qtype, ad=True)
        if query is None:
            return self._finish(False, error="EINVAL")
        self._candidates.append(query.qname)
        size = max(self.answer_size, PACKETSZ)  # res_send: a smaller buffer gets 512 bytes
        answers, alens = yield from self._musl_msend([query], size)
        answer, alen = answers[0], alens[0]
        if alen < 12:
            return self._finish(False, error=TRY_AGAIN, h_errno=TRY_AGAIN)
        if answer[3] & 15 == NXDOMAIN:
            return self._finish(False, error=HOST_NOT_FOUND, h_errno=HOST_NOT_FOUND)
        if answer[3] & 15 == NOERROR and not answer[6] and not answer[7]:
            return self._finish(False, error=NO_DATA, h_errno=NO_DATA)
        message = parse_message(answer[: self.answer_size])
        records = message.answers if message is not None else ()
        return self._finish(True, records=records)

    def _musl_msend(
        self, queries: list[_Q], asize: int
    ) -> Generator[int | None, _Event, tuple[list[bytes], list[int]]]:
        """`__res_msend_rc`: returns the answers and their lengths (0: none)."""
        nameservers = self.conf.nameservers
        nq = len(queries)
        timeout = self.conf.timeout * NS_PER_SECOND
        retry_interval = timeout // max(self.conf.attempts, 1)
        udp = self._new_socket("udp")
        udp_polled = True
        tcp: list[int | None] = [None] * nq
        alens = [0] * nq
        answers = [b""] * nq
        nxt = 0
        t0 = self._now
        t1 = t0 - retry_interval
        servfail_retry = 0
        try:
            while self._now - t0 < timeout:
                if all(alen > 0 for alen in alens):
                    break
                if self._now - t1 >= retry_interval:
                    for i in range(nq):
                        if not alens[i]:
                            for server in nameservers:
                                self._send("udp", udp, server, queries[i])
                    t1 = self._now
                    servfail_retry = 2 * nq
                sockets = {s for s in tcp if s is not None}
                if udp_polled:
                    sockets.add(udp)
                event = yield from self._wait(t1 + retry_interval, sockets)
                if event.kind == "timeout":
                    continue
                if event.socket == udp:
                    if event.kind != "reply" or nxt >= nq:
                        continue  # an unconnected socket gets no ICMP errors
                    data, rlen = event.data[:asize], len(event.data)
                    truncated = rlen > asize
                    if rlen < 4:
                        continue
                    if event.src is not None and event.src not in {
                        (server, DNS_PORT) for server in nameservers
                    }:
                        continue
                    server = event.src[0] if event.src is not None else nameservers[0]
                    i = next(
                        (k for k in range(nxt, nq) if data[:2] == queries[k].wire[:2]),
                        nq,
                    )
                    if i == nq or alens[i]:
                        continue
                    rcode = data[3] & 15
                    if rcode == SERVFAIL:
                        if servfail_retry:
                            servfail_retry -= 1
                            self._send("udp", udp, server, queries[i])
                        continue
                    if rcode not in (NOERROR, NXDOMAIN):
                        continue
                    alens[i] = min(rlen, asize)
                    answers[i] = data
                    if i == nxt:
                        while nxt < nq and alens[nxt]:
                            nxt += 1
                    if nxt == nq:
                        udp_polled = False  # all slots full or in TCP mode
                    if data[2] & 2 or truncated:  # TC: fall back to TCP
                        alens[i] = -1
                        tcp[i] = self._new_socket("tcp")
                        self._send("tcp", tcp[i], server, queries[i])
                    continue
                i = tcp.index(event.socket)
                if event.kind != "reply":
                    return answers, [max(alen, 0) for alen in alens]  # goto out
                alen = len(event.data)
                if alen < 13:
                    return answers, [max(alen, 0) for alen in alens]
                data = event.data[:asize]
                if data[3] & 15 not in (NOERROR, NXDOMAIN):
                    return answers, [max(alen, 0) for alen in alens]
                alens[i] = alen
                answers[i] = data
                self._close(tcp[i])
                tcp[i] = None
            return answers, [max(alen, 0) for alen in alens]
        finally:
            self._close(udp)
            for socket in tcp:
                self._close(socket)


def pod_resolver(
    pod,
    name: str,
    qtype: str | int | None = None,
    *,
    next_id: Callable[[], int],
    dns_service_ip: str = "10.96.0.10",
    cluster_domain: str = "cluster.local",
    conf: ResolvConf | None = None,
) -> Resolver:
    """The resolver of a pod (anything with `name`, `namespace`, `ip`, `resolver` and, optionally,
    `hostname` and `subdomain`, like `PodSpec`) for one lookup, reading the files the kubelet
    wrote: resolv.conf for dnsPolicy ClusterFirst (or `conf`), and /etc/hosts."""
    if conf is None:
        conf = ResolvConf.for_pod(pod.namespace, cluster_domain, str(dns_service_ip))
    hosts = parse_hosts(
        pod_hosts_text(
            str(pod.ip),
            pod.name,
            pod.namespace,
            getattr(pod, "hostname", None),
            getattr(pod, "subdomain", None),
            cluster_domain,
        )
    )
    libc = getattr(pod, "resolver", GLIBC) or GLIBC
    return Resolver(libc, conf, name, qtype, next_id=next_id, hosts=hosts)


# ---------------------------------------------------------------------------------------------
# A synchronous driver, for tests and for callers that answer queries directly


Responder = Callable[[Query], "bytes | None"]


def run(resolver: Resolver, respond: Responder, now_ns: int = 0, rtt_ns: int = 1_000_000) -> Result:
    """Run a lookup against `respond(query) -> reply bytes | None` (None: no reply). Replies come
    back `rtt_ns` after their query, in the order the queries went out; when nothing is pending,
    time jumps to the resolver's deadline."""
    pending: list[tuple[int, int, Query]] = []  # (due, order, query)
    order = 0

    def queue(queries: list[Query], at: int) -> None:
        nonlocal order
        for query in queries:
            order += 1
            pending.append((at + rtt_ns, order, query))

    queue(resolver.start(now_ns), now_ns)
    now = now_ns
    while not resolver.done:
        pending.sort(key=lambda item: (item[0], item[1]))
        deadline = resolver.deadline_ns
        if pending and (deadline is None or pending[0][0] < deadline):
            due, _, query = pending.pop(0)
            now = max(now, due)
            if query.socket not in resolver.open_sockets:
                continue
            reply = respond(query)
            if reply is not None:
                queue(resolver.on_reply(query.socket, reply, now), now)
            continue
        if deadline is None:
            raise RuntimeError("the resolver waits forever (glibc over TCP) and nothing is pending")
        now = max(now, deadline)
        queue(resolver.on_timeout(now), now)
    assert resolver.result is not None
    return resolver.result
