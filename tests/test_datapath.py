"""Datapath behaviour beyond the three reference scenarios, as Linux does it: replies, ICMP
errors and their source addresses, node-to-pod and pod-to-node traffic (flannel's masquerade),
loopback between containers, neighbour probes and hairpin floods."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.layers.l2 import ARP, Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology_text

CLUSTER = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: t}
nodes:
  - name: node1
    pods: [{name: pod-a}, {name: pod-b}]
  - name: node2
    pods: [{name: pod-c}]
externals:
  - {name: laptop}
traffic:
"""


def run(tmp_path: Path, *steps: str):
    text = CLUSTER + "".join(f"  - {s}\n" for s in steps)
    result = runner.run(load_topology_text(text, "t.yaml"), folder=tmp_path / "out")
    return result


def frames(result, capture: str) -> list:
    return [Ether(f) for _, f in read_pcap(result.folder / f"{capture}.pcap")]


def drops(result) -> list[tuple[str, str]]:
    return [(d.where, d.reason) for log in result.network.journal.steps for d in log.drops]


def test_ping_reply_comes_back_without_arp(tmp_path):
    result = run(tmp_path, "ping: {from: pod-a, to: pod-c, count: 2}")
    assert result.network.journal.steps[0].result.startswith("2 transmitted, 2 received")
    node2 = frames(result, "node2__eth0")
    assert [f.haslayer(ARP) for f in node2].count(True) == 2  # one exchange, the first request
    replies = [
        f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP) and f[ICMP].type == 0
    ]
    assert [(r[IP].ttl, r[IP].flags.DF) for r in replies] == [(62, False), (62, False)]


def test_node_to_pod_uses_the_flannel_address_across_nodes(tmp_path):
    result = run(tmp_path, "ping: {from: node1, to: pod-c}", "ping: {from: node1, to: pod-a}")
    cross = frames(result, "pod-c.default__eth0")
    request = next(f for f in cross if f.haslayer(ICMP))
    assert request[IP].src == "10.244.1.0" and request[IP].ttl == 63
    local = next(f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP))
    assert local[IP].src == "10.244.1.1" and local[IP].ttl == 64


def test_pod_to_remote_node_is_masqueraded_and_reversed(tmp_path):
    result = run(tmp_path, "ping: {from: pod-c, to: node1}")
    assert "1 received" in result.network.journal.steps[0].result
    on_wire = [f for f in frames(result, "node2__eth0") if f.haslayer(ICMP)]
    assert on_wire[0][IP].src == "192.168.50.2"  # SNAT to node2's eth0 address
    assert on_wire[1][IP].dst == "192.168.50.2"
    back = [f for f in frames(result, "pod-c.default__eth0") if f.haslayer(ICMP)]
    assert back[1][IP].dst == "10.244.2.2"
    assert back[0][ICMP].id == back[1][ICMP].id  # the pod sees its own echo id again
    assert on_wire[0][ICMP].id != back[0][ICMP].id  # --random-fully re-picks the id


def test_pod_to_own_node_is_not_masqueraded(tmp_path):
    result = run(tmp_path, "udp: {from: pod-a, to: node1, dport: 10250, payload: hi}")
    datagram = next(f for f in frames(result, "node1__cni0") if f.haslayer(UDP))
    assert datagram[IP].src == "10.244.1.2"
    assert result.network.journal.steps[0].result == "sent 1, received 1"


def test_port_unreachable_through_masquerade_reaches_the_pod(tmp_path):
    result = run(tmp_path, "udp: {from: pod-c, to: node1, dport: 9, listen: false, payload: x}")
    error = next(f for f in frames(result, "pod-c.default__eth0") if f.haslayer(ICMP))
    assert (error[ICMP].type, error[ICMP].code) == (3, 3)
    assert error[IP].src == "192.168.50.1" and error[IP].dst == "10.244.2.2"
    assert error[IP].tos == 0xC0 and not error[IP].flags.DF
    assert error[IPerror].src == "10.244.2.2"  # the quoted packet is translated back too
    assert ("node1", "port-unreachable") in drops(result)
    assert "port unreachable from 192.168.50.1" in result.network.journal.steps[0].result


