"""TCP against the real kernel's exchange in `tests/reference/svc_clusterip_tcp/`.

The reference client reached its server through a Service VIP; here the same client and server
(node1 -> node2, the same request and answer) talk pod to pod, so addresses, ports and checksums
differ by design. Everything TCP decides is compared segment by segment on the client's eth0:
flags, relative sequence and acknowledgement numbers, windows, options and their order, payload,
DF, TTL, and the IP ID pattern (a per-socket counter; 0 on the SYN-ACK).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology_text

from conftest import REFERENCE, tshark_read

CLIENT = REFERENCE / "svc_clusterip_tcp" / "ksvc-n1-client__eth0.pcap"
SERVER = REFERENCE / "svc_clusterip_tcp" / "ksvc-n2-web-b__eth0.pcap"
TOPOLOGY = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: tcp}
nodes:
  - {name: node1, pods: [{name: client}]}
  - {name: node2, pods: [{name: web-b}]}
traffic:
  - tcp: {from: client, to: "web-b:8080", sport: 40080,
          payload: "GET / HTTP/1.1\\r\\nHost: web\\r\\n\\r\\n"}
  - tcp: {from: client, to: "web-b:8081", listen: false, payload: "x"}
  - tcp: {from: client, to: "web-b:8080", sport: 40081}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tcp") / "out"
    return runner.run(load_topology_text(TOPOLOGY, "tcp.yaml"), folder=folder)


def segments(path: Path) -> list:
    return [p for p in (Ether(f) for _, f in read_pcap(path)) if p.haslayer(TCP)]


def segment_times(path: Path) -> list[int]:
    """When each TCP segment of the capture was seen, ns."""
    return [t for t, f in read_pcap(path) if Ether(f).haslayer(TCP)]


def decisions(packets: list, client_port: int) -> list[tuple]:
    """What TCP decided in each segment, with sequence numbers relative to each side's ISN."""
    isn = {}
    rows = []
    for p in packets:
        ip, tcp = p[IP], p[TCP]
        mine = tcp.sport == client_port
        isn.setdefault(mine, tcp.seq)
        peer = not mine
        ack = (tcp.ack - isn[peer]) % 2**32 if "A" in tcp.flags and peer in isn else None
        options = [(kind, value) for kind, value in tcp.options if kind in ("MSS", "WScale")]
        rows.append(
            (
                "client" if mine else "server",
                str(tcp.flags),
                (tcp.seq - isn[mine]) % 2**32,
                ack,
                tcp.window,
                [kind for kind, _ in tcp.options],
                options,
                bytes(tcp.payload),
                ip.flags.DF,
                ip.ttl,
                len(p),
            )
        )
    return rows


def ip_ids(packets: list, client_port: int) -> dict[str, list[int]]:
    ids = {"client": [], "server": []}
    for p in packets:
        ids["client" if p[TCP].sport == client_port else "server"].append(p[IP].id)
    return ids


def test_the_exchange_matches_linux_segment_by_segment(run):
    reference = segments(CLIENT)
    ours = segments(run.folder / "client.default__eth0.pcap")[: len(reference)]
    assert len(reference) == 10
    assert decisions(ours, 40080) == decisions(reference, 40080)


def test_ip_ids_count_per_socket_and_the_syn_ack_has_zero(run):
    ours = ip_ids(segments(run.folder / "client.default__eth0.pcap")[:10], 40080)
    client, server = ours["client"], ours["server"]
    assert [(i - client[0]) % 2**16 for i in client] == [0, 1, 2, 3, 4]
    assert server[0] == 0
    assert [(i - server[1]) % 2**16 for i in server[1:]] == [0, 1, 2, 3]


def test_timestamps_echo_the_peer(run):
    packets = segments(run.folder / "client.default__eth0.pcap")[:10]
    last_val = {}
    for p in packets:
        ts = dict(p[TCP].options)["Timestamp"]
        side = p[TCP].sport
        other = p[TCP].dport
        if other in last_val:
            assert ts[1] == last_val[other]
        last_val[side] = ts[0]


