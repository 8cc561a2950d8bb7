"""The DNS server behind CoreDNS's `forward . /etc/resolv.conf`: a host on the node network that
answers from zone-file lines (UpstreamSpec.records), as a recursive resolver would relay them.

- A name in the data: NOERROR with its records of the asked type (any type for ANY); a CNAME
  instead is followed through the data. Owner names take the question's case.
- A name in the data asked for a type it lacks: NOERROR, no answer, the zone's SOA.
- Any other name: NXDOMAIN with the SOA of the zone it would be in (the root's if none).
- Flags: AA=0, RA=1, RD and CD copied. An OPT in the query gets one back (size 1232, DO
  echoed); EDNS versions other than 0 get BADVERS; classes other than IN get REFUSED.
- Size: 512 bytes over UDP without EDNS, the query's size with it, 65535 over TCP; names are
  always compressed and a reply too large is cut RR by RR with TC set.

A zone of its own is the record's explicit SOA when the data has one; otherwise the last two
labels of the owner (example.com for www.example.com), with the SOA
`<zone> 300 IN SOA ns.<zone> admin.<zone> 1 7200 900 1209600 300`.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from kpkt.dns import names, wire
from kpkt.dns.message import (
    ANY,
    BADVERS,
    CNAME,
    DO_BIT,
    FORMERR,
    IN,
    MAX_MSG_SIZE,
    MIN_UDP_SIZE,
    NOERROR,
    NOTIMP,
    NXDOMAIN,
    QUERY,
    REFUSED,
    RR,
    SOA,
    Message,
    opt_rr,
    opt_version,
    rdata_names,
    soa_rr,
)
from kpkt.dns.names import Name
from kpkt.errors import KpktError
from kpkt.spec import UpstreamSpec

EDNS_SIZE = 1232  # what the upstream advertises (the DNS flag day 2020 value)
SOA_TTL = 300
ZONE_SOA = (1, 7200, 900, 1209600, 300)
ROOT_SOA = soa_rr(
    (),
    names.from_text("a.root-servers.net."),
    names.from_text("nstld.verisign-grs.com."),
    (1, 1800, 900, 604800, 86400),
    SOA_TTL,
)
MAX_CHAIN = 8


def parse_record(line: str) -> RR:
    """One zone-file line, `<name> <ttl> <class> <type> <data>`; ValueError if it is not one."""
    parts = line.split(None, 4)
    if len(parts) != 5:
        raise ValueError("write '<name> <ttl> IN <type> <data>'")
    text, ttl, klass, rtype, data = parts
    try:
        rdclass = dns.rdataclass.from_text(klass)
        rdtype = dns.rdatatype.from_text(rtype)
        name = dns.name.from_text(text, origin=dns.name.root)
        rdata = dns.rdata.from_text(rdclass, rdtype, data, origin=dns.name.root, relativize=False)
        seconds = int(ttl)
    except (dns.exception.DNSException, ValueError) as error:
        raise ValueError(str(error) or type(error).__name__) from error
    if not 0 <= seconds <= 0x7FFFFFFF:
        raise ValueError(f"TTL {ttl} out of range")
    owner = names.from_dnspython(name)
    return RR(owner, int(rdtype), int(rdclass), seconds, wire.rdata_parts(rdata))


class UpstreamDns:
    def __init__(self, records: Iterable[RR], ip: IPv4Address | None = None):
        self.ip = ip
        self.records = list(records)
        self._by_name: dict[Name, list[RR]] = {}
        for rr in self.records:
            self._by_name.setdefault(names.lower(rr.name), []).append(rr)
        self._soas: dict[Name, RR] = {}
        for rr in self.records:
            if rr.rtype == SOA:
                self._soas.setdefault(names.lower(rr.name), rr)
        for rr in self.records:
            apex = _apex(rr.name)
            if apex not in self._soas:
                self._soas[apex] = soa_rr(
                    apex, (b"ns",) + apex, (b"admin",) + apex, ZONE_SOA, SOA_TTL
                )

    @classmethod
    def from_spec(cls, spec: UpstreamSpec) -> UpstreamDns:
        records = []
        for line in spec.records:
            try:
                records.append(parse_record(line))
            except ValueError as error:
                raise KpktError(f"upstream DNS record {line!r}: {error}") from None
        return cls(records, spec.ip)

    def handle(self, query: bytes, transport: str = "udp") -> bytes | None:
        """The reply to one query (bytes), or None to send nothing."""
        try:
            request = wire.accept(bytes(query))
        except Exception:
            return None
        if request is None or isinstance(request, bytes):
            return request
        if not request.question:
            return wire.pack(request.reply_rcode(FORMERR))
        reply = request.reply()
        reply.ra = True
        opt = request.opt()
        if request.opcode != QUERY:
            reply.rcode = NOTIMP
        elif opt is not None and opt_version(opt) != 0:
            reply.rcode = BADVERS
        elif request.question[0].qclass != IN:
            reply.rcode = REFUSED
        else:
            self._answer(request, reply)
        if opt is not None:
            reply.additional.append(opt_rr(EDNS_SIZE, opt.ttl & DO_BIT, []))
        if transport == "tcp":
            size = MAX_MSG_SIZE
        else:
            size = max(opt.rclass if opt is not None else 0, MIN_UDP_SIZE)
        wire.truncate(reply, size)
        reply.compress = True
        try:
            return wire.pack(reply)
        except wire.WireError:
            return None

    def _answer(self, request: Message, reply: Message) -> None:
        question = request.question[0]
        qname, qtype = question.name, question.qtype
        node = self._node(qname)
        if node is None:
            reply.rcode = NXDOMAIN
            reply.authority = [self._soa(qname)]
            return
        answer = [_owned(rr, qname) for rr in node if qtype in (ANY, rr.rtype)]
        if not answer and qtype != CNAME:
            answer = self._chase(qname, node, qtype)
        if answer:
            reply.rcode = NOERROR
            reply.answer = answer
        else:
            reply.authority = [self._soa(qname)]

    def _node(self, name: Name) -> list[RR] | None:
        """The records of a name, or of the closest wildcard that covers it."""
        node = self._by_name.get(names.lower(name))
        if node is not None:
            return node
        lowered = names.lower(name)
        for cut in range(1, len(lowered)):
            wildcard = self._by_name.get((b"*",) + lowered[cut:])
            if wildcard is not None:
                return wildcard
        return None

    def _chase(self, owner: Name, node: list[RR], qtype: int) -> list[RR]:
        answer: list[RR] = []
        for _ in range(MAX_CHAIN):
            cname = next((rr for rr in node if rr.rtype == CNAME), None)
            if cname is None:
                break
            answer.append(_owned(cname, owner))
            owner = rdata_names(cname)[0]
            node = self._node(owner)
            if node is None:
                break
            found = [_owned(rr, owner) for rr in node if rr.rtype == qtype]
            if found:
                return answer + found
        return answer

    def _soa(self, name: Name) -> RR:
        best = None
        for apex in self._soas:
            if names.is_subdomain(name, apex) and (best is None or len(apex) > len(best)):
                best = apex
        return ROOT_SOA if best is None else self._soas[best]


def _apex(owner: Name) -> Name:
    """The zone a record without an SOA of its own is taken to be in."""
    lowered = names.lower(owner)
    while lowered and lowered[0] == b"*":
        lowered = lowered[1:]
    return lowered[-2:] if len(lowered) > 2 else lowered


def _owned(rr: RR, owner: Name) -> RR:
    return RR(owner, rr.rtype, rr.rclass, rr.ttl, rr.rdata)
