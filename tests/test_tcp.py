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

from kpkt.capture.pcap import read_pcap
from kpkt.output import run_to_folder
from kpkt.topology.load import load_topology_text

from conftest import REFERENCE, tshark_read

CLIENT = REFERENCE / "svc_clusterip_tcp" / "ksvc-n1-client__eth0.pcap"
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
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tcp") / "out"
    return run_to_folder(load_topology_text(TOPOLOGY, "tcp.yaml"), folder)


def segments(path: Path) -> list:
    return [p for p in (Ether(f) for _, f in read_pcap(path)) if p.haslayer(TCP)]


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


def test_wireshark_sees_a_clean_conversation(run, tshark):
    for capture in sorted(run.folder.glob("*.pcap")):
        expert = tshark_read(tshark, capture, "-q", "-z", "expert")
        for problem in (
            "ACKed segment that wasn't captured",
            "Previous segment not captured",
            "Bad checksum",
            "Malformed",
            "retransmission",
            "Dup ACK",
        ):
            assert problem.lower() not in expert.lower(), f"{capture.name}: {problem}"


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
