"""A `tcp` step: a client connects, sends its request, reads the answer and closes after the
server does; the server (an HTTP/1.0-like responder in the target) acknowledges the request at
once, answers after THINK_NS and closes CLOSE_NS later, as the reference's server did (its FIN
follows the client's ACK of the answer)."""

from __future__ import annotations

from functools import partial

from kpkt.apps.base import StepApp
from kpkt.capture.tap import Tag
from kpkt.net.tcp import Connection
from kpkt.outcome import classify
from kpkt.topology.spec import TcpStep

THINK_NS = 20_000
CLOSE_NS = 200_000


class TcpApp(StepApp):
    def __init__(self, step: TcpStep, sender, receivers: list) -> None:
        super().__init__(step, sender)
        # (stack, port) for whoever owns the destination: the endpoints of a service
        self.receivers = receivers
        self.answer = b""
        self.outcome = ""
        self.client: Connection | None = None
        self.written = 0  # bytes of the request the client wrote

    def open(self) -> None:
        if self.step.listen:
            for stack, port in self.receivers:
                stack.tcp.listeners[port] = partial(self._serve, stack)

    def _send(self) -> None:
        step, stack = self.step, self.sender
        sport = step.sport if step.sport is not None else stack.ids.ephemeral_port()
        self.sent = 1
        self.client = stack.tcp.connect(
            step.dst.packed,
            sport,
            step.dport,
            stack.journal.new_flow(self.index),
            on_data=self._client_data,
            on_fin=lambda conn: conn.close(),
            on_done=self._done,
        )

    def _client_data(self, conn: Connection, data: bytes) -> None:
        if data:
            self.answer += data
        else:  # connected
            conn.write(self.step.payload)
            self.written = len(self.step.payload)

    def _done(self, conn: Connection, how: str) -> None:
        self.outcome = how

    def _serve(
        self, server, local: bytes, lport: int, remote: bytes, rport: int, tag: Tag
    ) -> Connection:
        route = server.route_for(remote)
        return server.tcp.socket(
            (local, lport), (remote, rport), route, tag, on_data=self._server_data
        )

    def _server_data(self, conn: Connection, data: bytes) -> None:
        sched = conn.stack.sched
        sched.after(THINK_NS, conn.write, self.step.response)
        sched.after(THINK_NS + CLOSE_NS, conn.close)

    def done(self) -> bool:
        return bool(self.outcome)

    def counts(self) -> tuple[int, int]:
        return self.written, len(self.answer)

    def ended_as(self, reasons: list[str]) -> str:
        closed = int(self.outcome == "closed")
        return classify(1, closed, [*self.error_kinds, self.outcome], reasons)

    def result(self) -> str:
        first = self.answer.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        if self.outcome == "closed":
            return (
                f"sent {len(self.step.payload)} bytes, received {len(self.answer)} bytes"
                + (f" ({first})" if first else "")
                + ", closed"
            )
        return self.outcome + self.error_summary()