@pytest.mark.parametrize(
    ("ttl", "where", "source", "quoted_ttl"),
    [(1, "node1", "10.244.1.1", 1), (2, "node2", "10.244.2.0", 1)],
)
def test_ttl_exceeded_comes_from_the_route_back(tmp_path, ttl, where, source, quoted_ttl):
    result = run(tmp_path, f"udp: {{from: pod-a, to: pod-c, dport: 5000, ttl: {ttl}}}")
    error = next(f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP))
    assert (error[ICMP].type, error[ICMP].code) == (11, 0)
    assert error[IP].src == source and error[IPerror].ttl == quoted_ttl
    assert error[UDPerror].dport == 5000
    assert (where, "ttl-exceeded") in drops(result)


def test_unresolved_neighbour_gives_host_unreachable_after_three_requests(tmp_path):
    result = run(tmp_path, "ping: {from: pod-a, to: 10.244.2.99}")
    requests = [f for f in frames(result, "node2__cni0") if f.haslayer(ARP)]
    assert [r[ARP].pdst for r in requests] == ["10.244.2.99"] * 3
    times = [t for t, f in read_pcap(result.folder / "node2__cni0.pcap")]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [10**9, 10**9]
    error = next(
        f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP) and f[ICMP].type == 3
    )
    assert error[ICMP].code == 1 and error[IP].src == "10.244.2.0"


def test_own_packet_unresolved_gets_host_unreachable_over_lo(tmp_path):
    result = run(tmp_path, "ping: {from: pod-a, to: 10.244.1.77}")
    lo = frames(result, "pod-a.default__lo")
    assert len(lo) == 1 and lo[0][IP].src == lo[0][IP].dst == "10.244.1.2"
    assert (lo[0][ICMP].type, lo[0][ICMP].code) == (3, 1)


def test_no_route_on_the_node_gives_net_unreachable(tmp_path):
    result = run(tmp_path, "ping: {from: pod-a, to: 10.99.0.1}")
    error = next(
        f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP) and f[ICMP].type == 3
    )
    assert error[ICMP].code == 0 and error[IP].src == "10.244.1.1"
    assert ("node1", "no-route") in drops(result)


def test_containers_of_a_pod_talk_over_lo(tmp_path):
    result = run(tmp_path, "udp: {from: pod-a, to: 'localhost:9090', payload: hi}")
    lo = frames(result, "pod-a.default__lo")
    assert len(lo) == 1
    assert lo[0].src == lo[0].dst == "00:00:00:00:00:00"
    assert lo[0][IP].src == lo[0][IP].dst == "127.0.0.1" and lo[0][IP].ttl == 64
    assert frames(result, "pod-a.default__eth0") == []
    assert result.network.journal.steps[0].result == "sent 1, received 1"


def test_stale_neighbour_is_probed_by_unicast_five_seconds_after_use(tmp_path):
    # node1 learns pod-a from its ARP request (STALE); the reply to pod-a uses the entry
    # (DELAY), and 5 s later node1 sends a unicast probe, which pod-a answers.
    result = run(
        tmp_path,
        "ping: {from: pod-a, to: pod-c}",
        "udp: {from: pod-a, to: pod-b, dport: 7, at: 8s}",
    )
    arp = [
        (t, f) for t, f in read_pcap(result.folder / "node1__cni0.pcap") if Ether(f).haslayer(ARP)
    ]
    probes = [
        (t, Ether(f))
        for t, f in arp
        if Ether(f).dst != "ff:ff:ff:ff:ff:ff" and Ether(f)[ARP].op == 1
    ]
    assert probes, "no unicast probe"
    t, probe = probes[0]
    pod_a = next(t.mac for t in result.network.journal.taps if t.name == "pod-a.default/eth0")
    assert probe.dst == pod_a and probe[ARP].hwdst == "00:00:00:00:00:00"
    assert probe[ARP].pdst == "10.244.1.2"
    assert 5 * 10**9 <= t < 6 * 10**9


