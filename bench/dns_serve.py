"""`kpkt dns serve` under load, on loopback: query rate of one client, and latency of a
well-behaved client while abusive TCP clients are connected.

The server runs in its own process (`python -m kpkt dns serve tests/dns/cluster.yaml --listen
127.0.0.1:0` in the tree given by --kpkt-root, this one by default), as does the crowd of abusers:

  rate       one UDP client asking one query at a time; one TCP connection sending queries in
             batches of 50 and reading the 50 replies (pipelined). Valid replies per second.
  abuse      ABUSERS TCP connections in three kinds, a third each: non-readers (send queries as
             fast as the socket takes them, never read), tricklers (one byte of a query every
             second) and idle holders (connect, send nothing), each replaced by a new one when the
             server closes it. Meanwhile a well-behaved client asks
             one UDP query and one TCP query (a new connection each, as `dig +tcp`) every 20 ms.
             Median and p99 latency, answers missed, the server's RSS, and how long each kind of
             abuser lived before the server closed it.

Every loop is bounded by a count and a deadline; a run takes about 20 seconds. Usage:

    python bench/dns_serve.py                       # this tree
    python bench/dns_serve.py --kpkt-root /path/to/another/checkout
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dns.message

HOST = "127.0.0.1"
NAME = "web.default.svc.cluster.local."
PIPELINE = 64  # two batches to a connection: the server closes one after 128 queries
WELL_BEHAVED_EVERY_S = 0.02
TIMEOUT_S = 2.0


def start_server(root: Path) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(root))
    cluster = root / "tests" / "dns" / "cluster.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kpkt", "dns", "serve", str(cluster), "--listen", f"{HOST}:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=root,
        env=env,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        proc.kill()
        sys.exit("the server printed nothing in 30 s")
    line = proc.stdout.readline()
    return proc, int(line.split(f"listening on {HOST}:")[1].split()[0])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def query_wire(qid: int) -> bytes:
    message = dns.message.make_query(NAME, "A")
    message.id = qid
    return message.to_wire()


def valid(reply: bytes, qid: int) -> bool:
    """The reply to `qid`: NOERROR with an answer (checked on the header alone)."""
    if len(reply) < 12:
        return False
    rid, flags, _, ancount = struct.unpack("!HHHH", reply[:8])
    return rid == qid and flags & 0x800F == 0x8000 and ancount > 0


def rate(seconds: float, rounds: int, ask: Callable[[int], int]) -> float:
    """Valid answers per second of `ask(round)` (which returns how many it got), repeated for
    `seconds` or `rounds`, whichever ends first."""
    good = 0
    start = time.perf_counter()
    for round_ in range(rounds):
        if time.perf_counter() - start >= seconds:
            break
        good += ask(round_)
    return good / (time.perf_counter() - start)


def udp_rate(port: int, seconds: float) -> float:
    """One query at a time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT_S)

        def ask(round_: int) -> int:
            qid = round_ & 0xFFFF
            sock.sendto(query_wire(qid), (HOST, port))
            with contextlib.suppress(TimeoutError):
                return valid(sock.recvfrom(65535)[0], qid)
            return 0

        return rate(seconds, 1_000_000, ask)


def tcp_rate(port: int, seconds: float) -> float:
    """PIPELINE queries sent at once, then their replies read; two rounds to a connection."""
    connection: list[socket.socket] = []

    def ask(round_: int) -> int:
        if round_ % 2 == 0:
            connection[:] = [socket.create_connection((HOST, port), TIMEOUT_S)]
        sock = connection[0]
        ids = [(round_ * PIPELINE + i) & 0xFFFF for i in range(PIPELINE)]
        sock.sendall(b"".join(framed(query_wire(qid)) for qid in ids))
        good = 0
        for qid in ids:
            size = struct.unpack("!H", read_exactly(sock, 2))[0]
            good += valid(read_exactly(sock, size), qid)
        if round_ % 2 == 1:
            sock.close()
        return good

    per_s = rate(seconds, 100_000, ask)
    for sock in connection:
        sock.close()
    return per_s


