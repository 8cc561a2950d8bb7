"""Fault steps on the wire: `link` (carrier down and up again) and `impair` (netem on egress:
loss, delay and jitter, duplicate, reorder, corrupt, clear), each seen in the captures, the
drops and all.pcapng; and reruns byte-identical with impairments on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

import kpkt.capture.diff  # noqa: F401 (dissects flannel's UDP 8472 as VXLAN)
from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.errors import TopologyError
from kpkt.topology.load import load_topology_text

from conftest import tshark_read

HEAD = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: faults}
nodes:
  - {name: node1, pods: [{name: pod-a}]}
  - {name: node2, pods: [{name: pod-b}]}
traffic:
"""


def run(tmp_path: Path, traffic: str, name: str = "out") -> runner.Run:
    topology = load_topology_text(HEAD + traffic, "faults.yaml")
    return runner.run(topology, folder=tmp_path / name, report=False)


def frames(result: runner.Run, capture: str) -> list[tuple[int, Ether]]:
    return [(t, Ether(f)) for t, f in read_pcap(result.folder / f"{capture}.pcap")]


def outcomes(result: runner.Run) -> list[str]:
    return [log.outcome for log in result.network.journal.steps]


def drops(result: runner.Run, step: int) -> list[tuple[str, str]]:
    return [(d.where, d.reason) for d in result.network.journal.steps[step].drops]


