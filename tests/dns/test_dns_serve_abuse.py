"""`kpkt dns serve` under abusive TCP clients, on loopback: its memory stays bounded, a
well-behaved client is still answered quickly, and each kind of abuser is closed by its limit.

Every loop here is bounded in count and time; the whole file takes a few seconds."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from kpkt.dns.serve import MAX_TCP_CONNECTIONS, TCP_MAX_QUERIES, TCP_MESSAGE_S, TCP_WRITE_S

from dns_served import serve, stop

HOST = "127.0.0.1"
WELL_BEHAVED_MAX_S = 0.2  # the longest a well-behaved query may take while abusers are connected
RSS_GROWTH_MAX_KIB = 16 * 1024  # the server's memory growth allowed while abused
TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8  # tcpi_state of a socket the peer has reset or closed


@pytest.fixture
def served():
    proc, port = serve()
    yield proc, port
    stop(proc)


def _framed(name: str, qid: int) -> bytes:
    query = dns.message.make_query(name, "A")
    query.id = qid
    wire = query.to_wire()
    return struct.pack("!H", len(wire)) + wire


def _connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((HOST, port))
    sock.setblocking(False)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed or reset the connection, without reading what it sent."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    return state in (TCP_CLOSE, TCP_CLOSE_WAIT)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def _ask(port: int) -> tuple[float, float]:
    """A well-behaved client's UDP and TCP query (a new connection, as `dig +tcp`): seconds each."""
    query = dns.message.make_query("web.default.svc.cluster.local.", "A")
    times = []
    for ask in (dns.query.udp, dns.query.tcp):
        start = time.perf_counter()
        reply = ask(query, HOST, timeout=2.0, port=port)
        times.append(time.perf_counter() - start)
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer
    return times[0], times[1]


def test_abusers_neither_grow_it_nor_slow_a_well_behaved_client(served):
    proc, port = served
    rss_before = _rss_kib(proc.pid)
    flood = b"".join(_framed("web.default.svc.cluster.local.", i) for i in range(50))
    non_readers = [_connect(port, rcvbuf=4096) for _ in range(20)]
    tricklers = [_connect(port) for _ in range(10)]
    idle = [_connect(port) for _ in range(40)]
    trickle = _framed("web.default.svc.cluster.local.", 7)
    first_byte = time.monotonic()
    latencies: list[tuple[float, float]] = []
    rss_peak = rss_before
    try:
        for turn in range(200):  # about 4 s: every 20 ms a flood, every 500 ms a trickled byte
            now = time.monotonic()
            if now - first_byte > 4.0:
                break
            for sock in non_readers:  # full, or closed by the server: both as it should be
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    sock.send(flood)
            if turn % 25 == 0:
                for sock in tricklers:  # closed by the server TCP_MESSAGE_S after the first
                    with contextlib.suppress(ConnectionError):
                        sock.send(trickle[turn // 25 :][:1])
            if turn % 5 == 0:
                latencies.append(_ask(port))
                rss_peak = max(rss_peak, _rss_kib(proc.pid))
            time.sleep(0.02)
        slow = [(udp, tcp) for udp, tcp in latencies if max(udp, tcp) > WELL_BEHAVED_MAX_S]
        assert len(latencies) >= 10 and not slow, f"{len(slow)} slow of {len(latencies)}: {slow}"
        assert rss_peak - rss_before < RSS_GROWTH_MAX_KIB, (rss_before, rss_peak)
        # a trickler sent its first byte at first_byte: it is closed TCP_MESSAGE_S later
        assert all(_closed_by_server(sock) for sock in tricklers)
        assert not any(_closed_by_server(sock) for sock in idle)  # well within their 8 s
        # a non-reader is closed after TCP_MAX_QUERIES replies, or TCP_WRITE_S after its
        # replies stopped being taken
        deadline = time.monotonic() + TCP_WRITE_S + 4.0
        while time.monotonic() < deadline and not all(map(_closed_by_server, non_readers)):
            time.sleep(0.1)
        assert all(map(_closed_by_server, non_readers))
        assert proc.poll() is None
    finally:
        for sock in non_readers + tricklers + idle:
            sock.close()


def test_a_trickler_is_closed_when_its_query_is_not_whole_in_time(served):
    _, port = served
    trickle = _framed("web.default.svc.cluster.local.", 9)
    with _connect(port) as sock:
        start = time.monotonic()
        for at in range(len(trickle)):  # one byte every 0.25 s would take about 12 s
            if _closed_by_server(sock):
                break
            sock.send(trickle[at : at + 1])
            time.sleep(0.25)
        lived = time.monotonic() - start
    assert TCP_MESSAGE_S <= lived <= TCP_MESSAGE_S + 1.0, lived


def test_a_connection_is_closed_after_its_query_limit(served):
    _, port = served
    queries = b"".join(_framed("web.default.svc.cluster.local.", i) for i in range(200))
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(queries)
        data = b""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    ids = []
    while data:
        size = struct.unpack("!H", data[:2])[0]
        ids.append(dns.message.from_wire(data[2 : 2 + size]).id)
        data = data[2 + size :]
    assert ids == list(range(TCP_MAX_QUERIES))  # the rest unanswered, the connection closed


def test_connections_beyond_the_cap_are_closed_at_once(served):
    _, port = served
    held = [_connect(port) for _ in range(MAX_TCP_CONNECTIONS)]
    try:
        with _connect(port) as extra:
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not _closed_by_server(extra):
                time.sleep(0.05)
            assert _closed_by_server(extra)
        assert not any(_closed_by_server(sock) for sock in held)
        held.pop().close()  # room for one
        time.sleep(0.3)
        assert _ask(port)
    finally:
        for sock in held:
            sock.close()
