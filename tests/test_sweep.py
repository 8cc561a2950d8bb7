"""`kpkt sweep`: sweep files expanded by YAML path, the summary table, the local and Dask
executors giving the same table, resume, failed runs and what each keep mode leaves."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

from kpkt.errors import TopologyError
from kpkt.output_folder import MARKER
from kpkt.sweep import progress as sweep_progress
from kpkt.sweep.plot import plot_files
from kpkt.sweep.progress import SweepProgress
from kpkt.sweep.summary import COUNTS, NUMERIC_PREFIXES, manifest_columns
from kpkt.sweep.sweepfile import KEEP, RANGE_KEYS, SWEEP_KEYS, load_sweep
from kpkt.sweep.table import FIXED_HEAD, FIXED_TAIL
from kpkt.sweep.task import RunTask, perform
from kpkt.topology.limits import DEFAULT_MAX_PACKETS
from kpkt.topology.load import CNIS

from conftest import ROOT

# one node, two pods, one datagram: a run of a few tens of milliseconds
SMALL = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: small}
nodes:
  - name: node1
    pods: [{name: pod-a}, {name: pod-b}]
traffic:
  - udp: {from: pod-a, to: pod-b, dport: 8080, count: 1}
"""


def kpkt(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "kpkt", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def sweep_file(folder: Path, body: str, topology: str = SMALL) -> Path:
    (folder / "small.yaml").write_text(topology)
    path = folder / "sweep.yaml"
    path.write_text("apiVersion: kpkt/v1\nkind: Sweep\n" + body)
    return path


def table(folder: Path) -> list[dict]:
    with open(folder / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_grid_and_list_expand_by_yaml_path(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        """topologies: [small.yaml]
grid:
  seed: [1, 2]
  traffic[0].udp.count: {from: 1, to: 3, step: 1}
list:
  - traffic[0].udp.dport: 80
  - traffic[0].udp.dport: 81
    nodes[0].pods[1]["name"]: pod-c
    traffic[0].udp.to: pod-c
""",
    )
    sweep = load_sweep(path)
    assert sweep.parameters == (
        "seed",
        "traffic[0].udp.count",
        "traffic[0].udp.dport",
        'nodes[0].pods[1]["name"]',
        "traffic[0].udp.to",
    )
    assert len(sweep.runs) == 2 * 2 * 3  # the list's entries times the grid's points
    assert [run.index for run in sweep.runs] == list(range(1, 13))
    first, last = sweep.runs[0], sweep.runs[-1]
    assert first.params == {"traffic[0].udp.dport": 80, "seed": 1, "traffic[0].udp.count": 1}
    assert last.params["seed"] == 2 and last.params["traffic[0].udp.count"] == 3
    document = yaml.safe_load(last.text)
    assert document["seed"] == 2  # a key the base does not have is added
    assert document["traffic"][0]["udp"] == {
        "from": "pod-a",
        "to": "pod-c",
        "dport": 81,
        "count": 3,
    }
    assert document["nodes"][0]["pods"][1] == {"name": "pod-c"}
    assert yaml.safe_load((tmp_path / "small.yaml").read_text())["traffic"][0]["udp"]["count"] == 1
    assert len({run.digest for run in sweep.runs}) == 12


def test_a_float_range_gives_round_values(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        "topologies: [small.yaml]\n"
        "grid:\n  traffic[0].udp.interval: {from: 0, to: 0.3, step: 0.1}\n",
    )
    values = [run.params["traffic[0].udp.interval"] for run in load_sweep(path).runs]
    assert values == [0, 0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    ("where", "path", "problem"),
    [
        ("grid", "traffic[3].udp.count", "[3]: traffic has 1 item(s) (from [0])"),
        ("grid", "nodes.name", "'name': nodes is a list, not a mapping"),
        ("grid", "cluster.cni[0]", "'cluster': the top level has no key 'cluster'"),
        ("grid", "traffic[0].udp..count", "expected .key, [index]"),
        ("list[0]", "metadata.name[0]", "[0]: metadata.name is 'small', not a list"),
    ],
)
def test_a_bad_yaml_path_is_rejected_naming_the_sweep_file_and_the_path(
    tmp_path: Path, where: str, path: str, problem: str
) -> None:
    if where == "grid":
        body = f"topologies: [small.yaml]\ngrid:\n  {json.dumps(path)}: [1, 2]\n"
    else:
        body = f"topologies: [small.yaml]\nlist:\n  - {{{json.dumps(path)}: 1}}\n"
    sweep = sweep_file(tmp_path, body)
    with pytest.raises(TopologyError) as raised:
        load_sweep(sweep)
    (line,) = raised.value.problems
    assert line.startswith(f"{sweep}: {where}: '{path}'") and problem in line, line


def test_the_command_exits_2_on_a_bad_path_and_writes_nothing(tmp_path: Path) -> None:
    sweep = sweep_file(tmp_path, "topologies: [small.yaml]\ngrid:\n  traffic[1].udp.count: [1]\n")
    out = tmp_path / "out"
    done = kpkt("sweep", sweep, "-o", out)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {sweep}: grid: 'traffic[1].udp.count' does not fit topology small.yaml: "
        "[1]: traffic has 1 item(s) (from [0])\n"
    )
    assert not out.exists(), "nothing is written for a bad sweep file"


def test_the_sweep_file_itself_is_checked(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path,
        "topologies: [small.yaml, no-such.yaml]\ngrid: {seed: 3}\nkeep: pcaps\nplot: seed\n",
    )
    done = kpkt("sweep", sweep, "-o", tmp_path / "out")
    assert done.returncode == 2
    assert sorted(done.stderr.splitlines()) == [
        f"error: {sweep}: grid: 'seed': expected a list of values or {{from, to, step}}, got 3",
        f"error: {sweep}: keep: 'pcaps' is not one of: all, manifest, summary",
        f"error: {sweep}: plot: 'seed' is not a numeric column of the summary: steps, drops, "
        "expect.met, expect.missed, outcome.<outcome>, drop.<reason> or "
        "packets.<owner>/<interface>",
        f"error: {sweep}: plot: no swept parameter has numeric values to plot it against",
        f"error: {sweep}: topologies[1]: 'no-such.yaml': no such file beside the sweep file "
        f"({tmp_path / 'no-such.yaml'}), and no shipped example of that name (`kpkt examples` "
        "lists them)",
    ]


def test_bad_ranges_and_odd_paths_are_one_line_each(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path,
        "topologies: [small.yaml]\ngrid:\n  seed: {from: 5, to: 1, step: 1}\n"
        '  "metadata.na\\nme[0]": [1]\n  traffic[0].udp.count: {from: 1, to: x, step: 1}\n',
    )
    with pytest.raises(TopologyError) as raised:
        load_sweep(sweep)
    assert raised.value.problems == [
        f"{sweep}: grid: 'seed'.step: expected from <= to and a step above 0, got from 5, to 1, "
        "step 1",
        f"{sweep}: grid: 'metadata.na\\nme[0]' is not a YAML path: at '\\nme[0]' expected .key, "
        '[index] or ["key.with.dots"]',
        f"{sweep}: grid: 'traffic[0].udp.count'.to: expected a number, got 'x'",
    ]


def test_the_same_run_twice_is_refused(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path, "topologies: [small.yaml]\nlist: [{seed: 1}, {seed: 2}, {seed: 1}]\n"
    )
    done = kpkt("sweep", sweep, "-o", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {sweep}: runs 1 and 3 are the same topology (small.yaml, seed=1); "
        "list each combination once\n"
    )


def test_local_and_dask_give_identical_tables(tmp_path: Path) -> None:
    """The example cluster over the CNIs that take it as it is (Calico wants its podCIDRs to be
    blocks and a node gateway) and two seeds, on local worker processes and on a Dask
    LocalCluster (dask[distributed] is in the test extra: its absence fails here)."""
    taking = [cni for cni in CNIS if cni != "calico"]
    cnis = json.dumps(taking)
    sweep = sweep_file(
        tmp_path, f"topologies: [two-node]\ngrid:\n  cluster.cni: {cnis}\n  seed: [1, 2]\n"
    )
    local, dask = tmp_path / "local", tmp_path / "dask"
    done = kpkt("sweep", sweep, "-o", local, "--jobs", 2)
    assert done.returncode == 0, done.stderr
    runs = 2 * len(taking)
    assert done.stdout.startswith(f"{runs} runs: {runs} ran, 0 already done")
    done = kpkt("sweep", sweep, "-o", dask, "--dask", "local", "--jobs", 2, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("summary.csv", "summary.jsonl"):
        assert (local / name).read_bytes() == (dask / name).read_bytes(), name
    rows = table(local)
    assert [(row["cluster.cni"], row["seed"]) for row in rows] == [
        (cni, seed) for cni in taking for seed in ("1", "2")
    ]
    for row in rows:
        assert row["status"] == "ok" and row["error"] == "" and row["steps"] == "15"
        assert row["outcome.delivered"] == "15" and row["drops"] == "0"
        assert row["packets.node1/eth0"] != ""
        manifest = json.loads((local / row["folder"] / "manifest.json").read_text())
        assert manifest["seed"] == int(row["seed"])
        assert (dask / row["folder"] / "manifest.json").read_bytes() == (
            local / row["folder"] / "manifest.json"
        ).read_bytes()
    first = [json.loads(line) for line in (local / "summary.jsonl").read_text().splitlines()][0]
    assert first["seed"] == 1 and first["error"] is None and first["step.1"] == "delivered"


def test_collect_writes_the_runs_on_the_client(tmp_path: Path) -> None:
    sweep = sweep_file(tmp_path, "topologies: [small.yaml]\ngrid: {seed: [1, 2]}\n")
    done = kpkt("sweep", sweep, "-o", tmp_path / "plain", "--jobs", 1)
    assert done.returncode == 0, done.stderr
    done = kpkt("sweep", sweep, "-o", tmp_path / "collected", "--jobs", 1, "--collect")
    assert done.returncode == 0, done.stderr
    plain, collected = table(tmp_path / "plain"), table(tmp_path / "collected")
    assert plain == collected
    for row in collected:
        files = sorted(path.name for path in (tmp_path / "collected" / row["folder"]).iterdir())
        assert files == sorted(path.name for path in (tmp_path / "plain" / row["folder"]).iterdir())
        assert oct((tmp_path / "collected" / row["folder"]).stat().st_mode & 0o777) == oct(
            (tmp_path / "plain" / row["folder"]).stat().st_mode & 0o777
        )


def test_resume_after_an_interrupted_sweep_skips_finished_runs(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path, "topologies: [small.yaml]\ngrid: {seed: {from: 1, to: 12, step: 1}}\n"
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kpkt", "sweep", str(sweep), "-o", str(out), "--jobs", "1"]
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(out.glob("runs/*/row.json"))) < 2:
        assert process.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "no run finished within 60 s"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the whole sweep, workers too: a crash
    process.wait()
    finished = {path.parent.name: path.stat().st_mtime_ns for path in out.glob("runs/*/row.json")}
    assert 2 <= len(finished) < 12 and not (out / "summary.csv").exists()
    done = kpkt("sweep", sweep, "-o", out, "--jobs", 2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"12 runs: {12 - len(finished)} ran, {len(finished)} already done"
    )
    for name, mtime in finished.items():
        assert (out / "runs" / name / "row.json").stat().st_mtime_ns == mtime, "run again"
    assert [row["seed"] for row in table(out)] == [str(seed) for seed in range(1, 13)]
    assert sorted(path.name for path in (out / "runs").iterdir()) == sorted(
        row["folder"].removeprefix("runs/") for row in table(out)
    ), "no temporary folder is left over"
    # a run whose output is incomplete is run again, and so is one whose inputs changed
    rows = table(out)
    capture = json.loads((out / rows[0]["folder"] / "manifest.json").read_text())["captures"][0]
    (out / rows[0]["folder"] / capture["file"]).unlink()
    done = kpkt("sweep", sweep, "-o", out, "--jobs", 2)
    assert done.stdout.startswith("12 runs: 1 ran, 11 already done"), done.stdout


def test_ctrl_c_stops_the_sweep_keeping_the_runs_done(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path, "topologies: [small.yaml]\ngrid: {seed: {from: 1, to: 60, step: 1}}\n"
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kpkt", "sweep", str(sweep), "-o", str(out), "--jobs", "2"]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(list(out.glob("runs/*/row.json"))) < 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C on a terminal does: every process
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stdout == ""
    assert stderr == (
        "kpkt: stopped by Ctrl-C; the runs done are kept; run the same command to resume\n"
    )
    runs = list((out / "runs").iterdir())
    assert all((run / "row.json").is_file() for run in runs), "a run folder half-written"
    assert 2 <= len(runs) < 60 and not (out / "summary.csv").exists()


def test_a_worker_without_the_sweep_folder_fails_the_run_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere" / "runs" / "0123456789abcdef"
    task = RunTask(SMALL, "small.yaml", "0" * 64, "all", str(folder), False, DEFAULT_MAX_PACKETS)
    done = perform(task)
    assert done.summary is None and done.error == (
        f"{folder.parent}: no such folder on this worker; put the sweep folder on a file system "
        "every worker shares, at the same path, or use --collect"
    )
    task = RunTask(SMALL, "small.yaml", "0" * 64, "summary", str(folder), True, 1000)
    collected = perform(task)
    assert collected.error is None and set(collected.files) == {"row.json"}
    assert json.loads(collected.files["row.json"])["summary"]["outcome.delivered"] == 1


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path,
        "topologies: [small.yaml]\nlist:\n  - traffic[0].udp.dport: 80\n"
        "  - traffic[0].udp.dport: 70000\n  - traffic[0].udp.dport: 81\n",
    )
    out = tmp_path / "out"
    done = kpkt("sweep", sweep, "-o", out, "--jobs", 2)
    assert done.returncode == 4, done.stderr
    assert done.stdout.startswith("3 runs: 3 ran, 0 already done, 1 failed")
    first, failed, last = table(out)
    assert first["status"] == last["status"] == "ok"
    assert failed["status"] == "failed" and failed["folder"] == "" and failed["steps"] == ""
    assert failed["error"].startswith(f"{tmp_path / 'small.yaml'}: traffic[0].udp.dport: ")
    assert "70000" in failed["error"]
    assert first["outcome.delivered"] == "1" and first["drops"] == "0"
    assert len(list((out / "runs").iterdir())) == 2
    done = kpkt("sweep", sweep, "-o", out, "--jobs", 2)  # a failed run is tried again
    assert done.returncode == 4 and done.stdout.startswith(
        "3 runs: 1 ran, 2 already done, 1 failed"
    )


def test_a_run_beyond_max_packets_fails_alone(tmp_path: Path) -> None:
    sweep = sweep_file(
        tmp_path,
        "topologies: [small.yaml]\nlist:\n  - traffic[0].udp.count: 1\n"
        "  - traffic[0].udp.count: 50\n",
    )
    out = tmp_path / "out"
    done = kpkt("sweep", sweep, "-o", out, "--jobs", 1, "--max-packets", 100)
    assert done.returncode == 4, done.stderr
    small, big = table(out)
    assert small["status"] == "ok" and big["status"] == "failed"
    assert big["error"].startswith("the run would write more than 100 frames")


@pytest.mark.parametrize(
    ("keep", "kept"),
    [
        ("all", {"manifest.json", "topology.yaml", "row.json", "all.pcapng", "*.pcap", MARKER}),
        ("manifest", {"manifest.json", "topology.yaml", "row.json"}),
        ("summary", {"row.json"}),
    ],
)
def test_keep_modes(tmp_path: Path, keep: str, kept: set[str]) -> None:
    sweep = sweep_file(tmp_path, f"topologies: [small.yaml]\ngrid: {{seed: [1]}}\nkeep: {keep}\n")
    out = tmp_path / "out"
    done = kpkt("sweep", sweep, "-o", out, "--jobs", 1)
    assert done.returncode == 0, done.stderr
    (row,) = table(out)
    folder = out / row["folder"]
    names = {"*.pcap" if path.suffix == ".pcap" else path.name for path in folder.iterdir()}
    assert names == kept
    # the same run with `kpkt run`: the row is its manifest's, and so is the kept manifest
    base = tmp_path / "seed-1.yaml"
    base.write_text(SMALL + "seed: 1\n")
    assert kpkt("run", base, "-o", tmp_path / "again").returncode == 0
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    for capture in manifest["captures"]:
        assert row[f"packets.{capture['owner']}/{capture['interface']}"] == str(capture["packets"])
    assert row["outcome.delivered"] == "1" and row["steps"] == "1"
    if keep != "summary":  # the same but for the topology's text, which is the expanded one
        kept = json.loads((folder / "manifest.json").read_text())
        text = (folder / "topology.yaml").read_bytes()
        assert kept["sourceSha256"] == hashlib.sha256(text).hexdigest()
        assert kept["source"] == "small.yaml"
        blank = {"source": "", "sourceSha256": ""}
        assert {**kept, **blank} == {**manifest, **blank}


def test_a_folder_that_is_not_a_sweep_folder_is_refused(tmp_path: Path) -> None:
    sweep = sweep_file(tmp_path, "topologies: [small.yaml]\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    done = kpkt("sweep", sweep, "-o", out)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {out}: exists and is not a kpkt sweep folder (no runs/); choose another "
        "folder with -o or remove it\n"
    )
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]
    done = kpkt("sweep", sweep, "-o", out / "notes.txt" / "sweep")
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {out / 'notes.txt' / 'sweep' / 'runs'}: cannot use it: Not a directory; "
        "choose another folder with -o\n"
    )


def test_the_docs_describe_the_sweep_file_and_the_table(tmp_path: Path) -> None:
    """docs/sweep.md names every key and table column, and its example sweep file loads."""
    doc = (ROOT / "docs" / "sweep.md").read_text()
    names = [*SWEEP_KEYS, *RANGE_KEYS, *KEEP, *FIXED_HEAD, *FIXED_TAIL, *COUNTS]
    names += [prefix + "<" for prefix in NUMERIC_PREFIXES]
    missing = [name for name in names if f"`{name}" not in doc]
    assert not missing, f"docs/sweep.md does not describe {missing}"
    example = re.findall(r"```yaml\n(.+?)```", doc, re.DOTALL)[0]
    (tmp_path / "example.yaml").write_text(example)
    sweep = load_sweep(tmp_path / "example.yaml")
    assert len(sweep.runs) == 2 * 1 * 2 * 5 and sweep.keep == "manifest" and sweep.plot == "drops"


def test_summary_columns_from_a_manifest() -> None:
    path = ROOT / "tests" / "golden" / "drop-link-down" / "expected" / "manifest.json"
    columns = manifest_columns(json.loads(path.read_text()))
    assert columns["steps"] == 1 and columns["outcome.unreachable"] == 1
    assert columns["drops"] == 4
    assert columns["drop.link-down"] == 3 and columns["drop.neighbour-unresolved"] == 1
    assert columns["step.1"] == "unreachable" and columns["packets.node1/eth0"] == 3
    assert columns["expect.met"] == columns["expect.missed"] == 0


def test_a_plot_per_numeric_parameter() -> None:
    rows = [
        {"status": "ok", "loss": loss, "cni": "flannel", "drops": drops}
        for loss, drops in ((0, 0), (0.1, 2), (0.1, 4), (0.2, 7))
    ]
    rows.append({"status": "failed", "loss": 0.3, "cni": "flannel", "drops": None})
    plots = plot_files(("loss", "cni"), rows, "drops")
    assert list(plots) == ["plot-loss.svg"]
    svg = ElementTree.fromstring(plots["plot-loss.svg"])
    namespace = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{namespace}circle")) == 4  # the failed run has no value
    (line,) = svg.findall(f"{namespace}polyline")
    assert len(line.get("points").split()) == 3  # the mean at each value of loss


def test_the_progress_line_counts_runs_and_estimates_the_time_left(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(sweep_progress.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    line = SweepProgress(10, 0, stream)
    line.skipped = 2  # run_sweep tells it how many runs an earlier sweep finished
    clock[0] = 104.0
    line.update(2, 1)
    assert stream.getvalue() == (
        "\rkpkt sweep: 4/10 runs done, 1 failed, 2 skipped, 12 s left\x1b[K"
    )
    clock[0] = 104.05
    line.update(3, 1)  # within a tenth of a second: not redrawn
    assert stream.getvalue().count("\r") == 1
    line.finish()
    assert stream.getvalue().endswith("\r\x1b[K")