def test_link_down_then_up_between_nodes(tmp_path: Path, tshark: str) -> None:
    result = run(
        tmp_path,
        """\
  - ping: {from: pod-a, to: pod-b}
  - link: {node: node2, interface: eth0, state: down}
  - ping: {from: pod-a, to: pod-b}
  - link: {node: node2, interface: eth0, state: up, at: 5s}
  - ping: {from: pod-a, to: pod-b}
""",
    )
    assert outcomes(result) == ["delivered", "applied", "dropped", "applied", "delivered"]
    # the far end of the cable lost carrier too: node1's eth0 sends nothing, captures nothing
    assert drops(result, 2) == [("node1/eth0", "link-down")]
    logs = result.network.journal.steps
    assert logs[3].start_ns == 5_000_000_000
    requests = [
        t for t, f in frames(result, "node2__eth0") if f.haslayer(ICMP) and f[ICMP].type == 8
    ]
    assert len(requests) == 2 and requests[1] > 5_000_000_000
    assert logs[1].result == "node2/eth0: link down"
    # all.pcapng says so on the next frame of each end, and tshark reads it without a warning
    text = subprocess.run(
        [tshark, "-r", str(result.folder / "all.pcapng"), "-T", "fields", "-e", "frame.comment"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [line for line in text.stderr.splitlines() if "Running as user" not in line] == []
    events = [line for line in text.stdout.splitlines() if "event at" in line]
    assert len(events) == 2  # node1/eth0 and node2/eth0, each on its first frame after
    for line in events:
        assert "link down (node2/eth0); event at 5.000" in line and "link up (node2/eth0)" in line


def test_pod_link_down_leaves_arp_unanswered(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - link: {pod: pod-b, interface: eth0, state: down}
  - ping: {from: node2, to: pod-b}
""",
    )
    assert outcomes(result) == ["applied", "unreachable"]
    reasons = [reason for _, reason in drops(result, 1)]
    assert reasons == ["link-down"] * 3 + ["neighbour-unresolved"]  # three ARP tries, then fail
    assert frames(result, "pod-b.default__eth0") == []


def test_loss_drops_before_the_capture(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - ping: {from: pod-a, to: pod-b}
  - impair: {pod: pod-a, interface: eth0, loss: 100%}
  - ping: {from: pod-a, to: pod-b}
  - impair: {pod: pod-a, interface: eth0, clear: true}
  - ping: {from: pod-a, to: pod-b}
""",
    )
    assert outcomes(result) == ["delivered", "applied", "dropped", "applied", "delivered"]
    assert drops(result, 2) == [("pod-a.default/eth0", "netem-loss")]
    assert result.network.journal.steps[1].result == "pod-a.default/eth0: netem loss 100%"
    echo = [f for _, f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP)]
    assert [f[ICMP].type for f in echo] == [8, 0, 8, 0]  # the lost request was never captured


def test_some_loss_loses_some(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - impair: {node: node1, interface: eth0, loss: 30%}
  - udp: {from: pod-a, to: pod-b, dport: 5000, count: 100}
""",
    )
    log = result.network.journal.steps[1]
    lost = [d for d in log.drops if d.reason == "netem-loss"]
    assert log.outcome == "partial" and 15 < len(lost) < 45
    assert log.received == 100 - len(lost)


def ip_ids(result: runner.Run, capture: str) -> list[int]:
    """The IP IDs of the UDP datagrams to port 5000 in `capture`, in the order captured."""
    return [
        f[IP].id for _, f in frames(result, capture) if f.haslayer(UDP) and f[UDP].dport == 5000
    ]


def test_delay(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - ping: {from: pod-a, to: pod-b}
  - impair: {pod: pod-a, interface: eth0, delay: 2ms}
  - ping: {from: pod-a, to: pod-b}
""",
    )
    times = [t for t, f in frames(result, "pod-a.default__eth0") if f.haslayer(ICMP)]
    pod_b = [t for t, f in frames(result, "pod-b.default__eth0") if f.haslayer(ICMP)]
    start = result.network.journal.steps[2].start_ns
    assert times[2] == start + 2_000_000  # held 2 ms in netem, captured as it leaves
    assert pod_b[2] - times[2] == 7_000  # then on its way as without netem
    assert times[3] - times[2] == 14_000  # the reply is not delayed: netem is on pod-a's egress


def test_jitter_reorders_and_reorder_overtakes(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - impair: {pod: pod-a, interface: eth0, delay: 10ms, jitter: 5ms}
  - udp: {from: pod-a, to: pod-b, dport: 5000, count: 40, interval: 1ms}
  - impair: {pod: pod-a, interface: eth0, delay: 10ms, reorder: 25%}
  - udp: {from: pod-a, to: pod-b, dport: 5000, count: 40, interval: 1ms}
""",
    )
    sent = ip_ids(result, "pod-a.default__eth0")
    received = ip_ids(result, "pod-b.default__eth0")
    assert sorted(sent) == sorted(received) and len(sent) == 80
    assert sent == received  # the wire keeps netem's order
    logs = result.network.journal.steps
    for log in (logs[1], logs[3]):
        assert log.outcome == "delivered"
        # packet ids in the order the socket sent them; pod-a's eth0 saw netem's order
        taps, captured = result.network.journal.taps, frames(result, "pod-a.default__eth0")
        hops = [log.hops[at : at + 4] for at in range(0, len(log.hops), 4)]
        pids = [
            pid
            for tap, index, out, pid in hops
            if out and taps[tap].name == "pod-a.default/eth0" and captured[index][1].haslayer(UDP)
        ]
        assert len(pids) == 40 and pids != sorted(pids)


def test_duplicate(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - impair: {pod: pod-a, interface: eth0, duplicate: 100%}
  - udp: {from: pod-a, to: pod-b, dport: 5000}
""",
    )
    assert len(ip_ids(result, "pod-a.default__eth0")) == 2
    assert len(ip_ids(result, "pod-b.default__eth0")) == 2
    assert result.network.journal.steps[1].received == 2


def test_corrupt_is_dropped_by_the_receivers_checksum(tmp_path: Path, tshark: str) -> None:
    result = run(
        tmp_path,
        """\
  - impair: {pod: pod-a, interface: eth0, corrupt: 100%}
  - udp: {from: pod-a, to: pod-b, dport: 5000, count: 20}
""",
    )
    log = result.network.journal.steps[1]
    assert log.received == 0 and len(log.drops) == 20
    assert {d.reason for d in log.drops} == {"bad-checksum"}
    details = {d.detail.split(" does")[0] for d in log.drops}
    assert details <= {"ip header checksum", "udp checksum"} and len(details) == 2
    # where the header is bad, node1 drops it; where the datagram is bad, pod-b does
    assert {d.where for d in log.drops} == {"node1", "pod-b.default"}
    bad = tshark_read(tshark, result.folder / "pod-a.default__eth0.pcap", "-Y", "_ws.expert")
    assert len(bad.splitlines()) == 20  # tshark sees every one of them as bad


def test_reruns_are_byte_identical(tmp_path: Path) -> None:
    traffic = """\
  - impair: {node: node1, interface: eth0, loss: 10%, delay: 1ms, jitter: 500us, duplicate: 5%,
             reorder: 5%, corrupt: 5%}
  - udp: {from: pod-a, to: pod-b, dport: 5000, count: 200, interval: 1ms}
"""
    first, second = run(tmp_path, traffic, "a"), run(tmp_path, traffic, "b")
    files = sorted(p.name for p in first.folder.iterdir())
    assert files == sorted(p.name for p in second.folder.iterdir())
    for name in files:
        assert (first.folder / name).read_bytes() == (second.folder / name).read_bytes(), name
    reasons = {d.reason for d in first.network.journal.steps[1].drops}
    assert {"netem-loss", "bad-checksum"} <= reasons


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("{node: node1, interface: eth0, clear: true, loss: 1%}", "give it alone"),
        ("{node: node1, interface: eth0, jitter: 1ms}", "give delay too"),
        ("{node: node1, interface: eth0, reorder: 1%}", "give delay too"),
        ("{node: node1, interface: eth0, loss: 5}", "a percentage"),
        ("{node: node1, interface: eth0, loss: 150%}", "a percentage"),
        ("{node: node1, interface: eth0}", "nothing to impair"),
        ("{node: node1, pod: pod-a, interface: eth0, loss: 1%}", "name the pod"),
        ("{node: pod-a, interface: eth0, loss: 1%}", "is a pod, not a node"),
        ("{pod: pod-a, interface: eth1, loss: 1%}", "a pod's interface is eth0"),
        ("{node: node1, interface: eth/1, loss: 1%}", "is not a Linux interface name"),
    ],
)
def test_bad_impair_steps_are_refused(step: str, message: str) -> None:
    with pytest.raises(TopologyError) as raised:
        load_topology_text(HEAD + f"  - impair: {step}\n", "faults.yaml")
    assert message in str(raised.value)


