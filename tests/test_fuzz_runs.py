"""Random clusters and random traffic never crash a run, and every run is reproducible."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpkt.output import run_to_folder
from kpkt.topology.load import load_topology_text

ADDRESSES = [
    "10.244.1.2",
    "10.244.2.9",
    "10.99.0.1",
    "192.168.50.1",
    "192.168.50.77",
    "127.0.0.1",
    "10.244.1.1",
    "10.244.2.0",
]


@st.composite
def topologies(draw) -> str:
    nodes = draw(st.integers(1, 3))
    pods = [draw(st.integers(0, 3)) for _ in range(nodes)]
    externals = draw(st.integers(0, 1))
    names = [f"p{n}-{i}" for n in range(nodes) for i in range(pods[n])]
    hosts = names + [f"node{n + 1}" for n in range(nodes)] + (["laptop"] if externals else [])
    senders = [h for h in hosts if h != "laptop"] or hosts
    lines = [
        "apiVersion: kpkt/v1",
        "kind: Topology",
        "metadata: {name: fuzz}",
        f"cluster: {{hairpin: {draw(st.booleans())}}}",
        "nodes:",
    ]
    for n in range(nodes):
        members = ", ".join(f"{{name: p{n}-{i}}}" for i in range(pods[n]))
        lines.append(f"  - {{name: node{n + 1}, pods: [{members}]}}")
    if externals:
        lines.append("externals: [{name: laptop}]")
    lines.append("traffic:")
    for _ in range(draw(st.integers(1, 4))):
        src = draw(st.sampled_from(senders))
        dst = draw(st.sampled_from(hosts + ADDRESSES))
        kind = draw(st.sampled_from(["udp", "ping", "tcp"]))
        if kind == "ping":
            body = f"from: {src}, to: '{dst}', count: {draw(st.integers(1, 2))}, "
            body += f"ttl: {draw(st.integers(1, 4))}"
        else:
            body = f"from: {src}, to: '{dst}', dport: {draw(st.integers(1, 65535))}, "
            body += f"listen: {draw(st.booleans())}"
            if kind == "udp":
                body += f", count: {draw(st.integers(1, 3))}, ttl: {draw(st.integers(1, 3))}"
        lines.append(f"  - {kind}: {{{body}}}")
    return "\n".join(lines) + "\n"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(topologies())
def test_random_traffic_runs_and_repeats(text: str) -> None:
    topology = load_topology_text(text, "fuzz.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        first, second = Path(scratch) / "a", Path(scratch) / "b"
        run_to_folder(topology, first)
        run_to_folder(topology, second)
        for path in sorted(first.iterdir()):
            assert path.read_bytes() == (second / path.name).read_bytes(), path.name
