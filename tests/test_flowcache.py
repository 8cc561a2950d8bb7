"""The flow cache (kpkt/flowcache.py) changes nothing but the time a run takes: every file a run
writes is the same byte for byte with the cache on and off, for the goldens and for random
clusters and traffic with timers expiring mid-flow (neighbour entries going STALE, DELAY and
PROBE, FDB entries ageing out), links going down and coming back, netem loss and delay, and
services (conntrack, DNAT); and it does replay the packets of a flow, UDP datagrams and pings
(echo requests and the replies the target's stack makes)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_golden import GOLDEN, SCENARIOS

from kpkt import flowcache, golden, runner
from kpkt.capture import pcap, pcapng, tap
from kpkt.capture.tap import Journal
from kpkt.compiled import Names
from kpkt.engine.scheduler import RUN_AHEAD, Scheduler
from kpkt.flowcache import (
    _HOPS,
    _INPUT,
    _SEEN,
    FLOW_CACHE_DEFAULT,
    _Encap,
    _fastest,
    _grouped,
    _layout,
    _made,
    _OneHeader,
    _Slice,
    _Sources,
    _Template,
    echo_key,
    frame_key,
)
from kpkt.net.icmp import ping_payload
from kpkt.net.stack import Stack
from kpkt.observe import OUT
from kpkt.topology.load import load_topology, load_topology_text
from kpkt.wire import icmp
from kpkt.wire.ethernet import ETH_P_IP, eth_header
from kpkt.wire.ipv4 import PROTO_ICMP, PROTO_UDP, decrement_ttl, ipv4_packet
from kpkt.wire.udp import udp_segment
from kpkt.wire.vxlan import vxlan_header

CLUSTERS = {
    "flannel": "cluster: {cni: flannel}",
    "host-gw": "cluster: {cni: flannel, flannel: {backend: host-gw}}",
    "calico-ipip": "cluster: {cni: calico, underlay: {gateway: 192.168.50.254}}",
    "calico-vxlan": (
        "cluster: {cni: calico, calico: {ipipMode: Never, vxlanMode: Always},"
        " underlay: {gateway: 192.168.50.254}}"
    ),
    "weave": "cluster: {cni: weave}",
    "weave-sleeve": "cluster: {cni: weave, weave: {mode: sleeve}}",
}
SERVICE = (
    "services: [{name: svc, selector: {app: s},"
    " ports: [{port: 53, targetPort: 5300, protocol: UDP}]}]"
)


def run_both(text: str, tmp_path: Path) -> tuple[dict[str, bytes], int]:
    """The files a run of `text` writes with the cache off and on (which must be the same),
    and how many segments the cache replayed."""
    outputs, hits = [], 0
    for flow_cache in (False, True):
        folder = tmp_path / f"cache-{flow_cache}"
        result = runner.run(
            load_topology_text(text, "t.yaml"), folder=folder, report=False, flow_cache=flow_cache
        )
        if flow_cache:
            hits = result.network.flow_cache.hits
        outputs.append({p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    off, on = outputs
    assert sorted(off) == sorted(on)
    differing = [name for name in off if off[name] != on[name]]
    assert not differing, f"differ with the flow cache on: {differing}"
    return on, hits


def topology(cluster: str, traffic: list[str], nodes: int = 2, pods: int = 2) -> str:
    lines = ["apiVersion: kpkt/v1", "kind: Topology", "metadata: {name: t}", CLUSTERS[cluster]]
    lines.append("nodes:")
    for n in range(1, nodes + 1):
        # the service's endpoint is the first pod of the last node
        labels = [", labels: {app: s}" if (n, i) == (nodes, 1) else "" for i in range(pods + 1)]
        members = ", ".join(f"{{name: p{n}{i}{labels[i]}}}" for i in range(1, pods + 1))
        lines.append(f"  - {{name: node{n}, pods: [{members}]}}")
    lines.append(SERVICE)
    lines.append("traffic:")
    lines += [f"  - {step}" for step in traffic]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_a_flow_is_replayed_and_its_captures_are_the_same(cluster: str, tmp_path: Path) -> None:
    udp = "udp: {from: p11, to: p21, dport: 5000, payload: x, count: 40, interval: 10us}"
    _, hits = run_both(topology(cluster, [udp]), tmp_path)
    # per datagram after the first few: the send, the sender's node, the receiver's node, the
    # receiving pod; on weave the nodes' segments are not recorded (weave's router is a
    # datapath the cache does not know)
    assert hits >= (2 if cluster.startswith("weave") else 4) * 35


# the lines of kpkt's code (generated functions included) a replayed datagram of a cross-node
# flow executes, flannel, 10 capture points: measured 460 on 2026-12-03 with the segments
# compiled, 401 with the capture points' records too (1,193 without the cache), 366 on
# 2026-12-04 with an arrival's segments compiled into one chain, 357 with the records in it,
# 349 with the send in it and the next send taken at once, 317 with its all.pcapng blocks
# written in it and a hand-over checking only the next recording's expiry, 315 with the
# promised send held and the records' files flushed with all.pcapng
MAX_LINES_PER_CACHED_DATAGRAM = 340


def _per_datagram(tmp_path: Path, monkeypatch) -> tuple[float, float]:
    """Lines of kpkt's code executed (generated segments included), and scheduler events run,
    per datagram of a long cross-node flow on flannel: the difference of a 400- and a
    200-datagram run (the first datagrams, recorded, and the start-up cancel out). Lines are
    counted with sys.settrace: the same count on every run, unlike time."""
    package = str(Path(runner.__file__).parent)
    events = 0
    step = Scheduler.step

    def counted(sched: Scheduler) -> bool:
        nonlocal events
        events += 1
        return step(sched)

    monkeypatch.setattr(Scheduler, "step", counted)
    counts = []
    for count in (200, 400):
        udp = f"udp: {{from: p11, to: p21, dport: 5000, count: {count}, interval: 10us}}"
        topology_text = topology("flannel", [udp])
        lines, events = 0, 0

        def line(frame, event, arg):
            nonlocal lines
            lines += event == "line"
            return line

        def enter(frame, event, arg):
            name = frame.f_code.co_filename
            return line if name.startswith(package) or name == "<string>" else None

        sys.settrace(enter)
        try:
            runner.run(
                load_topology_text(topology_text, "t.yaml"),
                folder=tmp_path / str(count),
                report=False,
            )
        finally:
            sys.settrace(None)
        counts.append((lines, events))
    (lines_200, events_200), (lines_400, events_400) = counts
    return (lines_400 - lines_200) / 200, (events_400 - events_200) / 200


def test_a_replayed_datagram_costs_what_it_did(tmp_path: Path, monkeypatch) -> None:
    """A guard against the replay slowing down (which byte-for-byte tests cannot see): the
    lines a cached datagram executes, and its scheduler events: nearly none. The sender
    promises its next send before it sends (Scheduler.promise), so its datagram goes its way
    at once (Scheduler.hand_over_sent) through one compiled chain, its four segments handed
    over, since nothing else is due before them; and its next send is the next thing to
    happen, so it happens at once too (Scheduler.keep_promise), but for one in RUN_AHEAD + 1,
    which passes through the event loop."""
    lines, events = _per_datagram(tmp_path, monkeypatch)
    assert events <= 1 / RUN_AHEAD
    assert lines <= MAX_LINES_PER_CACHED_DATAGRAM


def test_a_chain_is_compiled_again_with_a_recording_made_after_it(
    tmp_path: Path, monkeypatch
) -> None:
    """The recordings of node2's host namespace expire every 200 us (as if a timer of its
    tables were due), while the sender's go on: each time, the datagram's chain, compiled
    through node2, hands it to the cache there (FlowCache._resume), which records node2's way
    again; the next datagram's chain finds that new recording and is compiled again with it,
    so the datagrams after it go the whole way in one chain again. (Were the chain not compiled
    again, every datagram after the first expiry would leave its chain at node2: 378 of 400.)"""
    expiry, resume = flowcache._expiry, flowcache.FlowCache._resume
    resumed = 0

    def soon(stack) -> int:
        due = expiry(stack)
        return min(due, stack.sched.now + 200_000) if stack.owner == "node2" else due

    def counted(cache, *args) -> None:
        nonlocal resumed
        resumed += 1
        resume(cache, *args)

    monkeypatch.setattr(flowcache, "_expiry", soon)
    monkeypatch.setattr(flowcache.FlowCache, "_resume", counted)
    udp = "udp: {from: p11, to: p21, dport: 5000, count: 400, interval: 10us}"
    _, hits = run_both(topology("flannel", [udp]), tmp_path)
    assert hits >= 4 * 350
    assert resumed <= 60  # twice an expiry, 20 of them (measured 39)


@pytest.mark.parametrize("cluster", ["flannel", "calico-ipip", "calico-vxlan"])
def test_a_long_flow_is_the_same_past_the_limits_and_flushes(
    cluster: str, tmp_path: Path, monkeypatch
) -> None:
    # replayed hops are written at once (kpkt/capture/tap.py `Hops`) once the step's table
    # rows are kept: across the hop log's limit and the files' flushes, as hop by hop
    monkeypatch.setattr(tap, "MAX_HOPS_PER_STEP", 1234)
    monkeypatch.setattr(tap, "FLUSH_BYTES", 5000)
    monkeypatch.setattr(pcap, "FLUSH_BYTES", 5000)
    monkeypatch.setattr(pcapng, "FLUSH_BYTES", 20000)
    # every file's buffer stays bounded: a replay's pcap records are flushed with all.pcapng
    # (PcapngWriter.alongside), which gets a larger block for each of them
    largest, flush = 0, pcap.AppendingFile.flush

    def flushed(writer) -> None:
        nonlocal largest
        largest = max(largest, len(writer.buffer))
        flush(writer)

    monkeypatch.setattr(pcap.AppendingFile, "flush", flushed)
    udp = "udp: {from: p11, to: p21, dport: 5000, payload: '%d%%', count: 900, interval: 10us}"
    _, hits = run_both(topology(cluster, [udp]), tmp_path)
    assert hits >= 4 * 890
    assert largest <= 20000 + 5000 + 2000  # all.pcapng's limit and a pcap's, and a segment's


@pytest.mark.parametrize(
    "traffic",
    [
        # neighbour entries go STALE (reachable_time 15 to 45 s), DELAY and PROBE mid-flow
        ["udp: {from: p11, to: p21, dport: 5000, count: 12, interval: 7s}"],
        # over 400 s: neighbour entries cycle through STALE, DELAY, PROBE and REACHABLE, the
        # FDB entry of the quiet receiver ages out (300 s)
        ["udp: {from: p11, to: p22, dport: 5000, count: 200, interval: 2s}"],
        # the link goes down mid-flow and comes back
        [
            "udp: {from: p11, to: p21, dport: 5000, count: 60, interval: 100us}",
            "link: {node: node2, interface: eth0, state: down, at: 2ms}",
            "link: {node: node2, interface: eth0, state: up, at: 4ms}",
        ],
        # netem loss and delay on the way, then cleared
        [
            "udp: {from: p11, to: p21, dport: 5000, count: 60, interval: 100us}",
            "impair: {node: node1, interface: eth0, loss: 30%, delay: 150us, at: 1ms}",
            "impair: {node: node1, interface: eth0, clear: true, at: 4ms}",
        ],
        # a service: kube-proxy's DNAT, conntrack, and the reverse direction of a flow
        [
            "udp: {from: p11, to: 'svc:53', count: 20, interval: 1ms}",
            "udp: {from: p21, to: p11, sport: 5300, dport: 5000, count: 20, interval: 1ms}",
        ],
        # pods on one node, and a node's own datagrams
        [
            "udp: {from: p11, to: p12, dport: 5000, count: 20, interval: 1ms}",
            "udp: {from: node1, to: p21, dport: 5000, count: 20, interval: 1ms}",
        ],
    ],
)
@pytest.mark.parametrize("cluster", ["flannel", "calico-ipip"])
def test_state_changing_mid_flow_is_not_replayed_from_before(
    cluster: str, traffic: list[str], tmp_path: Path
) -> None:
    _, hits = run_both(topology(cluster, traffic), tmp_path)
    assert hits > 0


PING = "ping: {from: p11, to: p21, count: 40, interval: 10us}"


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_a_ping_is_replayed_and_its_captures_are_the_same(cluster: str, tmp_path: Path) -> None:
    _, hits = run_both(topology(cluster, [PING]), tmp_path)
    # per echo after the first few: the request sent, the sender's node, the receiver's node,
    # the receiving pod answering, the receiver's node and the sender's node again, the sending
    # pod getting the reply; on weave only the three in the pods
    assert hits >= (3 if cluster.startswith("weave") else 7) * 35


@pytest.mark.parametrize(
    "ping",
    [
        # the sequence number wraps; ping's data without room for its time (under 16 bytes),
        # with just room, and larger
        "ping: {from: p11, to: p21, id: 7, seq: 65530, count: 12, interval: 10us, size: 0}",
        "ping: {from: p11, to: p21, count: 12, interval: 10us, size: 15}",
        "ping: {from: p11, to: p21, count: 12, interval: 10us, size: 16}",
        "ping: {from: p11, to: p21, count: 12, interval: 1ms, size: 1000}",
        # an echo reply of id 0, sequence 0 and no data is all zeros but for its checksum
        # (0xffff, not what the sum of its other words gives): the replies are not recorded
        "ping: {from: p11, to: p21, id: 0, seq: 65534, count: 4, interval: 10us, size: 1}",
        # TTL exceeded on the way: ICMP errors, which are not cached
        "ping: {from: p11, to: p21, count: 5, interval: 10us, ttl: 1}",
    ],
)
@pytest.mark.parametrize("cluster", ["flannel", "calico-vxlan"])
def test_pings_of_every_size_and_sequence_are_the_same(
    cluster: str, ping: str, tmp_path: Path
) -> None:
    run_both(topology(cluster, [ping]), tmp_path)


def test_a_replayed_echo_reply_is_the_same_new_packet(tmp_path: Path, monkeypatch) -> None:
    # the segment that answers an echo request makes a new packet (`Journal.packet`): replayed,
    # it makes the same calls in the same order, so every packet gets the same id and flow
    calls: list[tuple[int, int, int]] = []
    answered: list[int] = []  # the echo replies the stack's slow path made
    new_packet = Journal.packet

    def logged(journal, tag):
        new = new_packet(journal, tag)
        calls.append((tag.pid, new.pid, new.flow))
        if sys._getframe(1).f_code is Stack._icmp_receive.__code__:
            answered.append(new.pid)
        return new

    monkeypatch.setattr(Journal, "packet", logged)
    udp = "udp: {from: p12, to: p22, dport: 5000, count: 40, interval: 10us}"
    text = topology("flannel", [PING, udp, PING.replace("p21", "node2")])
    journals, slow = [], []
    for flow_cache in (False, True):
        calls.clear()
        answered.clear()
        folder = tmp_path / f"cache-{flow_cache}"
        runner.run(
            load_topology_text(text, "t.yaml"), folder=folder, report=False, flow_cache=flow_cache
        )
        journals.append(list(calls))
        slow.append(len(answered))
    assert journals[0] == journals[1]
    assert len(journals[0]) >= 40 * 5  # requests and replies, datagrams; and ARP's
    # without the cache the pod and the node made their 40 replies each; with it, the first
    # few, the rest were replayed
    assert slow == [80, slow[1]] and slow[1] <= 10


@pytest.mark.parametrize("cluster", ["flannel", "calico-ipip"])
@pytest.mark.parametrize(
    "steps",
    [
        # the link goes down mid-ping and comes back
        [
            "link: {node: node2, interface: eth0, state: down, at: 1ms}",
            "link: {node: node2, interface: eth0, state: up, at: 3ms}",
        ],
        # the sender's container restarts (its ping socket closes: later replies are ignored),
        # the target's does (the kernel answers)
        ["restart: {pod: p11, at: 2ms}"],
        ["restart: {pod: p21, at: 2ms}"],
        # labels change, the target is deleted
        ["label: {pod: p21, set: {app: t}, at: 1ms}", "delete: {pod: p21, at: 3ms}"],
        # loss on the way
        ["impair: {node: node1, interface: eth0, loss: 30%, at: 1ms}"],
    ],
)
def test_a_ping_changing_mid_flow_is_not_replayed_from_before(
    cluster: str, steps: list[str], tmp_path: Path
) -> None:
    ping = "ping: {from: p11, to: p21, count: 50, interval: 100us}"
    _, hits = run_both(topology(cluster, [ping, *steps]), tmp_path)
    assert hits > 0


def test_a_ping_step_ends_with_its_last_reply_when_its_echoes_go_at_once(tmp_path: Path) -> None:
    """A ping's requests and replies replayed at once (its next request promised first,
    Scheduler.promise) still end the step when the last reply is in, not a second later
    when the wait for missing replies would end: that wait is not taken at once."""
    pings = [
        "ping: {from: p21, to: node1, count: 4, interval: 10us, size: 0}",
        "ping: {from: p21, to: node1, count: 4, interval: 100us, size: 0}",
    ]
    on, hits = run_both(topology("flannel", pings), tmp_path)
    assert hits > 0
    steps = json.loads(on["manifest.json"])["steps"]
    assert steps[1]["endNs"] - steps[1]["startNs"] < 1_000_000  # not the 1 s wait


@pytest.mark.parametrize("cluster", ["flannel", "calico-ipip", "calico-vxlan"])
def test_pings_to_nodes_a_service_and_nowhere_are_the_same(cluster: str, tmp_path: Path) -> None:
    # kube-proxy does not translate a ping to a ClusterIP: it goes to the gateway (Calico's
    # clusters here have one) or gets net unreachable from the node
    steps = [
        "ping: {from: p11, to: svc, count: 20, interval: 10us}",
        "ping: {from: node1, to: p22, count: 20, interval: 10us}",
        "ping: {from: p11, to: node2, count: 20, interval: 10us}",
        "ping: {from: p11, to: p12, count: 20, interval: 10us}",
        "ping: {from: p11, to: '10.244.9.9', count: 20, interval: 10us}",
    ]
    _, hits = run_both(topology(cluster, steps), tmp_path)
    assert hits > 0


HOSTS = ["p11", "p12", "p21", "p22", "node1", "node2", "'10.244.9.9'"]
TIMES = ["10us", "100us", "1ms", "3s", "20s", "200s"]


@st.composite
def random_runs(draw) -> str:
    cluster = draw(st.sampled_from(sorted(CLUSTERS)))
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["udp", "udp", "udp", "ping", "tcp", "link", "impair"]))
        at = f", at: {draw(st.sampled_from(TIMES))}" if draw(st.booleans()) else ""
        if kind in ("link", "impair"):
            where = draw(st.sampled_from(["node: node1", "node: node2", "pod: p21", "pod: p11"]))
            if kind == "link":
                state = draw(st.sampled_from(["down", "up"]))
                steps.append(f"link: {{{where}, interface: eth0, state: {state}{at}}}")
            elif draw(st.booleans()):
                steps.append(f"impair: {{{where}, interface: eth0, clear: true{at}}}")
            else:
                loss = draw(st.sampled_from(["0%", "20%"]))
                delay = draw(st.sampled_from(["0ms", "50us", "2ms"]))
                steps.append(
                    f"impair: {{{where}, interface: eth0, loss: {loss}, delay: {delay}{at}}}"
                )
            continue
        src = draw(st.sampled_from(HOSTS[:6]))
        dst = draw(st.sampled_from(HOSTS))
        interval = draw(st.sampled_from(TIMES))
        if kind == "udp":
            count = draw(st.integers(1, 30))
            ttl = draw(st.sampled_from([1, 2, 64]))
            to = draw(st.sampled_from([f"{dst}, dport: 5300", "'svc:53'"]))
            steps.append(
                f"udp: {{from: {src}, to: {to}, count: {count}, "
                f"interval: {interval}, ttl: {ttl}{at}}}"
            )
        elif kind == "ping":
            count = draw(st.integers(1, 12))
            size = draw(st.sampled_from([0, 15, 16, 56, 1300]))
            body = f"from: {src}, to: {dst}, count: {count}, interval: {interval}, size: {size}{at}"
            steps.append(f"ping: {{{body}}}")
        else:
            steps.append(f"tcp: {{from: {src}, to: {dst}, dport: 5300{at}}}")
    return topology(cluster, steps)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(random_runs())
def test_random_clusters_and_traffic_are_the_same_with_the_cache(text: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        run_both(text, Path(scratch))


def test_the_flow_cache_is_on_by_default() -> None:
    # test_golden runs every golden with the default (the cache on), the test below without it
    assert FLOW_CACHE_DEFAULT is True


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden_without_the_flow_cache(scenario: str, tmp_path: Path) -> None:
    actual = tmp_path / "run"
    runner.run(load_topology(SCENARIOS[scenario]), folder=actual, report=False, flow_cache=False)
    for name, text in golden.render(actual).items():
        (actual / name).write_text(text)
    assert golden.compare(GOLDEN / scenario / "expected", actual) == []


def vxlan_frame(outer_id: int, inner_id: int, ttl: int, payload: bytes, checksum: bool) -> bytes:
    """A VXLAN frame as node1's eth0 sends it, built by the datapath's own builders."""
    inner = ETH + ipv4_packet(
        POD_A,
        POD_B,
        PROTO_UDP,
        udp_segment(POD_A, POD_B, 40000, 5000, payload),
        ident=inner_id,
        ttl=ttl,
    )
    return vxlan(inner, outer_id, checksum)


def vxlan(inner: bytes, outer_id: int, checksum: bool) -> bytes:
    """The VXLAN frame node1's eth0 sends around the frame `inner`."""
    segment = udp_segment(NODE1, NODE2, 50066, 8472, vxlan_header(1) + inner, checksum)
    return ETH + ipv4_packet(NODE1, NODE2, PROTO_UDP, segment, ident=outer_id, df=False)


