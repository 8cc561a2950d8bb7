"""TCP under faults, on the wire: what Linux does next when segments are lost. SYN retries as
tcp_syn_retries gives them, the SYN-ACK retransmitted, the retransmission timer following the
RTT (200 ms floor) and doubling while a link is down, fast retransmit after three duplicate
ACKs with SACK blocks, and the TIME_WAIT socket acknowledging a retransmitted FIN again."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology_text

MS = 1_000_000
SECOND = 1_000_000_000
HEAD = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: tcp-loss}
nodes:
  - {name: node1, pods: [{name: client}]}
  - {name: node2, pods: [{name: server}]}
traffic:
"""
REQUEST = 'payload: "GET / HTTP/1.0\\r\\n\\r\\n"'


def run(tmp_path: Path, traffic: str, name: str = "out") -> runner.Run:
    topology = load_topology_text(HEAD + traffic, "tcp-loss.yaml")
    return runner.run(topology, folder=tmp_path / name, report=False)


def segments(result: runner.Run, capture: str) -> list[tuple[int, TCP]]:
    """(time, TCP header) of every segment in `capture`."""
    packets = ((t, Ether(f)) for t, f in read_pcap(result.folder / f"{capture}.pcap"))
    return [(t, p[TCP]) for t, p in packets if p.haslayer(TCP)]


def from_port(rows: list[tuple[int, TCP]], port: int) -> list[tuple[int, TCP]]:
    return [(t, s) for t, s in rows if s.sport == port]


def test_syn_retries_then_timeout_and_the_syn_ack_retransmitted(tmp_path: Path) -> None:
    """The server's every frame is lost: the client sends its SYN 1 s apart four times, then
    2 and 4 s apart, and gives up 8 s after the last; the server answers each SYN at once and
    retransmits its SYN-ACK on its own timer, 1 s after the first, then 2 s after that (until
    its ARP entries for the gateway fail too, from 5 s on, as a kernel's would)."""
    result = run(
        tmp_path,
        f"""\
  - ping: {{from: client, to: server}}
  - impair: {{pod: server, interface: eth0, loss: 100%}}
  - tcp: {{from: client, to: "server:8080", {REQUEST}}}
""",
    )
    log = result.network.journal.steps[2]
    assert log.result == "connection timed out"
    syns = [t for t, s in segments(result, "client.default__eth0") if s.flags == "S"]
    start = syns[0]
    assert [t - start for t in syns] == [n * SECOND for n in (0, 1, 2, 3, 4, 6, 10)]
    # the last wait, 8 s, then connect() fails (the step ends once nothing of it is left)
    assert start + 18 * SECOND <= log.end_ns < start + 18 * SECOND + MS
    # the SYN-ACKs, lost as they leave the server (7 us after the client sent its SYN)
    lost = [
        d.t_ns - start - 7_000
        for d in log.drops
        if d.where == "server.default/eth0" and d.t_ns < start + 4.5 * SECOND
    ]
    answers, timer = [0, 1, 2, 3, 4], [1, 3]
    assert lost == sorted(n * SECOND for n in answers + timer)


def test_rto_follows_the_rtt_and_doubles_while_the_link_is_down(tmp_path: Path) -> None:
    """The link goes down as the server answers and comes back 4 s later: the answer is
    retransmitted an RTO after it was sent (SRTT + 200 ms: the RTT here is microseconds), then
    2, 4, 8 and 16 times that after the try before; the first try after the link is up gets
    through, and the connection ends normally."""
    result = run(
        tmp_path,
        f"""\
  - tcp: {{from: client, to: "server:8080", {REQUEST}}}
  - link: {{node: node2, interface: eth0, state: down, at: 1.7ms}}
  - link: {{node: node2, interface: eth0, state: up, at: 4s}}
""",
    )
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "applied", "applied"]
    assert logs[1].start_ns == 1_700_000 and logs[2].start_ns == 4 * SECOND
    answer = [
        t for t, s in from_port(segments(result, "server.default__eth0"), 8080) if len(s.payload)
    ]
    first = answer[0]
    rto = answer[1] - first
    assert 200 * MS < rto < 201 * MS
    assert [t - first for t in answer] == [0, rto, 3 * rto, 7 * rto, 15 * rto, 31 * rto]
    assert answer[-2] < 4 * SECOND < answer[-1]  # through, once the link is up
    lost = [d for d in logs[0].drops if d.reason == "link-down"]
    assert len(lost) == 6  # the answer five times and the server's FIN


