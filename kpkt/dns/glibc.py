"""glibc's stub resolver, as a sans-IO state machine over the shared core (stub.py).

From the sources (bminor/glibc `resolv/res_query.c`, `res_send.c` and `res_mkquery.c` at
6d7e8eda (2023), `sysdeps/posix/getaddrinfo.c`, nss_dns `dns-host.c`):

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

Not modelled: the RFC 3484/6724 destination sort of getaddrinfo (addresses come in answer order,
IPv4 before IPv6 as in a pod without IPv6), nscd, HOSTALIASES, `rotate`, `use-vc`, `edns0`,
`trust-ad`, `no-aaaa`, res_hnok name checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpkt.dns import names
from kpkt.dns.message import AAAA, NOERROR, NOTIMP, NXDOMAIN, REFUSED, SERVFAIL, UPDATE, A
from kpkt.dns.names import Name
from kpkt.dns.stub import (
    GLIBC,
    NS_PER_SECOND,
    GaiError,
    HErrno,
    Outgoing,
    Result,
    Step,
    StubResolver,
)
from kpkt.dns.stub_wire import Record, Reply, names_equal, parse_message

GAI_ERROR = {
    HErrno.HOST_NOT_FOUND: GaiError.EAI_NONAME,
    HErrno.NO_DATA: GaiError.EAI_NODATA,
    HErrno.TRY_AGAIN: GaiError.EAI_AGAIN,
    HErrno.NO_RECOVERY: GaiError.EAI_FAIL,
}
PACKETSZ = 512  # <arpa/nameser.h>: a longer query goes over TCP from the start
MAXDNAME = 1025  # <arpa/nameser.h>


def ns_name_pton(name: str) -> Name | None:
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
                    return ()
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
    qname = tuple(labels)
    return qname if names.wire_length(qname) <= 255 else None


def queries_match(query: bytes, reply: bytes) -> bool:
    """`__libc_res_queriesmatch`: same QDCOUNT and every question of the query in the reply."""
    asked = parse_message(query)
    got = parse_message(reply)
    if asked is None or got is None:
        return False
    if asked.opcode == UPDATE and got.opcode == UPDATE:  # UPDATE replies carry only a header
        return True
    if asked.qdcount != got.qdcount:
        return False
    return all(
        any(
            names_equal(qname, gname) and qtype == gtype and qclass == gclass
            for gname, gtype, gclass in got.questions
        )
        for qname, qtype, qclass in asked.questions
    )


def answer_addresses(answer: bytes, qname: str) -> list[str]:
    """nss_dns `gaih_getanswer_slice`: A/AAAA records owned by the query name or by a name a
    CNAME in the answer points to."""
    message = parse_message(answer)
    if message is None or message.rcode != NOERROR:
        return []
    aliases = [qname]
    out: list[str] = []
    for record in message.answers:
        if not any(names_equal(record.name, alias) for alias in aliases):
            continue
        if record.type == "CNAME":
            aliases.append(record.data)
        elif record.type in ("A", "AAAA"):
            out.append(record.data)
    return out


@dataclass(slots=True)
class _Options:
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


class GlibcResolver(StubResolver):
    """glibc's getaddrinfo (qtype None) or res_search (one qtype)."""

    libc = GLIBC

    @staticmethod
    def mkquery_name(name: str, qtype: int) -> Name | None:
        """`res_nmkquery` takes any type, and the name as `ns_name_pton` reads it."""
        return ns_name_pton(name)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._options = _Options()
        self._h_errno = HErrno.HOST_NOT_FOUND
        self._errno = ""  # errno after the last res_send
        self._terrno = "ETIMEDOUT"
        self._gotsomewhere = False
        self._buf1_rcode = NOERROR
        self._udp: dict[int, int | None] = {}  # nameserver index -> open UDP socket
        self._answer: _Exchange | None = None  # the successful candidate's answers
        self._answer_qname = ""

    def _hosts_entry_matches(self, entry: str, name: str) -> bool:
        return entry.lower() == name.lower()  # the files backend compares without case

    def _resolve(self) -> Step[Result]:
        """`__res_context_search`."""
        self._h_errno = HErrno.HOST_NOT_FOUND  # "True if we never query."
        self._errno = ""
        self._buf1_rcode = NOERROR
        self._answer = None
        name = self.name
        dots = name.count(".")
        trailing_dot = name.endswith(".")
        got_nodata = got_servfail = root_on_list = 0
        tried_as_is = False
        saved_herrno: str | None = None

        if self._as_is_first():
            if (yield from self._querydomain(name, None)) or trailing_dot:
                return self._result()
            saved_herrno = self._h_errno
            tried_as_is = True

        # RES_DEFNAMES and RES_DNSRCH are on by default
        if not dots or not trailing_dot:
            for domain in self.conf.search:
                if domain.startswith("."):
                    domain = domain[1:]
                if not domain:
                    root_on_list += 1
                if (yield from self._querydomain(name, domain)):
                    return self._result()
                if self._errno == "ECONNREFUSED":
                    self._h_errno = HErrno.TRY_AGAIN
                    return self._result()
                if self._h_errno == HErrno.NO_DATA:
                    got_nodata += 1
                elif self._h_errno == HErrno.HOST_NOT_FOUND:
                    pass
                elif self._h_errno == HErrno.TRY_AGAIN and self._buf1_rcode == SERVFAIL:
                    got_servfail += 1
                else:
                    break

        # RES_NOTLDQUERY is off by default, so the as-is name is always tried once
        if not (tried_as_is or root_on_list) and (yield from self._querydomain(name, None)):
            return self._result()

        if saved_herrno is not None:
            self._h_errno = saved_herrno
        elif got_nodata:
            self._h_errno = HErrno.NO_DATA
        elif got_servfail:
            self._h_errno = HErrno.TRY_AGAIN
        self._answer = None
        return self._result()

    def _result(self) -> Result:
        exchange = self._answer
        if exchange is None:
            h_errno = self._h_errno
            error = GAI_ERROR.get(h_errno, GaiError.EAI_FAIL) if self.qtype is None else h_errno
            return self._finish(False, error=error, h_errno=h_errno)
        answers = [a for a in (exchange.ans1, exchange.ans2) if len(a) >= 12]
        if self.qtype is None:
            addresses: list[str] = []
            for answer in answers:
                addresses.extend(answer_addresses(answer, self._answer_qname))
            if not addresses:
                # the pair said NOERROR with answers, but no usable address among them
                return self._finish(False, error=GaiError.EAI_NODATA, h_errno=HErrno.NO_DATA)
            return self._addresses_found(addresses)
        records: list[Record] = []
        for answer in answers[:1]:
            message = parse_message(answer[: self.answer_size])
            if message is not None:
                records.extend(message.answers)
        return self._finish(True, records=tuple(records))

    def _querydomain(self, name: str, domain: str | None) -> Step[bool]:
        """`__res_context_querydomain` + `__res_context_query`; True on success."""
        if domain is None:
            if len(name) - 1 >= MAXDNAME - 1:
                self._h_errno = HErrno.NO_RECOVERY
                return False
            longname = name
        else:
            if len(name) + len(domain) + 1 >= MAXDNAME:
                self._h_errno = HErrno.NO_RECOVERY
                return False
            longname = f"{name}.{domain}"

        self._buf1_rcode = NOERROR  # hp->rcode = NOERROR
        if self.qtype is None:
            q1 = self._make(longname, A)
            q2 = self._make(longname, AAAA) if q1 is not None else None
            if q1 is None or q2 is None:
                self._h_errno = HErrno.NO_RECOVERY
                return False
        else:
            q1, q2 = self._make(longname, self.qtype), None
            if q1 is None:
                self._h_errno = HErrno.NO_RECOVERY
                return False
        self._candidates.append(q1.qname)

        exchange = _Exchange()
        n = yield from self._res_send(q1, q2, exchange)
        self._buf1_rcode = exchange.buf1_rcode
        if n < 0:
            self._h_errno = HErrno.TRY_AGAIN
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
            self._h_errno = HErrno.NO_RECOVERY
            return False
        if q2 is None or exchange.resplen2 < 12:
            exchange.ans2 = b""

        def answered(m: Reply) -> bool:
            return m.rcode == NOERROR and m.ancount > 0

        if not answered(hp) and not answered(hp2):
            rcode = hp2.rcode if hp.rcode == NOERROR else hp.rcode
            if rcode == NXDOMAIN:
                self._h_errno = HErrno.HOST_NOT_FOUND
            elif rcode == SERVFAIL:
                self._h_errno = HErrno.TRY_AGAIN
            elif rcode == NOERROR:
                self._h_errno = HErrno.NO_DATA
            else:
                self._h_errno = HErrno.NO_RECOVERY
            return False
        self._answer = exchange
        self._answer_qname = q1.qname
        return True

    def _res_send(self, q1: Outgoing, q2: Outgoing | None, exchange: _Exchange) -> Step[int]:
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
                        n = yield from self._send_vc(q1, q2, ns, exchange)
                        if n == 0 and (q2 is None or exchange.resplen2 == 0):
                            break  # next_ns
                    else:
                        n, v_circuit = yield from self._send_dg(q1, q2, ns, exchange)
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

    def _reopen(self, ns: int) -> int:
        socket = self._udp.get(ns)
        if socket is None or socket not in self._open:
            socket = self._new_socket("udp")
            self._udp[ns] = socket
        return socket

    def _close_udp(self, ns: int) -> None:
        self._close(self._udp.get(ns))
        self._udp[ns] = None

    def _send_dg(
        self, q1: Outgoing, q2: Outgoing | None, ns: int, exchange: _Exchange
    ) -> Step[tuple[int, bool]]:
        """`send_dg`: returns (n, v_circuit) and fills `exchange` (resplen2 included)."""
        server = self.conf.nameservers[ns]
        nscount = len(self.conf.nameservers)
        seconds = self.conf.timeout << ns
        if ns > 0:
            seconds //= nscount
        seconds = max(seconds, 1)
        options = self._options
        single_request_reopen = options.single_request_reopen
        single_request = options.single_request or single_request_reopen
        save_gotsomewhere = self._gotsomewhere
        resplen = 0
        reopen = True
        while True:
            if reopen:  # retry_reopen
                socket = self._reopen(ns)
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
                            self._close_udp(ns)
                            again = reopen = True
                            break
                        exchange.resplen2 = 1
                        return resplen, False
                    self._gotsomewhere = True
                    exchange.resplen2 = 0
                    return 0, False
                if event.kind == "error":  # POLLERR: an ICMP error on the connected socket
                    self._close_udp(ns)
                    exchange.resplen2 = 0
                    return 0, False
                if event.src is not None and not event.comes_from(server):
                    continue  # a connected socket only hears its peer
                data = event.data
                first_buffer = (not recv1 and not recv2) or q2 is None
                exchange.store(data, first_buffer)
                if first_buffer:
                    resplen = len(data)
                self._gotsomewhere = True
                if len(data) < 12:  # undersized: EMSGSIZE
                    self._terrno = "EMSGSIZE"
                    self._close_udp(ns)
                    exchange.resplen2 = 0
                    return 0, False
                reply = parse_message(data)
                assert reply is not None
                matching = 0
                if not recv1 and reply.id == q1.qid and queries_match(q1.wire, data):
                    matching = 1
                if (
                    q2 is not None
                    and not recv2
                    and reply.id == q2.qid
                    and queries_match(q2.wire, data)
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
                    self._close_udp(ns)
                    exchange.resplen2 = 0
                    return 0, False
                if reply.tc:
                    # "To get the rest of answer, use TCP with same server."
                    self._close_udp(ns)
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
                            self._close_udp(ns)
                            socket = self._reopen(ns)
                    continue
                return resplen, False
            if not again:
                return 0, False

    def _send_vc(
        self, q1: Outgoing, q2: Outgoing | None, ns: int, exchange: _Exchange
    ) -> Step[int]:
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