ETH = eth_header(b"\x02\x00\x00\x00\x00\x02", b"\x02\x00\x00\x00\x00\x01", ETH_P_IP)
POD_A, POD_B = bytes([10, 244, 1, 2]), bytes([10, 244, 2, 2])
NODE1, NODE2 = bytes([192, 168, 50, 1]), bytes([192, 168, 50, 2])


def test_a_frame_key_leaves_out_only_ip_ids_and_checksums() -> None:
    key = frame_key(vxlan_frame(1, 2, 63, b"x", True), frozenset({8472}))
    assert key == frame_key(vxlan_frame(7, 9, 63, b"x", True), frozenset({8472}))
    assert key != frame_key(vxlan_frame(1, 2, 62, b"x", True), frozenset({8472}))
    assert key != frame_key(vxlan_frame(1, 2, 63, b"y", True), frozenset({8472}))
    # a UDP port that is not a tunnel's: the datagram is all payload, in the key
    key = frame_key(vxlan_frame(1, 2, 63, b"x", True), frozenset())
    assert key != frame_key(vxlan_frame(1, 3, 63, b"x", True), frozenset())


# a VXLAN packet's fields: four distinct IP IDs (two for the recorded packet, two for a later
# one), the inner TTL, the payload, and whether the tunnel sends a UDP checksum
VXLAN_FRAMES = (
    st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4, unique=True),
    st.integers(2, 255),
    st.binary(max_size=40),
    st.booleans(),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(*VXLAN_FRAMES)
