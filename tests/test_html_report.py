"""report.html without a browser: what `kpkt run` and `kpkt report` write, what the page
holds (the run's hops, decisions and decoded frames), the same bytes for the same run, small
enough to mail, and the errors of `kpkt report` on a folder that is not a run's output."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kpkt import runner
from kpkt.errors import KpktError
from kpkt.html_report import MAX_HOPS, model, picture, write_report
from kpkt.html_report.model import read_run
from kpkt.html_report.page import render_page
from kpkt.topology.load import load_topology, load_topology_text

from conftest import EXAMPLES, ROOT, tshark_read

TWO_NODE = ROOT / "kpkt" / "examples" / "two-node.yaml"
LIMIT_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def two_node(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report") / "two-node"
    runner.run(load_topology(TWO_NODE), folder=folder)
    return folder


def kpkt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kpkt", *args], capture_output=True, text=True)


def embedded(folder: Path) -> dict:
    """The JSON the page carries."""
    html = (folder / "report.html").read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="run-data">') + len(
        '<script type="application/json" id="run-data">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_run_writes_the_report_and_the_manifest_does_not_list_it(two_node: Path) -> None:
    html = (two_node / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "report.html" not in (two_node / "manifest.json").read_text()
    # self-contained: nothing is fetched (the SVG namespace is a name, not a fetch)
    for reference in ("http://", "https://", " src=", "<link", "url(http", "@import"):
        assert reference not in html.replace("http://www.w3.org/2000/svg", "")


def test_every_capture_point_is_drawn_as_a_port(two_node: Path) -> None:
    html = (two_node / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((two_node / "manifest.json").read_text())
    for capture in manifest["captures"]:
        assert f'data-name="{capture["owner"]}/{capture["interface"]}"' in html


def test_hops_carry_the_frame_and_the_decision_all_pcapng_records(
    two_node: Path, tshark: str
) -> None:
    """Each hop's decision is the comment tshark reads for that frame of that interface, after
    the packet's "step N flow M" label (the report shows the hop under its step already)."""
    data = embedded(two_node)
    manifest = json.loads((two_node / "manifest.json").read_text())
    lines = tshark_read(
        tshark,
        two_node / "all.pcapng",
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "frame.comment",
    ).splitlines()
    comments: dict[str, list[str]] = {}
    for line in lines:
        interface, _, comment = line.partition("\t")
        comments.setdefault(interface, []).append(comment)
    checked = 0
    for step, listed in zip(data["steps"], manifest["steps"], strict=True):
        assert [data["ports"][hop[0]]["name"] for hop in step["hops"]] == [
            hop["capture"] for hop in listed["hops"]
        ]
        for hop, entry in zip(step["hops"], listed["hops"], strict=True):
            assert hop[1] == entry["index"] + 1 and hop[3] == entry["packet"]
            comment = comments[entry["capture"]][entry["index"]]
            label, _, notes = comment.partition(": ")
            assert re.fullmatch(rf"step {listed['index'] + 1} flow \d+", label), comment
            assert hop[6] == notes
            checked += bool(hop[6])
    assert checked > 100
    first = data["steps"][0]["hops"][0]
    assert first[6] == "arp who-has 10.1.1.6 (try 1)"
    summary, fields = data["frames"][first[5]]
    assert summary == "pod-a.default/eth0 > broadcast | ARP who-has 10.1.1.6 tell 10.1.1.5"
    assert ["ARP.pdst", "10.1.1.6"] in fields


def test_the_tshark_command_of_a_hop_shows_its_frame(two_node: Path, tshark: str) -> None:
    """The capture file and frame number a hop names hold the frame the hop shows."""
    run = read_run(two_node)
    checked = 0
    for hop in run.steps[1].hops:
        fields = dict(run.frames[hop.frame].fields)
        if "IP.ttl" not in fields:
            continue
        port = run.ports[hop.port]
        shown = tshark_read(
            tshark,
            two_node / port.file,
            "-Y",
            f"frame.number == {hop.frame_number}",
            "-T",
            "fields",
            "-e",
            "ip.ttl",
            "-e",
            "ip.id",
            "-E",
            "occurrence=f",  # the outer header of a VXLAN packet, as IP.ttl is
        ).split()
        assert shown[0] == fields["IP.ttl"] and int(shown[-1], 16) == int(fields["IP.id"])
        checked += 1
    assert checked > 10


def test_a_cross_node_datagram_is_traced_back_hop_by_hop_to_its_sender(two_node: Path) -> None:
    run = read_run(two_node)
    step, ports = run.steps[1], run.ports  # udp: pod-a to pod-c, cross node
    delivered = next(
        number
        for number, hop in enumerate(step.hops)
        if ports[hop.port].name == "pod-c.default/eth0"
        and hop.direction == "in"
        and "UDP" in run.frames[hop.frame].summary
    )
    path = []
    number = delivered
    while number >= 0:
        hop = step.hops[number]
        path.append(f"{ports[hop.port].name} {hop.direction}")
        number = hop.previous
    assert path[::-1] == [
        "pod-a.default/eth0 out",
        "node1/veth-pod-a in",
        "node1/cni0 in",
        "node1/flannel.1 out",
        "node1/eth0 out",
        "underlay/ul-node1 in",
        "underlay/ul-node2 out",
        "node2/eth0 in",
        "node2/flannel.1 in",
        "node2/cni0 out",
        "node2/veth-pod-c out",
        "pod-c.default/eth0 in",
    ]