def test_a_closed_port_answers_with_a_reset(run):
    syn, reset = segments(run.folder / "client.default__eth0.pcap")[10:12]
    assert str(syn[TCP].flags) == "S" and syn[TCP].dport == 8081
    assert str(reset[TCP].flags) == "RA" and reset[TCP].seq == 0
    assert reset[TCP].ack == syn[TCP].seq + 1 and reset[TCP].window == 0
    assert reset[IP].id == 0 and reset[TCP].options == []
    assert run.network.journal.steps[1].result == "connection reset"
    assert run.network.journal.steps[0].result == (
        "sent 29 bytes, received 24 bytes (HTTP/1.0 200 OK), closed"
    )


# what tshark's expert info says of a TCP conversation that is not as Linux sends one
TCP_PROBLEMS = (
    "ACKed segment that wasn't captured",
    "Previous segment not captured",
    "Bad checksum",
    "Malformed",
    "retransmission",
    "Dup ACK",
)


def assert_clean_tcp(tshark: str, folder: Path) -> None:
    """No capture of the run draws a TCP problem from tshark, checksums validated."""
    for capture in sorted(folder.glob("*.pcap")):
        expert = tshark_read(tshark, capture, "-q", "-z", "expert").lower()
        for problem in TCP_PROBLEMS:
            assert problem.lower() not in expert, f"{capture.name}: {problem}"


def test_wireshark_sees_a_clean_conversation(run, tshark):
    assert_clean_tcp(tshark, run.folder)