def test_a_template_makes_what_the_builders_make(ids, ttl, payload, checksum) -> None:
    # the IDs drawn by the recorded packet and by a later one; every checksum the template
    # redoes from its sums must be what ipv4_packet and udp_segment compute
    tunnels = frozenset({8472})
    recorded = vxlan_frame(ids[0], ids[1], ttl, payload, checksum)
    ips, sums = [], []
    assert _layout(recorded, 14, tunnels, ips, sums)
    template = _Template.of(recorded, ips, sums, _Sources(None, tunnels, ids[:2]))
    assert template.make(ids[:2], [None]) == recorded
    assert template.make(ids[2:], [None]) == vxlan_frame(ids[2], ids[3], ttl, payload, checksum)


def fastest(data: bytes, raw: bool, frames: list, sources: _Sources, raws=None):
    """The template `kpkt/flowcache.py` replays `data` with, made after `frames` (Ethernet
    frames, unless `raws` says which start with the IPv4 header)."""
    ips, sums = [], []
    assert _layout(data, 0 if raw else 14, frozenset({8472}), ips, sums)
    template = _Template.of(data, ips, sorted(sums, reverse=True), sources)
    raws = raws or [False] * len(frames)
    return _fastest(template, frames, raws, ips, sums, sources.fields)


def replayed(templates: list, sources: _Sources, frame: bytes, draws: list[int]) -> list[bytes]:
    """The frames `templates` make for an input `frame`, with the namespace drawing `draws`:
    by their `make`, which must be what the replay's compiled source makes (`_made`)."""
    values = [*sources.reader().unpack_from(frame), *draws]
    frames = [frame]
    for template in templates:
        frames.append(template.make(values, frames))
    names, made = Names(), ["frame"]
    lines = ["def made(frame, v):", *_made(templates, names.bind, made)]
    compiled = names.function([*lines, f"    return [{', '.join(made)}]"])
    assert compiled(frame, tuple(values)) == frames
    return frames[1:]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(*VXLAN_FRAMES)
