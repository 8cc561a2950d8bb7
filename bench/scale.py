"""The 10,000-pod cluster: 200 nodes x 50 pods, one cross-node ping per pod.

Generates the topology with `kpkt gen`, then, in a fresh process, loads it, builds and runs it,
and writes every capture, printing the time of each phase and the process's peak RSS. Usage:

    python bench/scale.py                  # 200 x 50
    python bench/scale.py --nodes 20 --pods 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(topology: Path, folder: Path) -> dict:
    from kpkt import runner
    from kpkt.topology.load import load_topology

    start = time.perf_counter()
    loaded = load_topology(topology)
    loaded_at = time.perf_counter()
    result = runner.run(loaded, folder=folder, report=False)  # the datapath and its captures
    done = time.perf_counter()
    return {
        "load_s": loaded_at - start,
        "run_s": done - loaded_at,
        "frames": sum(tap.count for tap in result.network.journal.taps),
        "captures": len(result.files),
        "steps": len(loaded.steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]))))
        return
    from kpkt.gen import generate

    with tempfile.TemporaryDirectory() as workdir:
        topology = Path(workdir) / "scale.yaml"
        topology.write_text(generate(args.nodes, args.pods))
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(topology), str(Path(workdir) / "out")],
            stdout=subprocess.PIPE,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit("the run failed")
    figures = json.loads(out)
    rss_mib = usage.ru_maxrss / 1024
    print(
        f"{args.nodes} nodes x {args.pods} pods = {args.nodes * args.pods:,} pods, "
        f"{figures['steps']:,} pings, {figures['frames']:,} frames in "
        f"{figures['captures']:,} captures"
    )
    print(f"  load    {figures['load_s']:7.2f} s   (target < 10 s)")
    print(f"  run     {figures['run_s']:7.2f} s   (build, run, write everything; target < 60 s)")
    print(f"  peak RSS {rss_mib:6.0f} MiB (target < 2048 MiB)")


if __name__ == "__main__":
    main()
