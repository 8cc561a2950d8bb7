"""kpkt/net/tcp_connection.py on one socket: what a held socket's backlog merges
(`tcp_add_backlog()`), and which ACK an in-order segment with a FIN gets (`tcp_data_queue()`
takes the FIN before `tcp_ack_snd_check()` decides)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from kpkt import runner
from kpkt.net.tcp_connection import ACK, DELACK_NS, FIN, PSH, RST
from kpkt.topology.load import load_topology_text

TOPOLOGY = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: tcp-connection}
nodes:
  - {name: node1, pods: [{name: client}, {name: server}]}
traffic: []
"""
CLIENT_IP = IPv4Address("10.244.1.2").packed
SERVER_IP = IPv4Address("10.244.1.3").packed
TS = b"\x01\x01\x08\x0a" + bytes(8)  # NOP NOP timestamps, both 0
PEER = 5000  # the peer's next sequence number when the test starts


@pytest.fixture
def conn(tmp_path):
    """An established client socket that has received nothing yet; nothing answers it."""
    network = runner.run(load_topology_text(TOPOLOGY, "tcp.yaml"), steps=0).network
    network.journal.open(tmp_path)
    stack = network.stacks["client.default"]
    tag = network.journal.packet(network.journal.new_flow(-1))
    conn = stack.tcp.socket((CLIENT_IP, 40000), (SERVER_IP, 8080), stack.route_for(SERVER_IP), tag)
    conn.state, conn.rcv_nxt, conn.snd_una = "ESTABLISHED", PEER, conn.snd_nxt
    return conn


def segment(conn, flags: int, seq: int, payload: bytes = b"", options: bytes = TS) -> tuple:
    return (flags, seq, conn.snd_nxt, options, payload, 63)


def test_a_held_socket_merges_ack_answer_and_fin_into_one_segment(conn) -> None:
    conn.hold()
    conn.receive(*segment(conn, ACK, PEER))
    conn.receive(*segment(conn, ACK | PSH, PEER, b"x" * 24))
    conn.receive(*segment(conn, ACK | FIN, PEER + 24))
    assert conn.backlog == [[ACK | PSH | FIN, PEER, conn.snd_nxt, TS, b"x" * 24, 63, 24]]
    assert conn.sent == [] and conn.rcv_nxt == PEER  # TCP has seen nothing yet


@pytest.mark.parametrize(
    "flags, seq, options",
    [
        (ACK | FIN, PEER + 30, TS),  # a gap
        (ACK | FIN, PEER + 24, b"\x01\x01\x08\x0a" + bytes(7) + b"\x01"),  # other options
        (RST | ACK, PEER + 24, TS),
        (FIN, PEER + 24, TS),  # no ACK
    ],
    ids=["gap", "options", "reset", "no-ack"],
)
def test_a_held_socket_keeps_apart_what_does_not_continue(conn, flags, seq, options) -> None:
    conn.hold()
    conn.receive(*segment(conn, ACK | PSH, PEER, b"x" * 24))
    conn.receive(*segment(conn, flags, seq, options=options))
    assert len(conn.backlog) == 2


def test_release_hands_the_backlog_to_tcp(conn) -> None:
    got = []
    conn.on_data = lambda c, data: got.append(data)
    conn.on_fin = lambda c: got.append("eof")
    conn.hold()
    conn.receive(*segment(conn, ACK | PSH, PEER, b"x" * 24))
    conn.receive(*segment(conn, ACK | FIN, PEER + 24))
    assert got == [] and conn.held
    conn.release()
    assert not conn.held and conn.backlog == []
    assert got == [b"x" * 24, "eof"] and conn.state == "CLOSE_WAIT"
    assert conn.sent == []  # answer and FIN in one segment: pingpong mode, the ACK waits
    sched = conn.stack.sched
    released = sched.now
    while not conn.sent:
        sched.step()
    assert conn.sent == [ACK] and conn.acked == PEER + 25 and sched.now == released + DELACK_NS


def test_a_filled_hole_with_the_fin_behind_it_is_acknowledged_with_the_fin(conn) -> None:
    # tcp_ofo_queue() calls tcp_fin() before the ACK is decided (ICSK_ACK_NOW): one ACK
    # covers data and FIN, so the peer has nothing to retransmit
    conn.receive(*segment(conn, ACK | PSH, PEER + 10, b"y" * 10))
    conn.receive(*segment(conn, ACK | FIN, PEER + 20))
    assert conn.sent == [ACK, ACK] and conn.acked == PEER  # duplicate ACKs with SACK blocks
    conn.receive(*segment(conn, ACK, PEER, b"x" * 10))
    assert conn.sent == [ACK, ACK, ACK] and conn.acked == PEER + 21
    assert conn.state == "CLOSE_WAIT"
    sched = conn.stack.sched
    while sched.step():
        pass
    assert conn.sent == [ACK, ACK, ACK]  # the delayed ACK finds nothing left to acknowledge