def test_reachable_neighbour_used_after_reachable_time_is_stale_and_probed(tmp_path):
    # pod-a resolves pod-b (REACHABLE); a minute later (reachable_time is at most 45 s) the
    # entry is STALE: the datagram goes out at once on the old MAC (DELAY), and 5 s later
    # pod-a probes pod-b by unicast instead of broadcasting (a later step keeps time running)
    result = run(
        tmp_path,
        "ping: {from: pod-a, to: pod-b}",
        "udp: {from: pod-a, to: pod-b, dport: 7, at: 60s}",
        "ping: {from: pod-c, to: laptop, at: 70s}",
    )
    taps = {t.name: t.mac for t in result.network.journal.taps}
    pod_a, pod_b = taps["pod-a.default/eth0"], taps["pod-b.default/eth0"]
    sent = [(t, Ether(f)) for t, f in read_pcap(result.folder / "pod-a.default__eth0.pcap")]
    late = [(t, f) for t, f in sent if t >= 60 * 10**9 and f.src == pod_a]
    assert late[0][1].haslayer(UDP) and late[0][1].dst == pod_b
    probes = [(t, f) for t, f in late if f.haslayer(ARP) and f[ARP].op == 1]
    assert [f.dst for _, f in probes] == [pod_b]
    assert 65 * 10**9 <= probes[0][0] < 66 * 10**9


def test_hairpin_reflects_the_flood_to_the_sender(tmp_path):
    result = run(tmp_path, "udp: {from: pod-a, to: pod-b, dport: 7}")
    seen = [f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ARP)]
    assert [(f[ARP].op, f.src) for f in seen][:2] == [(1, seen[0].src), (1, seen[0].src)]


def test_no_hairpin_means_no_reflection(tmp_path):
    text = CLUSTER.replace("metadata: {name: t}", "metadata: {name: t}\ncluster: {hairpin: false}")
    text += "  - udp: {from: pod-a, to: pod-b, dport: 7}\n"
    result = runner.run(load_topology_text(text, "t.yaml"), folder=tmp_path / "out")
    requests = [
        f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ARP) and f[ARP].op == 1
    ]
    assert len(requests) == 1


def test_underlay_with_an_external_host_is_a_switch(tmp_path):
    result = run(tmp_path, "ping: {from: pod-a, to: laptop}")
    names = {tap.name for tap in result.network.journal.taps}
    assert {"underlay/br-ul", "underlay/ul-node1", "underlay/ul-laptop"} <= names
    assert "1 received" in result.network.journal.steps[0].result
    request = next(f for f in frames(result, "laptop__eth0") if f.haslayer(ICMP))
    assert request[IP].src == "192.168.50.1"  # masqueraded by flannel on node1


def test_icmp_errors_are_rate_limited_per_peer(tmp_path):
    # icmp_ratelimit 1000 ms with a burst of 6 (XRLIM_BURST_FACTOR): over 1.9 s, 20 datagrams
    # to a closed port get 6 errors at once and a 7th when a second has refilled a token
    result = run(
        tmp_path,
        "udp: {from: pod-a, to: pod-b, dport: 9, listen: false, count: 20, interval: 100ms}",
    )
    errors = [f for f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP)]
    assert len(errors) == 7
    times = [
        t
        for t, f in read_pcap(result.folder / "pod-a.default__eth0.pcap")
        if Ether(f).haslayer(ICMP)
    ]
    assert times[5] < 10**9 <= times[6]
    assert len([d for d in drops(result) if d[1] == "port-unreachable"]) == 20


def test_errors_to_ourselves_over_lo_are_not_rate_limited(tmp_path):
    result = run(
        tmp_path, "udp: {from: pod-a, to: 'localhost:9', listen: false, count: 10, interval: 1ms}"
    )
    errors = [f for f in frames(result, "pod-a.default__lo") if f.haslayer(ICMP)]
    assert len(errors) == 10