def test_fast_retransmit_and_rto_under_ten_percent_loss(tmp_path: Path) -> None:
    """10% loss both ways on a cross-node transfer of 20 kB: it completes; every segment sent
    again is explained by Linux's rules: three duplicate ACKs (fast retransmit), a partial
    ACK during recovery, or at least an RTO (200 ms) since it was last sent; duplicate ACKs
    carry SACK blocks."""
    response = "x" * 20_000
    result = run(
        tmp_path,
        f"""\
  - impair: {{node: node1, interface: eth0, loss: 10%}}
  - impair: {{node: node2, interface: eth0, loss: 10%}}
  - tcp: {{from: client, to: "server:8080", {REQUEST}, response: "{response}"}}
""",
    )
    log = result.network.journal.steps[2]
    assert log.outcome == "delivered" and log.received == 20_000
    rows = segments(result, "server.default__eth0")  # what the server sent and received
    sent_at: dict[int, int] = {}
    acks: list[tuple[int, int, bool]] = []  # (time, ack, carries SACK) received by the server
    causes = []
    for t, seg in rows:
        if seg.sport != 8080:
            sack = any(name == "SAck" for name, _ in seg.options)
            acks.append((t, seg.ack, sack))
            continue
        if not len(seg.payload) and "F" not in seg.flags:
            continue
        if seg.seq in sent_at:
            since = [(at, ack, sack) for at, ack, sack in acks if at >= sent_at[seg.seq]]
            dupacks = [a for a in since if a[1] == seg.seq]
            if len(dupacks) >= 3:
                causes.append("fast retransmit")
                assert all(sack for _, _, sack in dupacks[1:]), "duplicate ACKs carry SACK"
            elif t - sent_at[seg.seq] >= 200 * MS:
                causes.append("rto")
            else:
                assert since and since[-1][1] == seg.seq and since[-1][0] == t, seg.seq
                causes.append("partial ack")
        sent_at[seg.seq] = t
    assert "fast retransmit" in causes and "rto" in causes


def test_time_wait_acknowledges_a_retransmitted_fin(tmp_path: Path) -> None:
    """The server's last ACK is lost: the client retransmits its FIN an RTO later and the
    server's TIME_WAIT socket acknowledges it again (IP ID 0)."""
    traffic = f'  - tcp: {{from: client, to: "server:8080", {REQUEST}}}\n'
    plain = run(tmp_path, traffic, "plain")
    fin = next(
        t for t, s in segments(plain, "client.default__eth0") if "F" in s.flags and s.sport != 8080
    )
    result = run(
        tmp_path,
        traffic
        + f"""\
  - impair: {{node: node2, interface: eth0, loss: 100%, at: {fin}ns}}
  - impair: {{node: node2, interface: eth0, clear: true, at: {fin + 100 * MS}ns}}
""",
        "lossy",
    )
    client = segments(result, "client.default__eth0")
    fins = [t for t, s in client if "F" in s.flags and s.sport != 8080]
    assert len(fins) == 2 and 200 * MS < fins[1] - fins[0] < 201 * MS
    last = [
        (t, s)
        for t, s in segments(result, "server.default__eth0")
        if s.sport == 8080 and t > fins[1]
    ]
    assert len(last) == 1 and last[0][1].flags == "A" and last[0][1].underlayer[IP].id == 0
    assert result.network.journal.steps[0].outcome == "delivered"
