"""report.html in a real browser: headless Chromium (tests/browser.py) opens the report of a run
and the tests read the page's DOM: every capture point drawn, a cross-node step's hops
highlighted and listed in order, a drop shown at its interface, no console errors. Screenshots
are kept in each test's output folder; render times are printed (not asserted: CI machines
differ)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kpkt import runner
from kpkt.topology.load import load_topology

from browser import Browser, chromium_binary
from conftest import ROOT
from report_screenshot import CROSS_NODE_STEP, SHOWN_HOP, choose_step, click_hop, shoot

TWO_NODE = ROOT / "kpkt" / "examples" / "two-node.yaml"
LINK_DOWN = ROOT / "tests" / "golden" / "drop-link-down" / "topology.yaml"
TTL_EXCEEDED = ROOT / "tests" / "golden" / "drop-ttl-exceeded" / "topology.yaml"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module. In CI its absence is a failure, never a skip."""
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: CI must run the report's browser tests")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with Browser(binary) as opened:
        yield opened


@pytest.fixture
def clean(browser: Browser):
    """The browser, checked after the test for console errors and uncaught exceptions."""
    browser.errors.clear()
    yield browser
    assert browser.errors == [], "the page reported errors:\n" + "\n".join(browser.errors)


def run_into(topology: Path, folder: Path) -> dict:
    runner.run(load_topology(topology), folder=folder)
    return json.loads((folder / "manifest.json").read_text())


def rendered(browser: Browser, report: Path) -> float:
    """Open `report`; the milliseconds from navigation to the first step drawn."""
    browser.open(report)
    return browser.evaluate("window.kpktReadyMs")


def test_every_capture_point_of_the_manifest_is_drawn(
    clean: Browser, tmp_path: Path, capsys
) -> None:
    manifest = run_into(TWO_NODE, tmp_path / "two-node")
    milliseconds = rendered(clean, tmp_path / "two-node" / "report.html")
    with capsys.disabled():
        print(f"\ntwo-node report.html rendered in {milliseconds:.0f} ms")
    drawn = clean.evaluate(
        "[...document.querySelectorAll('#cluster .port')].map(p => {"
        " const r = p.querySelector('rect').getBoundingClientRect();"
        " return [p.dataset.name, r.width, r.height]; })"
    )
    names = [f"{c['owner']}/{c['interface']}" for c in manifest["captures"]]
    assert sorted(name for name, _, _ in drawn) == sorted(names)
    assert all(width > 20 and height > 20 for _, width, height in drawn)


