"""The core both stub resolvers (glibc.py, musl.py) share: the sans-IO interface the emulation
drives, the sockets of a lookup, the queries it sends and how it ends.

Driving a resolver (`resolver.resolver_for` picks the libc):

    resolver = resolver_for("glibc", ResolvConf.for_pod("default"), "web", next_id=ids)
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
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from kpkt.dns.framing import frame
from kpkt.dns.message import type_name, type_number
from kpkt.dns.names import Name
from kpkt.dns.resolv_conf import ResolvConf
from kpkt.dns.stub_wire import Record, name_text, query_message

NS_PER_SECOND = 1_000_000_000
DNS_PORT = 53

GLIBC = "glibc"
MUSL = "musl"


class HErrno(StrEnum):
    """How res_search failed (h_errno, <netdb.h>)."""

    HOST_NOT_FOUND = "HOST_NOT_FOUND"
    TRY_AGAIN = "TRY_AGAIN"
    NO_RECOVERY = "NO_RECOVERY"
    NO_DATA = "NO_DATA"


class GaiError(StrEnum):
    """How getaddrinfo failed (<netdb.h>)."""

    EAI_NONAME = "EAI_NONAME"
    EAI_AGAIN = "EAI_AGAIN"
    EAI_FAIL = "EAI_FAIL"
    EAI_NODATA = "EAI_NODATA"


def _ipv4_first(addresses: Sequence[str]) -> tuple[str, ...]:
    v4 = [a for a in addresses if ":" not in a]
    v6 = [a for a in addresses if ":" in a]
    return tuple(v4 + v6)


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
        return frame(self.wire)


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
class Outgoing:
    """A query built by the libc's mkquery, before it goes out on a socket."""

    qid: int
    qname: str
    qtype: int
    wire: bytes


@dataclass(slots=True)
class Event:
    kind: str  # "reply" | "timeout" | "error"
    socket: int = 0
    data: bytes = b""
    src: tuple[str, int] | None = None
    errno: str = ""

    def comes_from(self, server: str) -> bool:
        """Whether the reply came from `server`'s DNS port."""
        return self.src == (server, DNS_PORT)


T = TypeVar("T")
# A lookup, or one step of it: yields the deadline it waits for (None: no deadline), receives
# the next event, returns what it found.
Step = Generator[int | None, Event, T]


class StubResolver:
    """One getaddrinfo (qtype None) or res_search (one qtype) call of a pod's libc."""

    libc: str  # GLIBC or MUSL

    def __init__(
        self,
        conf: ResolvConf,
        name: str,
        qtype: str | int | None = None,
        *,
        next_id: Callable[[], int],
        hosts: Mapping[str, Sequence[str]] | None = None,
        answer_size: int = 65536,
    ) -> None:
        if not conf.nameservers:
            raise ValueError("resolv.conf names no nameserver")
        self.conf = conf
        self.name = name
        self.qtype = None if qtype is None else type_number(qtype)
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
        self._gen: Step[Result] | None = None

    # -- what each libc defines -----------------------------------------------------------

    @staticmethod
    def mkquery_name(name: str, qtype: int) -> Name | None:
        """The name the libc's mkquery puts in the question, or None when it refuses."""
        raise NotImplementedError

    def _hosts_entry_matches(self, entry: str, name: str) -> bool:
        raise NotImplementedError

    def _resolve(self) -> Step[Result]:
        """The lookup over DNS."""
        raise NotImplementedError

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
        return self._feed(Event("reply", socket, bytes(data), src), now_ns)

    def on_timeout(self, now_ns: int) -> list[Query]:
        """Virtual time reached `deadline_ns` with nothing else arriving."""
        if self.deadline_ns is None or now_ns < self.deadline_ns:
            return []
        return self._feed(Event("timeout"), now_ns)

    def on_error(self, socket: int, now_ns: int, errno: str = "ECONNREFUSED") -> list[Query]:
        """A socket error: an ICMP unreachable on a UDP socket (glibc's connected socket reports
        it, musl's unconnected one does not), or over TCP a refused connect ("ECONNREFUSED"), a
        reset ("ECONNRESET") or the peer closing early ("EOF")."""
        return self._feed(Event("error", socket, errno=errno), now_ns)

    # -- plumbing -----------------------------------------------------------------------------

    def _feed(self, event: Event, now_ns: int) -> list[Query]:
        if self._gen is None or self.done:
            return []
        if event.kind != "timeout" and event.socket not in self._accept:
            return []  # a socket the libc is not reading now
        self._now = max(self._now, now_ns)
        return self._advance(event)

    def _advance(self, event: Event | None) -> list[Query]:
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

    def _wait(self, deadline: int | None, sockets: set[int]) -> Step[Event]:
        """Block until a reply or error on one of `sockets`, or the deadline."""
        self._accept = set(sockets)
        while True:
            if deadline is not None and self._now >= deadline:
                return Event("timeout")
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

    def _send(self, transport: str, socket: int, server: str, query: Outgoing) -> None:
        key = (query.qid, query.wire)
        again = key in self._sent_before
        self._sent_before.add(key)
        message = Query(
            transport=transport,
            socket=socket,
            server=server,
            qid=query.qid,
            qname=query.qname,
            qtype=type_name(query.qtype),
            wire=query.wire,
            retransmit=again,
        )
        self._outbox.append(message)
        self.sent.append(message)

    def _make(self, name: str, qtype: int, *, ad: bool = False) -> Outgoing | None:
        qid = self.next_id() & 0xFFFF
        qname = self.mkquery_name(name, qtype)
        if qname is None:
            return None
        return Outgoing(qid, name_text(qname), qtype, query_message(qname, qtype, qid, ad=ad))

    def _finish(self, ok: bool, **fields) -> Result:
        qtype = None if self.qtype is None else type_name(self.qtype)
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

    def _addresses_found(self, addresses: Sequence[str], source: str = "dns") -> Result:
        """getaddrinfo's success: the addresses, IPv4 first."""
        return self._finish(True, addresses=_ipv4_first(addresses), source=source)

    def _as_is_first(self) -> bool:
        """Both libcs' test before the search list: the name has at least `ndots` dots or ends
        in a dot (glibc then tries it as-is first, musl tries nothing else)."""
        return self.name.count(".") >= self.conf.ndots or self.name.endswith(".")

    def _lookup(self) -> Step[Result]:
        if self.qtype is None:
            early = self._before_dns()
            if early is not None:
                return early
        return (yield from self._resolve())

    def _before_dns(self) -> Result | None:
        """getaddrinfo answers numeric addresses and /etc/hosts names without DNS."""
        name = self.name
        if not name or len(name) >= 255:
            return self._finish(False, error=GaiError.EAI_NONAME)
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return self._finish(True, addresses=(str(address),), source="literal")
        for entry, addresses in self.hosts.items():
            if addresses and self._hosts_entry_matches(entry, name):
                return self._addresses_found(addresses, source="hosts")
        return None
