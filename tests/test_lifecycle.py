"""Lifecycle steps on the wire: a container restart keeps the pod's namespace (address, MAC,
veth, neighbours, FDB) and closes its applications' sockets: the server's FIN, a reset for the
request that arrives after it, ICMP port unreachable for datagrams until a later step listens
again; the manifest records the event with its time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.errors import TopologyError
from kpkt.topology.load import load_topology_text

HEAD = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: lifecycle}
nodes:
  - {name: node1, pods: [{name: client}]}
  - {name: node2, pods: [{name: server, containers: [{name: web}, {name: sidecar}]}]}
traffic:
"""
REQUEST = 'payload: "GET / HTTP/1.0\\r\\n\\r\\n"'


def run(tmp_path: Path, traffic: str) -> runner.Run:
    topology = load_topology_text(HEAD + traffic, "lifecycle.yaml")
    return runner.run(topology, folder=tmp_path / "out", report=False)


def frames(result: runner.Run, capture: str) -> list[tuple[int, Ether]]:
    return [(t, Ether(f)) for t, f in read_pcap(result.folder / f"{capture}.pcap")]


def test_a_restart_between_request_and_arrival_draws_a_reset(tmp_path: Path) -> None:
    """The client's request (sent at 1.586 ms) reaches the server at 1.593 ms; the container
    restarts at 1.59 ms: the kernel closes the server's socket (FIN), and the request for the
    closed socket draws a reset (RFC 1122, tcp_rcv_state_process)."""
    result = run(
        tmp_path,
        f"""\
  - tcp: {{from: client, to: "server:8080", {REQUEST}}}
  - restart: {{pod: server, container: web, at: 1.59ms}}
  - tcp: {{from: client, to: "server:8080", {REQUEST}}}
""",
    )
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["refused", "applied", "delivered"]
    assert logs[0].result == "connection reset"
    assert logs[1].result == "server.default: container web restarted: 2 socket(s) closed"
    server = [(t, f[TCP]) for t, f in frames(result, "server.default__eth0") if f.haslayer(TCP)]
    port = server[0][1].sport  # the client's port in the first step
    first = [(t, s) for t, s in server if port in (s.sport, s.dport)]
    flags = [(s.sport == 8080, str(s.flags)) for _, s in first]
    # handshake, the server's FIN at the restart, the request, the reset for it
    assert flags == [
        (False, "S"),
        (True, "SA"),
        (False, "A"),
        (True, "FA"),
        (False, "PA"),
        (True, "R"),
    ]
    fin_at = next(t for t, s in first if s.flags == "FA")
    assert fin_at == 1_590_000
    # the pause container kept the namespace: same address and MAC, no ARP needed again
    eth0 = frames(result, "server.default__eth0")
    mac = next(f[Ether].src for _, f in eth0 if f.haslayer(TCP) and f[TCP].sport == 8080)
    later = [f for t, f in eth0 if t > fin_at]
    assert not any(f.haslayer(ARP) for f in later)
    sent = [f for f in later if f.haslayer(IP) and f[IP].src == "10.244.2.2"]
    assert sent and {f[Ether].src for f in sent} == {mac}
    manifest = json.loads((result.folder / "manifest.json").read_text())
    event = manifest["steps"][1]
    assert (event["kind"], event["startNs"], event["outcome"]) == ("restart", 1_590_000, "applied")


def test_a_restart_closes_udp_until_a_step_listens_again(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """\
  - udp: {from: client, to: server, dport: 5000, count: 4, interval: 100ms}
  - restart: {pod: server, at: 150ms}
  - udp: {from: client, to: server, dport: 5000}
""",
    )
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["partial", "applied", "delivered"]
    assert logs[0].received == 2
    assert [d.reason for d in logs[0].drops] == ["port-unreachable"] * 2
    errors = [t for t, f in frames(result, "client.default__eth0") if f.haslayer(ICMP)]
    assert len(errors) == 2 and errors[0] > 150_000_000
    datagrams = [f for _, f in frames(result, "server.default__eth0") if f.haslayer(UDP)]
    assert len(datagrams) == 5


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "{pod: server, container: db}",
            "'db' is not a container of 'server': it has web, sidecar",
        ),
        ("{pod: client, container: web}", "it has none (the pod lists no containers)"),
        ("{pod: node1}", "'node1' is a node, not a pod"),
        ("{container: web}", "name the pod whose container restarts"),
    ],
)
def test_bad_restart_steps_are_refused(step: str, message: str) -> None:
    with pytest.raises(TopologyError) as raised:
        load_topology_text(HEAD + f"  - restart: {step}\n", "lifecycle.yaml")
    assert message in str(raised.value)


