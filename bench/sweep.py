"""`kpkt sweep` against a plain loop of `kpkt run` processes, on the same runs.

The workload: N small runs (two nodes, a pod on each, one ping across nodes; the seed varies
from 1 to N), every run keeping all its captures. Measured, each as the wall time of the whole
command:

  loop      `kpkt run base.yaml --seed S -o DIR` for S = 1..N, one process after another
            (what you would write without sweeps);
  floor     the N runs in one Python process, back to back (load, build, run, write): the time
            the emulation itself takes, with no process started and nothing to schedule;
  sweep -jJ `kpkt sweep` with J local worker processes;
  dask      `kpkt sweep --dask local` (a Dask LocalCluster of 2 single-threaded workers,
            started and stopped by the command).

Each sweep also runs a tenth of the runs (N/10), which splits its wall time into a start-up
(worker processes, a Dask cluster) and a time per further run. Printed per executor: runs per
second, the speedup over the loop (and that divided by the workers), the start-up, and the
overhead per run: worker time a further run takes beyond the emulation's own,
workers x (time per further run) - floor / N. The modes run in turn, round after round; each
ratio is taken within a round and the median over the rounds is shown, so a drift of a shared
machine's speed does not tilt it. Usage:

    python bench/sweep.py                      # 200 runs, 3 rounds
    python bench/sweep.py --runs 50 --rounds 1 # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: bench-sweep}
nodes:
  - name: node1
    pods: [{name: client}]
  - name: node2
    pods: [{name: server}]
traffic:
  - ping: {from: client, to: server}
"""
SWEEP = """\
apiVersion: kpkt/v1
kind: Sweep
topologies: [base.yaml]
grid:
  seed: {{from: 1, to: {runs}, step: 1}}
keep: all
"""
FLOOR = """\
import json, sys, time
from pathlib import Path
from kpkt import runner
from kpkt.topology.load import load_topology_text
text, runs, out = Path(sys.argv[1]).read_text(), int(sys.argv[2]), Path(sys.argv[3])
start = time.perf_counter()
for seed in range(1, runs + 1):
    topology = load_topology_text(text, "base.yaml", seed=seed)
    runner.run(topology, folder=out / str(seed), report=False)
print(json.dumps(time.perf_counter() - start))
"""


def kpkt(*args: object) -> list[str]:
    return [sys.executable, "-m", "kpkt", *map(str, args)]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def one_round(work: Path, runs: int, jobs: list[int], dask: bool) -> dict[str, float]:
    base, sweep, tenth = work / "base.yaml", work / "sweep.yaml", work / "tenth.yaml"
    seconds: dict[str, float] = {}
    out = work / "floor"
    done = subprocess.run(
        [sys.executable, "-c", FLOOR, str(base), str(runs), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds["floor"] = json.loads(done.stdout)
    shutil.rmtree(out)
    start = time.perf_counter()
    for seed in range(1, runs + 1):
        command = kpkt("run", base, "--seed", seed, "-q", "-o", work / "loop" / str(seed))
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds["loop"] = time.perf_counter() - start
    shutil.rmtree(work / "loop")
    modes = [(f"sweep -j{count}", ["--jobs", count]) for count in jobs]
    modes += [("dask local -j2", ["--dask", "local", "--jobs", 2])] if dask else []
    tables = set()
    for name, options in modes:
        out = work / "sweep"
        seconds[name] = timed(kpkt("sweep", sweep, "-o", out, *options))
        tables.add((out / "summary.csv").read_text())
        shutil.rmtree(out)
        seconds[f"{name} tenth"] = timed(kpkt("sweep", tenth, "-o", out, *options))
        shutil.rmtree(out)
    assert len(tables) == 1, "the executors wrote different tables"
    return seconds


def further(seconds: dict[str, float], name: str, runs: int) -> float:
    """The wall time each run beyond the first tenth added to sweep `name`."""
    return (seconds[name] - seconds[f"{name} tenth"]) / (runs - runs // 10)


def workers(name: str) -> int:
    return int(name.rsplit("-j", 1)[1]) if "-j" in name else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default="1,2", help="local worker counts (default 1,2)")
    parser.add_argument("--no-dask", action="store_true", help="leave out --dask local")
    args = parser.parse_args()
    jobs = [int(count) for count in args.jobs.split(",")]
    rounds = []
    with tempfile.TemporaryDirectory(prefix="kpkt-bench-sweep.") as folder:
        work = Path(folder)
        (work / "base.yaml").write_text(BASE)
        (work / "sweep.yaml").write_text(SWEEP.format(runs=args.runs))
        (work / "tenth.yaml").write_text(SWEEP.format(runs=args.runs // 10))
        for index in range(args.rounds):
            seconds = one_round(work, args.runs, jobs, not args.no_dask)
            rounds.append(seconds)
            shown = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
            print(f"round {index + 1}: {shown}", flush=True)
    load = os.getloadavg()[0]
    print(f"\n{args.runs} runs, {args.rounds} round(s), {os.cpu_count()} cores, load {load:.1f}")
    print(
        "| | runs/s | speedup over the loop | speedup per worker | start-up | overhead per run |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    n = args.runs
    for name in rounds[0]:
        if name.endswith(" tenth"):
            continue
        rate = statistics.median(n / seconds[name] for seconds in rounds)
        if name in ("floor", "loop"):
            per_run = statistics.median(seconds[name] / n for seconds in rounds)
            speedups = "1x | 1x" if name == "loop" else " | "
            print(f"| {name} | {rate:.1f} | {speedups} | | ({per_run:.3f} s a run) |")
            continue
        count = workers(name)

        speedup = statistics.median(seconds["loop"] / seconds[name] for seconds in rounds)
        start = statistics.median(
            seconds[name] - n * further(seconds, name, n) for seconds in rounds
        )
        overhead = statistics.median(
            count * further(seconds, name, n) - seconds["floor"] / n for seconds in rounds
        )
        print(
            f"| {name} | {rate:.1f} | {speedup:.1f}x | {speedup / count:.1f}x | {start:.1f} s "
            f"| {overhead:.3f} s |"
        )


if __name__ == "__main__":
    main()