def test_the_fast_templates_make_what_the_builders_make(ids, ttl, payload, checksum) -> None:
    tunnels = frozenset({8472})
    # a VXLAN packet arriving: its inner frame as it came, then routed on
    recorded = vxlan_frame(ids[0], ids[1], ttl, payload, checksum)
    sources = _Sources(recorded, tunnels, [])
    inner = fastest(recorded[50:], False, [recorded], sources)
    routed = fastest(ETH + decrement_ttl(recorded[64:]), False, [recorded, inner.data], sources)
    assert [type(inner), type(routed)] == [_Slice, _OneHeader]
    later = vxlan_frame(ids[2], ids[3], ttl, payload, checksum)
    assert replayed([inner, routed], sources, later, []) == [
        later[50:],
        ETH + decrement_ttl(later[64:]),
    ]

    # a pod's frame routed into a VXLAN device, then sent in a VXLAN packet (an outer ID drawn)
    def pod(ident: int) -> bytes:
        segment = udp_segment(POD_A, POD_B, 40000, 5000, payload)
        return ETH + ipv4_packet(POD_A, POD_B, PROTO_UDP, segment, ident=ident, ttl=ttl)

    sources = _Sources(pod(ids[1]), tunnels, [ids[0]])
    routed = fastest(ETH + decrement_ttl(pod(ids[1])[14:]), False, [pod(ids[1])], sources)
    frames = [pod(ids[1]), routed.data]
    vxlan = fastest(vxlan_frame(ids[0], ids[1], ttl - 1, payload, checksum), False, frames, sources)
    # and an IPIP packet around the routed packet (a tunnel device's raw frame)
    frames.append(vxlan.data)
    raw = fastest(decrement_ttl(pod(ids[1])[14:]), True, frames, sources)
    ipip = ETH + ipv4_packet(NODE1, NODE2, 4, raw.data, ident=ids[0], df=False)
    ipip = fastest(ipip, False, [*frames, raw.data], sources, [False] * 3 + [True])
    assert [type(routed), type(vxlan), type(raw), type(ipip)] == [_OneHeader, _Encap] * 2
    made = replayed([routed, vxlan, raw, ipip], sources, pod(ids[3]), [ids[2]])
    assert made[1] == vxlan_frame(ids[2], ids[3], ttl - 1, payload, checksum)
    assert made[3] == ETH + ipv4_packet(NODE1, NODE2, 4, made[2], ident=ids[2], df=False)


