"""The `kpkt` command as a user runs it: exit codes, what it prints, what it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

TWO_NODE = ROOT / "topologies" / "two-node.yaml"


def kpkt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *args], capture_output=True, text=True, cwd=cwd
    )


def test_run_writes_the_folder_and_prints_hop_tables(tmp_path: Path) -> None:
    out = tmp_path / "two-node"
    done = kpkt("run", str(TWO_NODE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "step 1: udp:" in done.stdout
    assert "flannel.1" in done.stdout and "VXLAN vni 1" in done.stdout
    assert "-d udp.port==8472,vxlan" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    files = {c["file"] for c in manifest["captures"]}
    assert "node1__cni0.pcap" in files and "pod-a.default__eth0.pcap" in files
    assert "pod-a.default__lo.pcap" in files  # the containers of pod-a talk over lo
    assert all((out / f).is_file() for f in files)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary left over"


def test_run_defaults_to_pcaps_metadata_name(tmp_path: Path) -> None:
    done = kpkt("run", str(TWO_NODE), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pcaps" / "two-node" / "manifest.json").is_file()


def test_rerun_replaces_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kpkt("run", str(TWO_NODE), "-o", str(out)).returncode == 0
    assert (out / "laptop__eth0.pcap").is_file()
    one_node = ROOT / "tests" / "golden" / "drop-link-down" / "topology.yaml"
    assert kpkt("run", str(one_node), "-o", str(out)).returncode == 0
    assert not (out / "laptop__eth0.pcap").exists()  # the first run wrote it, the second did not


def test_refuses_to_replace_a_folder_kpkt_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    done = kpkt("run", str(TWO_NODE), "-o", str(tmp_path))
    assert done.returncode == 2
    assert "not a kpkt output folder" in done.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_bad_topology_exits_2_names_the_place_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TWO_NODE.read_text().replace("ip: 10.1.2.10", "ip: 10.9.9.9"))
    done = kpkt("run", str(bad), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "nodes[1].pods[0].ip" in done.stderr and "10.9.9.9" in done.stderr
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("apiVersion: kpkt/v1\nkind: Topology\nnodes: [\n")
    done = kpkt("validate", str(bad))
    assert done.returncode == 2
    assert "line " in done.stderr and "Traceback" not in done.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = kpkt("run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_validate_prints_what_it_would_build() -> None:
    done = kpkt("validate", str(TWO_NODE))
    assert done.returncode == 0, done.stderr
    assert "pod pod-a.default: eth0 10.1.1.5" in done.stdout
    assert "10.1.2.0/24 via 10.1.2.0 dev flannel.1 onlink" in done.stdout


def test_help_shows_an_example() -> None:
    done = kpkt("run", "--help")
    assert done.returncode == 0 and "kpkt run topologies/two-node.yaml" in done.stdout


def _entry(argv: list[str], before: str = "") -> subprocess.CompletedProcess:
    """The `kpkt` command's entry point with `argv`, after the Python code `before`."""
    code = f"import sys\n{before}\nfrom kpkt.cli import entry\nsys.argv = {argv!r}\nentry()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_the_command_ends_as_python_would_after_its_output_and_exit_handlers() -> None:
    # the entry point leaves the process without tearing down what it built (os._exit), so
    # it flushes what is printed and runs the exit handlers itself, in Python's order
    handler = "import atexit\natexit.register(lambda: print('exit handler ran'))"
    done = _entry(["kpkt", "examples"], before=handler)
    assert done.returncode == 0, done.stderr
    listed, _, last = done.stdout.rstrip("\n").rpartition("\n")
    assert "two-node" in listed and last == "exit handler ran"
    missing = _entry(["kpkt", "run", "no-such-cluster.yaml"], before=handler)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and missing.stdout == "exit handler ran\n"
    assert _entry(["kpkt", "run", "--no-such-option"]).returncode == 2  # click's usage error


def test_a_text_given_to_sys_exit_is_printed_with_status_1_as_python_does() -> None:
    from kpkt.cli import _exit_status

    done = _entry(["kpkt"], before="import kpkt.cli\nkpkt.cli.main = lambda: sys.exit('gone')")
    assert (done.returncode, done.stderr) == (1, "gone\n")
    assert [_exit_status(code) for code in (None, 0, 3)] == [0, 0, 3]


def test_a_reader_that_went_away_ends_the_command_quietly() -> None:
    # `kpkt examples two-node | true`: nothing reads what it prints; no traceback, status 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kpkt", "examples", "two-node"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
