"""NetworkPolicy enforced on the wire (tests/reference/netpol.md §6, §7): where a denied
packet stops, that nothing comes back, that only a connection's first packet is judged, the
node exception, Service VIPs judged after DNAT, DNS under egress isolation, and the probe's
verdicts in manifest.json and all.pcapng. The behaviours every enforcing CNI shares run on each
of them (flannel with Canal's chains, Calico IPIP and VXLAN, weave with weave-npc); where the
packet stops is checked per datapath."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from kpkt.runner import run
from kpkt.topology.load import load_topology_text

from conftest import TSHARK_OPTIONS
from netpol_cluster import CNIS, cluster, policy

DENY_INGRESS_Y = policy("deny-all", "y", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_EGRESS_X = policy("deny-egress", "x", {"podSelector": {}, "policyTypes": ["Egress"]})


def probe(src: str, dst: str, port: int = 80, protocol: str = "TCP") -> dict:
    return {"probe": {"from": src, "to": dst, "port": port, "protocol": protocol}}


CALICO = ("calico-ipip", "calico-vxlan")
TUNNEL = {"calico-ipip": "tunl0", "calico-vxlan": "vxlan.calico"}


def run_cluster(policies: list, traffic: list, **kwargs):
    document = cluster(policies, traffic=traffic, **kwargs)
    return run(load_topology_text(yaml.safe_dump(document), "netpol.yaml"))


def verdicts(result) -> list[dict]:
    return [log.probe for log in result.network.journal.steps]


def veth_of(result, pod: str) -> str:
    ns, name = pod.split("/")
    spec = next(p for p in result.topology.pods() if (p.namespace, p.name) == (ns, name))
    return f"{spec.node}/{spec.host_veth}"


@pytest.mark.parametrize("cni", CNIS)
def test_probe_verdicts_allowed_denied_on_each_side_and_refused(cni: str) -> None:
    traffic = [
        probe("z/a", "y/b"),  # ingress denied, cross node
        probe("x/a", "x/b"),
        probe("x/a", "x/b", 82),  # nothing serves 82
        probe("x/a", "x/b", 85, "UDP"),
        probe("x/a", "x/b", 81, "UDP"),
        probe("z/a", "x/b"),  # x isolated for egress only: ingress open
        probe("x/c", "z/a"),  # egress denied, same node
    ]
    result = run_cluster([DENY_INGRESS_Y, DENY_EGRESS_X], traffic, cni=cni)
    assert verdicts(result) == [
        {"verdict": "denied", "droppedAt": "ingress", "policies": ["y/deny-all"]},
        {"verdict": "denied", "droppedAt": "egress", "policies": ["x/deny-egress"]},
        {"verdict": "denied", "droppedAt": "egress", "policies": ["x/deny-egress"]},
        {"verdict": "denied", "droppedAt": "egress", "policies": ["x/deny-egress"]},
        {"verdict": "denied", "droppedAt": "egress", "policies": ["x/deny-egress"]},
        {"verdict": "allowed"},
        {"verdict": "denied", "droppedAt": "egress", "policies": ["x/deny-egress"]},
    ]
    result = run_cluster([], traffic[1:5], cni=cni)  # no policy: what the pods serve
    assert [v["verdict"] for v in verdicts(result)] == ["allowed", "refused", "refused", "allowed"]


def paths(result, index: int) -> dict[int, list[str]]:
    """Packet id -> the capture points it crossed, in order, in step `index`."""
    log = result.network.journal.steps[index]
    taps = result.network.journal.taps
    where: dict[int, list[str]] = {}
    for i in range(0, len(log.hops), 4):
        tap = taps[log.hops[i]]
        where.setdefault(log.hops[i + 3], []).append(f"{tap.owner}/{tap.ifname}")
    return where


def denied_at_the_server_veth(result) -> tuple[str, set[int], dict[int, list[str]]]:
    """The first step's SYN to y/b and its 6 retries, all dropped by policy at y/b's veth:
    that veth, the SYNs' packet ids, and every packet's path."""
    server_veth = veth_of(result, "y/b")
    drops = result.network.journal.steps[0].drops
    assert [d.reason for d in drops] == ["policy-denied"] * 7  # the SYN and its 6 retries
    assert {d.where for d in drops} == {server_veth}
    return server_veth, {d.pid for d in drops}, paths(result, 0)


def test_an_egress_denial_stops_at_the_client_veth_and_nothing_comes_back() -> None:
    result = run_cluster([DENY_EGRESS_X], [probe("x/a", "y/b")])
    veth = veth_of(result, "x/a")
    [drop] = result.network.journal.steps[0].drops  # one SYN: agnhost gives up after 1 s
    assert (drop.where, drop.reason) == (veth, "policy-denied")
    assert drop.detail == "egress denied: no rule of x/deny-egress matched"
    where = paths(result, 0)
    assert where[drop.pid] == ["a.x/eth0", veth]  # into the host, and no further
    assert not any(p.startswith("node2") for path in where.values() for p in path)
    back = [pid for pid, path in where.items() if path[-1] == "a.x/eth0" and pid != drop.pid]
    assert len(back) == 2  # ARP only (own who-has via the hairpin port, the gateway's reply)


def test_an_ingress_denial_crosses_the_tunnel_and_stops_before_the_server_veth() -> None:
    result = run_cluster([DENY_INGRESS_Y], [{"tcp": {"from": "x/a", "to": "y/b:80"}}])
    server_veth, syns, where = denied_at_the_server_veth(result)
    for pid in syns:
        path = where[pid]
        assert path[0] == "a.x/eth0"
        assert "node1/flannel.1" in path and "node2/flannel.1" in path
        assert path[-1] == "node2/cni0"  # routed into the bridge, never out of the veth
        assert server_veth not in path and "b.y/eth0" not in path
    # nothing comes back to the client but ARP (its own who-has flooded back by the hairpin
    # port, and the gateway's reply): no RST, no ICMP
    back = [pid for pid, path in where.items() if path[-1] == "a.x/eth0" and pid not in syns]
    assert len(back) == 2


@pytest.mark.parametrize("cni", CALICO)
def test_calico_judges_egress_as_the_packet_enters_the_node_from_the_cali_veth(cni: str) -> None:
    # cali-from-wl-dispatch in filter FORWARD: the SYN is seen on the pod's eth0 and, received,
    # on the cali veth, and goes no further; nothing comes back but the proxy ARP reply for
    # the pods' gateway 169.254.1.1
    result = run_cluster([DENY_EGRESS_X], [probe("x/a", "y/b")], cni=cni)
    veth = veth_of(result, "x/a")
    assert veth.startswith("node1/cali")
    [drop] = result.network.journal.steps[0].drops
    assert (drop.where, drop.reason) == (veth, "policy-denied")
    assert drop.detail == "egress denied: no rule of x/deny-egress matched"
    where = paths(result, 0)
    assert where[drop.pid] == ["a.x/eth0", veth]
    assert not any(p.startswith("node2") for path in where.values() for p in path)
    back = [pid for pid, path in where.items() if path[-1] == "a.x/eth0" and pid != drop.pid]
    assert len(back) == 1


@pytest.mark.parametrize("cni", CALICO)
def test_calico_judges_egress_to_the_node_itself_in_input(cni: str) -> None:
    # a pod's packet to its own node's address takes INPUT, where cali-INPUT sends it through
    # the same cali-from-wl-dispatch: denied under egress isolation, answered without it
    pings = [{"ping": {"from": "x/a", "to": "192.168.50.1"}}]
    assert run_cluster([], pings, cni=cni).network.journal.steps[0].outcome == "delivered"
    result = run_cluster([DENY_EGRESS_X], pings, cni=cni)
    log = result.network.journal.steps[0]
    assert log.outcome == "dropped"
    assert {(d.where, d.reason) for d in log.drops} == {(veth_of(result, "x/a"), "policy-denied")}


@pytest.mark.parametrize("cni", CALICO)
def test_calico_judges_ingress_after_the_tunnel_before_the_cali_veth(cni: str) -> None:
    # cali-tw-<veth> on the server's node: every SYN crosses the tunnel on both nodes and stops
    # before the server's cali veth, which shows nothing; no RST and no ICMP come back
    result = run_cluster([DENY_INGRESS_Y], [{"tcp": {"from": "x/a", "to": "y/b:80"}}], cni=cni)
    server_veth, syns, where = denied_at_the_server_veth(result)
    tunnel = TUNNEL[cni]
    for pid in syns:
        path = where[pid]
        assert path[:2] == ["a.x/eth0", veth_of(result, "x/a")]
        assert f"node1/{tunnel}" in path and f"node2/{tunnel}" in path
        assert path[-1] == f"node2/{tunnel}"  # decapsulated, routed, never out of the veth
        assert server_veth not in path and "b.y/eth0" not in path
    back = [pid for pid, path in where.items() if path[-1] == "a.x/eth0" and pid not in syns]
    assert len(back) == 1  # the proxy ARP reply for 169.254.1.1
    # judged in filter FORWARD, before the neighbour layer: node2 never even ARPs for y/b
    assert not any(server_veth in path for path in where.values())


@pytest.mark.parametrize("cni", CNIS)
def test_only_the_first_packet_is_judged_replies_pass_egress_isolation(cni: str) -> None:
    # y's pods may not start anything, but they answer what reaches them (upstream "should
    # deny egress from all pods in a namespace": y -> x stays allowed)
    deny_egress_y = policy("deny-egress", "y", {"podSelector": {}, "policyTypes": ["Egress"]})
    result = run_cluster(
        [deny_egress_y],
        [probe("x/a", "y/b"), probe("x/a", "y/a", 81, "UDP"), probe("y/a", "x/a")],
        cni=cni,
    )
    assert [v["verdict"] for v in verdicts(result)] == ["allowed", "allowed", "denied"]
    # a whole TCP exchange (data both ways, FINs) under ingress isolation allowing port 80
    allow_80 = policy(
        "allow-80",
        "y",
        {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]},
    )
    result = run_cluster(
        [allow_80], [{"tcp": {"from": "x/a", "to": "y/b:80", "payload": "GET /"}}], cni=cni
    )
    assert result.network.journal.steps[0].outcome == "delivered"
    assert result.network.journal.steps[0].drops == []


@pytest.mark.parametrize("cni", CNIS)
def test_the_own_node_gets_in_and_a_remote_node_does_not(cni: str) -> None:
    traffic = [probe("node/node2", "y/b"), probe("node/node1", "y/b")]
    result = run_cluster([DENY_INGRESS_Y], traffic, cni=cni)
    assert [v["verdict"] for v in verdicts(result)] == ["allowed", "denied"]


@pytest.mark.parametrize("cni", CNIS)
def test_policy_sees_the_pod_behind_a_service_after_dnat(cni: str) -> None:
    to_b = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}]}
        ],
    }
    to_vip = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.96.0.0/12"}}]}],
    }
    traffic = [probe("x/a", "service/y/s-y-b"), probe("x/a", "service/y/s-y-c")]
    result = run_cluster([policy("to-b", "x", to_b)], traffic, services=True, cni=cni)
    assert [v["verdict"] for v in verdicts(result)] == ["allowed", "denied"]
    result = run_cluster([policy("to-vip", "x", to_vip)], traffic, services=True, cni=cni)
    assert [v["verdict"] for v in verdicts(result)] == ["denied", "denied"]


@pytest.mark.parametrize("cni", CNIS)
def test_egress_isolation_blocks_dns_unless_port_53_is_allowed(cni: str) -> None:
    lookup = [{"dns": {"from": "x/a", "name": "s-y-b.y", "type": "A"}}]
    result = run_cluster([DENY_EGRESS_X], lookup, dns=True, services=True, cni=cni)
    log = result.network.journal.steps[0]
    assert log.outcome != "delivered"
    assert {d.reason for d in log.drops} == {"policy-denied"}
    dns_ok = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}],
    }
    result = run_cluster([policy("dns", "x", dns_ok)], lookup, dns=True, services=True, cni=cni)
    assert result.network.journal.steps[0].outcome == "delivered"


def test_the_manifest_and_all_pcapng_name_the_side_and_the_policy(tmp_path: Path, tshark) -> None:
    document = cluster([DENY_INGRESS_Y], traffic=[probe("x/a", "y/b")])
    topology = load_topology_text(yaml.safe_dump(document), "netpol.yaml")
    run(topology, folder=tmp_path / "out", report=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    step = manifest["steps"][0]
    assert (step["kind"], step["verdict"], step["droppedAt"], step["policies"]) == (
        "probe",
        "denied",
        "ingress",
        ["y/deny-all"],
    )
    assert step["dropsByReason"] == {"policy-denied": 1}
    [drop] = manifest["drops"]
    assert drop["reason"] == "policy-denied" and "y/deny-all" in drop["detail"]
    comments = subprocess.run(
        [
            tshark,
            *TSHARK_OPTIONS,
            "-r",
            str(tmp_path / "out" / "all.pcapng"),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "drop: policy-denied: ingress denied: no rule of y/deny-all matched" in comments


@pytest.mark.parametrize("cni", CNIS)
def test_isolation_drops_icmp_unless_a_rule_without_ports_allows_the_peer(cni: str) -> None:
    from_x = {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "x"}}}]}],
    }
    on_80 = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]}
    pings = [
        {"ping": {"from": "x/a", "to": "10.244.2.3"}},
        {"ping": {"from": "z/a", "to": "10.244.2.3"}},
    ]
    result = run_cluster([policy("from-x", "y", from_x)], pings, cni=cni)
    logs = result.network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "dropped"]
    assert [d.reason for d in logs[1].drops] == ["policy-denied"]
    result = run_cluster([policy("on-80", "y", on_80)], pings[:1], cni=cni)
    assert result.network.journal.steps[0].outcome == "dropped"


FROM_ACCESS = policy(
    "from-access",
    "y",
    {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"access": "on"}}}]}
        ],
    },
)
FROM_BLUE = policy(
    "from-blue",
    "y",
    {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
    },
)


@pytest.mark.parametrize("cni", CNIS)
def test_a_label_step_changes_which_policies_allow_from_then_on(cni: str) -> None:
    # y admits pods labelled access=on from any namespace, and any pod of a team=blue namespace
    traffic = [
        probe("x/a", "y/b"),
        {"label": {"pod": "x/a", "set": {"access": "on"}}},  # newly allowed: a pod's labels
        probe("x/a", "y/b"),
        probe("z/a", "y/b"),
        {"label": {"namespace": "z", "set": {"team": "blue"}}},  # a namespace's labels
        probe("z/a", "y/b"),
        probe("z/c", "y/b"),
        {"label": {"pod": "x/a", "remove": ["access"]}},  # newly denied
        probe("x/a", "y/b"),
        {"label": {"namespace": "z", "set": {"team": "red"}}},
        probe("z/a", "y/b"),
    ]
    result = run_cluster([FROM_ACCESS, FROM_BLUE], traffic, cni=cni)
    logs = result.network.journal.steps
    probed = [log.probe["verdict"] for log in logs if log.probe]
    assert probed == ["denied", "allowed", "denied", "allowed", "allowed", "denied", "denied"]
    assert [log.outcome for log in logs if not log.probe] == ["applied"] * 4


@pytest.mark.parametrize("cni", CNIS)
def test_a_label_that_newly_denies_leaves_established_connections_flowing(cni: str) -> None:
    # the label goes at 1 ms: after the handshake (60 us), before the request (1.6 ms). The
    # connection's entry stays (Calico does not cut established flows): its request, answer and
    # FINs pass; a new connection is judged on the new labels
    request = {"from": "x/a", "to": "y/b:80", "payload": "GET / HTTP/1.0\r\n\r\n"}
    traffic = [
        {"tcp": request},
        {"label": {"pod": "x/a", "remove": ["access"], "at": "1ms"}},
        {"tcp": request},
    ]
    labels = {"x/a": {"pod": "a", "access": "on"}}
    logs = run_cluster([FROM_ACCESS], traffic, cni=cni, pod_labels=labels).network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "applied", "dropped"]
    assert logs[0].start_ns < logs[1].start_ns == 1_000_000 < logs[0].end_ns
    assert logs[0].drops == [] and logs[0].result.startswith("sent 18 bytes, received 24")
    assert {d.reason for d in logs[2].drops} == {"policy-denied"}
    # a UDP flow too: its conntrack entry carries it on, the same datagram from another
    # source port is a new flow, and dropped
    udp = {"from": "x/a", "to": "y/b:80", "sport": 40000}
    traffic = [
        {"udp": udp},
        {"label": {"pod": "x/a", "remove": ["access"]}},
        {"udp": udp},
        {"udp": {**udp, "sport": 40001}},
    ]
    logs = run_cluster([FROM_ACCESS], traffic, cni=cni, pod_labels=labels).network.journal.steps
    assert [log.outcome for log in logs] == ["delivered", "applied", "delivered", "dropped"]
    assert {d.reason for d in logs[3].drops} == {"policy-denied"}
