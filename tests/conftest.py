"""Shared fixtures: the project root, the example topologies, and tshark."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))


@pytest.fixture(scope="session")
def tshark() -> str:
    """The tshark binary. In CI its absence is a failure, never a skip."""
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tshark is not installed: CI must run the Wireshark checks")
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return path


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/*/expected/ from this run (then review `git diff`)",
    )