SERVICES = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: delete}
cluster:
  underlay: {gateway: 192.168.50.100}
externals:
  - {name: laptop, ip: 192.168.50.100}
nodes:
  - {name: node1, pods: [{name: client}]}
  - name: node2
    pods:
      - {name: web-a, labels: {app: web}}
      - {name: web-b, labels: {app: web}}
services:
  - {name: web, selector: {app: web}, ports: [{port: 53, targetPort: 5353, protocol: UDP}]}
traffic:
"""


def run_services(tmp_path: Path, traffic: str, name: str = "out") -> runner.Run:
    topology = load_topology_text(SERVICES + traffic, "delete.yaml")
    return runner.run(topology, folder=tmp_path / name, report=False)


def test_deleting_the_endpoint_a_udp_flow_uses_moves_it_to_the_other(tmp_path: Path) -> None:
    """kube-proxy deletes the UDP conntrack entries of a removed endpoint: the same flow
    (same source port) is DNATed anew, to the endpoint that is left."""
    send = "  - udp: {from: client, to: 'web:53', sport: 40000}\n"
    first = run_services(tmp_path, send, "first")
    chosen = next(
        pod
        for pod in ("web-a", "web-b")
        if any(f.haslayer(UDP) for _, f in frames(first, f"{pod}.default__eth0"))
    )
    other = "web-b" if chosen == "web-a" else "web-a"
    result = run_services(tmp_path, send + f"  - delete: {{pod: {chosen}}}\n" + send, "after")
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "applied", "delivered"]
    assert any(f.haslayer(UDP) for _, f in frames(result, f"{other}.default__eth0"))


def test_deleting_the_last_endpoint_turns_into_reject(tmp_path: Path) -> None:
    result = run_services(
        tmp_path,
        """\
  - udp: {from: client, to: 'web:53'}
  - delete: {pod: web-a}
  - udp: {from: client, to: 'web:53'}
  - delete: {pod: web-b}
  - udp: {from: client, to: 'web:53'}
""",
    )
    logs = result.network.journal.steps
    outcomes = [log.outcome for log in logs]
    assert outcomes == ["delivered", "applied", "delivered", "applied", "refused"]
    assert [(d.where, d.reason) for d in logs[4].drops] == [("node1", "service-no-endpoints")]


def test_a_deleted_pod_leaves_the_bridge_and_its_address_goes_silent(tmp_path: Path) -> None:
    """cni0 loses the port and the FDB entries behind it; the node's neighbour entry for the
    address stays, so a SYN to it is flooded (no FDB entry for the old MAC) and goes
    unanswered: the client sends it again as tcp_syn_retries says and gives up."""
    result = run_services(
        tmp_path,
        """\
  - udp: {from: client, to: web-a, dport: 5353}
  - delete: {pod: web-a}
  - tcp: {from: client, to: "web-a:8080", payload: "x"}
