"""The text kpkt prints: the hop table of each traffic step, the lines that end a run and the
`validate` overview."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address

from kpkt.capture.summary import owner_names, summarize
from kpkt.capture.tap import TABLE_STEPS, StepLog
from kpkt.cni import plugin
from kpkt.derive import ROUTER
from kpkt.dns.served import served_names
from kpkt.runner import run
from kpkt.spec import Topology
from kpkt.wire.ethernet import mac_bytes, mac_str
from kpkt.wire.vxlan import LINUX_PORT


def mac_names(taps) -> dict[bytes, str]:
    """MAC -> the capture point that owns it, for readable summaries."""
    return owner_names((mac_bytes(t.mac), t.name) for t in taps if t.mac and t.kind != "loopback")


def step_tables(result) -> str:
    """A hop table for each of the first TABLE_STEPS steps, then a summary of the rest."""
    journal = result.network.journal
    names = mac_names(journal.taps)
    ports = result.network.vxlan_ports()
    blocks = []
    pairs = list(zip(result.topology.steps, journal.steps, strict=True))
    for index, (step, log) in enumerate(pairs[:TABLE_STEPS]):
        blocks.append(_step_block(index, step.text, log, names, ports, step.expect))
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
    outcomes = Counter(log.outcome for _, log in rest)
    lines = [
        f"steps {first + 1}-{len(pairs)}: {len(rest)} more steps, "
        f"{sum(log.hop_count for _, log in rest):,} frames, {len(dropping)} with drops "
        "(every hop is in manifest.json)",
        "  outcomes: " + ", ".join(f"{count} {word}" for word, count in outcomes.most_common()),
    ]
    for index, step, log in dropping[:20]:
        drop = log.drops[0]
        lines.append(
            f"  step {index + 1}: {step.text}: {drop.reason} at {drop.where}: {log.result}"
        )
    return "\n".join(lines)


def _step_block(index, text: str, log: StepLog, names, ports, expect=None) -> str:
    title = f"step {index + 1}: {text}" if index is not None else f"background: {text}"
    width = max([len(h.tap.name) for h in log.rows] + [13])
    lines = [title, f"  {'t (us)':>10}  {'capture point':<{width}}  dir  frame"]
    for hop in log.rows:
        t_us = (hop.t_ns - log.start_ns) / 1000
        line = f"  {t_us:>10.1f}  {hop.tap.name:<{width}}  {hop.direction:<3}  "
        line += summarize(hop.frame, names, ports, hop.tap.link_type)
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
    if log.outcome:
        lines.append(f"  outcome: {log.outcome}{_judged(expect, log)}")
    return "\n".join(lines)


def _judged(expect, log: StepLog) -> str:
    if expect is None:
        return ""
    met = expect.met(log.outcome, [drop.reason for drop in log.drops])
    return f" (expected {expect.text()}{'' if met else ': NOT MET'})"


def misses(result) -> list[str]:
    """One line per step that did not end as its `expect:` says: index, text, expected, got."""
    lines = []
    for index, (step, log) in enumerate(
        zip(result.topology.steps, result.network.journal.steps, strict=True)
    ):
        reasons = [drop.reason for drop in log.drops]
        if step.expect is not None and not step.expect.met(log.outcome, reasons):
            got = log.outcome + (f", drops {', '.join(sorted(set(reasons)))}" if reasons else "")
            lines.append(
                f"  step {index + 1}: {step.text}: expected {step.expect.text()}, got {got}"
            )
    return lines


def open_hint(result) -> str | None:
    """A capture worth opening: the first node network interface that saw packets (with the
    VXLAN decode option when its node tunnelled any on a port Wireshark does not decode by itself),
    else the busiest capture; None when no capture has a packet."""
    taps = [tap for tap in result.files if tap.count]
    if not taps:
        return None
    tunnelled = {tap.owner for tap in taps if tap.kind == "vxlan"}
    hidden = sorted(result.network.vxlan_ports() - {LINUX_PORT})  # Wireshark decodes 4789
    underlay = [tap for tap in taps if tap.kind == "underlay"]
    tap = underlay[0] if underlay else max(taps, key=lambda t: t.count)
    decode = ""
    if tap.owner in tunnelled and hidden:
        decode = "".join(f"-d udp.port=={port},vxlan " for port in hidden)
    return f"open one: wireshark {decode}{result.folder}/{result.files[tap]}"


def _on(cluster, ip) -> str:
    """` on <subnet>` for a host of a routed node network, else ''."""
    return f" on {cluster.subnet_of(ip).name}" if cluster.subnets else ""


def describe_topology(topology: Topology) -> str:
    """Nodes, pods, addresses, MACs, each namespace's routes, services, DNS names,
    NetworkPolicies, and the steps."""
    network = run(topology, steps=0).network
    c = topology.cluster
    cni = plugin(c.cni)
    underlay = ", ".join(f"{net.name} {net.cidr}" for net in c.subnets) or c.underlay_cidr
    lines = [
        f"topology {topology.name} (seed {topology.seed}): {_datapath(topology, network)}, "
        f"podCIDR {c.pod_cidr}, underlay {underlay} mtu {c.underlay_mtu}",
    ]
    if c.subnets:
        interfaces = (
            f"eth{index} {net.gateway} {net.router_mac} ({net.name})"
            for index, net in enumerate(c.subnets)
        )
        lines.append(f"router {ROUTER}: {', '.join(interfaces)}")
    for node in topology.nodes:
        lines.append(
            f"node {node.name}: eth0 {node.ip} {node.mac}{_on(c, node.ip)}, "
            f"{cni.describe(c, node)}, "
            f"podCIDR {node.pod_cidr}"
        )
        for pod in node.pods:
            lines.append(
                f"  pod {pod.owner}: eth0 {pod.ip} {pod.mac}, host side "
                f"{pod.host_veth} {pod.host_veth_mac}"
            )
    for ext in topology.externals:
        lines.append(f"external {ext.name}: eth0 {ext.ip} {ext.mac}{_on(c, ext.ip)}")
    lines.append("routes:")
    for owner, stack in network.stacks.items():
        for route in stack.routes.routes():
            lines.append(f"  {owner}: {route}")
    lines += _services(topology)
    lines += _dns_names(topology)
    lines += _policies(topology)
    lines.append("traffic:")
    lines += [
        f"  {i + 1}. {step.text}" + (f"  (expect {step.expect.text()})" if step.expect else "")
        for i, step in enumerate(topology.steps)
    ]
    return "\n".join(lines)


def _datapath(topology: Topology, network) -> str:
    """The CNI with its settings and the tunnels its nodes have, as built: "cni <name>
    (backend vxlan), vxlan vni 1 port 8472"; a CNI that routes without a tunnel has none."""
    c = topology.cluster
    text = f"cni {c.cni}"
    if c.cni_options:
        settings = (f"{key} {_yaml_value(value)}" for key, value in c.cni_options.items())
        text += " (" + ", ".join(settings) + ")"
    tunnels = sorted(tunnel_kinds(network))
    return ", ".join([text, *tunnels])