def echo(icmp_type: int, ident: int, seq: int, t_ns: int, size: int) -> bytes:
    """An echo message as ping (a request) or the target's stack (its reply) makes it."""
    return icmp.echo(icmp_type, ident, seq, ping_payload(t_ns, size))


def request_frame(ip_id: int, message: bytes, ttl: int = 64) -> bytes:
    return ETH + ipv4_packet(POD_A, POD_B, PROTO_ICMP, message, ident=ip_id, ttl=ttl)


def reply_frame(ip_id: int, message: bytes) -> bytes:
    return ETH + ipv4_packet(POD_B, POD_A, PROTO_ICMP, message, ident=ip_id, df=False)


def test_a_ping_key_leaves_out_its_sequence_time_and_checksums() -> None:
    tunnels = frozenset({8472})
    message = echo(icmp.ECHO_REQUEST, 7, 1, 1_000_000, 56)
    key = frame_key(request_frame(1, message), tunnels)
    assert key == frame_key(request_frame(2, echo(icmp.ECHO_REQUEST, 7, 9, 5_123_456, 56)), tunnels)
    assert key == frame_key(vxlan(request_frame(3, message), 4, True)[50:], tunnels)
    assert echo_key(message) == echo_key(echo(icmp.ECHO_REQUEST, 7, 2, 7_654_321_000, 56))
    for other in [
        echo(icmp.ECHO_REQUEST, 8, 1, 1_000_000, 56),  # another id
        echo(icmp.ECHO_REPLY, 7, 1, 1_000_000, 56),  # a reply
        echo(icmp.ECHO_REQUEST, 7, 1, 1_000_000, 57),  # another size
        message[:-1] + b"?",  # other data past the time
    ]:
        assert frame_key(request_frame(1, other), tunnels) != key
        assert echo_key(other) != echo_key(message)
    # ping's data under 16 bytes holds no time: all of it is in the key
    short = echo(icmp.ECHO_REQUEST, 7, 1, 0, 15)
    assert echo_key(short) != echo_key(short[:-1] + b"?")
    assert echo_key(short) == echo_key(echo(icmp.ECHO_REQUEST, 7, 2, 0, 15))
    # an ICMP error quotes a packet: not cached
    error = icmp.error(icmp.TIME_EXCEEDED, 0, request_frame(1, message)[14:])
    assert frame_key(request_frame(1, error), tunnels) is None


