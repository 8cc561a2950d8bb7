"""`kpkt reach`: the truth tables as the upstream e2e tests print them, --json (with its
schema), --diff between two policy sets, -o captures, and bad options (exit 2, one line).
Expectations come from the `netpol` example's two policies: y accepts connections only from
y, and x/a may only open connections into x."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from conftest import ROOT

EXAMPLE = ROOT / "kpkt" / "examples" / "netpol.yaml"
SCHEMA = json.loads((ROOT / "kpkt" / "schemas" / "reach.schema.json").read_text())
PODS = [f"{ns}/{pod}" for ns in "xyz" for pod in "abc"]


def kpkt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *args], capture_output=True, text=True, cwd=cwd
    )


def expected_allowed(src: str, dst: str) -> bool:
    if src == dst:
        return True  # a pod reaches itself over its own loopback
    if src == "x/a" and not dst.startswith("x/"):
        return False
    return not (dst.startswith("y/") and not src.startswith("y/"))


def test_one_truth_table_per_port_and_protocol() -> None:
    done = kpkt("reach", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.strip().split("\n\n")
    titles = [block.splitlines()[0] for block in blocks]
    allowed = sum(expected_allowed(src, dst) for src in PODS for dst in PODS)
    assert titles == [
        f"{p}: {allowed} of 81 allowed" for p in ("80/TCP", "80/UDP", "81/TCP", "81/UDP")
    ]
    for block in blocks:
        lines = block.splitlines()
        assert lines[1].split("\t") == ["-", *PODS]
        for src, line in zip(PODS, lines[2:11], strict=True):
            marks = line.split("\t")
            assert marks[0] == src
            assert marks[1:] == ["." if expected_allowed(src, dst) else "X" for dst in PODS]
    assert done.stdout.rstrip().endswith("? not probed)")


def test_json_names_the_side_and_the_policies() -> None:
    done = kpkt(
        "reach",
        str(EXAMPLE),
        "--from",
        "x/a",
        "--from",
        "z/a",
        "--to",
        "y/b",
        "--port",
        "81/udp",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document == {
        "probes": [
            {
                "from": "x/a",
                "to": "y/b",
                "port": 81,
                "protocol": "UDP",
                "verdict": "denied",
                "droppedAt": "egress",
                "policies": ["x/pod-a-stays-in-x"],
            },
            {
                "from": "z/a",
                "to": "y/b",
                "port": 81,
                "protocol": "UDP",
                "verdict": "denied",
                "droppedAt": "ingress",
                "policies": ["y/y-only-from-y"],
            },
        ]
    }


def test_nodes_services_and_refused_ports(tmp_path: Path) -> None:
    done = kpkt(
        "reach",
        str(EXAMPLE),
        "--from",
        "node/node2",
        "--from",
        "y/a",
        "--to",
        "y/b",
        "--to",
        "x/b",
        "--port",
        "80/TCP",
        "--json",
    )
    verdicts = {(p["from"], p["to"]): p["verdict"] for p in json.loads(done.stdout)["probes"]}
    # y/b's own node is let in, y/a is in y; x/b is open to all
    assert set(verdicts.values()) == {"allowed"}
    topology = yaml.safe_load(EXAMPLE.read_text())
    topology["services"] = [
        {
            "name": "web",
            "namespace": "y",
            "selector": {"pod": "b"},
            "ports": [{"port": 8080, "targetPort": 80}],
        }
    ]
    (tmp_path / "svc.yaml").write_text(yaml.safe_dump(topology))
    done = kpkt(
        "reach",
        str(tmp_path / "svc.yaml"),
        "--from",
        "y/a",
        "--from",
        "z/a",
        "--to",
        "service/y/web",
        "--json",
    )
    probes = json.loads(done.stdout)["probes"]
    assert [(p["from"], p["port"], p["verdict"]) for p in probes] == [
        ("y/a", 8080, "allowed"),
        ("z/a", 8080, "denied"),
    ]
    done = kpkt(
        "reach", str(EXAMPLE), "--from", "x/b", "--to", "node/node1", "--port", "80/TCP", "--json"
    )
    assert json.loads(done.stdout)["probes"][0]["verdict"] == "refused"  # nodes serve nothing


def test_diff_prints_only_the_cells_that_change(tmp_path: Path) -> None:
    topology = yaml.safe_load(EXAMPLE.read_text())
    topology["networkPolicies"] = topology["networkPolicies"][:1]  # without x/a's egress policy
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(topology))
    done = kpkt("reach", str(EXAMPLE), "--diff", str(tmp_path / "other.yaml"), "--port", "80/TCP")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # x/a may now reach z; y stays denied to it (by y's ingress policy now): not a change
    assert lines == [
        f"x/a -> z/{pod} 80/TCP: denied at egress (x/pod-a-stays-in-x) -> allowed" for pod in "abc"
    ] + ["3 cell(s) change"]
    done = kpkt(
        "reach", str(EXAMPLE), "--diff", str(tmp_path / "other.yaml"), "--port", "80/TCP", "--json"
    )
    document = json.loads(done.stdout)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert [(c["from"], c["to"], c["b"]["verdict"]) for c in document["changes"]] == [
        ("x/a", f"z/{pod}", "allowed") for pod in "abc"
    ]
    done = kpkt("reach", str(EXAMPLE), "--diff", str(EXAMPLE), "--port", "80/TCP")
    assert done.stdout == "no cell changes\n"


def test_output_folder_holds_every_probes_captures(tmp_path: Path) -> None:
    out = tmp_path / "reach"
    done = kpkt(
        "reach", str(EXAMPLE), "--from", "z/a", "--to", "y/b", "--port", "80/TCP", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    [step] = manifest["steps"]
    assert step["text"] == "probe: {from: z/a, to: y/b, port: 80, protocol: TCP}"
    assert (step["verdict"], step["droppedAt"]) == ("denied", "ingress")
    assert (out / "all.pcapng").is_file() and (out / "node2__eth0.pcap").is_file()


def test_bad_options_exit_2_with_one_line() -> None:
    for args, where in (
        (("--from", "x/nope"), "--from 'x/nope'"),
        (("--to", "service/y/nope"), "--to 'service/y/nope'"),
        (("--port", "80/SCTP"), "--port '80/SCTP': SCTP traffic is not modelled"),
        (("--from", "service/y/s"), "--from"),
        (("--port", "99/TCP"), "nothing to probe"),
    ):
        done = kpkt("reach", str(EXAMPLE), *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
        assert where in done.stderr


def test_sctp_is_judged_in_policies_but_a_probe_of_it_is_exit_2(tmp_path: Path) -> None:
    """An SCTP port in a NetworkPolicy is valid API and loads; a probe speaking SCTP names its
    place and says kpkt sends no SCTP, and writes nothing."""
    document = yaml.safe_load(EXAMPLE.read_text())
    sctp = {"ports": [{"protocol": "SCTP", "port": 80}]}
    document["networkPolicies"][0]["spec"].setdefault("ingress", []).append(sctp)
    topology = tmp_path / "sctp.yaml"
    topology.write_text(yaml.safe_dump(document))
    assert kpkt("validate", str(topology)).returncode == 0
    document["traffic"].append(
        {"probe": {"from": "x/a", "to": "y/b", "port": 80, "protocol": "SCTP"}}
    )
    topology.write_text(yaml.safe_dump(document))
    done = kpkt("run", str(topology), "-o", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    where = f"traffic[{len(document['traffic']) - 1}].probe.protocol"
    assert f"{where}: SCTP traffic is not modelled" in done.stderr
    assert not (tmp_path / "out").exists()


def test_run_trace_and_validate_json_of_probes_follow_their_schemas(tmp_path: Path) -> None:
    schemas = ROOT / "kpkt" / "schemas"
    for command, args in (
        ("run", ("-o", str(tmp_path / "out"), "--no-report")),
        ("trace", ("3",)),
        ("validate", ()),
    ):
        done = kpkt(command, str(EXAMPLE), *args, "--json")
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        schema = json.loads((schemas / f"{command}.schema.json").read_text())
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    steps = json.loads(kpkt("run", str(EXAMPLE), "-o", str(tmp_path / "o2"), "--json").stdout)[
        "steps"
    ]
    assert [s.get("droppedAt") for s in steps] == [None, "egress", "ingress"]
