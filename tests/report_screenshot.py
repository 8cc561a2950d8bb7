"""The README's picture of report.html (docs/report.png), made the way the browser tests see the
page: run the two-node example, open its report in headless Chromium, choose the cross-node step,
click one of its hops, take a screenshot.

    python tests/report_screenshot.py docs/report.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kpkt import runner
from kpkt.topology.examples import example_named
from kpkt.topology.load import load_topology

from browser import Browser, chromium_binary

CROSS_NODE_STEP = 1  # two-node's "udp: pod-a to pod-c (cross node, VXLAN)"
SHOWN_HOP = 15  # the datagram entering flannel.1 on node1


def choose_step(browser: Browser, index: int) -> None:
    browser.evaluate(
        "(() => { const s = document.getElementById('step');"
        f" s.value = '{index}'; s.dispatchEvent(new Event('change')); }})()"
    )


def click_hop(browser: Browser, number: int) -> None:
    browser.evaluate(
        f"document.querySelector('.hop-row[data-hop=\"{number}\"]')"
        ".dispatchEvent(new MouseEvent('click'))"
    )


def shoot(browser: Browser, report: Path, png: Path) -> Path:
    """Open `report`, show the cross-node step with one hop opened, and save the screenshot."""
    browser.open(report)
    choose_step(browser, CROSS_NODE_STEP)
    click_hop(browser, SHOWN_HOP)
    return browser.screenshot(png)


def main(png: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "two-node"
        runner.run(load_topology(example_named("two-node").path), folder=folder)
        with Browser(chromium_binary(), width=1280, height=1100) as browser:
            shoot(browser, folder / "report.html", png)
    print(f"wrote {png} ({png.stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
