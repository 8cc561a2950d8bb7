"""`kpkt dns serve` under abusive TCP clients, on loopback: its memory stays bounded, a
well-behaved client is still answered quickly, and each kind of abuser is closed by its limit.

Every loop here is bounded in count and time; the whole file takes a few seconds. On a loaded
machine (the full suite on two cores) the server and this test wait for a CPU: the time limits
checked here are counted without those waits (`_cpu_waits`), and what the server must do before
a check (answer each flood, see a close) is waited for, not given a fixed time."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from kpkt.dns.serve import MAX_TCP_CONNECTIONS, TCP_IDLE_S, TCP_MAX_QUERIES, TCP_MESSAGE_S

from dns_served import serve, stop

HOST = "127.0.0.1"
WELL_BEHAVED_MAX_S = 0.2  # the longest a well-behaved query may take while abusers are connected
RSS_GROWTH_MAX_KIB = 16 * 1024  # the server's memory growth allowed while abused
# /proc/net/tcp states of a server socket its process has not closed: SYN received,
# established (in the listen queue, or accepted), close-wait (the client closed first)
NOT_CLOSED = {"03", "01", "08"}
# How long the server may take to answer every non-reader's TCP_MAX_QUERIES queries (a second on
# an idle machine): only a server that never closes them waits it out.
NON_READERS_CLOSED_MAX_S = 60.0


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


def _open_at_server(port: int) -> set[int]:
    """The client ports of the connections the server on `port` has not closed, from the
    server's side of them (/proc/net/tcp). The client's side is no witness: a close may never
    reach a client that does not read (its receive window full, the FIN waits behind replies)."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if int(local.split(":")[1], 16) == port and state in NOT_CLOSED:
            ports.add(int(remote.split(":")[1], 16))
    return ports


def _closed_by_server(port: int, socks: list[socket.socket]) -> bool:
    """Whether the server has closed (or reset) every one of these connections."""
    return _open_at_server(port).isdisjoint(sock.getsockname()[1] for sock in socks)


def _open(port: int, socks: list[socket.socket]) -> bool:
    """Whether the server holds every one of these connections open."""
    return {sock.getsockname()[1] for sock in socks} <= _open_at_server(port)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def _cpu_waits(pid: int) -> float:
    """Seconds the server's threads and this test's thread have spent so far ready to run but
    waiting for a CPU (the second field of Linux's /proc/PID/task/TID/schedstat): what a loaded
    machine, not the server, adds to a time measured on the wall clock."""
    tasks = [*Path(f"/proc/{pid}/task").glob("*/schedstat")]
    tasks.append(Path(f"/proc/self/task/{threading.get_native_id()}/schedstat"))
    return sum(int(task.read_text().split()[1]) for task in tasks) / 1e9


def _ask(port: int, pid: int) -> list[tuple[float, float]]:
    """A well-behaved client's UDP and TCP query (a new connection, as `dig +tcp`): for each, the
    seconds it took, and those seconds less the time the server or this client waited for a CPU."""
    query = dns.message.make_query("web.default.svc.cluster.local.", "A")
    times = []
    for ask in (dns.query.udp, dns.query.tcp):
        waited, start = _cpu_waits(pid), time.perf_counter()
        reply = ask(query, HOST, timeout=2.0, port=port)
        took = time.perf_counter() - start
        times.append((took, took - (_cpu_waits(pid) - waited)))
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer
    return times


def test_abusers_neither_grow_it_nor_slow_a_well_behaved_client(served):
    proc, port = served
    rss_before = _rss_kib(proc.pid)
    flood = b"".join(_framed("web.default.svc.cluster.local.", i) for i in range(50))
    non_readers = [_connect(port, rcvbuf=4096) for _ in range(20)]
    opened = time.monotonic()  # no trickler or idle connection is older
    tricklers = [_connect(port) for _ in range(10)]
    idle = [_connect(port) for _ in range(40)]
    trickle = _framed("web.default.svc.cluster.local.", 7)
    first_byte = time.monotonic()
    latencies: list[tuple[float, float]] = []  # (wall, less CPU waits) of each query
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
            if turn % 2 == 0:
                latencies += _ask(port, proc.pid)
                rss_peak = max(rss_peak, _rss_kib(proc.pid))
            time.sleep(0.02)
        assert _open(port, idle)  # well within their TCP_IDLE_S
        slow = [wall for wall, served in latencies if served > WELL_BEHAVED_MAX_S]
        assert len(latencies) >= 20 and not slow, f"{len(slow)} slow of {len(latencies)}: {slow}"
        assert rss_peak - rss_before < RSS_GROWTH_MAX_KIB, (rss_before, rss_peak)
        # a trickler sent its first byte at first_byte: it is closed TCP_MESSAGE_S later, and
        # so before TCP_IDLE_S (the limit that would close it if the other did not)
        while time.monotonic() - opened < TCP_IDLE_S:
            if _closed_by_server(port, tricklers):
                break
            time.sleep(0.05)
        assert _closed_by_server(port, tricklers)
        # a non-reader is closed after TCP_MAX_QUERIES replies, or TCP_WRITE_S after its
        # replies stopped being taken
        deadline = time.monotonic() + NON_READERS_CLOSED_MAX_S
        while time.monotonic() < deadline and not _closed_by_server(port, non_readers):
            time.sleep(0.1)
        assert _closed_by_server(port, non_readers)
        assert proc.poll() is None
    finally:
        for sock in non_readers + tricklers + idle:
            sock.close()


def test_a_trickler_is_closed_when_its_query_is_not_whole_in_time(served):
    proc, port = served
    trickle = _framed("web.default.svc.cluster.local.", 9)
    with _connect(port) as sock:
        waited, start = _cpu_waits(proc.pid), time.monotonic()
        sent = 0
        while sent < len(trickle) and not _closed_by_server(port, [sock]):  # seen every 50 ms
            if time.monotonic() - start >= sent * 0.25:  # a byte every 0.25 s: about 12 s
                sock.send(trickle[sent : sent + 1])
                sent += 1
            time.sleep(0.05)
        lived = time.monotonic() - start
        waited = _cpu_waits(proc.pid) - waited
    assert lived >= TCP_MESSAGE_S and lived - waited <= TCP_MESSAGE_S + 1.0, (lived, waited)


def test_a_connection_is_closed_after_its_query_limit(served):
    _, port = served
    queries = b"".join(_framed("web.default.svc.cluster.local.", i) for i in range(200))
    with socket.create_connection((HOST, port), timeout=30.0) as sock:
        sock.sendall(queries)
        data = b""
        deadline = time.monotonic() + 30.0  # a fraction of a second on an idle machine
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
    proc, port = served
    held = [_connect(port) for _ in range(MAX_TCP_CONNECTIONS)]
    try:
        with _connect(port) as extra:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and not _closed_by_server(port, [extra]):
                time.sleep(0.05)
            assert _closed_by_server(port, [extra])
        assert _open(port, held)
        left = held.pop()
        left_port = left.getsockname()[1]
        left.close()  # room for one, once the server has closed its end
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and left_port in _open_at_server(port):
            time.sleep(0.05)
        assert _ask(port, proc.pid)
    finally:
        for sock in held:
            sock.close()
