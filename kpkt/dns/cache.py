"""CoreDNS's `cache` plugin as kubeadm configures it (`cache 30 { disable success cluster.local;
disable denial cluster.local }`), plugin/cache/{cache.go,handler.go,item.go}.

Every reply that passes through is flattened: all its RRs (but OPT) get one TTL, the smallest
in the reply clamped to [5, 30] (5 for a server error). Replies outside the cluster zone are
kept for that long; a later identical question (same lower-case name, type, DO and CD) is
answered from the cache with AA=1 and the TTL counting down. Time is whatever the caller says
(virtual nanoseconds in the emulator); without a time there is no storing and no hit.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpkt.dns import names
from kpkt.dns.message import (
    AXFR,
    IXFR,
    NOERROR,
    NOTIFY,
    NOTIMP,
    NS,
    NXDOMAIN,
    OPT,
    RR,
    SERVFAIL,
    SOA,
    UPDATE,
    Message,
    opt_do,
)
from kpkt.dns.names import Name

NS_PER_SECOND = 1_000_000_000
MAX_DEFAULT_TTL = 3600  # dnsutil.MaximumDefaulTTL
MIN_DEFAULT_TTL = 5  # dnsutil.MinimalDefaultTTL
CAPACITY = 10000  # per cache (success, denial), as the plugin's default

NO_ERROR, NAME_ERROR, NO_DATA, DELEGATION = "noerror", "nameerror", "nodata", "delegation"
SERVER_ERROR, OTHER_ERROR, META, DYNAMIC_UPDATE = "servererror", "othererror", "meta", "update"


def classify(message: Message) -> str:
    """response.Typify (without the DNSSEC expiry check: nothing here is signed)."""
    if message.opcode == UPDATE:
        return DYNAMIC_UPDATE
    if message.opcode == NOTIFY:
        return META
    if message.question and message.question[0].qtype in (AXFR, IXFR):
        return META
    if message.answer and message.rcode == NOERROR:
        return NO_ERROR
    soa = any(rr.rtype == SOA for rr in message.authority)
    delegation = any(rr.rtype == NS for rr in message.authority)
    if soa and message.rcode == NOERROR:
        return NO_DATA
    if soa and message.rcode == NXDOMAIN:
        return NAME_ERROR
    if message.rcode in (SERVFAIL, NOTIMP):
        return SERVER_ERROR
    if delegation and message.rcode == NOERROR:
        return DELEGATION
    if message.rcode == NOERROR:
        return NO_ERROR
    return OTHER_ERROR


def minimal_ttl(message: Message, kind: str) -> int:
    """dnsutil.MinimalTTL."""
    if kind not in (NO_ERROR, NAME_ERROR, NO_DATA):
        return MIN_DEFAULT_TTL
    others = [rr for rr in message.additional if rr.rtype != OPT]
    if not message.answer and not message.authority and not others:
        return MIN_DEFAULT_TTL
    smallest = MAX_DEFAULT_TTL
    for rr in (*message.answer, *message.authority, *others):
        smallest = min(smallest, rr.ttl)
    return smallest


@dataclass(slots=True)
class _Item:
    rcode: int
    answer: list[RR]
    authority: list[RR]
    additional: list[RR]
    ad: bool
    ra: bool
    ttl: int
    stored_ns: int

    def ttl_at(self, now_ns: int) -> int:
        return self.ttl - int((now_ns - self.stored_ns) / NS_PER_SECOND)

    def to_message(self, request: Message, now_ns: int) -> Message:
        """item.toMsg: the reply to this request, AA set, TTLs counted down."""
        reply = request.reply()
        reply.aa = True
        reply.ad = self.ad
        reply.ra = self.ra
        reply.rcode = self.rcode
        ttl = max(self.ttl_at(now_ns), 0)
        reply.answer = [rr.with_ttl(ttl) for rr in self.answer]
        reply.authority = [rr.with_ttl(ttl) for rr in self.authority]
        reply.additional = [rr.with_ttl(ttl) for rr in self.additional]
        return reply


class DnsCache:
    def __init__(self, max_ttl: int, min_ttl: int, uncached_zone: Name | None):
        self.max_ttl = max_ttl
        self.min_ttl = min_ttl
        self.uncached_zone = uncached_zone  # `disable success|denial <zone>`
        self._success: dict[tuple, _Item] = {}
        self._denial: dict[tuple, _Item] = {}

    @staticmethod
    def key(request: Message) -> tuple:
        question = request.question[0]
        opt = request.opt()
        return (
            names.lower(question.name),
            question.qtype,
            opt is not None and opt_do(opt),
            request.cd,
        )

    def get(self, request: Message, now_ns: int) -> Message | None:
        """The cached reply to this request, or None (handler.go get: denial first)."""
        key = self.key(request)
        for store in (self._denial, self._success):
            item = store.get(key)
            if item is None:
                continue
            if item.ttl_at(now_ns) > 0:
                return item.to_message(request, now_ns)
            del store[key]
        return None

    def write(self, request: Message, reply: Message, now_ns: int | None) -> Message:
        """ResponseWriter.WriteMsg: keep the reply if it may be kept, and flatten its TTLs."""
        kind = classify(reply)
        smallest = minimal_ttl(reply, kind)
        if kind == SERVER_ERROR:
            duration = MIN_DEFAULT_TTL
        else:
            duration = max(self.min_ttl, min(smallest, self.max_ttl))
        if now_ns is not None and duration > 0 and self._storable(request, reply, kind):
            self._store(request, reply, kind, duration, now_ns)
        reply.answer = [rr.with_ttl(duration) for rr in reply.answer]
        reply.authority = [rr.with_ttl(duration) for rr in reply.authority]
        reply.additional = [
            rr if rr.rtype == OPT else rr.with_ttl(duration) for rr in reply.additional
        ]
        return reply

    def _storable(self, request: Message, reply: Message, kind: str) -> bool:
        if reply.tc or kind in (OTHER_ERROR, META, DYNAMIC_UPDATE):
            return False
        if not reply.answers(request.question[0]):
            return False  # state.Match
        return not (
            self.uncached_zone is not None
            and names.is_subdomain(reply.question[0].name, self.uncached_zone)
        )

    def _store(
        self, request: Message, reply: Message, kind: str, duration: int, now_ns: int
    ) -> None:
        store = self._success if kind in (NO_ERROR, DELEGATION) else self._denial
        item = _Item(
            rcode=reply.rcode,
            answer=list(reply.answer),
            authority=list(reply.authority),
            additional=[rr for rr in reply.additional if rr.rtype != OPT],
            ad=reply.ad,
            ra=reply.ra,
            ttl=duration,
            stored_ns=now_ns,
        )
        key = self.key(request)
        store.pop(key, None)
        store[key] = item
        while len(store) > CAPACITY:
            del store[next(iter(store))]
