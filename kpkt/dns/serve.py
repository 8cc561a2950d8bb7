"""`kpkt dns serve`: the emulator's CoreDNS on real sockets, one UDP and one TCP on the same
address, so dig, nslookup or any resolver can ask it. Names CoreDNS forwards are answered by the
upstream model in the same process: nothing leaves the machine.

One thread, one selector. A message that makes no sense gets whatever CoreDNS gives it (often
nothing); no message can stop the server. Ctrl-C (SIGINT) closes the sockets and returns.
"""

from __future__ import annotations

import contextlib
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
from kpkt.topology.spec import Topology

DEFAULT_LISTEN = "127.0.0.1:5353"
TCP_IDLE_S = 8.0  # miekg/dns's idle timeout for a TCP connection
MAX_UDP = 65535
MAX_FORWARDS = 16  # forwards per query (an ExternalName chase needs one or two)


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


@dataclass
class _Connection:
    sock: socket.socket
    deframer: Deframer = field(default_factory=Deframer)
    out: bytearray = field(default_factory=bytearray)
    last: float = field(default_factory=time.monotonic)


class DnsServer:
    """CoreDNS on a UDP socket and a TCP listener bound to the same address."""

    def __init__(self, server: ClusterDns, upstream: UpstreamDns | None, host: str, port: int):
        self.server = server
        self.upstream = upstream
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.udp, self.tcp = _bind(host, port, self.family)
        self.address = self.udp.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._connections: dict[socket.socket, _Connection] = {}

    def serve_forever(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.udp.setblocking(False)
        self.tcp.setblocking(False)
        self.tcp.listen(64)
        self._selector.register(self.udp, selectors.EVENT_READ)
        self._selector.register(self.tcp, selectors.EVENT_READ)
        while not should_stop():
            for key, events in self._selector.select(timeout=0.5):
                try:
                    self._event(key.fileobj, events)
                except Exception as error:  # one bad message never stops the server
                    print(f"kpkt dns serve: {type(error).__name__}: {error}", file=sys.stderr)
            self._close_idle()

    def close(self) -> None:
        for conn in list(self._connections.values()):
            self._drop(conn)
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._selector.close()

    def _event(self, sock, events: int) -> None:
        if sock is self.udp:
            self._datagram()
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
        return answer(self.server, self.upstream, query, transport, time.monotonic_ns(), ipv6)

    def _datagram(self) -> None:
        try:
            query, peer = self.udp.recvfrom(MAX_UDP)
        except (BlockingIOError, ConnectionError):
            return
        reply = self._reply(query, "udp")
        if reply is not None:
            with contextlib.suppress(OSError):
                self.udp.sendto(reply, peer)

    def _accept(self) -> None:
        try:
            sock, _ = self.tcp.accept()
        except (BlockingIOError, ConnectionError):
            return
        sock.setblocking(False)
        self._connections[sock] = _Connection(sock)
        self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(MAX_UDP)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.last = time.monotonic()
        for query in conn.deframer.feed(data):
            reply = self._reply(query, "tcp")
            if reply is not None:
                conn.out += frame(reply)
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
                del conn.out[:sent]
            except BlockingIOError:
                pass
            except OSError:
                self._drop(conn)
                return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        self._selector.modify(conn.sock, events)

    def _close_idle(self) -> None:
        now = time.monotonic()
        for conn in list(self._connections.values()):
            if now - conn.last > TCP_IDLE_S:
                self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        self._connections.pop(conn.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
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
    raise KpktError(f"cannot listen on {host}:{port}: {last_error.strerror or last_error}")


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