def test_bad_link_state_is_refused() -> None:
    with pytest.raises(TopologyError) as raised:
        load_topology_text(
            HEAD + "  - link: {node: node1, interface: eth0, state: sideways}\n", "f"
        )
    assert "'sideways' is not one of: down, up" in str(raised.value)


def test_glibc_asks_again_after_its_timeout_then_gives_up(tmp_path: Path) -> None:
    """Every query lost at the pod's egress: glibc's stub resolver (timeout:5 attempts:2) asks
    again 5 s later, and gives up (TRY_AGAIN) 5 s after that."""
    text = HEAD.replace("nodes:", "cluster:\n  dns: {node: node2}\nnodes:") + (
        "  - dns: {from: pod-a, name: kubernetes.default.svc.cluster.local., type: A}\n"
        "  - impair: {pod: pod-a, interface: eth0, loss: 100%}\n"
        "  - dns: {from: pod-a, name: kubernetes.default.svc.cluster.local., type: A}\n"
    )
    result = runner.run(load_topology_text(text, "dns.yaml"), folder=tmp_path / "out")
    first, _, log = result.network.journal.steps
    assert first.outcome == "delivered"
    assert log.result.endswith("-> TRY_AGAIN (2 queries)") and log.outcome == "dropped"
    assert log.end_ns - log.start_ns == 10_000_000_000
    lost = {d.t_ns - log.start_ns for d in log.drops if d.reason == "netem-loss"}
    assert {0, 5_000_000_000} <= lost


def test_faults_on_a_host_veth(tmp_path: Path) -> None:
    """netem on node1's veth-pod-a delays and loses what goes to pod-a (the veth's egress),
    not what pod-a sends; carrier down on it takes pod-a's eth0 down too (a veth pair)."""
    result = run(
        tmp_path,
        """\
  - ping: {from: pod-a, to: pod-b}
  - impair: {node: node1, interface: veth-pod-a, loss: 100%}
  - ping: {from: pod-a, to: pod-b}
  - impair: {node: node1, interface: veth-pod-a, delay: 3ms}
  - ping: {from: pod-a, to: pod-b}
  - link: {node: node1, interface: veth-pod-a, state: down}
  - ping: {from: pod-a, to: pod-b}
""",
    )
    assert outcomes(result) == ["delivered", "applied", "dropped", "applied", "delivered"] + [
        "applied",
        "dropped",
    ]
    assert drops(result, 2) == [("node1/veth-pod-a", "netem-loss")]
    assert any(f.haslayer(ICMP) for _, f in frames(result, "pod-b.default__eth0")[2:])
    log = result.network.journal.steps[4]
    assert log.end_ns - log.start_ns > 3_000_000
    assert drops(result, 6) == [("pod-a.default/eth0", "link-down")]


