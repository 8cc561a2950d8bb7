"""How a TCP exchange closes when client and server run on one node.

Fact, from issue 11's description of kernel captures (there is no same-node TCP reference
capture in `tests/reference/`): a same-node server's ACK, response and FIN leave back to back,
so the client acknowledges response and FIN in one segment. Inference, the mechanism kpkt
models (`kpkt/apps/tcp.py`, `Connection.hold` in `kpkt/net/tcp_connection.py`): the server's
process runs inside the client's send, the client's socket is held, and the server's segments
wait in its backlog, where `tcp_add_backlog()` merges them into one; with the FIN in it,
`tcp_fin()` has entered pingpong mode when the ACK is decided, so the ACK waits and the
client's own FIN carries it. The cross-node exchange in the same run stays the kernel
reference's, segment by segment (`tests/reference/svc_clusterip_tcp/`, client on node1,
server on node2).
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from test_tcp import CLIENT, assert_clean_tcp, decisions, segment_times, segments

from kpkt import runner
from kpkt.net.tcp_connection import DELACK_NS
from kpkt.topology.load import load_topology_text

REQUEST = "GET / HTTP/1.1\\r\\nHost: web\\r\\n\\r\\n"
ANSWER = "x" * 3000  # three segments: more than one full frame
TOPOLOGY = f"""\
apiVersion: kpkt/v1
kind: Topology
metadata: {{name: tcp-same-node}}
nodes:
  - {{name: node1, pods: [{{name: client}}, {{name: web-a}}]}}
  - {{name: node2, pods: [{{name: web-b}}]}}
