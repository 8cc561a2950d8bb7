"""`kpkt dns serve`: the emulator's CoreDNS on real sockets, one UDP and one TCP on the same
address, so dig, nslookup or any resolver can ask it. Names CoreDNS forwards are answered by the
upstream model in the same process: nothing leaves the machine.

One thread, one selector. A message that makes no sense gets whatever CoreDNS gives it (often
nothing); no message can stop the server. Ctrl-C (SIGINT) closes the sockets and returns.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import selectors
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kpkt.dns.coredns import ClusterDns, Forward
from kpkt.dns.framing import Deframer, frame
from kpkt.dns.upstream import UpstreamDns
from kpkt.errors import KpktError
from kpkt.spec import Topology

# Not 5353: that is mDNS, held by avahi on many desktops. 1053 is what CoreDNS's own docs use
# to run without root: unprivileged and named by no common daemon in /etc/services.
DEFAULT_PORT = 1053
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
MAX_UDP = 65535
MAX_FORWARDS = 16  # forwards per query (an ExternalName chase needs one or two)

# What one TCP client may hold (RFC 7766 section 6.2: a server limits what it gives each
# connection and the number of connections). The timeouts are miekg/dns's, which CoreDNS uses.
TCP_IDLE_S = 8.0  # closed when no whole query has come for this long
TCP_MESSAGE_S = 2.0  # once a query's first byte is in, the whole query must arrive within this
TCP_WRITE_S = 2.0  # closed when replies wait and the client takes none of them for this long
TCP_OUTPUT_MAX = 64 * 1024  # reply bytes queued per connection; beyond, its queries wait unread
TCP_MAX_QUERIES = 128  # then its replies are sent and it is closed (miekg/dns's default)
MAX_TCP_CONNECTIONS = 128  # beyond, a new connection is accepted and closed at once
TCP_READ_CHUNK = 16 * 1024  # bytes read from one connection at a time
TCP_QUERIES_PER_TURN = 4  # TCP queries answered per turn of the loop, least-served client first
DATAGRAMS_PER_TURN = 32  # UDP queries answered before the TCP connections get a turn
SWEEP_S = 0.1  # how often the TCP time limits are checked

SERVE_LIMITS = f"""\b
The default port is {DEFAULT_PORT}: not 53 (it needs root) nor 5353 (mDNS,
held by avahi on many desktops); an address in use exits 2 naming it.

