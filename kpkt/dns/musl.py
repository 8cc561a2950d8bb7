"""musl's stub resolver, as a sans-IO state machine over the shared core (stub.py).

From the sources (musl 1.2.4+ `res_msend.c` (the TCP fallback), `lookup_name.c` (EAI_NODATA,
distinct ids), `res_mkquery.c` (AD), `res_query.c`, `dns_parse.c`, `resolvconf.c`, read partly
from verbatim ports where the stored upstream copy was older):

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
IPv4 before IPv6 as in a pod without IPv6), the TCP Fast Open details.
"""

from __future__ import annotations

import ipaddress

from kpkt.dns.message import AAAA, CNAME, NOERROR, NXDOMAIN, SERVFAIL, A
from kpkt.dns.names import Name
from kpkt.dns.stub import MUSL, GaiError, HErrno, Outgoing, Result, Step, StubResolver
from kpkt.dns.stub_wire import parse_message

ANSWER_SIZE = 512  # name_from_dns: unsigned char abuf[2][512]
MAXADDRS = 48  # lookup.h
LINE_MAX = 256  # resolvconf.c: char line[256]
RES_SEND_MIN_BUFFER = 512  # res_send.c: a smaller answer buffer is replaced by one of 512


def res_mkquery_name(name: str, qtype: int) -> Name | None:
    """`__res_mkquery`: types up to 255, one trailing dot dropped, split at dots, no escapes;
    None if it refuses."""
    if qtype > 255:  # `type>255u` -> -1
        return None
    raw = name.encode("utf-8")
    if raw.endswith(b"."):
        raw = raw[:-1]
        if raw.endswith(b"."):
            return None
    if len(raw) > 253:
        return None
    if not raw:
        return ()
    labels = raw.split(b".")
    if any(not 1 <= len(part) <= 63 for part in labels):
        return None
    return tuple(labels)


def dns_parse_addresses(answer: bytes, rrtype: int, out: list[str]) -> None:
    """musl `__dns_parse` (src/network/dns_parse.c, whose question and answer loops skip names
    alike) + `dns_parse_callback`: musl reads replies with its own parser, not with a codec:
    NOERROR only, names skipped byte-wise, every record of the asked type taken (owner names are
    not checked), at most MAXADDRS."""
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
        if rtype != CNAME and len(out) < MAXADDRS and rtype == rrtype:
            if rtype == A:
                if length != 4:
                    return
                out.append(str(ipaddress.IPv4Address(data)))
            elif rtype == AAAA:
                if length != 16:
                    return
                out.append(str(ipaddress.IPv6Address(data)))
        p += 10 + length


class MuslResolver(StubResolver):
    """musl's getaddrinfo (qtype None) or res_query (one qtype)."""

    libc = MUSL
    mkquery_name = staticmethod(res_mkquery_name)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._found: list[str] = []

    def _hosts_entry_matches(self, entry: str, name: str) -> bool:
        return entry == name  # name_from_hosts compares with case

    def _resolve(self) -> Step[Result]:
        if self.qtype is None:
            return (yield from self._getaddrinfo())
        return (yield from self._res_query())

    def _search_list(self) -> tuple[str, ...]:
        line = "search " + " ".join(self.conf.search) + "\n"
        if not self.conf.search or len(line) >= LINE_MAX:
            return ()  # musl skips a resolv.conf line that does not fit its 256-byte buffer
        return self.conf.search

    def _getaddrinfo(self) -> Step[Result]:
        """`__lookup_name` -> `name_from_dns_search`."""
        name = self.name
        search = () if self._as_is_first() else self._search_list()
        length = len(name) - 1 if name.endswith(".") else len(name)
        if not length or name[length - 1] == ".":
            return self._finish(False, error=GaiError.EAI_NONAME)
        base = name[:length]
        count: int | str = 0
        for domain in search:
            if len(domain) < 256 - length - 1:
                count = yield from self._name_from_dns(f"{base}.{domain}")
                if count:
                    break
        else:
            count = yield from self._name_from_dns(name)
        if isinstance(count, str):
            return self._finish(False, error=count)
        if count == 0:
            return self._finish(False, error=GaiError.EAI_NONAME)
        return self._addresses_found(self._found)

    def _name_from_dns(self, name: str) -> Step[int | str]:
        """`name_from_dns`: the address count, 0 for NXDOMAIN, or an EAI_* error."""
        queries: list[Outgoing] = []
        for qtype in (A, AAAA):
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
        answers, alens = yield from self._msend(queries, ANSWER_SIZE)
        for answer, alen in zip(answers, alens, strict=True):
            if alen < 4 or answer[3] & 15 == SERVFAIL:
                return GaiError.EAI_AGAIN
            if answer[3] & 15 == NXDOMAIN:
                return 0
            if answer[3] & 15 != NOERROR:
                return GaiError.EAI_FAIL
        found: list[str] = []
        for i in range(len(queries) - 1, -1, -1):
            size = min(alens[i], ANSWER_SIZE)
            dns_parse_addresses(answers[i][:size], queries[i].qtype, found)
        if found:
            self._found = found
            return len(found)
        return GaiError.EAI_NODATA

    def _res_query(self) -> Step[Result]:
        """`res_query` (also `res_search`): the name as given, one query with AD set."""
        assert self.qtype is not None
        query = self._make(self.name, self.qtype, ad=True)
        if query is None:
            return self._finish(False, error="EINVAL")
        self._candidates.append(query.qname)
        size = max(self.answer_size, RES_SEND_MIN_BUFFER)
        answers, alens = yield from self._msend([query], size)
        answer, alen = answers[0], alens[0]
        if alen < 12:
            return self._finish(False, error=HErrno.TRY_AGAIN, h_errno=HErrno.TRY_AGAIN)
        if answer[3] & 15 == NXDOMAIN:
            return self._finish(False, error=HErrno.HOST_NOT_FOUND, h_errno=HErrno.HOST_NOT_FOUND)
        if answer[3] & 15 == NOERROR and not answer[6] and not answer[7]:
            return self._finish(False, error=HErrno.NO_DATA, h_errno=HErrno.NO_DATA)
        message = parse_message(answer[: self.answer_size])
        records = message.answers if message is not None else ()
        return self._finish(True, records=records)

    def _msend(self, queries: list[Outgoing], asize: int) -> Step[tuple[list[bytes], list[int]]]:
        """`__res_msend_rc`: returns the answers and their lengths (0: none)."""
        nameservers = self.conf.nameservers
        nq = len(queries)
        timeout = self.timeout_ns
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
                    if event.src is not None and not any(map(event.comes_from, nameservers)):
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