def test_faults_on_the_interfaces_of_a_created_pod(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - create: {pod: {name: pod-c}, node: node2}
  - impair: {node: node2, interface: veth-pod-c, loss: 100%}
  - ping: {from: pod-a, to: pod-c}
  - impair: {node: node2, interface: veth-pod-c, clear: true}
  - link: {pod: pod-c, interface: eth0, state: down}
  - ping: {from: pod-c, to: pod-a}
""",
    )
    assert outcomes(result)[2] in ("timeout", "unreachable")
    assert ("node2/veth-pod-c", "netem-loss") in drops(result, 2)
    # its ARP for the gateway is never sent: the request dies at eth0, then ARP gives up
    assert drops(result, 5)[0] == ("pod-c.default/eth0", "link-down")
    assert {reason for _, reason in drops(result, 5)} == {"link-down", "neighbour-unresolved"}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "link: {node: node1, interface: cni0, state: down}",
            "cni0 is the node's bridge device: kpkt models `ip link set` on veths and wires "
            "only; name one of eth0, veth-pod-a",
        ),
        (
            "link: {node: node1, interface: flannel.1, state: down}",
            "flannel.1 is the node's vxlan device",
        ),
        (
            "impair: {node: node1, interface: lo, loss: 1%}",
            "node1 has no interface 'lo' (it has eth0, cni0, flannel.1, veth-pod-a); name one "
            "of eth0, cni0, flannel.1, veth-pod-a",
        ),
        (
            "link: {node: node1, interface: eth1, state: down}",
            "node1 has no interface 'eth1' (it has eth0, cni0, flannel.1, veth-pod-a); name one "
            "of eth0, veth-pod-a",
        ),
    ],
)
def test_other_node_interfaces_are_refused_with_the_ones_that_take_faults(
    tmp_path: Path, step: str, message: str
) -> None:
    """Exit status 2, one line naming the step and the interfaces, and no output folder."""
    path = tmp_path / "faults.yaml"
    path.write_text(HEAD + f"  - {step}\n")
    done = subprocess.run(
        ["kpkt", "run", str(path), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr and step.split(":")[0] in done.stderr
    assert not (tmp_path / "out").exists()


def test_netem_on_the_bridge_and_the_vxlan_device(tmp_path: Path) -> None:
    """netem on flannel.1 loses the inner frame before the tunnel (flannel.1's capture and
    eth0 never see it); on cni0 it delays what the node's stack sends to its pods."""
    result = run(
        tmp_path,
        """\
  - impair: {node: node1, interface: flannel.1, loss: 100%}
  - ping: {from: pod-a, to: pod-b}
  - impair: {node: node1, interface: flannel.1, clear: true}
  - impair: {node: node1, interface: cni0, delay: 7ms}
  - ping: {from: node1, to: pod-a}
""",
    )
    assert outcomes(result) == ["applied", "dropped", "applied", "applied", "delivered"]
    assert drops(result, 1) == [("node1/flannel.1", "netem-loss")]
    tunnel = [t for t, f in frames(result, "node1__flannel.1") if f.haslayer(ICMP)]
    assert tunnel == []
    ping = result.network.journal.steps[4]
    start = ping.start_ns
    sent = [t for t, f in frames(result, "node1__cni0") if t >= start and f.haslayer(ICMP)]
    received = [t for t, f in frames(result, "pod-a.default__eth0") if t >= start]
    # the echo request waits 7 ms in cni0's qdisc (node1 knows pod-a's MAC from step 2)
    assert sent[0] - start == 7_000_000 and received[0] > sent[0]
    assert ping.result == "1 transmitted, 1 received, rtt min 7002.0 us"
