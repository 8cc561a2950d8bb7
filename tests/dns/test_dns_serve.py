"""`kpkt dns serve` end to end: a real process on loopback, asked by dnspython's client over
UDP and TCP, stopped with SIGINT."""

from __future__ import annotations

import signal
import socket
import struct
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from dns_served import CLUSTER, kpkt, serve, stop

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def served():
    """The conformance cluster's CoreDNS on a free loopback port: (process, port)."""
    proc, port = serve()
    yield proc, port
    stop(proc)


def _query(name: str, rtype: str = "A", **kwargs) -> dns.message.Message:
    return dns.message.make_query(name, rtype, **kwargs)


def test_answers_over_udp(served):
    _, port = served
    reply = dns.query.udp(_query("web.default.svc.cluster.local."), "127.0.0.1", TIMEOUT, port)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA and not reply.flags & dns.flags.RA
    answer = [rr.to_text() for rr in reply.answer]
    assert answer == ["web.default.svc.cluster.local. 30 IN A 10.96.0.50"]


def test_answers_over_tcp_and_forwards_outside_the_zone(served):
    _, port = served
    reply = dns.query.tcp(_query("www.example.com."), "127.0.0.1", TIMEOUT, port)
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rr.to_text() for rr in reply.answer] == ["www.example.com. 30 IN A 198.51.100.80"]
    nx = dns.query.udp(_query("nosuch.example.net."), "127.0.0.1", TIMEOUT, port)
    assert nx.rcode() == dns.rcode.NXDOMAIN


def test_truncated_over_udp_then_whole_over_tcp(served):
    _, port = served
    query = _query("bulk.apps.svc.cluster.local.")
    cut = dns.query.udp(query, "127.0.0.1", TIMEOUT, port)  # TC is not an error
    assert cut.flags & dns.flags.TC
    assert sum(len(rrset) for rrset in cut.answer) == 29
    whole = dns.query.tcp(query, "127.0.0.1", TIMEOUT, port)
    assert not whole.flags & dns.flags.TC
    addresses = {rdata.address for rrset in whole.answer for rdata in rrset}
    assert addresses == {f"10.244.3.{i}" for i in range(1, 41)}


def test_nodata_and_nxdomain_carry_the_soa(served):
    _, port = served
    nodata = dns.query.udp(_query("web.default.svc.cluster.local.", "AAAA"), "127.0.0.1", 5, port)
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    nx = dns.query.udp(_query("nosuch.default.svc.cluster.local."), "127.0.0.1", TIMEOUT, port)
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.flags & dns.flags.AA
    assert nx.authority[0][0].serial == nodata.authority[0][0].serial


def test_a_bad_packet_never_stops_it(served):
    proc, port = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(b"\x01\x02", ("127.0.0.1", port))  # shorter than a header: dropped
        sock.sendto(b"\xff" * 300, ("127.0.0.1", port))  # a "response": dropped
        sock.sendto(struct.pack("!HHHHHH", 0x4B52, 0x0100, 0, 0, 0, 0), ("127.0.0.1", port))
        formerr, _ = sock.recvfrom(65535)  # QDCOUNT=0: FORMERR, header only
        assert formerr == struct.pack("!HHHHHH", 0x4B52, 0x8101, 0, 0, 0, 0)
    with socket.create_connection(("127.0.0.1", port), TIMEOUT) as conn:
        conn.sendall(b"\x00\x03abc")  # a framed message that is no message
        good = _query("db-0.db.default.svc.cluster.local.").to_wire()
        conn.sendall(struct.pack("!H", len(good)) + good)
        size = struct.unpack("!H", _read(conn, 2))[0]
        reply = dns.message.from_wire(_read(conn, size))
        assert [rr.to_text() for rr in reply.answer] == [
            "db-0.db.default.svc.cluster.local. 30 IN A 10.244.2.10"
        ]
    reply = dns.query.udp(_query("web.default.svc.cluster.local."), "127.0.0.1", TIMEOUT, port)
    assert reply.answer
    assert proc.poll() is None


def test_sigint_stops_it_cleanly(served):
    proc, _ = served
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert "Traceback" not in proc.stderr.read()


def test_a_topology_without_cluster_dns_exits_2(tmp_path: Path):
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: plain}\n"
        "nodes:\n  - name: node1\n    pods: [{name: pod-a}]\n"
    )
    proc = kpkt("dns", "serve", str(plain), "--listen", "127.0.0.1:0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, out + err
    assert "error:" in err and "no cluster DNS" in err


def test_a_bad_listen_address_exits_2():
    proc = kpkt("dns", "serve", str(CLUSTER), "--listen", "nowhere")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--listen nowhere" in err


def test_an_address_in_use_exits_2_naming_it():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        proc = kpkt("dns", "serve", str(CLUSTER), "--listen", f"127.0.0.1:{port}")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(f"error: cannot listen on 127.0.0.1:{port}: the address is in use")
    assert "--listen" in errors[0]


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while len(data) < size and time.monotonic() < deadline:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