def _yaml_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def cni_devices(stack, node) -> list[dict]:
    """The devices the CNI gave a node (not its eth0, nor the host sides of its pods): name,
    kind, MAC and addresses."""
    pods = {pod.host_veth for pod in node.pods}
    return [
        {
            "name": dev.name,
            "kind": dev.kind,
            "mac": mac_str(dev.mac) if dev.mac else None,
            "ips": [f"{IPv4Address(ip)}/{plen}" for d, ip, plen in stack.addresses if d is dev],
        }
        for dev in stack.devices
        if dev.name not in pods and dev.name not in ("eth0", "lo")
    ]


def tunnel_kinds(network) -> set[str]:
    """The node tunnels of a built network: "vxlan vni 1 port 8472", "ipip"."""
    kinds = set()
    for stack in network.stacks.values():
        for dev in stack.devices:
            if dev.kind == "vxlan" and hasattr(dev, "vni"):
                kinds.add(f"vxlan vni {dev.vni} port {dev.port}")
            elif dev.kind == "ipip":
                kinds.add("ipip")
    return kinds


def _policies(topology: Topology) -> list[str]:
    """Each NetworkPolicy with its effective policyTypes (after the API server's defaulting)
    and the pods it selects."""
    lines = ["networkPolicies:"] if topology.policies else []
    for policy in topology.policies:
        types = ", ".join(sorted(policy.types, key=("Ingress", "Egress").index))
        selected = sorted(
            pod.name
            for pod in topology.pods()
            if pod.namespace == policy.namespace and policy.pod_selector.matches(dict(pod.labels))
        )
        rules = f"{len(policy.ingress)} ingress rule(s), {len(policy.egress)} egress rule(s)"
        lines.append(
            f"  {policy.key}: policyTypes {types}; {rules}; selects "
            + (", ".join(selected) if selected else "no pod")
        )
    return lines


def _services(topology: Topology) -> list[str]:
    lines = ["services:"] if topology.services else []
    for service in topology.services:
        address = service.cluster_ip or (
            f"ExternalName {service.external_name}" if service.external_name else "headless"
        )
        lines.append(f"  {service.namespace}/{service.name}: {service.type} {address}")
        for port in service.ports:
            node_port = f" nodePort {port.node_port}" if port.node_port else ""
            name = f" ({port.name})" if port.name else ""
            lines.append(
                f"    port {port.port}/{port.protocol}{name} -> targetPort "
                f"{port.target_port}{node_port}"
            )
        for endpoint in service.endpoints:
            ports = ",".join(f"{port.port}/{port.protocol}" for port in endpoint.ports)
            pod = f" pod {endpoint.pod}" if endpoint.pod else ""
            ready = "" if endpoint.ready else " (not ready)"
            lines.append(f"    endpoint {endpoint.ip}:{ports or '-'}{pod}{ready}")
    return lines


def _dns_names(topology: Topology) -> list[str]:
    names = served_names(topology)
    lines = ["dns names:"] if names else []
    lines += [f"  {n.name} {n.type} {', '.join(n.data)} ({n.source})" for n in names]
    return lines
