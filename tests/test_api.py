"""The Python API (`import kpkt`): load, run in memory or to a folder, read a run back, and a
live network that crafted packets are sent through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.plist import PacketList

import kpkt
from kpkt.runner import run as runner_run

from conftest import ROOT

TWO_NODE = ROOT / "kpkt" / "examples" / "two-node.yaml"
PATH = [  # where pod-a's datagram to pod-c goes, capture point by capture point
    ("pod-a.default/eth0", "out"),
    ("node1/veth-pod-a", "in"),
    ("node1/cni0", "in"),
    ("node1/flannel.1", "out"),
    ("node1/eth0", "out"),
    ("underlay/ul-node1", "in"),  # the node network's switch
    ("underlay/ul-node2", "out"),
    ("node2/eth0", "in"),
    ("node2/flannel.1", "in"),
    ("node2/cni0", "out"),
    ("node2/veth-pod-c", "out"),
    ("pod-c.default/eth0", "in"),
]
SAME = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: same}
cluster: {podCIDR: 10.1.0.0/16}
nodes:
  - {name: node1, podCIDR: 10.1.1.0/24, pods: [{name: pod-a, ip: 10.1.1.5}]}
  - {name: node2, podCIDR: 10.1.2.0/24, pods: [{name: pod-c, ip: 10.1.2.10}]}
traffic:
"""
UDP_STEP = (
    "  - udp: {from: pod-a, to: pod-c, sport: 40000, dport: 8080, payload: hi, listen: false}\n"
)
DATAGRAM = "IP(dst='10.1.2.10', flags='DF')/UDP(sport=40000, dport=8080)/Raw(b'hi')"


def test_the_public_names_resolve_and_are_typed() -> None:
    for name in kpkt.__all__:
        assert getattr(kpkt, name) is not None
    assert (ROOT / "kpkt" / "py.typed").is_file()
    assert "py.typed" in (ROOT / "setup.cfg").read_text()
    with pytest.raises(AttributeError):
        kpkt.no_such_name  # noqa: B018


