"""A `probe` step: one connection attempt as the upstream NetworkPolicy e2e tests make it with
`agnhost connect <addr>:<port> --timeout=1s --protocol=tcp|udp` (netpol.md §5.1).

The target serves what its pod's containers declare (a TCP listener, or a UDP server that
answers a request with the pod's name, as `serve-hostname` does); a port nothing declares is
refused (a reset, or ICMP port unreachable). TCP: allowed once the handshake completes, then
the client closes; UDP: allowed once the answer to "hostname\\n" arrives. After one second
without either, the client gives up (no further SYN): denied when a NetworkPolicy dropped the
attempt, unreachable otherwise.
"""

from __future__ import annotations

from kpkt.apps.base import StepApp
from kpkt.net.sockets import TcpListener, UdpSocket
from kpkt.observe import Tag
from kpkt.outcome import classify
from kpkt.spec import NS_PER_SECOND, ProbeStep

TIMEOUT_NS = NS_PER_SECOND  # agnhost connect --timeout=1s
REQUEST = b"hostname\n"

ALLOWED = "allowed"
DENIED = "denied"


class ProbeApp(StepApp):
    def __init__(self, step: ProbeStep, sender, servers: list, policy_log) -> None:
        super().__init__(step, sender)
        self.servers = servers  # (stack, port, pod name) for each endpoint that serves the port
        self.policy_log = policy_log  # kpkt/net/policy_filter.py's PolicyLog, or None
        self.how = ""  # "connected", "answered", or why not: "connection reset", "timeout"
        self.finished = False
        self.received = 0
        self.closers: list = []  # the sockets to close when the probe ends
        self.client = None  # the TCP connection, while it tries

    def open(self) -> None:
        for stack, port, name in self.servers:
            if self.step.protocol == "TCP":
                self.closers.append(TcpListener(stack, port, self._accept(stack)))
            else:
                server = UdpSocket(stack, port, None)
                server.on_datagram = _answerer(server, name)
                self.closers.append(server)

    def _send(self) -> None:
        step, stack = self.step, self.sender
        self.sent = 1
        sport = stack.ids.ephemeral_port()
        tag = stack.observer.new_flow(self.index)
        stack.sched.after(TIMEOUT_NS, self._give_up)
        if step.protocol == "TCP":
            self.client = stack.tcp.connect(
                step.dst.packed,
                sport,
                step.port,
                tag,
                on_data=self._connected,
                on_done=self._tcp_done,
            )
        else:
            socket = UdpSocket(stack, sport, self._answer, self._error)
            self.closers.append(socket)
            socket.sendto(step.dst.packed, step.port, REQUEST, stack.observer.packet(tag))

    # --- TCP --------------------------------------------------------------------------------

    def _accept(self, server):
        def accept(local: bytes, lport: int, remote: bytes, rport: int, tag: Tag):
            route = server.route_for(remote)
            return server.tcp.socket(
                (local, lport), (remote, rport), route, tag, on_fin=lambda conn: conn.close()
            )

        return accept

    def _connected(self, conn, data: bytes) -> None:
        if not data and not self.how:  # the handshake completed: agnhost closes at once
            self.how = "connected"
            self.received = 1
            conn.close()

    def _tcp_done(self, conn, how: str) -> None:
        if not self.how:
            self.how = how
            self.error_kinds.append(how)
        self._end()

    # --- UDP --------------------------------------------------------------------------------

    def _answer(self, src: bytes, sport: int, dst: bytes, payload: bytes, tag: Tag) -> None:
        if not self.how:
            self.how = "answered"
            self.received = 1
            self._end()

    def _error(self, packet: bytes, tag: Tag) -> None:
        self.note_error(packet)
        if not self.how:
            self.how = self.error_kinds[-1]
            self._end()

    # --- the end ----------------------------------------------------------------------------

    def _give_up(self) -> None:
        if self.how:
            return
        self.how = "timeout"
        if self.step.protocol == "TCP":
            self.client.abort("timeout")
        else:
            self._end()

    def _end(self) -> None:
        if self.finished:
            return
        self.finished = True
        for socket in self.closers:
            socket.close()

    def done(self) -> bool:
        return self.finished

    def counts(self) -> tuple[int, int]:
        return self.sent, self.received

    def ended_as(self, reasons: list[str]) -> str:
        return classify(1, self.received, self.error_kinds, reasons)

    def denial(self):
        """The policy verdict that dropped this probe, if one did."""
        return None if self.policy_log is None else self.policy_log.denied.get(self.index)

    def verdict(self) -> dict:
        denial = self.denial()
        if self.received:
            return {"verdict": ALLOWED}
        if denial is not None:
            return {
                "verdict": DENIED,
                "droppedAt": denial.side,
                "policies": list(denial.policies),
            }
        if self.how in ("connection reset", "port unreachable"):
            return {"verdict": "refused"}
        return {"verdict": "unreachable"}

    def result(self) -> str:
        data = self.verdict()
        text = f"{data['verdict']} ({self.how or 'no answer'})"
        if "droppedAt" in data:
            text += f": {data['droppedAt']} denied by {', '.join(data['policies'])}"
        return text


def _answerer(socket: UdpSocket, name: str):
    """serve-hostname over UDP: every request is answered with the pod's name."""

    def answer(src: bytes, sport: int, dst: bytes, payload: bytes, tag: Tag) -> None:
        socket.sendto(src, sport, name.encode(), socket.stack.observer.packet(tag))

    return answer