# a ping's fields: four distinct IP IDs (two for the recorded packet, two for a later one),
# the echo id, two sequence numbers and two times (recorded, later), ping's data size, and
# whether the tunnel sends a UDP checksum
PINGS = (
    st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4, unique=True),
    st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2),
    st.lists(st.integers(0, 1 << 40), min_size=2, max_size=2),
    st.integers(0, 100),
    st.booleans(),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(*PINGS)
def test_ping_templates_make_what_the_builders_make(ids, ident, seqs, times, size, checksum):
    tunnels = frozenset({8472})

    def message(icmp_type: int, later: int) -> bytes:
        return echo(icmp_type, ident, seqs[later], times[later], size)

    request = [request_frame(ids[2 * later], message(icmp.ECHO_REQUEST, later)) for later in (0, 1)]
    # the pod answering: the reply, its IP ID drawn, its checksum redone
    sources = _Sources(request[0], tunnels, [ids[1]])
    reply = [reply_frame(ids[2 * later + 1], message(icmp.ECHO_REPLY, later)) for later in (0, 1)]
    ips, sums = [], []
    assert _layout(reply[0], 14, tunnels, ips, sums)
    if not any(echo_key(message(icmp.ECHO_REPLY, 0))):
        # a reply of zeros but its changing words: its checksum is not their sum's complement
        assert _Template.of(reply[0], ips, sums, sources) is None
    else:
        answer = fastest(reply[0], False, [request[0]], sources)
        assert type(answer) is _OneHeader
        assert replayed([answer], sources, request[1], [ids[3]]) == [reply[1]]
    # the socket sending: the request, its IP ID drawn, its message the one sent
    sent = message(icmp.ECHO_REQUEST, 0)
    sources = _Sources(None, tunnels, [ids[0]], sent)
    frame = fastest(request[0], False, [sent], sources)
    later = message(icmp.ECHO_REQUEST, 1)
    assert type(frame) is _OneHeader
    assert replayed([frame], sources, later, [ids[2]]) == [request[1]]
    # the request in a VXLAN packet (an outer ID drawn), then out of it and routed on
    sources = _Sources(request[0], tunnels, [ids[1]])
    routed = fastest(ETH + decrement_ttl(request[0][14:]), False, [request[0]], sources)
    around = fastest(
        vxlan(routed.data, ids[1], checksum), False, [request[0], routed.data], sources
    )
    assert [type(routed), type(around)] == [_OneHeader, _Encap]
    assert replayed([routed, around], sources, request[1], [ids[3]]) == [
        ETH + decrement_ttl(request[1][14:]),
        vxlan(ETH + decrement_ttl(request[1][14:]), ids[3], checksum),
    ]
    arrived = [vxlan(frame, ids[1 + later], checksum) for later, frame in enumerate(request)]
    sources = _Sources(arrived[0], tunnels, [])
    inner = fastest(arrived[0][50:], False, [arrived[0]], sources)
    routed = fastest(ETH + decrement_ttl(request[0][14:]), False, [arrived[0], inner.data], sources)
    assert [type(inner), type(routed)] == [_Slice, _OneHeader]
    assert replayed([inner, routed], sources, arrived[1], []) == [
        request[1],
        ETH + decrement_ttl(request[1][14:]),
    ]


