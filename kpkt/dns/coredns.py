"""CoreDNS in a coredns pod, as a pure function of the query bytes (sans-IO).

    server = ClusterDns.from_topology(topology)
    outcome = server.handle(query, "udp", now_ns=t)
    # bytes: send this reply; None: send nothing;
    # Forward: send outcome.query to outcome.server (port 53, over outcome.transport), then
    #          outcome.relay(reply_bytes_or_None, now_ns=t2) gives the next outcome.

The layers, outermost first, as core/dnsserver/server.go and plugin.cfg stack them:

- miekg/dns serveDNS (wire.accept): drops, FORMERR and NOTIMP before anything else.
- Server.ServeDNS: SERVFAIL without a question, REFUSED for a non-IN class unless `forward`
  is loaded, BADVERS for EDNS versions other than 0; then the ScrubWriter, which echoes the
  query's OPT (SizeAndDo) and truncates to the client's size (Msg.Truncate).
- loadbalance (A/AAAA after CNAMEs and other types; the order is kept, not shuffled),
  cache (cache.py), kubernetes (kubernetes.py), forward (one upstream, the client's
  transport, a fresh message ID).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from kpkt.dns import names, wire
from kpkt.dns.cache import DnsCache
from kpkt.dns.cluster_view import ClusterView
from kpkt.dns.kubernetes import NEXT, KubernetesPlugin
from kpkt.dns.message import (
    AAAA,
    AXFR,
    BADVERS,
    CNAME,
    ECHOED_OPTIONS,
    FORMERR,
    IN,
    IXFR,
    MAX_MSG_SIZE,
    MIN_UDP_SIZE,
    MX,
    NOERROR,
    OPT,
    REFUSED,
    RR,
    SERVFAIL,
    A,
    Message,
    Question,
    opt_options,
    opt_rr,
    opt_version,
)
from kpkt.dns.names import Name
from kpkt.dns.profile import KUBEADM, Profile
from kpkt.errors import KpktError
from kpkt.spec import Topology

TRANSPORTS = ("udp", "tcp")
FORWARD_READ_TIMEOUT_NS = 2_000_000_000  # plugin/forward readTimeout: then SERVFAIL
UDP_COMPRESS_OVER = {False: 1480, True: 1220}  # request.Scrub: IPv4, IPv6 fragmentation limits


@dataclass(frozen=True, slots=True)
class _Ask:
    """What the pipeline yields: a message for the upstream server."""

    query: bytes
    id: int
    transport: str


@dataclass(slots=True)
class _Client:
    transport: str
    ipv6: bool
    now_ns: int | None


@dataclass(eq=False)
class Forward:
    """CoreDNS's `forward` plugin needs the upstream server: send `query` to `server` port 53
    over `transport` (the client's), then hand the answer to `relay`."""

    query: bytes
    transport: str
    server: IPv4Address | None
    id: int
    _owner: ClusterDns = field(repr=False)
    _gen: Generator[Any, Any, bytes | None] = field(repr=False)
    _client: _Client = field(repr=False)
    _request: Message = field(repr=False)
    _done: bool = field(default=False, repr=False)

    def relay(self, reply: bytes | None, now_ns: int | None = None) -> bytes | Forward | None:
        """Carry on with the upstream's reply (None: it never came, after
        FORWARD_READ_TIMEOUT_NS). Returns what to send the client, None, or the next Forward.
        A reply with another message ID is not for this query: this same Forward comes back
        (forward keeps reading)."""
        if self._done:
            return None
        if reply is not None and len(reply) >= 2 and int.from_bytes(reply[:2], "big") != self.id:
            return self
        self._done = True
        if now_ns is not None:
            self._client.now_ns = now_ns
        return self._owner._drive(self._gen, reply, self._client, self._request)


Outcome = bytes | Forward | None


class ClusterDns:
    """CoreDNS with the kubernetes plugin, answering for one cluster."""

    def __init__(
        self,
        view: ClusterView,
        *,
        zone: Name,
        profile: Profile = KUBEADM,
        local_ips: tuple[IPv4Address | IPv6Address, ...] = (),
        upstream: IPv4Address | None = None,
        seed: int = 0,
        strict: bool = False,
    ):
        self.view = view
        self.profile = profile
        self.zone = zone
        self.upstream = upstream
        self.strict = strict  # re-raise internal errors (tests) instead of answering SERVFAIL
        self.kubernetes = KubernetesPlugin(view, profile, zone, local_ips)
        self.cache = None
        if profile.cache_ttl is not None:
            uncached = zone if profile.cache_disabled_zone else None
            self.cache = DnsCache(profile.cache_ttl, profile.cache_min_ttl, uncached)
        digest = hashlib.sha256(f"kpkt coredns {seed}".encode()).digest()
        self._ids = random.Random(int.from_bytes(digest[:8], "big"))

    @classmethod
    def from_topology(
        cls,
        topology: Topology,
        *,
        profile: Profile | None = None,
        local_ip: IPv4Address | None = None,
        strict: bool = False,
    ) -> ClusterDns:
        """The CoreDNS of this topology's `cluster.dns` (its ttl and pods mode go into the
        kubeadm profile; another profile is taken as it is). `local_ip` is the answering
        coredns pod (NS records depend on it): the first one by default."""
        dns = topology.cluster.dns
        if dns is None:
            raise KpktError(
                f"{topology.source}: the topology has no cluster DNS: add cluster.dns "
                "(or a dns traffic step) to run CoreDNS"
            )
        if profile is None:
            profile = KUBEADM.with_cluster(dns.ttl, dns.pods)
        zone = names.parse_text(topology.cluster.cluster_domain)
        if zone is None:
            raise KpktError(f"{topology.source}: cluster.clusterDomain is not a domain name")
        if local_ip is not None:
            local_ips: tuple = (local_ip,)
        elif dns.pod_ips:
            local_ips = dns.pod_ips[:1]
        else:
            local_ips = ()
        return cls(
            ClusterView.from_topology(topology),
            zone=zone,
            profile=profile,
            local_ips=local_ips,
            upstream=dns.upstream.ip if dns.upstream is not None else None,
            seed=topology.seed,
            strict=strict,
        )

    def watch(self, view: ClusterView) -> None:
        """The kubernetes plugin's informers deliver a change (a pod created or deleted, a
        Service's endpoints): later queries are answered from `view`. The cache keeps what it
        holds until the TTL, as CoreDNS's cache plugin does."""
        self.view = view
        self.kubernetes.view = view

    # ------------------------------------------------------------ the sans-IO entry point

    def handle(
        self, query: bytes, transport: str = "udp", *, now_ns: int | None = None, ipv6: bool = False
    ) -> Outcome:
        """The reply to one message from a client (over UDP, or one message of a TCP stream
        without its length prefix): bytes to send back, None to send nothing, or a Forward.
        `now_ns` drives the cache (no time: no cache); `ipv6` is the client's address family."""
        try:
            request = wire.accept(bytes(query))
        except Exception:
            if self.strict:
                raise
            return None
        if request is None or isinstance(request, bytes):
            return request
        client = _Client("tcp" if transport == "tcp" else "udp", ipv6, now_ns)
        return self._drive(self._serve(request, client), None, client, request)

    def _drive(
        self, gen: Generator[Any, Any, bytes | None], value: Any, client: _Client, request: Message
    ) -> Outcome:
        try:
            ask = gen.send(value)
        except StopIteration as stop:
            return stop.value
        except Exception:
            if self.strict:
                raise
            return self._recovered(request)
        return Forward(ask.query, ask.transport, self.upstream, ask.id, self, gen, client, request)

    def _recovered(self, request: Message) -> bytes | None:
        """A panic in a plugin: the server's recover() answers SERVFAIL."""
        try:
            return wire.pack(self._error(request, SERVFAIL))
        except Exception:
            return None

    # ------------------------------------------------------------ server.go

    def _serve(self, request: Message, client: _Client) -> Generator[Any, Any, bytes | None]:
        if not request.question:
            return wire.pack(request.reply_rcode(SERVFAIL))
        reply = yield from self._serve_message(request, client)
        try:
            return wire.pack(reply)
        except wire.WireError:
            return None  # WriteMsg fails: nothing is sent

    def _serve_message(self, request: Message, client: _Client) -> Generator[Any, Any, Message]:
        """Server.ServeDNS for a request with a question: the finished reply message."""
        question = request.question[0]
        if question.qclass != IN and not self.profile.forward:
            return self._error(request, REFUSED)
        opt = request.opt()
        if opt is not None and opt_version(opt) != 0:
            reply = request.reply()
            reply.rcode = BADVERS
            reply.additional = [opt_rr(0, 0, [])]
            return reply
        result = yield from self._chain(request, client)
        if isinstance(result, int):
            result = request.reply_rcode(result)  # DefaultErrorFunc
        return self._scrub(request, result, client)

    def _error(self, request: Message, rcode: int) -> Message:
        reply = request.reply_rcode(rcode)
        _size_and_do(request, reply)
        return reply

    def _scrub(self, request: Message, reply: Message, client: _Client) -> Message:
        """The ScrubWriter: SizeAndDo, then Msg.Truncate to the client's size, and compression
        for a large UDP reply that fits anyway."""
        _size_and_do(request, reply)
        wire.truncate(reply, self._size(request, client))
        if (
            not reply.compress
            and client.transport == "udp"
            and wire.plain_length(reply) > UDP_COMPRESS_OVER[client.ipv6]
        ):
            reply.compress = True
        return reply

    @staticmethod
    def _size(request: Message, client: _Client) -> int:
        if client.transport == "tcp":
            return MAX_MSG_SIZE
        opt = request.opt()
        return max(opt.rclass if opt is not None else 0, MIN_UDP_SIZE)

    # ------------------------------------------------------------ the plugin chain

    def _chain(self, request: Message, client: _Client) -> Generator[Any, Any, Message | int]:
        cache = self.cache
        if cache is not None and client.now_ns is not None:
            hit = cache.get(request, client.now_ns)
            if hit is not None:
                return self._loadbalance(hit)
        result = yield from self.kubernetes.serve(request, self._lookup_for(client))
        if result == NEXT:
            if self.profile.forward:
                result = yield from self._forward(request, client)
            else:
                result = SERVFAIL  # "no next plugin found"
        if isinstance(result, int):
            return result
        if cache is not None:
            result = cache.write(request, result, client.now_ns)
        return self._loadbalance(result)

    def _lookup_for(self, client: _Client):
        def lookup(request: Message, name: Name, qtype: int) -> Generator[Any, Any, Message]:
            """plugin/pkg/upstream: the same server again, asked a new question."""
            internal = request.copy()
            internal.question = [Question(name, qtype, IN)]
            return (yield from self._serve_message(internal, client))

        return lookup

    def _forward(self, request: Message, client: _Client) -> Generator[Any, Any, Message | int]:
        """plugin/forward with one upstream: the query as received, under a new ID."""
        if self.upstream is None:
            return SERVFAIL
        ident = self._ids.getrandbits(16)
        outgoing = request.copy()
        outgoing.id = ident
        outgoing.compress = False
        try:
            data = wire.pack(outgoing)
        except wire.WireError:
            return SERVFAIL
        reply = yield _Ask(data, ident, client.transport)
        if reply is None:
            return SERVFAIL
        # miekg reads a UDP reply into a buffer of the client's size: what does not fit is lost
        cut = client.transport == "udp" and len(reply) > self._size(request, client)
        data = reply[: self._size(request, client)] if cut else reply
        try:
            answer = wire.unpack(data)
        except wire.WireError:
            answer = _overflowed(data) if cut else None
        if answer is None:
            return SERVFAIL
        if not answer.answers(request.question[0]):
            return request.reply_rcode(FORMERR)  # "Wrong reply for id"
        answer.id = request.id
        answer.compress = False
        return answer

    def _loadbalance(self, reply: Message) -> Message:
        if not self.profile.loadbalance or reply.rcode != NOERROR:
            return reply
        if reply.question and reply.question[0].qtype in (AXFR, IXFR):
            return reply
        reply.answer = _round_robin(reply.answer)
        reply.authority = _round_robin(reply.authority)
        reply.additional = _round_robin(reply.additional)
        return reply


def _round_robin(records: list[RR]) -> list[RR]:
    """loadbalance roundRobin's order: CNAMEs, other types, addresses, MX (not shuffled)."""
    rank = {CNAME: 0, A: 2, AAAA: 2, MX: 3}
    return sorted(records, key=lambda rr: rank.get(rr.rtype, 1))


def _size_and_do(request: Message, reply: Message) -> None:
    """request.SizeAndDo: give the reply the query's OPT (version 0, flags but DO cleared,
    only the options CoreDNS echoes), or normalise the OPT a forwarded reply has."""
    opt = request.opt()
    if opt is None:
        return
    flags = opt.ttl & 0xFF00
    for i in range(len(reply.additional) - 1, -1, -1):
        mine = reply.additional[i]
        if mine.rtype == OPT:
            ttl = (mine.ttl & 0xFF00) | (flags & 0x8000)
            reply.additional[i] = RR((), OPT, opt.rclass, ttl, mine.rdata)
            return
    options = opt_options(opt)
    kept = [(code, value) for code, value in options if code in ECHOED_OPTIONS]
    reply.additional.append(opt_rr(opt.rclass, flags, kept))


def _overflowed(reply: bytes) -> Message | None:
    """forward's truncateResponse for a UDP reply cut by the read buffer: the header and
    question, TC set, every section empty (the client retries over TCP)."""
    if len(reply) < 12:
        return None
    try:
        message = wire.unpack(reply[:12])
        question, _ = wire.read_question(reply, 12)
        message.question = [question]
    except wire.WireError:
        return None
    message.tc = True
    return message