def framed(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def abuse(port: int, count: int, seconds: float, ready, results) -> None:
    """`count` abusive connections for `seconds`, each one replaced when the server closes it;
    puts {kind: [how long each closed one had lived]}."""
    kinds = ("non-reader", "trickler", "idle")
    flood = b"".join(framed(query_wire(i)) for i in range(100))
    trickle = framed(query_wire(7))
    socks: dict[socket.socket, list] = {}  # sock: [kind, opened, bytes trickled]

    def connect(kind: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing anyway
        sock.connect((HOST, port))
        sock.setblocking(False)
        socks[sock] = [kind, time.monotonic(), 0]

    def closed_by_server(sock: socket.socket) -> None:
        kind, opened, _ = socks.pop(sock)
        lived[kind].append(time.monotonic() - opened)
        sock.close()
        connect(kind)

    for i in range(count):
        connect(kinds[i % 3])
    ready.set()
    lived: dict[str, list[float]] = {kind: [] for kind in kinds}
    next_trickle = time.monotonic()
    deadline = next_trickle + seconds
    while time.monotonic() < deadline:
        trickle_now = time.monotonic() >= next_trickle
        if trickle_now:
            next_trickle += 1.0
        for sock, state in list(socks.items()):
            try:
                if state[0] == "non-reader":
                    sock.send(flood)
                elif state[0] == "trickler" and trickle_now:
                    sock.send(trickle[state[2] % len(trickle) :][:1])
                    state[2] += 1
            except BlockingIOError:
                pass
            except OSError:
                closed_by_server(sock)
        quiet = [sock for sock, state in socks.items() if state[0] != "non-reader"]
        readable, _, _ = select.select(quiet, [], [], 0.005)
        for sock in readable:  # a trickler or idle holder is readable only when closed
            closed_by_server(sock)
    for sock in socks:
        sock.close()
    results.put(lived)


def well_behaved(port: int, seconds: float) -> dict:
    latencies: dict[str, list[float]] = {"udp": [], "tcp": []}
    missed = {"udp": 0, "tcp": 0}
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(TIMEOUT_S)
    deadline = time.monotonic() + seconds
    for qid in range(int(seconds / WELL_BEHAVED_EVERY_S)):
        if time.monotonic() >= deadline:
            break
        start = time.perf_counter()
        try:
            udp.sendto(query_wire(qid), (HOST, port))
            ok = valid(udp.recvfrom(65535)[0], qid)
        except OSError:
            ok = False
        record(latencies["udp"], missed, "udp", ok, start)
        start = time.perf_counter()
        try:
            with socket.create_connection((HOST, port), TIMEOUT_S) as tcp:
                tcp.sendall(framed(query_wire(qid)))
                size = struct.unpack("!H", read_exactly(tcp, 2))[0]
                ok = valid(read_exactly(tcp, size), qid)
        except OSError:
            ok = False
        record(latencies["tcp"], missed, "tcp", ok, start)
        time.sleep(WELL_BEHAVED_EVERY_S)
    udp.close()
    summary = {}
    for transport, values in latencies.items():
        values.sort()
        summary[transport] = {
            "answered": len(values),
            "missed": missed[transport],
            "median_ms": round(statistics.median(values) * 1000, 2) if values else None,
            "p99_ms": round(values[int(len(values) * 0.99) - 1] * 1000, 2) if values else None,
            "max_ms": round(values[-1] * 1000, 2) if values else None,
        }
    return summary


def record(values: list[float], missed: dict, transport: str, ok: bool, start: float) -> None:
    if ok:
        values.append(time.perf_counter() - start)
    else:
        missed[transport] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kpkt-root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate phase")
    parser.add_argument("--abusers", type=int, default=100)
    parser.add_argument("--abuse-seconds", type=float, default=10.0)
    args = parser.parse_args()
    proc, port = start_server(args.kpkt_root.resolve())
    try:
        result = {
            "kpkt_root": str(args.kpkt_root.resolve()),
            "udp_queries_per_s": round(udp_rate(port, args.seconds)),
            "tcp_pipelined_queries_per_s": round(tcp_rate(port, args.seconds)),
            "rss_kib_before_abuse": rss_kib(proc.pid),
        }
        ready, results = multiprocessing.Event(), multiprocessing.Queue()
        crowd = multiprocessing.Process(
            target=abuse, args=(port, args.abusers, args.abuse_seconds, ready, results)
        )
        crowd.start()
        ready.wait(30)
        time.sleep(1.0)  # let the flood build up
        result["well_behaved_during_abuse"] = well_behaved(port, args.abuse_seconds - 2.0)
        result["rss_kib_during_abuse"] = rss_kib(proc.pid)
        closed = results.get(timeout=args.abuse_seconds + 30)
        crowd.join(10)
        result["abusers_closed_by_server"] = {
            kind: {
                "count": len(times),
                "median_lifetime_s": round(statistics.median(times), 2),
                "max_lifetime_s": round(max(times), 2),
            }
            if times
            else {"count": 0}
            for kind, times in closed.items()
        }
        result["server_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
