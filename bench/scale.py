"""The 10,000-pod cluster: 200 nodes x 50 pods, one cross-node ping per pod.

Generates the topology with `kpkt gen`, then, in a fresh process, loads it, builds and runs it,
and writes every capture, printing the time of each phase and the process's peak RSS. Usage:

    python bench/scale.py                  # 200 x 50
    python bench/scale.py --nodes 20 --pods 10
    python bench/scale.py --folder /dev/shm/scale   # the captures on tmpfs

The run writes 20,801 capture files. Creating them costs what the filesystem makes it cost:
nothing much on tmpfs, and on this machine's root file system (ext4 without a journal) from
0.6 s to 10 s for the same run. Without a journal, ext4 does not reuse an inode freed in the
last 60 s (or 360 s, while the block that holds it is not yet written back), and looks at
each such inode of the group again for every file it creates (perf: `recently_deleted`, from
`find_inode_bit`, most of the time spent creating them): a run right after another run's
20,000 files were deleted spends seconds in the kernel. So nothing is deleted here before a
timed run (an earlier run's folders are moved aside, and removed at the end); runs of this
script one right after the other still meet the files the one before removed. And the run
is reported three ways: its wall time, its CPU time (what kpkt itself spends, the figure to
compare), and the wall time spent in the capture files' flushes (`AppendingFile.flush`:
every file created and appended to), so that a slow disk shows as such. `--folder` says
where the captures go (by default a temporary folder, on the disk that holds TMPDIR). Last,
the whole `kpkt run` command is timed as a user would time it (interpreter start-up,
imports, load, run, report.html, exit), into a folder beside it (FOLDER-command).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(topology: Path, folder: Path) -> dict:
    from kpkt import runner
    from kpkt.capture.pcap import AppendingFile
    from kpkt.topology.load import load_topology

    flush, flushing = AppendingFile.flush, [0.0]

    def timed_flush(self) -> None:  # the time of every capture file's creation and appends
        start = time.perf_counter()
        flush(self)
        flushing[0] += time.perf_counter() - start

    AppendingFile.flush = timed_flush
    start = time.perf_counter()
    loaded = load_topology(topology)
    loaded_at, cpu_at = time.perf_counter(), time.process_time()
    result = runner.run(loaded, folder=folder, report=False)  # the datapath and its captures
    done, cpu_done = time.perf_counter(), time.process_time()
    return {
        "load_s": loaded_at - start,
        "run_s": done - loaded_at,
        "run_cpu_s": cpu_done - cpu_at,
        "files_s": flushing[0],
        "frames": sum(tap.count for tap in result.network.journal.taps),
        "captures": len(result.files),
        "steps": len(loaded.steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--folder", type=Path, help="where the captures go (replaced)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]))))
        return
    from kpkt.gen import generate

    with tempfile.TemporaryDirectory() as workdir:
        topology = Path(workdir) / "scale.yaml"
        topology.write_text(generate(args.nodes, args.pods))
        folder = args.folder or Path(workdir) / "out"
        command_folder = folder.with_name(f"{folder.name}-command")
        # an earlier run's folders moved aside now and removed after the timed runs: see above
        earlier = [_aside(path) for path in (folder, command_folder)]
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(topology), str(folder)],
            stdout=subprocess.PIPE,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit("the run failed")
        figures = json.loads(out)
        command = _command(topology, command_folder, figures["frames"])
        for path in earlier:
            if path is not None:
                shutil.rmtree(path)
    rss_mib = usage.ru_maxrss / 1024
    print(
        f"{args.nodes} nodes x {args.pods} pods = {args.nodes * args.pods:,} pods, "
        f"{figures['steps']:,} pings, {figures['frames']:,} frames in "
        f"{figures['captures']:,} captures"
    )
    print(f"  load    {figures['load_s']:7.2f} s   (target < 10 s)")
    print(f"  run     {figures['run_s']:7.2f} s   (build, run, write everything; target < 10 s)")
    print(f"    CPU   {figures['run_cpu_s']:7.2f} s   (user + system: the files' system calls too)")
    print(f"    files {figures['files_s']:7.2f} s   (creating and writing the capture files)")
    print(f"  peak RSS {rss_mib:6.0f} MiB (target < 2048 MiB)")
    print(
        f"  command {command['wall_s']:7.2f} s   (`kpkt run`, as a user times it: start-up, "
        f"load, run, report.html, exit; CPU {command['cpu_s']:.2f} s, "
        f"peak RSS {command['rss_mib']:.0f} MiB)"
    )


def _aside(folder: Path) -> Path | None:
    """Move an earlier run's `folder` out of the way (a rename); where it went, if it was."""
    if not folder.exists():
        return None
    moved = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    folder.rename(moved)
    return moved


def _command(topology: Path, folder: Path, frames: int) -> dict:
    """The whole `kpkt run` of `topology` into `folder`, as a user runs it (with report.html,
    allowing the run's `frames`): its wall and CPU time and peak RSS."""
    argv = [sys.executable, "-m", "kpkt", "run", str(topology), "-o", str(folder), "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen([*argv, "--max-packets", str(frames)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit("kpkt run failed")
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
    }


if __name__ == "__main__":
    main()