traffic:
  - tcp: {{from: client, to: "web-a:8080", sport: 40080, payload: "{REQUEST}"}}
  - tcp: {{from: client, to: "web-b:8080", sport: 40081, payload: "{REQUEST}"}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tcp-same-node") / "out"
    return runner.run(load_topology_text(TOPOLOGY, "tcp.yaml"), folder=folder)


def conversation(folder, capture: str, port: int) -> tuple[list, list[int]]:
    """The segments of the connection from client port `port` seen in `capture`, and when."""
    path = folder / capture
    pairs = zip(segments(path), segment_times(path), strict=True)
    chosen = [(p, t) for p, t in pairs if port in (p[TCP].sport, p[TCP].dport)]
    return [p for p, _ in chosen], [t for _, t in chosen]


def test_the_client_acknowledges_answer_and_fin_in_one_segment(run):
    ours, _ = conversation(run.folder, "client.default__eth0.pcap", 40080)
    flags = [str(p[TCP].flags) for p in ours]
    assert flags == ["S", "SA", "A", "PA", "A", "PA", "FA", "FA", "A"]
    request, server_ack, answer, server_fin, client_fin, last_ack = ours[3:]
    assert len(request[TCP].payload) == 29 and len(answer[TCP].payload) == 24
    # the server's three segments: its ACK of the request, the answer and its FIN, in order
    request_end = request[TCP].seq + 29
    assert server_ack[TCP].ack == answer[TCP].ack == server_fin[TCP].ack == request_end
    assert server_ack[TCP].seq == answer[TCP].seq
    assert server_fin[TCP].seq == answer[TCP].seq + 24
    # the client's one segment: its FIN, acknowledging the answer and the server's FIN
    assert client_fin[TCP].sport == 40080 and client_fin[TCP].seq == request_end
    assert client_fin[TCP].ack == answer[TCP].seq + 24 + 1 == server_fin[TCP].seq + 1
    assert last_ack[TCP].sport == 8080 and last_ack[TCP].ack == client_fin[TCP].seq + 1
    assert run.network.journal.steps[0].result == (
        "sent 29 bytes, received 24 bytes (HTTP/1.0 200 OK), closed"
    )


def test_the_servers_ack_answer_and_fin_leave_back_to_back(run):
    # each leaves when the one before it has reached the client's socket (one pass: as long as
    # the request took from the client's eth0 to the server's), nothing from either side between
    ours, times = conversation(run.folder, "web-a.default__eth0.pcap", 40080)
    client_times = conversation(run.folder, "client.default__eth0.pcap", 40080)[1]
    assert [str(p[TCP].flags) for p in ours[3:8]] == ["PA", "A", "PA", "FA", "FA"]
    one_pass = times[3] - client_times[3]
    assert 0 < one_pass < 10_000
    assert times[4] == times[3]  # the ACK: as the request comes in
    assert times[5] - times[4] == times[6] - times[5] == one_pass
    ids = [p[IP].id for p in ours[4:7]]
    assert [(i - ids[0]) % 2**16 for i in ids] == [0, 1, 2]


def test_across_nodes_the_exchange_stays_the_kernels(run):
    # the same client in the same run, its server on the other node: ten segments, the answer
    # acknowledged on its own, as in the kernel reference
    reference = segments(CLIENT)
    ours, _ = conversation(run.folder, "client.default__eth0.pcap", 40081)
    assert decisions(ours, 40081) == decisions(reference, 40080)


def test_without_the_applications_close_the_ack_of_both_waits_delack(tmp_path, monkeypatch):
    # the answer came in one segment with the FIN: no ACK at once, the delayed ACK (pingpong
    # mode from tcp_fin()) acknowledges both when the client's process is slower to close
    from kpkt.apps import tcp as tcp_app

    monkeypatch.setattr(tcp_app, "EOF_WAKE_NS", DELACK_NS + 10_000_000)
    topology = TOPOLOGY.split('  - tcp: {from: client, to: "web-b')[0]
    result = runner.run(load_topology_text(topology, "tcp.yaml"), folder=tmp_path / "out")
    ours, times = conversation(result.folder, "client.default__eth0.pcap", 40080)
    assert [str(p[TCP].flags) for p in ours] == [
        "S",
        "SA",
        "A",
        "PA",
        "A",
        "PA",
        "FA",
        "A",
        "FA",
        "A",
    ]
    server_fin, delayed_ack = ours[6], ours[7]
    assert delayed_ack[TCP].sport == 40080 and delayed_ack[TCP].ack == server_fin[TCP].seq + 1
    assert times[7] - times[6] == DELACK_NS


def test_more_than_one_full_frame_with_the_fin_is_acknowledged_at_once(tmp_path):
    # __tcp_ack_snd_check(): more than rcv_mss (the largest segment received) since the last
    # ACK is acknowledged at once even in pingpong mode; tcp_fin() came first, so that ACK
    # covers the FIN too, and the client's FIN follows when its process closes
    topology = TOPOLOGY.split("traffic:")[0] + (
        "traffic:\n"
        '  - tcp: {from: client, to: "web-a:8080", sport: 40080, payload: "GET",'
        f' response: "{ANSWER}"}}\n'
    )
    result = runner.run(load_topology_text(topology, "tcp.yaml"), folder=tmp_path / "out")
    ours, times = conversation(result.folder, "client.default__eth0.pcap", 40080)
    flags = [str(p[TCP].flags) for p in ours]
    assert flags == ["S", "SA", "A", "PA", "A", "A", "A", "PA", "FA", "A", "FA", "A"]
    sizes = [len(p[TCP].payload) for p in ours[5:8]]
    assert sizes == [1398, 1398, 204]
    server_fin, ack, client_fin = ours[8:11]
    assert ack[TCP].sport == 40080 and ack[TCP].ack == server_fin[TCP].seq + 1
    assert times[9] == times[8]
    assert client_fin[TCP].ack == ack[TCP].ack


def test_wireshark_sees_clean_conversations(run, tshark):
    # checksums validated; one ACK for answer and FIN is no "ACKed segment that wasn't
    # captured", and no segment is taken for a retransmission or a duplicate ACK
    assert_clean_tcp(tshark, run.folder)