""",
    )
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "applied", "timeout"]
    assert logs[2].result == "connection timed out"
    node2 = result.network.stacks["node2"]
    cni0 = next(dev for dev in node2.devices if dev.name == "cni0")
    assert [port.name for port in cni0.ports] == ["veth-web-b"]
    pod_mac = bytes.fromhex(
        next(
            f[ARP].hwsrc
            for _, f in frames(result, "web-a.default__eth0")
            if f.haslayer(ARP) and f[ARP].op == 2
        ).replace(":", "")
    )
    assert pod_mac not in cni0.fdb.entries
    flooded = [t for t, f in frames(result, "node2__veth-web-b") if f.haslayer(TCP)]
    start = flooded[0]
    assert [t - start for t in flooded] == [n * 1_000_000_000 for n in (0, 1, 2, 3, 4, 6, 10)]


def test_a_deleted_pod_sends_nothing_more() -> None:
    text = SERVICES + "  - delete: {pod: web-a}\n  - udp: {from: web-a, to: client, dport: 1}\n"
    with pytest.raises(TopologyError) as raised:
        load_topology_text(text, "delete.yaml")
    assert "'web-a' was deleted by traffic[0].delete: it sends nothing any more" in str(
        raised.value
    )


def test_labels_change_the_endpoints_and_move_a_udp_flow(tmp_path: Path) -> None:
    """web-b gains the selector's label and web-a loses it: the same UDP flow (same source
    port, its conntrack entry deleted by kube-proxy) now goes to web-b; with no pod left
    selected, kube-proxy rejects. A namespace's labels select no Service endpoints."""
    text = SERVICES.replace("{name: web-b, labels: {app: web}}", "{name: web-b}")
    send = "  - udp: {from: client, to: 'web:53', sport: 40000}\n"
    traffic = (
        send
        + "  - label: {pod: web-b, set: {app: web, tier: front}}\n"
        + "  - label: {pod: web-a, remove: [app]}\n"
        + send
        + "  - label: {pod: web-b, set: {app: db}}\n"
        + "  - label: {namespace: default, set: {app: web}}\n"
        + send
    )
    result = runner.run(load_topology_text(text + traffic, "label.yaml"), folder=tmp_path / "o")
    logs = result.network.journal.steps
    outcomes = [log.outcome for log in logs]
    assert outcomes == ["delivered", *["applied"] * 2, "delivered", *["applied"] * 2, "refused"]
    assert logs[1].result == "web-b.default: labels app=web tier=front"
    assert logs[2].result == "web-a.default: labels app-"
    assert logs[5].result == "namespace default: labels app=web"
    to_a = [f for _, f in frames(result, "web-a.default__eth0") if f.haslayer(UDP)]
    to_b = [f for _, f in frames(result, "web-b.default__eth0") if f.haslayer(UDP)]
    assert len(to_a) == 1 and len(to_b) == 1
    assert [d.reason for d in logs[6].drops] == ["service-no-endpoints"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("{pod: web-a}", "nothing to change"),
        ("{pod: web-a, namespace: default, set: {a: b}}", "name the pod (pod:) or the namespace"),
        ("{namespace: prod, set: {a: b}}", "no pod runs in namespace 'prod'"),
        ("{pod: web-a, remove: app}", "expected a list of label keys"),
        ("{pod: web-a, set: {'-bad': x}}", "set"),
    ],
)
def test_bad_label_steps_are_refused(step: str, message: str) -> None:
    with pytest.raises(TopologyError) as raised:
        load_topology_text(SERVICES + f"  - label: {step}\n", "label.yaml")
    assert message in str(raised.value)


def test_a_deleted_calico_pod_takes_its_cali_veth_route_and_neighbour_along(
    tmp_path: Path,
) -> None:
    """Calico has no bridge: the pod's host side is a cali veth the node routes the pod's /32
    through. Deleting the pod deletes the veth, and the kernel the route and neighbour entry
    through it; the block's blackhole route then discards what still comes for the address."""
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: calico-delete}
cluster: {cni: calico, underlay: {gateway: 192.168.50.254}}
nodes:
  - {name: node1, pods: [{name: client}]}
  - {name: node2, pods: [{name: web}]}
traffic:
  - udp: {from: client, to: web, dport: 5353}
  - delete: {pod: web}
  - udp: {from: client, to: web, dport: 5353}
"""
    result = runner.run(load_topology_text(text, "t.yaml"), folder=tmp_path / "out", report=False)
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "applied", "dropped"]
    assert [(d.where, d.reason) for d in logs[2].drops] == [("node2", "blackhole")]
    node2 = result.network.stacks["node2"]
    web = next(pod for node in result.topology.nodes for pod in node.pods if pod.name == "web")
    assert web.host_veth not in [dev.name for dev in node2.devices]
    assert all(
        route.dev is None or route.dev.name != web.host_veth for route in node2.routes.routes()
    )
    assert all(dev.name != web.host_veth for dev in node2.arp.tables)