def test_a_flood_leaves_every_port_from_the_one_it_came_in_by(two_node: Path) -> None:
    run = read_run(two_node)
    step = run.steps[0]  # pod-a's ARP request flooded by cni0, hairpin included
    names = [run.ports[hop.port].name for hop in step.hops]
    came_in = names.index("node1/veth-pod-a")
    flooded = [
        hop
        for hop in step.hops
        if hop.packet == step.hops[0].packet
        and hop.direction == "out"
        and run.ports[hop.port].kind == "veth"
    ]
    assert len(flooded) == 3
    assert {hop.previous for hop in flooded} == {came_in}


def test_same_run_same_bytes_and_kpkt_report_rebuilds_them(two_node: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    runner.run(load_topology(TWO_NODE), folder=again)
    assert (again / "report.html").read_bytes() == (two_node / "report.html").read_bytes()
    (again / "report.html").unlink()
    done = kpkt("report", str(again))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {again / 'report.html'}\n"
    assert (again / "report.html").read_bytes() == (two_node / "report.html").read_bytes()


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_the_report_of_each_example_is_under_2_mb(example: Path, tmp_path: Path) -> None:
    runner.run(load_topology(example), folder=tmp_path / "out")
    size = (tmp_path / "out" / "report.html").stat().st_size
    print(f"{example.stem}: report.html {size} bytes")
    assert 10_000 < size < LIMIT_BYTES


def test_no_report_writes_none(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = kpkt("run", "--quiet", "--no-report", str(TWO_NODE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote 24 captures, all.pcapng and manifest.json to {out}/\n"
    assert (out / "manifest.json").is_file() and not (out / "report.html").exists()


def test_a_report_written_later_is_replaced_by_the_next_run(tmp_path: Path) -> None:
    """`kpkt report` adds report.html to the files the folder's marker lists: the next run to
    the folder replaces it instead of refusing a file kpkt did not write."""
    out = tmp_path / "out"
    assert kpkt("run", "-q", "--no-report", str(TWO_NODE), "-o", str(out)).returncode == 0
    assert kpkt("report", str(out)).returncode == 0
    marker = json.loads((out / ".kpkt-output.json").read_text())
    assert "report.html" in marker["files"]
    done = kpkt("run", "-q", "--no-report", str(TWO_NODE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert not (out / "report.html").exists()


def test_text_from_the_topology_cannot_end_the_embedded_script(tmp_path: Path) -> None:
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: script}
nodes:
  - {name: node1, pods: [{name: pod-a}, {name: pod-b}]}
traffic:
  - udp: {from: pod-a, to: pod-b, dport: 8080, payload: '</script><b>x'}
"""
    runner.run(load_topology_text(text, "script.yaml"), folder=tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2  # the data's and the code's own
    assert "</script><b>x" in embedded(tmp_path / "out")["steps"][0]["text"]


def test_report_of_a_folder_without_a_run_is_exit_2_one_line(tmp_path: Path) -> None:
    done = kpkt("report", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: {tmp_path / 'missing'}: not a folder; give the output folder of a kpkt run\n"
    )
    done = kpkt("report", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {tmp_path / 'manifest.json'}: not found")
    assert list(tmp_path.iterdir()) == []


def test_report_of_a_manifest_kpkt_did_not_write_is_exit_2_one_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"captures": [], "steps": [{"text": "x"}]}')
    done = kpkt("report", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'manifest.json'}: not a manifest kpkt wrote")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.json"]


def test_report_of_a_truncated_all_pcapng_names_the_file_and_writes_nothing(
    two_node: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    runner.run(load_topology(TWO_NODE), folder=folder, report=False)
    capture = folder / "all.pcapng"
    data = capture.read_bytes()
    capture.write_bytes(data[: len(data) // 2])
    done = kpkt("report", str(folder))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {capture}: byte ")
    assert not (folder / "report.html").exists()
    assert not (folder / ".report.html.tmp").exists()


def test_write_report_into_a_folder_it_cannot_write_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    runner.run(load_topology(TWO_NODE), folder=folder, report=False)
    (folder / "report.html").mkdir()  # in the way, whoever runs the test (root included)
    with pytest.raises(KpktError, match="report.html: cannot write it"):
        write_report(folder)
    assert not (folder / ".report.html.tmp").exists()


def test_the_readme_shows_a_screenshot_of_the_report() -> None:
    """docs/report.png, made by tests/report_screenshot.py, is small enough for the repository."""
    assert "](docs/report.png)" in (ROOT / "README.md").read_text()
    picture = (ROOT / "docs" / "report.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) < 250 * 1024


def test_a_long_step_is_cut_at_the_hop_budget_and_the_rest_counted(tmp_path: Path) -> None:
    """A report carries MAX_HOPS hops in all (steps in order); the pcaps are read only as far
    as those hops go, so a long run still gets a small report, quickly."""
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: long}
nodes:
  - {name: node1, pods: [{name: pod-a}]}
  - {name: node2, pods: [{name: pod-c}]}
traffic:
  - udp: {from: pod-a, to: pod-c, dport: 8080, count: 600}
  - ping: {from: pod-c, to: pod-a}
"""
    runner.run(load_topology_text(text, "long.yaml"), folder=tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    data = embedded(tmp_path / "out")
    first, second = data["steps"]
    assert manifest["steps"][0]["frames"] > MAX_HOPS
    assert len(first["hops"]) == MAX_HOPS and second["hops"] == []
    assert first["hopsNotShown"] == manifest["steps"][0]["frames"] - MAX_HOPS
    assert second["hopsNotShown"] == manifest["steps"][1]["frames"] > 0


def test_a_run_reports_without_reading_its_manifest_back_and_the_page_is_the_same(
    tmp_path: Path, monkeypatch
) -> None:
    """`kpkt run` gives the report the manifest's document as the run has it, its hops cut to
    MAX_HOPS (kpkt.capture.manifest.document), instead of reading manifest.json back: the page
    is the one `kpkt report` writes from the folder, byte for byte, with more hops than a
    report carries and drops before and past that budget."""
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: cut}
nodes:
  - {name: node1, pods: [{name: pod-a}]}
  - {name: node2, pods: [{name: pod-c}]}
traffic:
  - udp: {from: pod-a, to: pod-c, dport: 5001, listen: false}
  - udp: {from: pod-a, to: pod-c, dport: 8080, count: 600}
  - udp: {from: pod-c, to: pod-a, dport: 5002, listen: false}
"""
    folder = tmp_path / "out"

    def unread(folder: Path) -> None:
        raise AssertionError(f"{folder}/manifest.json read back")

    with monkeypatch.context() as patched:
        patched.setattr(model, "_manifest", unread)
        runner.run(load_topology_text(text, "cut.yaml"), folder=folder)
    written = (folder / "report.html").read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sum(step["frames"] for step in manifest["steps"][:2]) > MAX_HOPS
    assert {drop["step"] for drop in manifest["drops"]} == {0, 2}
    shown = embedded(folder)["steps"]
    assert shown[0]["drops"] and shown[0]["hopsNotShown"] == 0
    assert shown[2]["drops"] and shown[2]["hops"] == []
    write_report(folder)
    assert (folder / "report.html").read_bytes() == written


def test_a_big_cluster_draws_only_the_pods_its_shown_hops_cross(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(picture, "MAX_PODS", 3)
    text = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: big}
nodes:
  - {name: node1, pods: [{name: pod-a}, {name: pod-b}]}
  - {name: node2, pods: [{name: pod-c}, {name: pod-d}]}
traffic:
  - ping: {from: node1, to: node2}
  - udp: {from: pod-a, to: pod-b, dport: 8080}
"""
    folder = tmp_path / "out"
    runner.run(load_topology_text(text, "big.yaml"), folder=folder, report=False)
    run = read_run(folder)
    html = render_page(run)
    pods = re.findall(r'<rect class="pod"[^>]* data-owner="([^"]+)"', html)
    assert pods == ["pod-a.default", "pod-b.default"]  # the udp step floods node1's pods only
    assert "2 pods</text>" in html and "0 of 2 pods (the others carry no hop shown here)" in html
    run.steps[1:] = []  # the ping between the nodes only: no pod drawn
    assert '<rect class="pod"' not in render_page(run)


def test_a_routed_node_network_draws_a_band_per_switch_and_the_router(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    runner.run(
        load_topology(ROOT / "kpkt" / "examples" / "calico-cross-subnet.yaml"), folder=folder
    )
    html = (folder / "report.html").read_text(encoding="utf-8")
    ports = {
        name: (float(x), float(y))
        for name, x, y in re.findall(r'data-name="([^"]+)" data-x="([^"]+)" data-y="([^"]+)"', html)
    }
    for switch in ("underlay-rack-a", "underlay-rack-b"):
        assert f"{switch}: the node network</text>" in html
    # the router's two interfaces each have their own switch port, one band apart, not on top
    # of each other
    rack_a, rack_b = ports["underlay-rack-a/ul-router"], ports["underlay-rack-b/ul-router"]
    assert rack_a[0] == rack_b[0] and rack_b[1] - rack_a[1] == picture.SWITCH_BAND
    assert ports["router/eth0"][1] > rack_b[1] and ports["router/eth1"][1] > rack_b[1]
