"""The bounds on a topology file (docs/topology.md#limits): refused at load time with exit 2, the
file or YAML path named, never a traceback, a hang or unbounded work."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpkt.cli import main
from kpkt.errors import TopologyError
from kpkt.topology.limits import (
    DEFAULT_MAX_PACKETS,
    MAX_COUNT,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_SECONDS,
)
from kpkt.topology.load import load_topology, load_topology_text

HEADER = "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: t}\n"
NODES = "nodes: [{name: node1, pods: [{name: pod-a}, {name: pod-b}]}]\n"


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_topology_text(text, "t.yaml")
    return caught.value.problems


def traffic(*steps: str) -> str:
    return HEADER + NODES + "traffic:\n" + "".join(f"  - {step}\n" for step in steps)


def validate(path: Path | str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    return result.exit_code, result.output


# --- the file itself ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_before_it_is_read(path):
    assert problems_of(path) == [
        f"{path}: not a regular file; give the path of a YAML topology file"
    ]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    assert problems_of(fifo) == [
        f"{fifo}: not a regular file; give the path of a YAML topology file"
    ]


def test_a_folder_is_refused(tmp_path):
    assert problems_of(tmp_path) == [f"{tmp_path}: a folder; give the path of a YAML topology file"]


def test_a_file_over_16_mib_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    assert problems_of(big) == [
        f"{big}: {MAX_FILE_BYTES + 1} bytes is more than a topology file may hold "
        f"({MAX_FILE_BYTES} bytes, 16 MiB)"
    ]


def test_the_cli_refuses_a_fifo_with_exit_2(tmp_path):
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    status, output = validate(fifo)
    assert status == 2 and output.startswith("error: ") and output.count("\n") == 1


def problems_of(path: Path | str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    return caught.value.problems


# --- the YAML ---------------------------------------------------------------------------------


def test_nesting_deeper_than_the_limit_is_refused_not_a_recursion_error():
    deep = HEADER + NODES + "seed: " + "[" * 2000 + "]" * 2000 + "\n"
    # the document is level 1, so the 50th `[` (column 6 + 50) opens level 51
    assert problems(deep) == [
        f"t.yaml: line 5, column 56: nested deeper than {MAX_DEPTH} levels of mappings and "
        "lists; flatten it"
    ]


def test_nesting_up_to_the_limit_is_read_and_reported_as_usual():
    # the document is level 1, `seed:`'s value level 2: 49 lists reach level 50
    text = HEADER + NODES + "seed: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert problems(text) == ["t.yaml: seed: expected an integer, got a list"]


def test_aliases_are_walked_once_each():
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        laughs.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]")
    [*_, last] = problems(HEADER + NODES + "\n".join(laughs) + "\n")
    assert last.startswith("t.yaml: h: unknown key")


@pytest.mark.parametrize(
    ("name", "shown"),
    [("\\0", r"'\x00'"), ("\\e", r"'\x1b'"), ("\\x7f", r"'\x7f'"), ("\\x9b", r"'\x9b'")],
)
def test_a_control_character_in_a_name_is_refused_and_shown_escaped(name, shown):
    text = HEADER + f'nodes: [{{name: "node{name}1"}}]\n'
    [line] = problems(text)
    assert line == (
        f"t.yaml: nodes[0].name: 'node{shown[1:-1]}1' holds the control character {shown}; "
        "remove it"
    )


def test_a_control_character_in_a_key_is_refused_with_the_mapping_path():
    [line] = problems(HEADER + 'nodes: [{name: node1, "po\\eds": []}]\n')
    assert line == r"t.yaml: nodes[0]: key 'po\x1bds' holds the control character '\x1b'; remove it"


def test_a_document_is_walked_for_control_characters_unless_its_text_can_hold_none():
    # YAML writes a control character in a string only with an escape (a raw one the reader
    # refuses, or, NEL, folds): the document of a text without either is not walked
    from kpkt.topology.fields import Report
    from kpkt.topology.limits import check_characters

    def reported(read_from):
        report = Report("t.yaml")
        check_characters({"name": "node\x1b1"}, report, read_from)
        return len(report.errors)

    assert reported(None) == 1  # a document made, not read (an import's)
    assert reported('name: "node\\e1"') == 1
    assert reported("name: node\x1b1") == 1
    assert reported("name: node1") == 0  # not what this text reads as: the document is not walked


def test_a_nul_in_a_host_veth_name_is_the_users_error(tmp_path):
    text = HEADER + 'nodes: [{name: node1, pods: [{name: pod-a, hostVeth: {name: "v\\0"}}]}]\n'
    topology = tmp_path / "t.yaml"
    topology.write_text(text)
    result = CliRunner().invoke(main, ["run", str(topology), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "\x00" not in result.output and r"'\x00'" in result.output
    assert not (tmp_path / "out").exists()


def test_no_control_character_reaches_the_terminal(tmp_path):
    topology = tmp_path / "t.yaml"
    topology.write_text(HEADER + 'nodes: [{name: "\\e[2J\\e[31mred"}]\n')
    status, output = validate(topology)
    assert status == 2 and "\x1b" not in output


def test_a_line_break_in_a_name_keeps_each_problem_on_one_line(tmp_path):
    topology = tmp_path / "t.yaml"
    topology.write_text(HEADER + 'nodes: [{name: "node\\n1"}]\n')
    status, output = validate(topology)
    assert status == 2 and output.count("\n") == 1
    assert output.startswith(f"error: {topology}: nodes[0].name: 'node\\n1' is not a DNS label")


def test_a_file_name_with_an_escape_sequence_is_shown_escaped(tmp_path):
    topology = tmp_path / "\x1b[2Jt.yaml"
    status, output = validate(topology)
    assert status == 2 and "\x1b" not in output
    assert output == f"error: {tmp_path}/\\x1b[2Jt.yaml: no such file\n"


# --- how much traffic -------------------------------------------------------------------------


def test_count_is_at_most_a_million():
    text = traffic("udp: {from: pod-a, to: pod-b, dport: 80, count: 1000000000000}")
    assert problems(text) == [
        "t.yaml: traffic[0].udp.count: 1000000000000 is out of range: use an integer from 1 "
        "to 1000000"
    ]
    load_topology_text(traffic("ping: {from: pod-a, to: pod-b, count: 1000000, interval: 0}"), "t")


@pytest.mark.parametrize("key", ["at", "interval"])
def test_at_and_interval_are_at_most_a_million_seconds(key):
    text = traffic(f"ping: {{from: pod-a, to: pod-b, {key}: 1000001}}")
    assert problems(text) == [
        f"t.yaml: traffic[0].ping.{key}: 1000001 is out of range: at most 1000000 s"
    ]


def test_at_beyond_a_pcap_timestamp_is_refused_at_load_time():
    text = traffic("tcp: {from: pod-a, to: pod-b, dport: 80, at: 5000000000}")
    assert problems(text) == [
        "t.yaml: traffic[0].tcp.at: 5000000000 is out of range: at most 1000000 s"
    ]


def test_the_run_ends_within_a_million_seconds():
    text = traffic(
        "udp: {from: pod-a, to: pod-b, dport: 80, count: 600000, interval: 1s}",
        "ping: {from: pod-a, to: pod-b, count: 500000, interval: 1s}",
    )
    assert problems(text) == [
        "t.yaml: traffic[1]: the run would last past 1000000 s (this step sends until "
        "1099998 s); a run ends within 1000000 s: lower count, interval or at"
    ]


def test_a_step_at_the_limit_is_accepted():
    text = traffic("udp: {from: pod-a, to: pod-b, dport: 80, count: 2, interval: 1s, at: 999999}")
    assert load_topology_text(textwrap.dedent(text), "t.yaml").steps[0].at_ns == 999999 * 10**9


# --- how many frames a run writes -------------------------------------------------------------

THREE_NODES = HEADER + textwrap.dedent("""
    nodes:
      - {name: worker-node-0001, pods: [{name: a}]}
      - {name: worker-node-0002, pods: [{name: b}]}
      - {name: worker-node-0003}
    traffic:
      - ping: {from: a, to: b}
      - ping: {from: worker-node-0001, to: worker-node-0003}
