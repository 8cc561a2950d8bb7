"""Every device name is unique on its namespace and every capture point has a file of its own:
derived names cut to 15 characters are made unique by a hash, names kpkt gives its own objects
cannot be taken, and two capture points never share (or overwrite) one file."""

from __future__ import annotations

import json
import textwrap

import pytest

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.capture.tap import Journal, Tap
from kpkt.derive import MAX_IFNAME, switch_port_names, veth_names
from kpkt.engine.scheduler import Scheduler
from kpkt.errors import TopologyError
from kpkt.topology.load import load_topology_text

HEADER = "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: t}\n"
LONG_NODES = """
nodes:
  - {name: worker-node-0001, pods: [{name: a}]}
  - {name: worker-node-0002, pods: [{name: b}]}
  - {name: worker-node-0003}
traffic:
  - ping: {from: a, to: b}
  - ping: {from: worker-node-0001, to: worker-node-0003}
"""


def load(body: str):
    return load_topology_text(HEADER + textwrap.dedent(body), "t.yaml")


def test_nodes_with_a_long_common_prefix_get_switch_ports_of_their_own(tmp_path):
    result = runner.run(load(LONG_NODES), folder=tmp_path / "out")
    captures = json.loads((tmp_path / "out" / "manifest.json").read_text())["captures"]
    ports = sorted(c["interface"] for c in captures if c["owner"] == "underlay")
    assert len(ports) == 4 and len(set(ports)) == 4  # br-ul and a port per node
    assert all(len(port) <= MAX_IFNAME for port in ports)
    files = [capture["file"] for capture in captures]
    assert len(files) == len(set(files))
    for capture in captures:
        records = read_pcap(tmp_path / "out" / capture["file"])
        assert capture["packets"] == len(records), capture["file"]
    assert result.files and all(tap.count for tap in result.files if tap.owner == "underlay")


def test_a_switch_port_name_is_ul_host_when_it_fits_else_cut_and_hashed():
    names = switch_port_names(["node1", "worker-node-0001", "worker-node-0002"])
    assert names[0] == "ul-node1"
    assert [name[:9] for name in names[1:]] == ["ul-worke-", "ul-worke-"]
    assert names[1] != names[2] and all(len(name) == MAX_IFNAME for name in names[1:])
    assert switch_port_names(["worker-node-0001"]) == names[1:2]  # the same for every run


def test_a_cut_port_name_another_host_has_in_full_is_hashed_again():
    [cut] = switch_port_names(["worker-node-0001"])
    twin = cut.removeprefix("ul-")  # a host whose full port name is that cut name
    names = switch_port_names([twin, "worker-node-0001"])
    assert names[0] == cut and names[1] != cut and names[1].startswith("ul-worke-")


def test_a_derived_host_veth_name_steers_clear_of_an_explicit_one():
    [hashed] = veth_names(0, [("default", "a-long-pod-name", None)])
    topology = load(f"""
        nodes:
          - name: node1
            pods:
              - {{name: a-long-pod-name}}
              - {{name: mine, hostVeth: {{name: {hashed}}}}}
    """)
    veths = [pod.host_veth for pod in topology.pods()]
    assert veths[1] == hashed and veths[0] != hashed and veths[0].startswith("veth")


@pytest.mark.parametrize("kind", ["nodes", "externals"])
def test_a_host_named_like_the_switch_is_refused(kind):
    hosts = "nodes: [{name: node1}]\n"
    hosts += "externals: [{name: underlay}]\n" if kind == "externals" else ""
    if kind == "nodes":
        hosts = "nodes: [{name: node1}, {name: underlay}, {name: node3}]\n"
    with pytest.raises(TopologyError) as caught:
        load_topology_text(HEADER + hosts, "t.yaml")
    path = "nodes[1]" if kind == "nodes" else "externals[0]"
    assert caught.value.problems == [
        f"t.yaml: {path}.name: 'underlay' is the name of kpkt's switch of the node network "
        "(its captures are underlay__*.pcap); pick another name"
    ]


def test_two_capture_points_for_one_file_stop_the_run(tmp_path):
    journal = Journal(Scheduler())
    Tap(journal, "node1", "eth0", "underlay", "node1", None)
    Tap(journal, "node1", "eth0", "veth", "node1", None)
    with pytest.raises(RuntimeError, match=r"node1/eth0 and node1/eth0 share node1__eth0\.pcap"):
        journal.open(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_calico_names_derive_as_calico_derives_them():
    # the reference cluster's (tests/reference/calico.md §1): cali + sha1("default.<pod>")[:11],
    # VTEP MAC 0x66 + sha1(node name)[:5]
    from kpkt.cni import NAMING

    naming = NAMING["calico"]
    assert naming.host_veth("default", "kcal-n1-pod-a") == "calif1e28bf8d7e"
    assert naming.host_veth("default", "kcal-n1-pod-b") == "caliea7cf36212a"
    assert naming.host_veth("default", "kcal-n2-pod-a") == "cali0b62c7dbc62"
    assert len(naming.host_veth("kube-system", "a" * 63)) == MAX_IFNAME
    assert naming.host_veth_mac == "ee:ee:ee:ee:ee:ee"
    vtep_mac = naming.device_macs["vxlan.calico"]
    assert vtep_mac("kcal-node1") == "66:bd:c1:b6:30:e3"
    assert vtep_mac("kcal-node2") == "66:eb:5b:33:d9:c8"