def test_a_cross_node_step_highlights_exactly_its_hops_in_order(
    clean: Browser, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "two-node"
    manifest = run_into(TWO_NODE, folder)
    step = manifest["steps"][CROSS_NODE_STEP]
    assert "cross node" in step["text"]
    shot = shoot(clean, folder / "report.html", tmp_path / "report.png")
    with capsys.disabled():
        print(f"\nscreenshot of the report: {shot}")
    hops = [hop["capture"] for hop in step["hops"]]
    highlighted = clean.evaluate(
        "[...document.querySelectorAll('#cluster .port.hit')].map(p => p.dataset.name)"
    )
    assert sorted(highlighted) == sorted(set(hops))
    rows = clean.evaluate(
        "[...document.querySelectorAll('#sequence .hop-row')].map(r => r.dataset.port)"
    )
    assert rows == hops  # one row per hop, in the order they happened
    moves = clean.evaluate(
        "[...document.querySelectorAll('#overlay .arrow')]"
        ".map(a => [a.dataset.from, a.dataset.to, Number(a.dataset.hop)])"
    )
    assert [hop for _, _, hop in moves] == sorted(hop for _, _, hop in moves)
    for source, target, hop in moves:  # each arrow ends where its hop was captured
        assert hops[hop - 1] == target and source != target
    tunnel = [
        ["node1/cni0", "node1/flannel.1"],
        ["node1/flannel.1", "node1/eth0"],
        ["underlay/ul-node1", "underlay/ul-node2"],
        ["node2/eth0", "node2/flannel.1"],
        ["node2/flannel.1", "node2/cni0"],
    ]
    assert all(pair in [[a, b] for a, b, _ in moves] for pair in tunnel)
    links = clean.evaluate(
        "[...document.querySelectorAll('#cluster .link.hit')]"
        ".map(l => [l.dataset.a, l.dataset.b].sort().join(' '))"
    )
    for link in ("node1/veth-pod-a pod-a.default/eth0", "node2/veth-pod-c pod-c.default/eth0"):
        assert link in links
    # the opened hop: its frame, capture file, frame number and the tshark command
    hop = step["hops"][SHOWN_HOP]
    file = next(
        c["file"]
        for c in manifest["captures"]
        if c["owner"] + "/" + c["interface"] == hop["capture"]
    )
    text = clean.evaluate("document.getElementById('hop').innerText")
    assert f"tshark -r {file} -Y 'frame.number == {hop['index'] + 1}' -V" in text
    assert f"capture {file}, frame {hop['index'] + 1}" in text
    assert "IP.ttl" in text and "decision: forward: route 10.1.2.0/24" in text


def test_a_drop_is_shown_at_its_interface(clean: Browser, tmp_path: Path) -> None:
    manifest = run_into(LINK_DOWN, tmp_path / "link-down")
    rendered(clean, tmp_path / "link-down" / "report.html")
    choose_step(clean, 0)
    where = {drop["where"] for drop in manifest["drops"] if drop["step"] == 0}
    assert "node1/eth0" in where
    dropped = clean.evaluate(
        "[...document.querySelectorAll('#cluster .port.dropped')].map(p => p.dataset.name)"
    )
    assert dropped == ["node1/eth0"]
    marks = clean.evaluate(
        "[...document.querySelectorAll('#marks .drop-mark')].map(m => m.dataset.where)"
    )
    assert "node1/eth0" in marks
    rows = clean.evaluate(
        "[...document.querySelectorAll('#sequence .drop')]"
        ".map(d => [d.dataset.where, d.dataset.column, d.textContent])"
    )
    link_down = [row for row in rows if row[0] == "node1/eth0"]
    assert link_down and all(row[1] == "node1/eth0" and "link-down" in row[2] for row in link_down)
    color = clean.evaluate(
        "getComputedStyle(document.querySelector('#sequence .drop .cross')).fill"
    )
    assert color == "rgb(201, 42, 42)"
    clean.screenshot(tmp_path / "drop.png")


def test_a_drop_in_a_namespace_marks_its_box(clean: Browser, tmp_path: Path) -> None:
    run_into(TTL_EXCEEDED, tmp_path / "ttl")
    rendered(clean, tmp_path / "ttl" / "report.html")
    choose_step(clean, 0)
    assert clean.evaluate(
        "[...document.querySelectorAll('#cluster rect.dropped')].map(r => r.dataset.node)"
    ) == ["node1"]


def test_folding_a_node_keeps_the_path_drawn(clean: Browser, tmp_path: Path) -> None:
    run_into(TWO_NODE, tmp_path / "two-node")
    rendered(clean, tmp_path / "two-node" / "report.html")
    choose_step(clean, CROSS_NODE_STEP)
    click_hop(clean, 3)
    arrows = clean.evaluate("document.querySelectorAll('#overlay .arrow').length")
    clean.evaluate(
        "document.querySelector('.toggle[data-node=\"node1\"]')"
        ".dispatchEvent(new MouseEvent('click'))"
    )
    assert (
        clean.evaluate(
            "document.querySelector('.pods[data-node=\"node1\"]').getBoundingClientRect().height"
        )
        == 0
    )
    assert clean.evaluate("document.querySelectorAll('#overlay .arrow').length") == arrows
    assert clean.evaluate(
        "document.querySelector('.toggle[data-node=\"node1\"]').textContent"
    ).startswith("▸")


def test_a_50_pod_cluster_renders(clean: Browser, tmp_path: Path, capsys) -> None:
    topology = tmp_path / "gen.yaml"
    subprocess.run(["kpkt", "gen", "5", "10", "-o", str(topology)], check=True)
    manifest = run_into(topology, tmp_path / "gen")
    size = (tmp_path / "gen" / "report.html").stat().st_size
    milliseconds = rendered(clean, tmp_path / "gen" / "report.html")
    with capsys.disabled():
        print(f"\n50-pod report.html ({size} bytes) rendered in {milliseconds:.0f} ms")
    pods = {c["owner"] for c in manifest["captures"] if c["kind"] == "pod-eth"}
    assert len(pods) == 50
    assert clean.evaluate("document.querySelectorAll('#cluster rect.pod').length") == 50
    choose_step(clean, len(manifest["steps"]) - 1)
    clean.screenshot(tmp_path / "gen.png")
