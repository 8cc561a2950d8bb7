"""A `tcp` step: a client connects, sends its request, reads the answer and closes after the
server does; the server (an HTTP/1.0-like responder in the target) acknowledges the request at
once, reads it whole (however many segments carry it), answers THINK_NS after its last segment
and closes CLOSE_NS after that, as the reference's server did (its FIN follows the client's ACK
of the answer). Without a payload the client connects and closes
(what `nc -z` does): its FIN follows the handshake, the server reads the end of the stream and
closes too, and the step ends as a normal close.

The delays are the applications' own, measured in `tests/reference/svc_clusterip_tcp/` on the
client's and the server's eth0 (so the network's part is not in them): a process is not woken
in the instant its segment arrives.

A server on its client's node answers differently. Fact (issue 11's description of kernel
captures; there is no same-node TCP reference capture): its ACK, response and FIN leave back to
back, and the client acknowledges response and FIN in one segment. Inference (the mechanism
modelled, from the kernel's code): on one node a send carries its segment all the way to the
receiving socket before it returns (veth -> bridge -> veth run in the softirq the sender's
`dev_queue_xmit()` raises: `veth_forward_skb()` -> `__netif_rx()` queues to this CPU's backlog,
`process_backlog()` runs when the send re-enables bottom halves): one pass. The request reaches
the server in the client's send, whose process still holds its socket (`lock_sock()`,
`Connection.hold`); the server's ACK ends that pass, and the server's process, woken there,
writes and closes with nothing between, each call a pass of its own; the client's process
resumes when the server's sleeps, and its `release_sock()` finds ACK, answer and FIN merged in
its backlog (`tcp_add_backlog()`): one segment, whose FIN makes the ACK wait for the client's
own FIN (`Connection._in_order`). A pass takes, in kpkt's time, what the request took to reach
the server.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from kpkt.apps.base import StepApp
from kpkt.net.sockets import TcpListener
from kpkt.net.tcp_connection import Connection
from kpkt.observe import Tag
from kpkt.outcome import classify
from kpkt.spec import TcpStep

# connect() returns -> the request written: the client's final handshake ACK at 0.000704888 s,
# its request at 0.002262585 s (ksvc-n1-client__eth0.pcap)
WAKE_NS = 1_557_697
# read() returns the end of the stream -> close(): the server's FIN reached the client at
# 0.002988283 s, the client's FIN left at 0.003096557 s (ksvc-n1-client__eth0.pcap)
EOF_WAKE_NS = 108_274
# the request in -> the answer out: 0.001934229 s -> 0.002283568 s (ksvc-n2-web-b__eth0.pcap)
THINK_NS = 349_339
# the answer out -> the server's FIN: 0.002283568 s -> 0.002537964 s (ksvc-n2-web-b__eth0.pcap)
CLOSE_NS = 254_396


class TcpApp(StepApp):
    def __init__(self, step: TcpStep, sender, receivers: Callable[[], list]) -> None:
        super().__init__(step, sender)
        # (stack, port) for whoever owns the destination (the endpoints of a service), as
        # they are when the step starts
        self.receivers = receivers
        self.answer = b""
        self.outcome = ""
        self.client: Connection | None = None
        self.written = 0  # bytes of the request the client wrote
        self.same_node = False  # the server that accepted runs on the client's node
        self.requested_ns = 0  # when the client wrote its request
        # bytes of the request each server connection read, by its (local, remote) addresses
        self.read: dict[tuple, int] = {}

    def open(self) -> None:
        if self.step.listen:
            for stack, port in self.receivers():
                TcpListener(stack, port, partial(self._serve, stack))

    def _send(self) -> None:
        step, stack = self.step, self.sender
        sport = step.sport if step.sport is not None else stack.ids.ephemeral_port()
        self.sent = 1
        self.client = stack.tcp.connect(
            step.dst.packed,
            sport,
            step.dport,
            stack.observer.new_flow(self.index),
            on_data=self._client_data,
            on_fin=_close_after_eof,
            on_done=self._done,
        )

    def _client_data(self, conn: Connection, data: bytes) -> None:
        if data:
            self.answer += data
        else:  # connected: the application wakes from connect()
            conn.stack.sched.after(WAKE_NS, self._request, conn)

    def _request(self, conn: Connection) -> None:
        if conn.state != "ESTABLISHED":
            return
        if self.step.payload:
            if self.same_node:  # the server it wakes runs before this send returns
                conn.hold()
            self.requested_ns = conn.stack.sched.now
            conn.write(self.step.payload)
            self.written = len(self.step.payload)
        else:
            conn.close()

    def _done(self, conn: Connection, how: str) -> None:
        self.outcome = how

    def _serve(
        self, server, local: bytes, lport: int, remote: bytes, rport: int, tag: Tag
    ) -> Connection:
        self.same_node = server.node is not None and server.node == self.sender.node
        route = server.route_for(remote)
        return server.tcp.socket(
            (local, lport),
            (remote, rport),
            route,
            tag,
            on_data=self._server_data,
            on_fin=_close_after_eof,
        )

    def _server_data(self, conn: Connection, data: bytes) -> None:
        """The server reads up to the end of the request (as an HTTP server reads a request
        whole, however many segments carry it), then answers once."""
        key = conn.local, conn.remote
        read = self.read[key] = self.read.get(key, 0) + len(data)
        if read < len(self.step.payload):
            return
        sched = conn.stack.sched
        if not self.same_node:
            sched.after(THINK_NS, conn.write, self.step.response)
            sched.after(THINK_NS + CLOSE_NS, conn.close)
            return
        # one pass after another: the client's (its request, our ACK), our answer's, our FIN's;
        # then the client's process resumes
        pass_ns = sched.now - self.requested_ns
        _after_pass(sched, pass_ns, conn.write, self.step.response)
        _after_pass(sched, 2 * pass_ns, conn.close)
        _after_pass(sched, 3 * pass_ns, self.client.release)

    def done(self) -> bool:
        return bool(self.outcome)

    def counts(self) -> tuple[int, int]:
        return self.written, len(self.answer)

    def ended_as(self, reasons: list[str]) -> str:
        answered = not self.step.payload or self.answer == self.step.response
        closed = int(self.outcome == "closed" and answered)
        return classify(1, closed, [*self.error_kinds, self.outcome], reasons)

    def result(self) -> str:
        first = self.answer.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        if self.outcome == "closed" and not self.step.payload:
            return "connected and closed (no payload)"
        if self.outcome == "closed":
            return (
                f"sent {self.written} bytes, received {len(self.answer)} bytes"
                + (f" ({first})" if first else "")
                + ", closed"
            )
        return self.outcome + self.error_summary()


def _after_pass(sched, delay_ns: int, fn, *args) -> None:
    """Run `fn(*args)` when the pass that ends `delay_ns` from now has ended: after every
    event of that instant scheduled before it (a segment landing in its socket)."""
    sched.after(delay_ns, sched.after, 0, fn, *args)


def _close_after_eof(conn: Connection) -> None:
    """The application reads the end of the stream and closes its socket."""
    conn.stack.sched.after(EOF_WAKE_NS, conn.close)
