"""manifest.json as outputs.md describes it: captures, steps with their hops, drops."""

from __future__ import annotations

import json
from pathlib import Path

from kpkt import runner
from kpkt.capture import manifest
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology, load_topology_text

from conftest import ROOT


def test_captures_and_hops_point_at_real_frames(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    runner.run(load_topology(ROOT / "topologies" / "flannel-reference.yaml"), folder=folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["topology"], manifest["seed"]) == ("flannel-reference", 0)
    by_name = {f"{c['owner']}/{c['interface']}": c for c in manifest["captures"]}
    pod = by_name["n1-pod-a.default/eth0"]
    assert pod["kind"] == "pod-eth" and pod["ips"] == ["10.244.1.2/24"]
    assert pod["mac"] == "02:00:0a:f4:01:02" and pod["node"] == "node1"
    assert pod["peer"] == {"owner": "node1", "interface": "veth-pod-a"}
    kinds = {c["kind"] for c in manifest["captures"]}
    assert kinds == {"pod-eth", "veth", "bridge", "vxlan", "underlay"}
    frames = {name: read_pcap(folder / c["file"]) for name, c in by_name.items()}
    assert all(len(frames[n]) == c["packets"] for n, c in by_name.items())
    step = manifest["steps"][1]
    assert step["text"].startswith("udp: {from: n1-pod-a, to: n2-pod-a")
    assert step["frames"] == len(step["hops"]) == 32  # as many as Linux put on the wire
    for hop in step["hops"]:
        assert hop["index"] < len(frames[hop["capture"]])
        assert hop["direction"] in ("in", "out")
    times = [frames[h["capture"]][h["index"]][0] for h in step["hops"]]
    assert times == sorted(times), "hops are listed in the order they happened"


def test_drops_carry_place_reason_and_step(tmp_path: Path) -> None:
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: d}
nodes:
  - {name: node1, pods: [{name: a}]}
  - {name: node2, pods: [{name: b}]}
traffic:
  - udp: {from: a, to: b, dport: 5000}
  - udp: {from: a, to: b, dport: 5001, listen: false}
"""
    folder = tmp_path / "out"
    runner.run(load_topology_text(text, "d.yaml"), folder=folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [(d["where"], d["reason"], d["step"]) for d in manifest["drops"]] == [
        ("b.default", "port-unreachable", 1)
    ]
    assert manifest["steps"][1]["drops"] == 1


def test_each_hop_is_one_line_of_compact_json(tmp_path: Path) -> None:
    # the hops are written by hand (a million of them in a 10,000-pod run): each line is
    # what json.dumps makes of the hop
    folder = tmp_path / "out"
    runner.run(load_topology(ROOT / "topologies" / "flannel-reference.yaml"), folder=folder)
    text = (folder / "manifest.json").read_text()
    manifest = json.loads(text)
    lines = set(text.splitlines())
    hops = [hop for step in manifest["steps"] for hop in step["hops"]]
    assert len(hops) > 50
    for hop in hops:
        line = " " * 8 + json.dumps(hop)
        assert line in lines or line + "," in lines
    assert '  "background": {' in lines and '    "hops": []' in lines


def test_the_document_in_memory_is_the_file_with_its_hops_cut(tmp_path: Path) -> None:
    """`manifest.document` is what json.loads reads from manifest.json, but with its lists of
    hops cut to a budget in all, steps first, then the background's."""
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: cut}
nodes:
  - {name: node1, pods: [{name: a}]}
  - {name: node2, pods: [{name: b}]}
traffic:
  - udp: {from: a, to: b, dport: 5000, count: 3}
  - udp: {from: a, to: b, dport: 5001, listen: false}
  - ping: {from: b, to: a}
"""
    folder = tmp_path / "out"
    run = runner.run(load_topology_text(text, "cut.yaml"), folder=folder, report=False)
    journal = run.network.journal
    # frames outside any step are rare (no example has them): the background gets a copy of
    # the first step's first hops, so that a cut can end in it too
    journal.background.hops.extend(journal.steps[0].hops[:12])
    journal.background.hop_count += 3
    manifest.write(folder / "manifest.json", journal, run.topology, run.files)
    written = json.loads((folder / "manifest.json").read_text())
    counts = [len(log["hops"]) for log in [*written["steps"], written["background"]]]
    assert counts == [48, 20, 20, 3] and written["drops"]
    for budget in (0, 47, 50, 88, 89, 90, 91, 10**6):
        expected = json.loads(json.dumps(written))
        left = budget
        for log in [*expected["steps"], expected["background"]]:
            log["hops"] = log["hops"][:left]
            left -= len(log["hops"])
        assert manifest.document(journal, run.topology, run.files, budget) == expected, budget
