"""What scripts and CI rely on: step outcomes judged against `expect:` (exit 3), --json
documents that follow their schemas, --quiet, validate's services and DNS names, quiet ends
on a closed pipe, and the capture the hint names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT

TWO_NODE = ROOT / "topologies" / "two-node.yaml"
EXPECTATIONS = ROOT / "tests" / "ci" / "expectations.yaml"
SCHEMAS = ROOT / "kpkt" / "schemas"


def kpkt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *args], capture_output=True, text=True, cwd=cwd
    )


def conform(document: dict, command: str) -> None:
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def missing(tmp_path: Path) -> Path:
    """The CI example with two expectations the datapath does not meet."""
    text = EXPECTATIONS.read_text()
    text = text.replace("listen: false, expect: refused}", "listen: false, expect: delivered}")
    text = text.replace(
        "ttl: 1, expect: {outcome: dropped, drop: ttl-exceeded}", "ttl: 1, expect: no-route"
    )
    assert text != EXPECTATIONS.read_text()
    path = tmp_path / "missing.yaml"
    path.write_text(text)
    return path


def test_met_expectations_exit_0_and_are_in_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = kpkt("run", str(EXPECTATIONS), "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  outcome: refused (expected refused, drop service-no-endpoints)" in done.stdout
    steps = json.loads((out / "manifest.json").read_text())["steps"]
    assert [s["outcome"] for s in steps] == [
        "delivered",
        "delivered",
        "delivered",
        "delivered",
        "refused",
        "refused",
        "refused",
        "dropped",
        "delivered",
        "not-found",
    ]
    assert all(step["met"] for step in steps)
    udp, ping = steps[0], steps[7]
    assert (udp["kind"], udp["sent"], udp["received"]) == ("udp", 3, 3)
    assert udp["result"] == "sent 3, received 3"  # the prose line stays
    assert ping["expect"] == {"outcome": "dropped", "drop": "ttl-exceeded"}
    assert ping["dropsByReason"] == {"ttl-exceeded": 1}
    assert ping["dropPlaces"] == [{"where": "node1", "reason": "ttl-exceeded", "count": 1}]


def test_a_missed_expectation_exits_3_and_names_the_step_last(tmp_path: Path) -> None:
    done = kpkt("run", str(missing(tmp_path)), "-o", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines()[-3:] == [
        "2 step(s) did not end as expected:",
        "  step 5: tcp: {from: client, to: 'web-0:9999', listen: false}: expected delivered, "
        "got refused, drops port-unreachable",
        "  step 8: ping: {from: client, to: web-1, ttl: 1}: expected drop no-route, got "
        "dropped, drops ttl-exceeded",
    ]
    assert "(expected delivered: NOT MET)" in done.stdout
    assert (tmp_path / "out" / "manifest.json").is_file()  # the captures are written all the same


def test_without_expectations_outcomes_are_reported_not_judged(tmp_path: Path) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text(
        "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: t}\n"
        "nodes: [{name: n1, pods: [{name: a}, {name: b}]}]\n"
        "traffic: [{udp: {from: a, to: 'b:9', listen: false}}]\n"
    )
    done = kpkt("run", str(topology), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "  outcome: refused\n" in done.stdout


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            "deliverd",
            "traffic[0].udp.expect: 'deliverd' is neither an outcome of a udp step "
            "(delivered, partial, refused, unreachable, dropped, timeout) nor a drop reason",
        ),
        ("not-found", "traffic[0].udp.expect: 'not-found' is neither an outcome of a udp step"),
        (
            "{outcome: refused, drop: ttl}",
            "traffic[0].udp.expect.drop: 'ttl' is not one of: no-route, ttl-exceeded",
        ),
        ("{outcome: gone}", "traffic[0].udp.expect.outcome: 'gone' is not one of: delivered"),
        ("{reason: ttl-exceeded}", "traffic[0].udp.expect.reason: unknown key"),
        ("{}", "traffic[0].udp.expect: an empty mapping: give outcome, drop or both"),
        ("3", "traffic[0].udp.expect: 3 is neither an outcome"),
    ],
)
def test_a_wrong_expectation_exits_2_with_its_path_and_the_allowed_values(
    tmp_path: Path, expect: str, message: str
) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text(
        "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: t}\n"
        "nodes: [{name: n1, pods: [{name: a}, {name: b}]}]\n"
        f"traffic: [{{udp: {{from: a, to: 'b:9', expect: {expect}}}}}]\n"
    )
    done = kpkt("run", str(topology), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_run_json_follows_its_schema(tmp_path: Path) -> None:
    done = kpkt("run", str(missing(tmp_path)), "-o", str(tmp_path / "out"), "--json")
    assert done.returncode == 3
    document = json.loads(done.stdout)  # nothing but the document on standard output
    conform(document, "run")
    assert document["missed"] == [4, 7] and document["exitStatus"] == 3
    assert document["output"] == str(tmp_path / "out")
    assert document["report"] == str(tmp_path / "out" / "report.html")
    assert {c["file"] for c in document["captures"]} >= {"node1__eth0.pcap"}
    done = kpkt("run", "--no-report", str(TWO_NODE), "-o", str(tmp_path / "two"), "--json")
    document = json.loads(done.stdout)
    conform(document, "run")
    assert document["report"] is None and document["exitStatus"] == 0


def test_validate_json_follows_its_schema_and_lists_services_and_dns_names() -> None:
    done = kpkt("validate", str(TWO_NODE), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    conform(document, "validate")
    web = next(s for s in document["services"] if s["name"] == "web-service")
    assert web["type"] == "NodePort" and web["clusterIP"] == "10.96.0.80"
    assert web["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 30080}
    ]
    assert [e["ip"] for e in web["endpoints"]] == ["10.1.1.6", "10.1.2.10"]
    names = {(n["name"], n["type"]): n["data"] for n in document["dnsNames"]}
    assert names["web-service.default.svc.cluster.local.", "A"] == ["10.96.0.80"]
    assert names["db-0.db.default.svc.cluster.local.", "A"] == ["10.1.2.11"]  # headless pod
    assert names["10-1-2-11.default.pod.cluster.local.", "A"] == ["10.1.2.11"]
    assert names["example.com.", "A"] == ["198.51.100.10"]


def test_validate_text_lists_services_and_dns_names() -> None:
    done = kpkt("validate", str(TWO_NODE))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  default/web-service: NodePort 10.96.0.80" in lines
    assert "    port 80/TCP (http) -> targetPort http nodePort 30080" in lines
    assert "    endpoint 10.1.2.10:8080/TCP pod pod-c.default" in lines
    assert "  default/db: ClusterIP headless" in lines
    assert "  web-service.default.svc.cluster.local. A 10.96.0.80 (service)" in lines
    assert "  db-0.db.default.svc.cluster.local. A 10.1.2.11 (endpoint)" in lines


def test_validate_shows_expectations() -> None:
    done = kpkt("validate", str(EXPECTATIONS), "--json")
    document = json.loads(done.stdout)
    conform(document, "validate")
    assert document["steps"][7]["expect"] == {"outcome": "dropped", "drop": "ttl-exceeded"}
    text = kpkt("validate", str(EXPECTATIONS)).stdout
    assert "(expect dropped, drop ttl-exceeded)" in text


def test_trace_json_follows_its_schema() -> None:
    done = kpkt("trace", str(TWO_NODE), "2", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    conform(document, "trace")
    assert document["outcome"] == "delivered" and document["drops"] == []
    assert any(hop["change"].startswith("vxlan encap") for hop in document["hops"])


def test_trace_json_of_a_dropping_step(tmp_path: Path) -> None:
    done = kpkt("trace", str(EXPECTATIONS), "8", "--json")
    document = json.loads(done.stdout)
    conform(document, "trace")
    assert document["outcome"] == "dropped" and document["met"] is True
    assert [d["reason"] for d in document["drops"]] == ["ttl-exceeded"]


def test_quiet_prints_only_where_the_output_went_and_the_misses(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = kpkt("run", "--quiet", str(EXPECTATIONS), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout == f"wrote 21 captures, all.pcapng, manifest.json and report.html to {out}/\n"
    )
    done = kpkt("run", "-q", str(missing(tmp_path)), "-o", str(out))
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines[0].startswith("wrote ") and lines[1] == "2 step(s) did not end as expected:"
    assert len(lines) == 4


GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("run", str(TWO_NODE), "-o", "{out}"), 0),
        (("validate", str(TWO_NODE)), 0),
        (("trace", str(TWO_NODE), "2"), 0),
        (("gen", "60", "40"), 0),
        # two different folders: diff's own status, 1, whether or not its reader left early
        (
            ("diff", str(GOLDEN / "two-node/expected"), str(GOLDEN / "flannel-reference/expected")),
            1,
        ),
    ],
    ids=["run", "validate", "trace", "gen", "diff"],
)
def test_a_closed_pipe_ends_quietly(tmp_path: Path, args: tuple[str, ...], status: int) -> None:
    command = [sys.executable, "-m", "kpkt", *(a.format(out=tmp_path / "out") for a in args)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.readline()  # like `| head -1`: read one line, then go away
        process.stdout.close()
        stderr = process.stderr.read().decode()
        ended = process.wait()
    assert (ended, stderr) == (status, "")


def test_the_hint_names_a_capture_with_packets(tmp_path: Path) -> None:
    topology = tmp_path / "one.yaml"
    topology.write_text(
        "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: one}\n"
        "nodes: [{name: n1, pods: [{name: a}, {name: b}]}]\n"
        "traffic: [{ping: {from: a, to: b}}]\n"
    )
    out = tmp_path / "out"
    done = kpkt("run", str(topology), "-o", str(out))
    assert done.returncode == 0, done.stderr
    hint = done.stdout.splitlines()[-1]
    assert hint.startswith("open one: wireshark ") and "vxlan" not in hint  # nothing tunnelled
    file = hint.rsplit("/", 1)[1]
    captures = json.loads((out / "manifest.json").read_text())["captures"]
    assert next(c for c in captures if c["file"] == file)["packets"] > 0

    done = kpkt("run", str(TWO_NODE), "-o", str(tmp_path / "two"))
    hint = done.stdout.splitlines()[-1]
    assert hint == f"open one: wireshark -d udp.port==8472,vxlan {tmp_path}/two/node1__eth0.pcap"


def test_help_documents_exit_3_and_the_flags() -> None:
    text = kpkt("run", "--help").stdout
    assert "3 written, but a step did not end as its `expect:` says" in text
    assert "--json" in text and "--quiet" in text
    assert "--json" in kpkt("validate", "--help").stdout
    assert "--json" in kpkt("trace", "--help").stdout


def test_steps_past_the_tables_are_summed_up_by_outcome(tmp_path: Path) -> None:
    topology = tmp_path / "gen.yaml"
    assert kpkt("gen", "8", "3", "-o", str(topology)).returncode == 0
    done = kpkt("run", str(topology), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "steps 21-24: 4 more steps," in done.stdout
    assert "\n  outcomes: 4 delivered\n" in done.stdout
