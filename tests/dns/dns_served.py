"""`kpkt dns serve` as a test starts it: a real process on a free loopback port."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "tests" / "dns" / "cluster.yaml"
# About 2 s on an idle machine (mostly imports); over 20 s with a dozen processes on two cores.
STARTUP_MAX_S = 120


def kpkt(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "kpkt", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def serve(topology: Path = CLUSTER) -> tuple[subprocess.Popen, int]:
    """The topology's CoreDNS on 127.0.0.1 and the port it printed; fails the test if it does
    not start within STARTUP_MAX_S."""
    proc = kpkt("dns", "serve", str(topology), "--listen", "127.0.0.1:0")
    ready, _, _ = select.select([proc.stdout], [], [], STARTUP_MAX_S)
    if not ready:
        proc.kill()
        pytest.fail("kpkt dns serve printed nothing: " + proc.stderr.read())
    line = proc.stdout.readline()
    assert "listening on 127.0.0.1:" in line, line
    return proc, int(line.split("listening on 127.0.0.1:")[1].split()[0])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