\b
UDP queries are answered as they come. Limits per TCP connection:
  idle        closed after {TCP_IDLE_S:g} s without a whole query
  slow query  closed when a query is not whole {TCP_MESSAGE_S:g} s after its first byte
  unread      closed when its replies wait {TCP_WRITE_S:g} s and it takes none;
              with {TCP_OUTPUT_MAX // 1024} KiB of replies waiting, its queries are not read
  queries     closed after its {TCP_MAX_QUERIES}th reply (as miekg/dns, CoreDNS's library)
  count       at most {MAX_TCP_CONNECTIONS} connections; a new one beyond is accepted
              and closed at once (EOF before any reply)
"""


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[v6]:PORT` for IPv6); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise KpktError(f"--listen {text}: give HOST:PORT, like {DEFAULT_LISTEN}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def answer(
    server: ClusterDns,
    upstream: UpstreamDns | None,
    query: bytes,
    transport: str,
    now_ns: int | None = None,
    ipv6: bool = False,
) -> bytes | None:
    """CoreDNS's reply to one message, its forwarded questions answered by `upstream`."""
    outcome = server.handle(query, transport, now_ns=now_ns, ipv6=ipv6)
    for _ in range(MAX_FORWARDS):
        if not isinstance(outcome, Forward):
            break
        reply = upstream.handle(outcome.query, outcome.transport) if upstream else None
        outcome = outcome.relay(reply, now_ns)
    return outcome if isinstance(outcome, bytes) else None


@dataclass(eq=False)
class _Connection:
    """One TCP client: what it sent that is not answered yet, the replies it has not taken, and
    the times its limits are counted from."""

    sock: socket.socket
    opened: float
    deframer: Deframer = field(default_factory=Deframer)
    out: bytearray = field(default_factory=bytearray)
    events: int = 0  # what the selector watches for; 0: not registered
    served: float = 0.0  # when the last whole query was taken (or the connection opened)
    started: float = 0.0  # when the first byte of the unfinished query in front came
    progress: float = 0.0  # when the client last took reply bytes (or replies began to wait)
    left: int = TCP_MAX_QUERIES  # queries it may still send

    def __post_init__(self) -> None:
        self.served = self.started = self.progress = self.opened

    def expired(self, now: float) -> bool:
        """Past one of its time limits: idle, a query too slow to arrive, replies not taken."""
        reading = self.events & selectors.EVENT_READ
        return (
            now - self.served > TCP_IDLE_S
            or (bool(self.out) and now - self.progress > TCP_WRITE_S)
            or (bool(reading and self.deframer.pending) and now - self.started > TCP_MESSAGE_S)
        )


def _report(error: Exception) -> None:
    print(f"kpkt dns serve: {type(error).__name__}: {error}", file=sys.stderr)


def _served(conn: _Connection) -> int:
    """How many queries the connection has had answered: the least served go first, so one
    that asks little is answered at once however busy the others keep the server."""
    return TCP_MAX_QUERIES - conn.left


class DnsServer:
    """CoreDNS on a UDP socket and a TCP listener bound to the same address.

    Nothing blocks: every socket is non-blocking, and each turn of the loop answers a bounded
    number of queries (the UDP ones waiting, and TCP_QUERIES_PER_TURN of the TCP connections
    least served so far), so busy or hostile clients delay a light one by about one turn. A TCP
    client's limits are the TCP_* constants above."""

    def __init__(self, server: ClusterDns, upstream: UpstreamDns | None, host: str, port: int):
        self.server = server
        self.upstream = upstream
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.udp, self.tcp = _bind(host, port, self.family)
        self.tcp.listen(MAX_TCP_CONNECTIONS)  # before the address is printed: connect at once
        self.address = self.udp.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._connections: dict[socket.socket, _Connection] = {}
        self._backlog: set[_Connection] = set()  # connections that may hold a whole query

    def serve_forever(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.udp.setblocking(False)
        self.tcp.setblocking(False)
        self._selector.register(self.udp, selectors.EVENT_READ)
        self._selector.register(self.tcp, selectors.EVENT_READ)
        next_sweep = time.monotonic() + SWEEP_S
        while not should_stop():
            for key, events in self._selector.select(timeout=0 if self._backlog else SWEEP_S):
                self._guarded(self._event, key.fileobj, events)
            for conn in heapq.nsmallest(TCP_QUERIES_PER_TURN, self._backlog, key=_served):
                self._guarded(self._serve, conn)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + SWEEP_S
                for conn in [c for c in self._connections.values() if c.expired(now)]:
                    self._drop(conn)

    def close(self) -> None:
        for conn in list(self._connections.values()):
            self._drop(conn)
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._selector.close()

    @staticmethod
    def _guarded(handle: Callable, *args) -> None:
        try:
            handle(*args)
        except Exception as error:  # one bad client never stops the server
            _report(error)

    def _event(self, sock, events: int) -> None:
        if sock is self.udp:
            self._datagrams()
        elif sock is self.tcp:
            self._accept()
        else:
            conn = self._connections.get(sock)
            if conn is None:
                return
            if events & selectors.EVENT_READ:
                self._read(conn)
            if events & selectors.EVENT_WRITE and sock in self._connections:
                self._flush(conn)

    def _reply(self, query: bytes, transport: str) -> bytes | None:
        ipv6 = self.family == socket.AF_INET6
        try:
            return answer(self.server, self.upstream, query, transport, time.monotonic_ns(), ipv6)
        except Exception as error:  # a query the model cannot answer gets no reply
            _report(error)
            return None

    def _datagrams(self) -> None:
        for _ in range(DATAGRAMS_PER_TURN):
            try:
                query, peer = self.udp.recvfrom(MAX_UDP)
            except (BlockingIOError, ConnectionError):
                return
            reply = self._reply(query, "udp")
            if reply is not None:
                with contextlib.suppress(OSError):  # a full send buffer drops it, as UDP may
                    self.udp.sendto(reply, peer)

    def _accept(self) -> None:
        for _ in range(MAX_TCP_CONNECTIONS):
            try:
                sock, _ = self.tcp.accept()
            except (BlockingIOError, ConnectionError):
                return
            if len(self._connections) >= MAX_TCP_CONNECTIONS:
                sock.close()  # the cap (RFC 7766 6.2.2): at once, not left in the listen queue
                continue
            sock.setblocking(False)
            conn = _Connection(sock, time.monotonic())
            self._connections[sock] = conn
            self._watch(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(TCP_READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        if not conn.deframer.pending:
            conn.started = time.monotonic()
        conn.deframer.push(data)
        self._backlog.add(conn)  # answered in its turn
        self._watch(conn)

    def _serve(self, conn: _Connection) -> None:
        """Answer the client's first whole query, if it has one."""
        self._backlog.discard(conn)
        query = conn.deframer.next()
        if query is None:
            self._watch(conn)
            return
        conn.left -= 1
        conn.served = conn.started = time.monotonic()
        reply = self._reply(query, "tcp")
        if reply is not None:
            if not conn.out:
                conn.progress = conn.served
            conn.out += frame(reply)
        if len(conn.out) < TCP_OUTPUT_MAX and conn.left:
            self._backlog.add(conn)  # more may wait
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        held = len(conn.out) >= TCP_OUTPUT_MAX
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._drop(conn)
                return
            if sent:
                del conn.out[:sent]
                conn.progress = time.monotonic()
        if not conn.left and not conn.out:
            self._finish(conn)
            return
        if held and len(conn.out) < TCP_OUTPUT_MAX:
            self._backlog.add(conn)  # the queries held back while its replies did not fit
            conn.started = time.monotonic()  # a query's clock stood while it was not read
        self._watch(conn)

    def _watch(self, conn: _Connection) -> None:
        """Read while its replies fit and nothing it sent waits; write while replies wait."""
        events = 0
        if len(conn.out) < TCP_OUTPUT_MAX and conn.left and conn not in self._backlog:
            events |= selectors.EVENT_READ
        if conn.out:
            events |= selectors.EVENT_WRITE
        if events == conn.events:
            return
        if not conn.events:
            self._selector.register(conn.sock, events)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events)
        conn.events = events

    def _finish(self, conn: _Connection) -> None:
        """Close after the last reply: a FIN, and what the client sent beyond its last query
        read and discarded first, so that the close is no reset that could lose those replies."""
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
            for _ in range(MAX_UDP // TCP_READ_CHUNK + 1):
                if not conn.sock.recv(TCP_READ_CHUNK):
                    break
        self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        self._connections.pop(conn.sock, None)
        self._backlog.discard(conn)
        if conn.events:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.events = 0
        conn.sock.close()


def _bind(host: str, port: int, family: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on host:port; with port 0, the same free port for both."""
    tries = 20 if port == 0 else 1
    last_error: OSError | None = None
    for _ in range(tries):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
            return udp, tcp
        except OSError as error:
            udp.close()
            tcp.close()
            last_error = error
    where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    if last_error.errno == errno.EADDRINUSE:
        cause = "the address is in use (another DNS server?)"
    elif last_error.errno == errno.EACCES and port < 1024:
        cause = "ports below 1024 need root"
    else:
        cause = last_error.strerror or str(last_error)
    free = f"[{host}]:0" if family == socket.AF_INET6 else f"{host}:0"
    raise KpktError(
        f"cannot listen on {where}: {cause}; pick another with --listen HOST:PORT "
        f"(--listen {free}: a free port, printed)"
    )


def serve_topology(
    topology: Topology, listen: str = DEFAULT_LISTEN, echo: Callable[[str], None] = print
) -> None:
    """Serve the topology's cluster DNS until Ctrl-C."""
    server = ClusterDns.from_topology(topology)
    dns = topology.cluster.dns
    upstream = UpstreamDns.from_spec(dns.upstream) if dns and dns.upstream else None
    host, port = parse_listen(listen)
    service = DnsServer(server, upstream, host, port)
    try:
        address, bound = service.address
        if service.family == socket.AF_INET6:
            address = f"[{address}]"
        behind = f"the upstream {upstream.ip} answered in-process" if upstream else "no upstream"
        echo(
            f"kpkt dns serve: CoreDNS for {topology.name} ({topology.cluster.cluster_domain}) "
            f"listening on {address}:{bound} (udp and tcp); {behind}; Ctrl-C stops"
        )
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