def test_importing_kpkt_and_running_the_cli_import_no_scapy(tmp_path) -> None:
    # (report.html's page decodes frames with kpkt/capture/diff.py, which does import it)
    code = (
        "import sys, kpkt\nfrom kpkt.cli import main\n"
        f"try:\n    main(['run', {str(TWO_NODE)!r}, '-o', {str(tmp_path / 'out')!r}, '-q', "
        "'--no-report'])\n"
        "except SystemExit as done:\n    assert done.code == 0, done.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('scapy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_topology_loads_the_same_from_a_file_a_string_and_a_dict() -> None:
    text = TWO_NODE.read_text()
    loaded = [kpkt.load(TWO_NODE), kpkt.loads(text), kpkt.load_dict(yaml.safe_load(text))]
    assert loaded[0].nodes == loaded[1].nodes == loaded[2].nodes
    assert loaded[0].steps == loaded[1].steps == loaded[2].steps
    assert loaded[1].source == "<string>" and loaded[2].source == "<dict>"
    with pytest.raises(kpkt.TopologyError, match=r"<dict>: .*nodes\[0\]"):
        kpkt.load_dict({"apiVersion": "kpkt/v1", "kind": "Topology", "nodes": [{"nme": "x"}]})


def test_an_in_memory_run_reads_back_as_packet_lists_steps_and_drops(tmp_path) -> None:
    topology = kpkt.load(TWO_NODE)
    done = kpkt.run(topology)
    assert done.folder is None
    captured = done["node1/eth0"]
    assert isinstance(captured, PacketList) and len(captured) > 10
    assert captured[0].time == done.frames("node1/eth0")[0][0] / 1e9
    assert bytes(done["pod-a/eth0"][0]) == done.frames("pod-a.default/eth0")[0][1]
    assert len(done.steps) == len(topology.steps)
    step = done.steps[1]
    assert (step.kind, step.outcome, step.sent, step.received) == ("udp", "delivered", 1, 1)
    datagram = [hop for hop in step.hops if hop.packet_id == step.hops[-1].packet_id]
    assert [(hop.point, hop.direction) for hop in datagram] == PATH
    for hop in datagram:
        frame = done[hop.point][hop.index]
        inner = frame.getlayer(VXLAN) or frame
        assert (inner[UDP].dport, inner[IP].dst) == (8080, "10.1.2.10")
    with pytest.raises(KeyError, match="no capture point 'pod-z/eth0'"):
        done["pod-z/eth0"]


def test_a_folder_run_reads_back_the_same_as_an_in_memory_run(tmp_path) -> None:
    topology = kpkt.load(TWO_NODE)
    written, in_memory = kpkt.run(topology, tmp_path / "out", report=False), kpkt.run(topology)
    assert written.folder == tmp_path / "out" and (written.folder / "manifest.json").is_file()
    assert written.points == in_memory.points
    for point in written.points:
        assert written.frames(point) == in_memory.frames(point)
    assert written.steps == in_memory.steps and written.drops == in_memory.drops


def test_a_raw_ip_capture_reads_back_as_ip_packets() -> None:
    # tunl0 has no link layer (LINKTYPE_RAW): its frames are IP packets, not Ethernet
    done = kpkt.run(kpkt.load(ROOT / "topologies/two-node-calico.yaml"))
    tunnel = done["node1/tunl0"]
    assert tunnel and all(type(packet) is IP for packet in tunnel)
    assert (tunnel[0][UDP].dport, tunnel[0][IP].dst) == (8080, "10.1.2.10")
    assert bytes(tunnel[0]) == done.frames("node1/tunl0")[0][1]


def test_a_run_that_kept_nothing_says_so() -> None:
    done = runner_run(kpkt.load(TWO_NODE), steps=1)
    with pytest.raises(kpkt.KpktError, match="kept no captures"):
        done.frames("node1/eth0")


def test_a_live_network_is_paused_until_told_to_run() -> None:
    with kpkt.start(kpkt.load(TWO_NODE)) as net:
        step = net.send("pod-a", IP(dst="10.1.2.10") / UDP(dport=8080) / b"x", count=3)
        assert net.now == 0 and len(net.frames("pod-a/eth0")) == 1  # the ARP request only
        assert net.steps[step].outcome == ""
        net.advance(0.0015)  # sent at 0 (after ARP) and at 1 ms; the third goes at 2 ms
        assert net.now == 0.0015
        assert len([p for p in net["pod-c/eth0"] if UDP in p]) == 2
        net.settle()
        assert len([p for p in net["pod-c/eth0"] if UDP in p]) == 3
        done = net.steps[step]
        assert (done.kind, done.sent, done.outcome) == ("packet", 3, "refused")  # no listener
        assert {d.reason for d in net.drops} == {"port-unreachable"}


def test_a_live_network_refuses_unknown_hosts_and_non_packets() -> None:
    with kpkt.start(kpkt.load(TWO_NODE)) as net:
        with pytest.raises(kpkt.KpktError, match="no pod, node or external host named 'pod-z'"):
            net.send("pod-z", IP())
        with pytest.raises(kpkt.KpktError, match="start with IP"):
            net.send("pod-a", UDP())
        with pytest.raises(kpkt.KpktError, match="expected a Scapy packet or bytes"):
            net.send("pod-a", "IP()")


def _captures(done) -> dict[str, list]:
    return {point: done.frames(point) for point in done.points}


def test_injected_and_yaml_built_datagrams_give_identical_captures() -> None:
    from_udp = kpkt.run(kpkt.loads(SAME + UDP_STEP))
    from_packet = kpkt.run(kpkt.loads(SAME + f'  - packet: {{from: pod-a, scapy: "{DATAGRAM}"}}\n'))
    with kpkt.start(kpkt.loads(SAME)) as net:
        from scapy.layers.inet import IP as Ip  # the expression's names, as Python
        from scapy.packet import Raw

        net.send(
            "pod-a", Ip(dst="10.1.2.10", flags="DF") / UDP(sport=40000, dport=8080) / Raw(b"hi")
        )
        net.settle()
        live = {point: net.frames(point) for point in net.points}
    expected = _captures(from_udp)
    assert sum(map(len, expected.values())) > 20
    assert _captures(from_packet) == expected
    assert live == expected
    assert from_packet.steps[0].outcome == from_udp.steps[0].outcome == "refused"


def test_the_api_run_is_what_kpkt_run_writes(tmp_path) -> None:
    subprocess.run(
        [Path(sys.executable).parent / "kpkt", "run", TWO_NODE, "-o", tmp_path / "cli", "-q"],
        check=True,
        capture_output=True,
    )
    done = kpkt.run(kpkt.load(TWO_NODE), tmp_path / "api")
    for file in done.files.values():
        assert (tmp_path / "cli" / file).read_bytes() == (tmp_path / "api" / file).read_bytes()


def test_the_crafted_packets_example_runs_and_prints_each_hop() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "crafted_packets.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    assert out.count("== ") == 5
    for line in (
        "drop at node1: ttl-exceeded: ttl 1 forwarding to 10.1.2.10",
        "pod-c.default/eth0         in   Ether / IP / UDP 10.1.1.5:4000 > 10.1.2.10:discard  "
        "[ttl 62, ihl 7]",
        "drop at pod-c.default: fragment: offset 0, more fragments",
        "drop at node1/cni0: bad-checksum: ipv4 header checksum 0x1234",
        "drop at pod-b.default: port-unreachable: nothing listens on tcp port 81 (reset)",
    ):
        assert line in out


def test_the_readme_python_api_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "delivered" in done.stdout and "time-exceeded" in done.stdout
    assert "reason='ttl-exceeded'" in done.stdout
