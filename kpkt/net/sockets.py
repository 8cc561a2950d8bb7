"""Sockets: how applications use a namespace's stack. An application opens a socket (bound to a
port, or to an echo id for ping), sends through it, hears through its callbacks what arrives for
it, and closes it. Once a socket is closed its port is free again: a later datagram to it gets
ICMP port unreachable, and an echo reply to its id is ignored, as on Linux.

A server process (CoreDNS on 53) opens its UDP socket with `server=True`: a traffic step's
socket on the same port then gets only the ICMP errors about what it sent, and the server keeps
getting the port's datagrams, as the port's first owner does on a real node. TCP has listening
sockets here; a connection (`stack.tcp.connect`, kpkt/net/tcp_connection.py's `Connection`) is
the connected socket: write, close.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from kpkt.engine import generation
from kpkt.observe import Decision, Tag
from kpkt.wire.ipv4 import PROTO_ICMP, PROTO_UDP
from kpkt.wire.udp import udp_segment

# on_datagram(src ip, src port, dst ip, payload, tag); on_error and on_icmp get (packet, tag)
OnDatagram = Callable[[bytes, int, bytes, bytes, Tag], None]
OnIcmp = Callable[[bytes, Tag], None]


class UdpSocket:
    """A UDP socket bound to `port`: datagrams to the port go to `on_datagram`, ICMP errors
    quoting a datagram sent from it to `on_error` (when given)."""

    def __init__(
        self,
        stack,
        port: int,
        on_datagram: OnDatagram,
        on_error: OnIcmp | None = None,
        *,
        server: bool = False,
    ) -> None:
        self.stack = stack
        self.port = port
        self.on_datagram = on_datagram
        self.on_error = on_error
        self.server = server
        generation.changed()  # where the port's datagrams go
        held = stack.udp_sockets.get(port)
        if server or held is None or not held.server:
            stack.udp_sockets[port] = self
        if on_error is not None:
            stack.udp_errors[port] = self

    def sendto(
        self,
        dst: bytes,
        dport: int,
        payload: bytes,
        tag: Tag,
        *,
        src: bytes | None = None,
        ttl: int = 64,
        note: Decision | str = "",
    ) -> None:
        """Send `payload` to `dst`:`dport` from `src` (None: the address the route chooses)."""
        self.prepare(dst, dport, payload, src=src)(tag, ttl=ttl, note=note)

    def prepare(
        self, dst: bytes, dport: int, payload: bytes, *, src: bytes | None = None
    ) -> Callable[..., None]:
        """The datagram built once, for sending many times: call the result with
        `(tag, ttl=64, note="")` to send it (through the stack, with no extra Python call)."""
        stack = self.stack
        if stack.socket_lb is not None:
            dst, dport = stack.socket_lb.connect(PROTO_UDP, dst, dport, self.port)
        if src is None:
            src = stack.source_address(dst)  # None: no route, the stack drops the datagram
        segment = b"" if src is None else udp_segment(src, dst, self.port, dport, payload)
        return partial(stack.send_ip, src, dst, PROTO_UDP, segment)

    def close(self) -> None:
        """Free the port: later datagrams to it get port unreachable."""
        stack = self.stack
        generation.changed()
        if stack.udp_sockets.get(self.port) is self:
            del stack.udp_sockets[self.port]
        if stack.udp_errors.get(self.port) is self:
            del stack.udp_errors[self.port]


class PingSocket:
    """An ICMP echo socket with echo id `ident`: echo replies to the id and ICMP errors quoting
    its requests go to `on_icmp`."""

    def __init__(self, stack, ident: int, on_icmp: OnIcmp) -> None:
        self.stack = stack
        self.ident = ident
        self.on_icmp = on_icmp
        generation.changed()  # where the id's echo replies go
        stack.ping_sockets[ident] = self

    def send(
        self, dst: bytes, message: bytes, tag: Tag, *, ttl: int = 64, note: Decision | str = ""
    ) -> None:
        """Send an ICMP `message` (an echo request with this socket's id) to `dst`."""
        self.stack.send_ip(None, dst, PROTO_ICMP, message, tag, ttl=ttl, note=note)

    def close(self) -> None:
        generation.changed()
        if self.stack.ping_sockets.get(self.ident) is self:
            del self.stack.ping_sockets[self.ident]


class TcpListener:
    """A listening TCP socket on `port`: a SYN to it calls `accept(local ip, local port, remote
    ip, remote port, tag)`, which returns the new connection's server end."""

    def __init__(self, stack, port: int, accept: Callable) -> None:
        self.stack = stack
        self.port = port
        self.accept = accept
        stack.tcp.listeners[port] = self

    def close(self) -> None:
        """Stop listening: a later SYN to the port is answered with a reset."""
        if self.stack.tcp.listeners.get(self.port) is self:
            del self.stack.tcp.listeners[self.port]


def close_all(stack) -> int:
    """What the kernel does when the processes of a namespace exit (a container restart): it
    closes their sockets (TCP connections send their FIN and finish alone) and frees their
    ports. The servers kpkt runs itself (CoreDNS) keep theirs. How many sockets closed."""
    tcp = stack.tcp
    connections = [conn for conn in tcp.conns.values() if conn.state != "TIME_WAIT"]
    udp = dict.fromkeys([*stack.udp_sockets.values(), *stack.udp_errors.values()])
    others = [*tcp.listeners.values(), *stack.ping_sockets.values()]
    others += [socket for socket in udp if not socket.server]
    for conn in connections:
        conn.abandon()
    for socket in others:
        socket.close()
    return len(connections) + len(others)
