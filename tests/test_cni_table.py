"""The README's table of what differs on the wire between the datapaths is what kpkt does: it is
regenerated from runs of the tutorial cluster under each CNI (tests/cni_table.py)."""

from __future__ import annotations

import re
from pathlib import Path

from cni_table import DATAPATHS, table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_is_what_the_runs_show() -> None:
    text = README.read_text()
    found = re.search(r"<!-- cni-table -->\n(.*?)<!-- /cni-table -->", text, re.S)
    assert found, "README.md has no <!-- cni-table --> section"
    assert found.group(1) == table(), "README's datapath table is stale: python tests/cni_table.py"


def test_every_cni_kpkt_knows_has_a_column() -> None:
    from kpkt.cni import CNIS

    assert {settings["cni"] for _, settings in DATAPATHS} == set(CNIS)
