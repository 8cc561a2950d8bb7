"""The output folder (`kpkt run -o`): what it replaces, what it refuses, what an interrupted or
killed run leaves, and that a run's manifest does not depend on where it was run from."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpkt import output_folder
from kpkt.cli import main
from kpkt.output_folder import MARKER

from conftest import ROOT

TWO_NODE = ROOT / "topologies" / "two-node.yaml"
ONE_NODE = ROOT / "tests" / "golden" / "drop-link-down" / "topology.yaml"


def kpkt(*args: str, cwd: Path | None = None, home: Path | None = None):
    env = {**os.environ, "HOME": str(home)} if home else None
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def run_in_process(*args: str) -> tuple[int, str]:
    """`kpkt run ARGS` in this process (so a test can stand in for the file system): the exit
    status and what it printed on standard error."""
    done = CliRunner().invoke(main, ["run", "--quiet", *args])
    return done.exit_code, done.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def one_error_line(stderr: str, *words: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- the marker and what a run replaces


def test_the_output_holds_a_marker_listing_the_files_the_run_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    marker = json.loads((out / MARKER).read_text())
    written = sorted(p.name for p in out.iterdir() if p.name != MARKER)
    assert marker["files"] == written and "manifest.json" in written
    assert marker["kpkt"] == json.loads((out / "manifest.json").read_text())["version"]


def test_files_kpkt_did_not_write_refuse_the_rerun_and_survive_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    done = kpkt("run", "-q", str(TWO_NODE), "-o", str(out))
    assert done.returncode == 2
    one_error_line(done.stderr, str(out), "notes.txt", "--force")
    assert snapshot(tmp_path) == before


def test_force_keeps_the_users_files_and_replaces_kpkts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    (out / "plots" / "a.png").write_bytes(b"png")
    assert kpkt("run", "-q", "--force", str(ONE_NODE), "-o", str(out)).returncode == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "plots" / "a.png").read_bytes() == b"png"
    assert not (out / "laptop__eth0.pcap").exists()  # two-node wrote it, the one-node run did not
    assert json.loads((out / "manifest.json").read_text())["topology"] == "drop-link-down"
    assert "notes.txt" not in json.loads((out / MARKER).read_text())["files"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "something left beside the output"


def test_a_folder_with_an_unrelated_manifest_is_not_kpkts(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "manifest.json").write_text('{"name": "my web app"}')
    (project / "index.html").write_text("<html>")
    before = snapshot(tmp_path)
    done = kpkt("run", "-q", str(TWO_NODE), "-o", str(project))
    assert done.returncode == 2
    one_error_line(done.stderr, str(project), "not a kpkt output folder", "--force")
    assert snapshot(tmp_path) == before


def test_force_never_overwrites_a_users_file_with_kpkts(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "manifest.json").write_text('{"name": "my web app"}')
    before = snapshot(tmp_path)
    done = kpkt("run", "-q", "--force", str(TWO_NODE), "-o", str(project))
    assert done.returncode == 2
    one_error_line(done.stderr, str(project / "manifest.json"), "not written by kpkt")
    assert snapshot(tmp_path) == before


def test_force_writes_into_a_folder_that_is_not_kpkts_keeping_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    (folder / "README").write_text("my notes")
    assert kpkt("run", "-q", "--force", str(TWO_NODE), "-o", str(folder)).returncode == 0
    assert (folder / "README").read_text() == "my notes"
    assert (folder / "manifest.json").is_file() and (folder / MARKER).is_file()


def test_a_folder_of_a_kpkt_from_before_the_marker_is_recognised(tmp_path: Path) -> None:
    """Its manifest names the files it wrote: those are replaced, a file of the user's is not."""
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    (out / MARKER).unlink()  # as an older kpkt left it
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0  # upgrading users
    (out / MARKER).unlink()
    (out / "notes.txt").write_text("mine")
    done = kpkt("run", "-q", str(TWO_NODE), "-o", str(out))
    assert done.returncode == 2
    one_error_line(done.stderr, "notes.txt")
    assert kpkt("run", "-q", "--force", str(ONE_NODE), "-o", str(out)).returncode == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "laptop__eth0.pcap").exists()


# --- paths -o must not name


@pytest.mark.parametrize(
    "name, words",
    [
        (".", ["not a folder name"]),
        ("..", ["not a folder name"]),
        ("work", ["is the current folder"]),
        ("/", ["not a folder name"]),
        ("..{sep}..", ["not a folder name"]),
        ("{tmp}", ["holds the current folder"]),
        ("topo", ["is the topology file's folder"]),
        ("home", ["is the home folder"]),
    ],
)
def test_o_may_not_name_a_folder_it_would_replace_with_what_it_holds(
    tmp_path: Path, name: str, words: list[str]
) -> None:
    work, topo, home = tmp_path / "work", tmp_path / "topo", tmp_path / "home"
    for folder in (work, topo, home):
        folder.mkdir()
    shutil.copy(TWO_NODE, topo / "two-node.yaml")
    (work / "mine.txt").write_text("x")
    target = {"work": str(work), "topo": str(topo), "home": str(home)}.get(name, name)
    target = target.format(sep=os.sep, tmp=tmp_path)
    before = snapshot(tmp_path)
    done = kpkt("run", "-q", str(topo / "two-node.yaml"), "-o", target, cwd=work, home=home)
    assert done.returncode == 2, done.stderr
    one_error_line(done.stderr, target, *words)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "topo", "work"]


