"""The text kpkt prints: the hop table of each traffic step and the `validate` overview."""

from __future__ import annotations

from kpkt.capture.summary import summarize
from kpkt.capture.tap import TABLE_STEPS, StepLog
from kpkt.net.frame import mac_bytes
from kpkt.topology.build import build
from kpkt.topology.spec import Topology


def mac_names(taps) -> dict[bytes, str]:
    """MAC -> the capture point that owns it, for readable summaries."""
    return {mac_bytes(t.mac): t.name for t in taps if t.mac and t.kind != "loopback"}


def step_tables(result) -> str:
    """A hop table for each of the first TABLE_STEPS steps, then a summary of the rest."""
    journal = result.network.journal
    names = mac_names(journal.taps)
    ports = frozenset({result.topology.cluster.vxlan_port})
    blocks = []
    pairs = list(zip(result.topology.steps, journal.steps, strict=True))
    for index, (step, log) in enumerate(pairs[:TABLE_STEPS]):
        blocks.append(_step_block(index, step.text, log, names, ports))
    if len(pairs) > TABLE_STEPS:
        blocks.append(_rest(pairs, TABLE_STEPS))
    if journal.background.drops or journal.background.hop_count:
        blocks.append(
            _step_block(
                None,
                "frames sent by kernel timers outside any step",
                journal.background,
                names,
                ports,
            )
        )
    return "\n\n".join(blocks)


def _rest(pairs, first: int) -> str:
    rest = pairs[first:]
    dropping = [(first + i, step, log) for i, (step, log) in enumerate(rest) if log.drops]
    lines = [
        f"steps {first + 1}-{len(pairs)}: {len(rest)} more steps, "
        f"{sum(log.hop_count for _, log in rest):,} frames, {len(dropping)} with drops "
        "(every hop is in manifest.json)"
    ]
    for index, step, log in dropping[:20]:
        drop = log.drops[0]
        lines.append(
            f"  step {index + 1}: {step.text}: {drop.reason} at {drop.where}: {log.result}"
        )
    return "\n".join(lines)


def _step_block(index, text: str, log: StepLog, names, ports) -> str:
    title = f"step {index + 1}: {text}" if index is not None else f"background: {text}"
    width = max([len(h.tap.name) for h in log.rows] + [13])
    lines = [title, f"  {'t (us)':>10}  {'capture point':<{width}}  dir  frame"]
    for hop in log.rows:
        t_us = (hop.t_ns - log.start_ns) / 1000
        line = f"  {t_us:>10.1f}  {hop.tap.name:<{width}}  {hop.direction:<3}  "
        line += summarize(hop.frame, names, ports)
        if hop.note:
            line += f"   # {hop.note}"
        lines.append(line)
    if log.hop_count > log.table_rows:
        lines.append(
            f"  ... {log.hop_count - log.table_rows} more frames: see manifest.json and the pcaps"
        )
    for drop in log.drops[:20]:
        lines.append(f"  drop at {drop.where}: {drop.reason}: {drop.detail}")
    if len(log.drops) > 20:
        lines.append(f"  ... {len(log.drops) - 20} more drops in manifest.json")
    if log.result:
        lines.append(f"  result: {log.result}")
    return "\n".join(lines)


def describe_topology(topology: Topology) -> str:
    """Nodes, pods, addresses, MACs, each namespace's routes, and the steps."""
    network, _ = build(topology)
    c = topology.cluster
    lines = [
        f"topology {topology.name} (seed {topology.seed}): cni {c.cni}, podCIDR {c.pod_cidr}, "
        f"underlay {c.underlay_cidr} mtu {c.underlay_mtu}, vxlan vni {c.vni} port {c.vxlan_port}",
    ]
    for node in topology.nodes:
        lines.append(
            f"node {node.name}: eth0 {node.ip} {node.mac}, cni0 {node.pod_cidr[1]} "
            f"{node.cni0_mac}, flannel.1 {node.pod_cidr.network_address}/32 "
            f"{node.vtep_mac}, podCIDR {node.pod_cidr}"
        )
        for pod in node.pods:
            lines.append(
                f"  pod {pod.owner}: eth0 {pod.ip} {pod.mac}, host side "
                f"{pod.host_veth} {pod.host_veth_mac}"
            )
    for ext in topology.externals:
        lines.append(f"external {ext.name}: eth0 {ext.ip} {ext.mac}")
    lines.append("routes:")
    for owner, stack in network.stacks.items():
        for route in stack.routes.routes():
            lines.append(f"  {owner}: {route}")
    lines.append("traffic:")
    lines += [f"  {i + 1}. {step.text}" for i, step in enumerate(topology.steps)]
    return "\n".join(lines)