NOTE = re.compile(r"tcp ([SAFRP.]+) seq (\d+)(?: ack (\d+))? len (\d+)")
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def test_each_segments_note_states_its_own_fields(run, tshark):
    # the note written where a segment is sent gives that segment's seq, ack and length (not
    # the numbers after it: a SYN or FIN counts one)
    fields = ["frame.comment", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len"]
    output = tshark_read(
        tshark,
        run.folder / "all.pcapng",
        "-Y",
        "tcp",
        "-T",
        "fields",
        *(option for field in fields for option in ("-e", field)),
    )
    checked = []
    for line in output.splitlines():
        comment, flags, seq, ack, length = line.split("\t")
        note = NOTE.search(comment)
        if note is None:
            continue  # a later hop: its comment is that device's decision
        names, note_seq, note_ack, note_len = note.groups()
        flags = int(flags, 16)
        assert sum(TCP_FLAGS[name] for name in names if name != ".") == flags, comment
        assert int(note_seq) == int(seq), comment
        assert (int(note_ack) if note_ack else 0) == (int(ack) if flags & 0x10 else 0), comment
        assert int(note_len) == int(length), comment
        checked.append(names)
    assert {"S", "SA", "A", "PA", "FA", "RA"} <= set(checked)


def gaps(times: list[int], pairs) -> list[int]:
    return [times[later] - times[earlier] for earlier, later in pairs]


def test_the_applications_take_as_long_as_in_the_reference(run):
    # seen on each end's eth0, so the network's part is not in them: the client writes its
    # request when it wakes from connect() (segment 3 -> 4, 1.56 ms in the reference, not in
    # the instant of its ACK) and closes when it reads the end of the stream (8 -> 9); the
    # server answers (4 -> 6) and closes (6 -> 8) as the reference's did
    client = segment_times(run.folder / "client.default__eth0.pcap")[:10]
    server = segment_times(run.folder / "web-b.default__eth0.pcap")[:10]
    reference_client, reference_server = segment_times(CLIENT), segment_times(SERVER)
    on_client, on_server = [(2, 3), (7, 8)], [(3, 5), (5, 7)]
    assert gaps(reference_client, on_client) == [1_557_697, 108_274]
    ours = gaps(client, on_client) + gaps(server, on_server)
    theirs = gaps(reference_client, on_client) + gaps(reference_server, on_server)
    assert all(abs(a - b) <= 2_000 for a, b in zip(ours, theirs, strict=True)), (ours, theirs)


def test_a_tcp_step_without_payload_connects_and_closes(run):
    # what `nc -z` does: the handshake, the client's FIN when it wakes from connect(), the
    # server reads the end of the stream and closes; its FIN carries the ACK of the client's
    # (a FIN's ACK waits: tcp_fin() enters pingpong mode), the client's socket acks it
    steps = run.network.journal.steps
    assert steps[2].result == "connected and closed (no payload)"
    assert steps[2].outcome == "delivered"
    ours = [
        p for p in segments(run.folder / "client.default__eth0.pcap") if 40081 in (p.sport, p.dport)
    ]
    assert [str(p[TCP].flags) for p in ours] == ["S", "SA", "A", "FA", "FA", "A"]
    assert all(not p[TCP].payload for p in ours)
    client_ids = [p[IP].id for p in ours if p[TCP].sport == 40081]
    assert [(i - client_ids[0]) % 2**16 for i in client_ids] == [0, 1, 2, 3]


def test_the_last_ack_comes_from_the_time_wait_socket_when_the_fin_is_late(tmp_path, monkeypatch):
    # in the reference the server's FIN came with its ACK of the client's, so the client's
    # last ACK left from its full socket (counter ID, test_ip_ids_...). When the server's
    # application is slower than the delayed ACK, its ACK comes alone, the client's closed
    # socket becomes a TIME_WAIT socket, and that answers the late FIN with IP ID 0
    from kpkt.apps import tcp as tcp_app
    from kpkt.net.tcp_connection import DELACK_NS

    monkeypatch.setattr(tcp_app, "EOF_WAKE_NS", DELACK_NS + 10_000_000)
    topology = TOPOLOGY.split("traffic:")[0] + (
        'traffic:\n  - tcp: {from: client, to: "web-b:8080", sport: 40081}\n'
    )
    result = runner.run(load_topology_text(topology, "tcp.yaml"), folder=tmp_path / "out")
    ours = segments(result.folder / "client.default__eth0.pcap")
    times = segment_times(result.folder / "client.default__eth0.pcap")
    assert [str(p[TCP].flags) for p in ours] == ["S", "SA", "A", "FA", "A", "FA", "A"]
    fin, delayed_ack, late_fin, last_ack = ours[3:]
    assert times[4] - times[3] >= DELACK_NS
    assert last_ack[IP].id == 0 and last_ack[TCP].ack == late_fin[TCP].seq + 1
    assert fin[IP].id != 0
    assert result.network.journal.steps[0].result == "connected and closed (no payload)"


@pytest.mark.parametrize("server", ["web-b", "web-a"], ids=["across-nodes", "same-node"])
def test_a_request_longer_than_a_segment_is_answered_once(tmp_path, server):
    # the server reads the whole request before it answers (as an HTTP server reads up to the
    # end of the request), however many segments carry it: one answer, one FIN
    request = "x" * 3000  # three segments at the pod MTU
    topology = (
        TOPOLOGY.split("nodes:")[0]
        + "nodes:\n"
        + "  - {name: node1, pods: [{name: client}, {name: web-a}]}\n"
        + "  - {name: node2, pods: [{name: web-b}]}\n"
        + f'traffic:\n  - tcp: {{from: client, to: "{server}:8080", sport: 40080,'
        + f' payload: "{request}"}}\n'
    )
    result = runner.run(load_topology_text(topology, "tcp.yaml"), folder=tmp_path / "out")
    step = result.network.journal.steps[0]
    response = load_topology_text(topology, "tcp.yaml").steps[0].response
    assert (step.sent, step.received) == (3000, len(response))
    assert step.outcome == "delivered"
    ours = [p for p in segments(result.folder / "client.default__eth0.pcap") if p.sport != 40080]
    answered = b"".join(bytes(p[TCP].payload) for p in ours)
    assert answered == response
    assert sum(1 for p in ours if "F" in str(p[TCP].flags)) == 1
