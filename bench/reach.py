"""`kpkt reach` over the upstream NetworkPolicy e2e cluster (the `netpol` example: 3 namespaces
x 3 pods, ports 80 and 81 over TCP and UDP, two policies): 9 x 9 x 4 = 324 probes on the wire.

Each round runs `kpkt reach netpol` in a fresh process (start-up, load, build, the probes, the
tables printed), with and without `-o` (every probe's captures written), and times it from
outside; in-process, it also times the probes alone. The figure the issue asks for is the
whole command under 10 s. Usage:

    python bench/reach.py                 # 5 rounds
    python bench/reach.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_S = 10.0


def command_seconds(*extra: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kpkt", "reach", "netpol", *extra],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def in_process() -> dict:
    from kpkt.reach import probe_steps, reach
    from kpkt.topology.examples import example_named
    from kpkt.topology.load import load_topology

    start = time.perf_counter()
    topology = load_topology(example_named("netpol").path)
    steps = probe_steps(topology)
    loaded = time.perf_counter()
    probes = reach(topology, steps)
    done = time.perf_counter()
    verdicts = {}
    for probe in probes:
        verdicts[probe["verdict"]] = verdicts.get(probe["verdict"], 0) + 1
    return {
        "probes": len(probes),
        "verdicts": verdicts,
        "load_s": loaded - start,
        "probe_s": done - loaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plain, written, inside = [], [], []
    with tempfile.TemporaryDirectory(prefix="kpkt-reach-") as scratch:
        for _ in range(args.rounds):
            plain.append(command_seconds())
            written.append(command_seconds("-o", str(Path(scratch) / "out")))
            inside.append(in_process())
    report = {
        "rounds": args.rounds,
        "probes": inside[0]["probes"],
        "verdicts": inside[0]["verdicts"],
        "command_s_median": statistics.median(plain),
        "command_s_max": max(plain),
        "command_with_captures_s_median": statistics.median(written),
        "probes_only_s_median": statistics.median(r["probe_s"] for r in inside),
        "under_limit": max(plain) < LIMIT_S,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