""")
THREE_NODES_FRAMES = 68  # the records of all its captures


def run(tmp_path: Path, *options: str):
    topology = tmp_path / "t.yaml"
    topology.write_text(THREE_NODES)
    arguments = ["run", "-q", str(topology), "-o", str(tmp_path / "out"), *options]
    return CliRunner().invoke(main, arguments)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_run_at_max_packets_is_written(tmp_path):
    result = run(tmp_path, "--max-packets", str(THREE_NODES_FRAMES))
    assert result.exit_code == 0, result.output
    captures = json.loads((tmp_path / "out" / "manifest.json").read_text())["captures"]
    assert sum(capture["packets"] for capture in captures) == THREE_NODES_FRAMES


def test_a_run_over_max_packets_stops_with_exit_2_and_keeps_the_old_output(tmp_path):
    assert run(tmp_path).exit_code == 0
    before = snapshot(tmp_path / "out")
    result = run(tmp_path, "--max-packets", str(THREE_NODES_FRAMES - 1))
    assert result.exit_code == 2
    assert result.output == (
        f"error: the run would write more than {THREE_NODES_FRAMES - 1} frames (it had reached "
        f"{THREE_NODES_FRAMES}) and was stopped; nothing was written: allow more with "
        "--max-packets, or send fewer packets\n"
    )
    assert snapshot(tmp_path / "out") == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "t.yaml"]


def test_a_runaway_step_is_stopped_while_it_runs(tmp_path):
    topology = tmp_path / "t.yaml"
    topology.write_text(traffic("ping: {from: pod-a, to: pod-b, count: 1000000, interval: 1ms}"))
    result = CliRunner().invoke(
        main, ["run", str(topology), "-o", str(tmp_path / "out"), "--max-packets", "1000"]
    )
    assert result.exit_code == 2 and "--max-packets" in result.output
    frames = int(result.output.split("it had reached ")[1].split(")")[0])
    assert 1000 < frames < 20_000  # checked every 64 events, not after 8 million frames
    assert not (tmp_path / "out").exists()


def test_max_packets_defaults_to_a_million():
    result = CliRunner().invoke(main, ["run", "--help"])
    assert "--max-packets INTEGER RANGE" in result.output
    assert f"[default: {DEFAULT_MAX_PACKETS}; x>=1]" in " ".join(result.output.split())


def test_the_limits_are_documented_as_the_code_has_them():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "topology.md").read_text()
    section = doc.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    assert f"at most {MAX_FILE_BYTES // 2**20} MiB" in section
    assert f"at most {MAX_DEPTH} levels" in section
    assert f"| `count` (`udp`, `ping`, `packet`) | 1 to {MAX_COUNT:,} |" in section
    assert f"| `at`, `interval` | at most {MAX_SECONDS:,} s |" in section
    assert f"`kpkt run --max-packets N` (default {DEFAULT_MAX_PACKETS:,})" in section
