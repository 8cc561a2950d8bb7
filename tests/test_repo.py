"""Promises the repository makes: the README's commands, CI running them, and clean style."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_readme_opens_with_run_and_test_commands() -> None:
    run, test = readme_commands()
    assert "kpkt run topologies/two-node.yaml" in run and "pip install" in run
    assert "pytest" in test and "pip install" in test and "tshark" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci, ".ci/run must run the README's test command word for word"


def test_ruff_is_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_no_file_reaches_outside_the_repository() -> None:
    """A fresh clone is the whole product: nothing reads or names the reference folder that sat
    beside the first checkouts (the data is in tests/reference/ now)."""
    done = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", r"(\.\./|/work/)shared"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr


def test_the_license_is_the_one_setup_cfg_names() -> None:
    setup = (ROOT / "setup.cfg").read_text()
    assert "\nlicense = Apache-2.0\n" in setup and "\nlicense_files = LICENSE\n" in setup
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX" in text
