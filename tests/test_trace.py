"""`kpkt trace`: one step's path, with what changed at each hop and how it ended."""

from __future__ import annotations

import subprocess
import sys

from kpkt.topology.load import load_topology, load_topology_text
from kpkt.trace import trace

from conftest import ROOT

REFERENCE = ROOT / "topologies" / "flannel-reference.yaml"


def test_cross_node_trace_shows_each_change() -> None:
    lines = trace(load_topology(REFERENCE), 2)
    text = "\n".join(lines)
    assert lines[0].startswith("step 2: udp: {from: n1-pod-a, to: n2-pod-a")
    assert "node1/flannel.1" in text and "ttl 64 -> 63" in text
    assert "vxlan encap: outer 192.168.50.1:" in text and "> 192.168.50.2:8472 ttl 64" in text
    assert "vxlan decap: inner eth node1/flannel.1 > node2/flannel.1" in text
    assert "ttl 63 -> 62" in text
    assert lines[-1] == "  result: sent 1, received 1 (delivered, no drops)"
    # in the order it happened: pod-a's ARP request first, delivery into n2-pod-a last
    assert "n1-pod-a.default/eth0  out" in lines[2] and "ARP who-has 10.244.1.1" in lines[2]
    assert "n2-pod-a.default/eth0  in " in lines[-2]


def test_trace_of_a_drop_names_the_reason() -> None:
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: t}
nodes:
  - {name: node1, pods: [{name: a}]}
  - {name: node2, pods: [{name: b}]}
traffic:
  - ping: {from: a, to: b, ttl: 1}
"""
    lines = trace(load_topology_text(text, "t.yaml"), 1)
    assert any(line.startswith("  dropped at node1: ttl-exceeded") for line in lines)
    assert "time exceeded" in lines[-1]


def test_cli_trace_bad_step_exits_2_and_colour_on_request() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "kpkt", "trace", str(REFERENCE), "4"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "there is no step 4" in bad.stderr
    plain = subprocess.run(
        [sys.executable, "-m", "kpkt", "trace", str(REFERENCE), "1"], capture_output=True, text=True
    )
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout
    painted = subprocess.run(
        [sys.executable, "-m", "kpkt", "trace", str(REFERENCE), "1", "--colour"],
        capture_output=True,
        text=True,
    )
    assert painted.returncode == 0 and "\x1b[" in painted.stdout
