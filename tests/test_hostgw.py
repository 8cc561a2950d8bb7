"""flannel's host-gw backend beyond the captured scenario (`tests/test_reference.py` holds it
field by field against the kernel): the setup the reference's `state/` shows, the pods' MTU, and
the loader's `cluster.flannel.backend`.

Facts from source only (`cni-others.md` §3.1, flannel's `hostgw.go`): the MTU is the external
interface's, with no overhead. The routes, devices and MTUs checked here are also in the captured
`hostgw_udp_cross_node/state/` (`cni-others.md` §6)."""

from __future__ import annotations

import dataclasses
import re
import textwrap

import pytest

from kpkt import runner
from kpkt.build import build
from kpkt.capture.pcap import read_pcap
from kpkt.errors import TopologyError
from kpkt.report import describe_topology
from kpkt.topology.load import load_topology, load_topology_text
from kpkt.wire.ethernet import ETH_LEN

from conftest import REFERENCE, ROOT

TOPOLOGY = ROOT / "topologies" / "hostgw-reference.yaml"
STATE = REFERENCE / "hostgw_udp_cross_node" / "state"


def state(owner: str, section: str) -> list[str]:
    """The lines of one `### <section>` of a reference namespace's state before the run."""
    text = (STATE / f"kref-{owner}__before.txt").read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    return [line.rstrip() for line in body.splitlines() if line.strip()]


def test_nodes_have_the_reference_links_routes_and_mtus() -> None:
    network, _ = build(load_topology(TOPOLOGY))
    for node in ("node1", "node2"):
        stack = network.stacks[node]
        links = re.findall(
            r"^\d+: ([^:@]+)[:@].* mtu (\d+)", "\n".join(state(node, "ip -d link")), re.M
        )
        assert sorted((d.name, d.mtu) for d in stack.devices) == sorted(
            (name, int(mtu)) for name, mtu in links
        ), "no flannel.1; cni0 and the veths at the underlay's MTU"
        via = [line for line in state(node, "ip route") if " via " in line]
        assert [str(r) for r in stack.routes.routes() if r.via] == via
    for pod in ("n1-pod-a", "n2-pod-b"):
        mtu = re.search(r"eth0@\S+ .* mtu (\d+)", "\n".join(state(pod, "ip -d link")))
        owner = f"{pod}.default"
        assert [d.mtu for d in network.stacks[owner].devices if d.name == "eth0"] == [
            int(mtu.group(1))
        ]


def _cluster(backend: str, payload: int) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: kpkt/v1
        kind: Topology
        metadata: {{name: mtu}}
        cluster:
          flannel: {{backend: {backend}}}
        nodes:
          - {{name: node1, pods: [{{name: a}}]}}
          - {{name: node2, pods: [{{name: b}}]}}
        traffic:
          - udp: {{from: a, to: b, dport: 5000, payloadHex: "{"00" * payload}"}}
        """
    )


def test_a_full_size_pod_packet_crosses_unencapsulated(tmp_path) -> None:
    topology = load_topology_text(_cluster("host-gw", 1472), "t.yaml")
    runner.run(topology, folder=tmp_path / "out")
    frames = [frame for _, frame in read_pcap(tmp_path / "out" / "node1__eth0.pcap")]
    assert max(len(frame) for frame in frames) == ETH_LEN + 1500


def test_the_same_packet_does_not_fit_vxlan() -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology_text(_cluster("vxlan", 1472), "t.yaml")
    assert "pod MTU 1450" in str(caught.value)


def test_an_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology_text(_cluster("udp", 8), "t.yaml")
    assert "cluster.flannel.backend: 'udp' is not one of: vxlan, host-gw" in str(caught.value)


def test_vxlan_is_the_default_backend() -> None:
    text = _cluster("vxlan", 8).replace("  flannel: {backend: vxlan}\n", "")
    cluster = load_topology_text(text, "t.yaml").cluster
    assert cluster.cni_options == {"backend": "vxlan"} and cluster.pod_mtu == 1450
    network, _ = build(dataclasses.replace(load_topology_text(text, "t.yaml"), steps=()))
    assert "flannel.1" in {d.name for d in network.stacks["node1"].devices}


def test_validate_names_no_tunnel_device() -> None:
    lines = describe_topology(load_topology(TOPOLOGY)).splitlines()
    assert lines[1] == (
        "node node1: eth0 192.168.50.1 02:00:c0:a8:32:01, cni0 10.244.1.1 02:00:0a:f4:01:01, "
        "podCIDR 10.244.1.0/24"
    )