def test_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    done = kpkt("run", "-q", str(TWO_NODE), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    one_error_line(done.stderr, str(tmp_path / "out"), "does not exist")
    assert not (tmp_path / "gone").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_symlink_to_a_folder_writes_into_that_folder(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(tmp_path / "out")).returncode == 0
    assert (tmp_path / "out").is_symlink() and (tmp_path / "real" / "manifest.json").is_file()


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = kpkt("run", "-q", str(TWO_NODE), "-o", str(tmp_path / "file" / "a" / "out"))
    assert done.returncode == 2
    one_error_line(done.stderr, str(tmp_path / "file"), "is a file")
    assert snapshot(tmp_path) == {"file": b"x"}


def test_a_file_as_the_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    done = kpkt("run", "-q", str(TWO_NODE), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    one_error_line(done.stderr, str(tmp_path / "out"), "not a folder")
    assert snapshot(tmp_path) == {"out": b"x"}


def test_a_mount_point_is_refused(tmp_path: Path, monkeypatch) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real_ismount(p))
    status, stderr = run_in_process(str(TWO_NODE), "-o", str(mount))
    assert status == 2
    one_error_line(stderr, str(mount), "mount point", f"-o {mount / 'out'}")
    assert [p.name for p in tmp_path.iterdir()] == ["mnt"] and not any(mount.iterdir())


@pytest.mark.parametrize(
    "number, cause",
    [
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "not permitted"),
    ],
)
def test_a_place_that_cannot_be_written_is_refused_leaving_nothing(
    tmp_path: Path, monkeypatch, number: int, cause: str
) -> None:
    """Creating the staging folder fails as on a read-only file system or without permission
    (stood in for: the tests run as root, which neither stops); the parents the run created for
    it are removed again."""
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, **kwargs):
        if Path(path).name.startswith("."):
            raise OSError(number, os.strerror(number), str(path))
        return real_mkdir(path, mode, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    status, stderr = run_in_process(str(TWO_NODE), "-o", str(tmp_path / "a" / "b" / "out"))
    assert status == 2
    one_error_line(stderr, str(tmp_path / "a" / "b"), cause)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_the_users_problem_and_keeps_the_old_output(
    tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    before = snapshot(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("kpkt.capture.manifest.write", full)
    status, stderr = run_in_process(str(TWO_NODE), "-o", str(out))
    assert status == 2
    one_error_line(stderr, str(out), "no space left")
    assert snapshot(tmp_path) == before


# --- replacing in one step


def test_exchange_swaps_two_folders_in_one_step(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "from-a").write_text("a")
    (b / "from-b").write_text("b")
    assert output_folder._exchange(a, b), "renameat2(RENAME_EXCHANGE) is not available here"
    assert [p.name for p in a.iterdir()] == ["from-b"]
    assert [p.name for p in b.iterdir()] == ["from-a"]


def test_the_rerun_swaps_the_folders_and_the_old_output_goes(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    swaps = []
    real = output_folder._exchange
    monkeypatch.setattr(output_folder, "_exchange", lambda a, b: swaps.append(b) or real(a, b))
    status, stderr = run_in_process(str(ONE_NODE), "-o", str(out))
    assert status == 0, stderr
    assert swaps == [out]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert json.loads((out / "manifest.json").read_text())["topology"] == "drop-link-down"


def test_without_renameat2_two_renames_replace_the_folder(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    monkeypatch.setattr(output_folder, "_RENAMEAT2", None)
    status, stderr = run_in_process(str(ONE_NODE), "-o", str(out))
    assert status == 0, stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert not (out / "laptop__eth0.pcap").exists()


# --- interrupted and killed runs


@pytest.fixture(scope="module")
def slow_topology(tmp_path_factory) -> Path:
    """A topology that runs for a few seconds: `kpkt gen`."""
    path = tmp_path_factory.mktemp("slow") / "slow.yaml"
    assert kpkt("gen", "20", "20", "-o", str(path)).returncode == 0
    return path


def start_and_wait_for_staging(topology: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    """Start `kpkt run` into `out`; once its staging folder holds captures, the process and it."""
    run = subprocess.Popen(
        [sys.executable, "-m", "kpkt", "run", "-q", str(topology), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        staging = [p for p in out.parent.glob(f".{out.name}.*.tmp") if p.is_dir()]
        if staging and len(list(staging[0].iterdir())) > 2:
            return run, staging[0]
        time.sleep(0.02)
    run.kill()
    pytest.fail(f"no staging folder appeared; the run ended with {run.poll()}")


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_keep_the_old_output_and_remove_the_staging(
    tmp_path: Path, slow_topology: Path, signum: int, status: int
) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    before = snapshot(out)
    run, _ = start_and_wait_for_staging(slow_topology, out)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == status, stderr
    assert stderr.splitlines() == [
        f"kpkt: stopped by {'SIGTERM' if signum == signal.SIGTERM else 'Ctrl-C'}; "
        "the output folder is left as it was"
    ]
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_after_sigkill_the_old_output_is_intact_and_the_next_run_cleans_up(
    tmp_path: Path, slow_topology: Path
) -> None:
    out = tmp_path / "out"
    assert kpkt("run", "-q", str(TWO_NODE), "-o", str(out)).returncode == 0
    before = snapshot(out)
    run, staging = start_and_wait_for_staging(slow_topology, out)
    run.kill()
    run.communicate(timeout=60)
    assert snapshot(out) == before
    assert staging.is_dir() and (staging / MARKER).is_file()  # what a killed run leaves
    assert kpkt("run", "-q", str(ONE_NODE), "-o", str(out)).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _finished_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_folders_are_removed_only_by_the_marker(tmp_path: Path) -> None:
    """A killed run's staging folder and a previous output a run was removing go; a look-alike
    without the marker, and the staging folder of a run still going, stay."""
    out = tmp_path / "out"
    pid = _finished_pid()
    staged = tmp_path / f".out.{pid}.abcd1234.tmp"
    staged.mkdir()
    (staged / MARKER).write_text(json.dumps({"kpkt": "0", "staging": True}))
    (staged / "node1__eth0.pcap").write_bytes(b"half")
    previous = tmp_path / f".out.{pid}.0123abcd.old"
    previous.mkdir()
    (previous / MARKER).write_text(json.dumps({"kpkt": "0", "files": ["a.pcap"]}))
    (previous / "a.pcap").write_bytes(b"old")
    lookalike = tmp_path / f".out.{pid}.zzzz9999.tmp"
    lookalike.mkdir()
    (lookalike / "thesis.tex").write_text("mine")
    running = tmp_path / f".out.{os.getpid()}.live0000.tmp"
    running.mkdir()
    (running / MARKER).write_text(json.dumps({"kpkt": "0", "staging": True}))
    assert kpkt("run", "-q", str(ONE_NODE), "-o", str(out)).returncode == 0
    assert not staged.exists() and not previous.exists()
    assert (lookalike / "thesis.tex").read_text() == "mine"
    assert running.is_dir()


def test_a_stale_previous_output_keeps_the_files_its_marker_does_not_list(tmp_path: Path) -> None:
    previous = tmp_path / f".out.{_finished_pid()}.0123abcd.old"
    previous.mkdir()
    (previous / MARKER).write_text(json.dumps({"kpkt": "0", "files": ["a.pcap", "../x"]}))
    (previous / "a.pcap").write_bytes(b"old")
    (previous / "notes.txt").write_text("mine")
    (tmp_path / "x").write_text("outside")
    assert kpkt("run", "-q", str(ONE_NODE), "-o", str(tmp_path / "out")).returncode == 0
    assert snapshot(previous) == {"notes.txt": b"mine"}
    assert (tmp_path / "x").read_text() == "outside"


# --- reproducibility


def test_the_same_run_from_another_folder_writes_the_same_bytes(tmp_path: Path) -> None:
    """The manifest names the topology file by its name and content hash, not the path typed."""
    for place in ("a", "b/c"):
        (tmp_path / place).mkdir(parents=True)
    shutil.copy(TWO_NODE, tmp_path / "a" / "cluster.yaml")
    assert kpkt("run", "-q", "cluster.yaml", "-o", "out", cwd=tmp_path / "a").returncode == 0
    done = kpkt("run", "-q", "../../a/cluster.yaml", "-o", "out", cwd=tmp_path / "b" / "c")
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path / "a" / "out") == snapshot(tmp_path / "b" / "c" / "out")
    manifest = json.loads((tmp_path / "a" / "out" / "manifest.json").read_text())
    assert manifest["source"] == "cluster.yaml"
    assert manifest["sourceSha256"] == hashlib.sha256(TWO_NODE.read_bytes()).hexdigest()


def test_help_and_readme_say_what_o_replaces_and_refuses() -> None:
    done = kpkt("run", "--help")
    assert done.returncode == 0
    for words in (".kpkt-output.json", "--force", "only the files that run", "$HOME", "143"):
        assert words in done.stdout, words
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    for words in (
        "What `-o` replaces",
        "--force",
        "SIGKILL",
        "130",
        "143",
        "docs/topology.md#limits",
    ):
        assert words in section, words