def test_a_run_of_taps_has_one_hop_with_the_note_the_packet_was_sent_with() -> None:
    """`_grouped`: the frames taps see in a row are one `Hops`, whose comments are made ahead
    but for one hop's, ending with the note the packet was sent with (`SENT`): a second such
    hop starts another run; a packet recorded without a note has none to fill in."""
    journal = tap.Journal(None)
    taps = [journal.tap("node1", name, "veth", "node1", None) for name in ("a", "b", "c")]
    actions = [
        (_SEEN, taps[0], 1, OUT, _INPUT),
        (_SEEN, taps[1], 1, OUT, "routed"),
        (_SEEN, taps[2], 2, OUT, _INPUT),
    ]
    lengths = [0, 60, 60]
    assert _grouped(actions, True, lengths) == [
        (_HOPS, [(taps[0], 1, OUT, tap.SENT), (taps[1], 1, OUT, "routed")], {}, lengths, None),
        (_HOPS, [(taps[2], 2, OUT, tap.SENT)], {}, lengths, None),
    ]
    run = [(taps[0], 1, OUT, ""), (taps[1], 1, OUT, "routed"), (taps[2], 2, OUT, "")]
    assert _grouped(actions, False, lengths) == [(_HOPS, run, {}, lengths, None)]


def test_a_key_is_recorded_only_when_it_comes_again(tmp_path: Path, monkeypatch) -> None:
    """Recording costs more than the slow path, and most keys of a large cluster come once (a
    ping from each of 10,000 pods): the first two packets of a flow (a request and its answer)
    arrive unkeyed (FlowCache.opens), and the first packet of a key is only noted."""
    recordings, keyed = [], []
    real, key = flowcache._Recorder.__init__, flowcache.frame_key

    def counted(self, *args) -> None:
        recordings.append(args)
        real(self, *args)

    def counted_key(frame, tunnels):
        keyed.append(frame)
        return key(frame, tunnels)

    monkeypatch.setattr(flowcache._Recorder, "__init__", counted)
    monkeypatch.setattr(flowcache, "frame_key", counted_key)
    once = "udp: {from: p11, to: p21, dport: 5000, count: 1}"
    ping = "ping: {from: p12, to: p22, count: 1}"
    _, hits = run_both(topology("flannel", [once, ping]), tmp_path / "once")
    assert (recordings, hits, keyed) == ([], 0, [])  # no key made where they arrive
    again = "udp: {from: p11, to: p21, dport: 5000, count: 5, interval: 10us}"
    _, hits = run_both(topology("flannel", [again]), tmp_path / "again")
    assert keyed  # from the third datagram on
    assert recordings and hits > 0  # the fourth recorded where it arrives, the fifth replayed
