"""`kpkt reach`: who can reach whom, probed on the wire. One `probe` step per (client, server,
port and protocol the server serves), all in one run, and the results as the upstream
NetworkPolicy e2e tests print their truth tables: rows from, columns to, `.` allowed, `X`
denied, one table per port and protocol (netpol.md §5.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from ipaddress import IPv4Address
from pathlib import Path

from kpkt.errors import KpktError
from kpkt.runner import run
from kpkt.spec import PROBE_PROTOCOLS, SCTP_NOT_MODELLED, HostRef, ProbeStep, Topology

MARKS = {"allowed": ".", "denied": "X", "refused": "R", "unreachable": "U"}
NOT_PROBED = "?"


@dataclasses.dataclass(frozen=True, slots=True)
class Peer:
    """A probe's client or server (a peer, not an "endpoint": that is a Service's backend):
    how tables name it, where it sends from, its address, what it serves."""

    name: str  # "x/a", "node/node1", "service/y/s-y-b", "laptop"
    ref: HostRef | None  # None: a service, which sends nothing
    ip: IPv4Address
    serves: tuple[tuple[int, str], ...]  # (port, protocol); () for nodes and externals


def peers(topology: Topology) -> dict[str, Peer]:
    """Everything a probe may start from or go to, by name."""
    found: dict[str, Peer] = {}
    for pod in sorted(topology.pods(), key=lambda pod: (pod.namespace, pod.name)):
        serves = sorted(
            {(p.port, p.protocol) for container in pod.containers for p in container.ports}
        )
        ref = HostRef("pod", pod.name, pod.namespace)
        found[f"{pod.namespace}/{pod.name}"] = Peer(
            f"{pod.namespace}/{pod.name}", ref, pod.ip, tuple(serves)
        )
    for node in topology.nodes:
        found[f"node/{node.name}"] = Peer(
            f"node/{node.name}", HostRef("node", node.name), node.ip, ()
        )
    for external in topology.externals:
        found[external.name] = Peer(
            external.name, HostRef("external", external.name), external.ip, ()
        )
    for service in topology.services:
        if service.cluster_ip is not None:
            name = f"service/{service.namespace}/{service.name}"
            serves = tuple(sorted({(p.port, p.protocol) for p in service.ports}))
            found[name] = Peer(name, None, service.cluster_ip, serves)
    return found


def _pick(known: dict[str, Peer], names: Iterable[str], option: str) -> list[Peer]:
    picked = []
    for name in names:
        if name not in known:
            raise KpktError(
                f"{option} {name!r}: no such pod, node, service or external host; write a pod "
                "as namespace/pod, a node as node/<name>, a service as service/<ns>/<name>"
            )
        picked.append(known[name])
    return picked


def _port_filter(ports: Iterable[str]) -> set[tuple[int, str | None]]:
    """`--port 80/TCP`, `--port 81/udp`, or `--port 80` (both protocols)."""
    wanted = set()
    for text in ports:
        number, _, protocol = text.partition("/")
        protocol = protocol.upper() or None
        if protocol == "SCTP":
            raise KpktError(
                f"--port {text!r}: {SCTP_NOT_MODELLED}; probe {number}/TCP or {number}/UDP"
            )
        if not (
            number.isdigit() and 1 <= int(number) <= 65535 and protocol in (None, *PROBE_PROTOCOLS)
        ):
            raise KpktError(f"--port {text!r}: write a port and a protocol, like 80/TCP or 53/UDP")
        wanted.add((int(number), protocol))
    return wanted


def probe_steps(
    topology: Topology,
    froms: Iterable[str] = (),
    tos: Iterable[str] = (),
    ports: Iterable[str] = (),
) -> list[ProbeStep]:
    """The probes: every client × server × served port and protocol (pods × pods unless
    `froms`/`tos` name others; nodes and externals serve the ports the pods serve)."""
    known = peers(topology)
    pods = [e for e in known.values() if e.ref is not None and e.ref.kind == "pod"]
    clients = _pick(known, froms, "--from") if froms else pods
    servers = _pick(known, tos, "--to") if tos else pods
    for client in clients:
        if client.ref is None:
            raise KpktError(f"--from {client.name!r}: a service sends nothing; name a pod")
    wanted = _port_filter(ports)
    everything = sorted({served for pod in pods for served in pod.serves})
    steps = []
    for client in clients:
        for server in servers:
            for port, protocol in server.serves or everything:
                if wanted and (port, protocol) not in wanted and (port, None) not in wanted:
                    continue
                text = (
                    f"probe: {{from: {client.name}, to: {server.name}, port: {port}, "
                    f"protocol: {protocol}}}"
                )
                steps.append(ProbeStep(text, client.ref, server.ip, port, protocol, server.name))
    if not steps:
        raise KpktError("nothing to probe: no pod serves a port (containers[].ports) that fits")
    return steps


def reach(topology: Topology, steps: list[ProbeStep], folder: Path | None = None) -> list[dict]:
    """Run the probes on the wire (captures written to `folder` as a run writes them) and
    return one result per probe: from, to, port, protocol, verdict, droppedAt, policies."""
    result = run(dataclasses.replace(topology, steps=tuple(steps)), folder=folder, report=False)
    return [
        {"from": _name(step.src), "to": step.target, "port": step.port, "protocol": step.protocol}
        | log.probe
        for step, log in zip(steps, result.network.journal.steps, strict=True)
    ]


def _name(ref: HostRef) -> str:
    if ref.kind == "pod":
        return f"{ref.namespace}/{ref.name}"
    return f"node/{ref.name}" if ref.kind == "node" else ref.name


def tables(probes: list[dict]) -> str:
    """One truth table per port and protocol, as the upstream e2e tests print them."""
    blocks = []
    for port, protocol in sorted({(p["port"], p["protocol"]) for p in probes}):
        cells = {
            (p["from"], p["to"]): p["verdict"]
            for p in probes
            if (p["port"], p["protocol"]) == (port, protocol)
        }
        froms = list(dict.fromkeys(src for src, _ in cells))
        tos = list(dict.fromkeys(dst for _, dst in cells))
        allowed = sum(verdict == "allowed" for verdict in cells.values())
        lines = [f"{port}/{protocol}: {allowed} of {len(cells)} allowed"]
        lines.append("\t".join(["-", *tos]))
        for src in froms:
            marks = [MARKS[cells[src, dst]] if (src, dst) in cells else NOT_PROBED for dst in tos]
            lines.append("\t".join([src, *marks]))
        blocks.append("\n".join(lines))
    legend = "(. allowed, X denied by a NetworkPolicy, R refused, U unreachable, ? not probed)"
    return "\n\n".join(blocks) + "\n" + legend + "\n"


def changes(before: list[dict], after: list[dict]) -> list[dict]:
    """The cells whose verdict differs between two probe lists (a cell only one has counts);
    a denial that moves to the other side or to other policies is the same cell."""
    old = {_cell(p): p for p in before}
    new = {_cell(p): p for p in after}
    changed = []
    for cell in dict.fromkeys([*old, *new]):
        a, b = old.get(cell), new.get(cell)
        if a is None or b is None or a["verdict"] != b["verdict"]:
            src, dst, port, protocol = cell
            changed.append(
                {"from": src, "to": dst, "port": port, "protocol": protocol, "a": a, "b": b}
            )
    return changed


def _cell(probe: dict) -> tuple:
    return probe["from"], probe["to"], probe["port"], probe["protocol"]


def describe(probe: dict | None) -> str:
    if probe is None:
        return "not probed"
    if probe["verdict"] == "denied":
        return f"denied at {probe['droppedAt']} ({', '.join(probe['policies'])})"
    return probe["verdict"]


def change_lines(changed: list[dict]) -> str:
    if not changed:
        return "no cell changes\n"
    lines = [
        f"{c['from']} -> {c['to']} {c['port']}/{c['protocol']}: "
        f"{describe(c['a'])} -> {describe(c['b'])}"
        for c in changed
    ]
    return "\n".join(lines) + f"\n{len(changed)} cell(s) change\n"
