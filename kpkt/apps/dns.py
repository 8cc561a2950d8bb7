"""Cluster DNS on the wire: the CoreDNS pods and the upstream server answering on port 53, and
the `dns` step, a pod's stub resolver walking its search list query by query.

Every query and answer is a real datagram (or TCP segment, after a truncated answer) through
the emulated network: from the pod to the kube-dns service address, DNATed by kube-proxy to a
CoreDNS pod, answered, and translated back; names outside the cluster go from the CoreDNS pod
to the upstream server on the node network (masqueraded by the CNI) and back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address

from kpkt.apps.base import StepApp
from kpkt.dns.coredns import FORWARD_READ_TIMEOUT_NS, ClusterDns, Forward
from kpkt.dns.framing import Deframer, frame
from kpkt.dns.resolver import pod_resolver
from kpkt.dns.stub import GaiError, HErrno, Query
from kpkt.dns.upstream import UpstreamDns
from kpkt.net.sockets import TcpListener, UdpSocket
from kpkt.net.tcp_connection import Connection
from kpkt.observe import Decision, Tag, Why
from kpkt.outcome import NOT_FOUND, classify
from kpkt.spec import DnsStep, PodSpec

PORT = 53
ANSWER, FORWARD = Decision(Why.DNS_ANSWER), Decision(Why.DNS_FORWARD)
NOT_FOUND_ERRORS = frozenset(
    {GaiError.EAI_NONAME, GaiError.EAI_NODATA, HErrno.HOST_NOT_FOUND, HErrno.NO_DATA}
)


class DnsServer:
    """A DNS server process in one namespace, on UDP and TCP port 53. `answer(query,
    transport, reply)` answers, now or later, by calling `reply(bytes)`."""

    def __init__(self, stack, answer: Callable) -> None:
        self.stack = stack
        self.answer = answer
        self.udp = UdpSocket(stack, PORT, self._on_datagram, server=True)
        self.tcp = TcpListener(stack, PORT, self._accept)

    def _on_datagram(self, src: bytes, sport: int, dst: bytes, payload: bytes, tag: Tag) -> None:
        def reply(message: bytes) -> None:
            self.udp.sendto(
                src, sport, message, self.stack.observer.packet(tag), src=dst, note=ANSWER
            )

        self.answer(payload, "udp", reply, tag)

    def _accept(self, local, lport, remote, rport, tag: Tag) -> Connection:
        deframer = Deframer()
        stack = self.stack

        def on_data(conn: Connection, data: bytes) -> None:
            for message in deframer.feed(data):
                self.answer(message, "tcp", lambda answer: conn.write(frame(answer)), tag)

        route = stack.route_for(remote)
        return stack.tcp.socket(
            (local, lport), (remote, rport), route, tag, on_data=on_data, on_fin=_close
        )


def _close(conn: Connection) -> None:
    conn.close()


class CoreDnsPod:
    """A CoreDNS pod: the model answers; a query it forwards goes to the upstream server from
    a fresh UDP port (forward's connection to it), and its answer is relayed."""

    def __init__(self, stack, model: ClusterDns) -> None:
        self.stack = stack
        self.model = model
        self.server = DnsServer(stack, self._answer)

    def _answer(self, query: bytes, transport: str, reply: Callable, tag: Tag) -> None:
        self._outcome(self.model.handle(query, transport, now_ns=self.stack.sched.now), reply, tag)

    def _outcome(self, outcome, reply: Callable, tag: Tag) -> None:
        if isinstance(outcome, bytes):
            reply(outcome)
        elif isinstance(outcome, Forward):
            self._forward(outcome, reply, tag)

    def _forward(self, ask: Forward, reply: Callable, tag: Tag) -> None:
        stack = self.stack
        if ask.server is None:
            self._outcome(ask.relay(None), reply, tag)
            return
        port = stack.ids.ephemeral_port()
        pending = {"open": True}

        def relay(answer: bytes | None) -> None:
            if not pending["open"]:
                return
            outcome = ask.relay(answer, now_ns=stack.sched.now)
            if outcome is ask:  # another message id: keep reading
                return
            pending["open"] = False
            socket.close()
            self._outcome(outcome, reply, tag)

        socket = UdpSocket(stack, port, lambda src, sport, dst, payload, t: relay(payload))
        socket.sendto(ask.server.packed, PORT, ask.query, stack.observer.packet(tag), note=FORWARD)
        stack.sched.after(FORWARD_READ_TIMEOUT_NS, relay, None)


class UpstreamHost:
    """The DNS server on the node network behind `forward . /etc/resolv.conf`."""

    def __init__(self, stack, model: UpstreamDns) -> None:
        self.model = model
        self.server = DnsServer(stack, self._answer)

    def _answer(self, query: bytes, transport: str, reply: Callable, tag: Tag) -> None:
        answer = self.model.handle(query, transport)
        if answer is not None:
            reply(answer)


class DnsApp(StepApp):
    """A `dns` step: the pod's resolver sends its queries as it decides them."""

    def __init__(self, step: DnsStep, sender, pod: PodSpec, service_ip, domain: str) -> None:
        super().__init__(step, sender)
        self.resolver = pod_resolver(
            pod,
            step.name,
            step.qtype,
            next_id=lambda: sender.ids.u32() & 0xFFFF,
            dns_service_ip=str(service_ip),
            cluster_domain=domain,
        )
        self.received = 0  # DNS messages that came back
        self.udp: dict[int, UdpSocket] = {}  # resolver socket -> its UDP socket
        self.flows: dict[int, Tag] = {}  # resolver socket -> its flow
        # resolver socket -> (connection, queries waiting for it, reply reassembly)
        self.tcp: dict[int, tuple[Connection, list[bytes], Deframer]] = {}

    def open(self) -> None:
        pass

    def _send(self) -> None:
        self._dispatch(self.resolver.start(self.sender.sched.now))

    def _dispatch(self, queries: list[Query]) -> None:
        for query in queries:
            self.sent += 1
            if query.transport == "udp":
                self._send_udp(query)
            else:
                self._send_tcp(query)
        self._close_sockets()
        deadline = self.resolver.deadline_ns
        if deadline is not None and not self.resolver.done:
            self.sender.sched.at(deadline, self._timeout, deadline)

    def _flow(self, socket: int) -> Tag:
        """Each resolver socket is one flow: its queries and what they bring back."""
        flow = self.flows.get(socket)
        if flow is None:
            flow = self.flows[socket] = self.sender.observer.new_flow(self.index)
        return flow

    def _send_udp(self, query: Query) -> None:
        stack = self.sender
        socket = self.udp.get(query.socket)
        if socket is None:
            socket = self.udp[query.socket] = UdpSocket(
                stack,
                stack.ids.ephemeral_port(),
                partial(self._on_datagram, query.socket),
                partial(self._on_error, query.socket),
            )
        socket.sendto(
            IPv4Address(query.server).packed,
            query.port,
            query.wire,
            stack.observer.packet(self._flow(query.socket)),
            note=Decision(Why.DNS_QUERY, query),
        )

    def _send_tcp(self, query: Query) -> None:
        """Over the query's connection: opened on first use, written once established."""
        stack = self.sender
        if query.socket not in self.tcp:
            conn = stack.tcp.connect(
                IPv4Address(query.server).packed,
                stack.ids.ephemeral_port(),
                query.port,
                self._flow(query.socket),
                on_data=partial(self._on_tcp, query.socket),
                on_fin=_close,
                on_done=partial(self._on_tcp_done, query.socket),
            )
            self.tcp[query.socket] = (conn, [], Deframer())
        conn, waiting, _ = self.tcp[query.socket]
        if conn.state == "ESTABLISHED":
            conn.write(query.framed)
        else:
            waiting.append(query.framed)

    def _on_tcp(self, socket: int, conn: Connection, data: bytes) -> None:
        _, waiting, deframer = self.tcp[socket]
        if not data:  # connected: send what was waiting
            conn.write(b"".join(waiting))
            waiting.clear()
            return
        for message in deframer.feed(data):
            self.received += 1
            self._dispatch(self.resolver.on_reply(socket, message, self.sender.sched.now))

    def _on_tcp_done(self, socket: int, conn: Connection, how: str) -> None:
        if how != "closed" and not self.resolver.done:
            errno = "ECONNREFUSED" if "refused" in how or "reset" in how else "EOF"
            self._dispatch(self.resolver.on_error(socket, self.sender.sched.now, errno))

    def _on_datagram(self, socket, src, sport, dst, payload: bytes, tag: Tag) -> None:
        self.received += 1
        if not self.resolver.done:
            self._dispatch(self.resolver.on_reply(socket, payload, self.sender.sched.now))

    def _on_error(self, socket: int, packet: bytes, tag: Tag) -> None:
        self.note_error(packet)
        if not self.resolver.done:
            self._dispatch(self.resolver.on_error(socket, self.sender.sched.now))

    def _timeout(self, deadline: int) -> None:
        resolver = self.resolver
        if not resolver.done and resolver.deadline_ns == deadline:
            self._dispatch(resolver.on_timeout(self.sender.sched.now))

    def _close_sockets(self) -> None:
        """Sockets the resolver closed: a late answer finds the port closed, as on Linux."""
        open_sockets = self.resolver.open_sockets if not self.resolver.done else frozenset()
        for socket, udp in list(self.udp.items()):
            if socket not in open_sockets:
                udp.close()
                del self.udp[socket]
        for socket, (conn, _, _) in list(self.tcp.items()):
            if socket not in open_sockets and conn.state == "ESTABLISHED":
                conn.close()

    def done(self) -> bool:
        return self.resolver.done

    def counts(self) -> tuple[int, int]:
        return self.sent, self.received

    def ended_as(self, reasons: list[str]) -> str:
        result = self.resolver.result
        answered = int(result is not None and result.ok)
        error = result is not None and (result.error or result.h_errno)
        failure = NOT_FOUND if error in NOT_FOUND_ERRORS else ""
        return classify(1, answered, self.error_kinds, reasons, failure)

    def result(self) -> str:
        result = self.resolver.result
        return result.summary() if result is not None else "no answer"
