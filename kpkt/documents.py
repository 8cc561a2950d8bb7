"""The JSON documents `--json` prints: `validate`'s overview, `run`'s summary and `trace`'s
hops. Their field names are stable; kpkt/schemas/<command>.schema.json describe them and
docs/json.md explains them."""

from __future__ import annotations

from kpkt import __version__
from kpkt.dns.served import served_names
from kpkt.outcome import step_kind, step_outcome
from kpkt.report import cni_devices, tunnel_kinds
from kpkt.runner import run
from kpkt.spec import ServiceSpec, Topology

EXIT_MEANINGS = {
    0: "done; every step with an expectation ended as expected",
    3: "done, but some steps did not end as their `expect:` says",
}


def _head(command: str, topology: Topology) -> dict:
    return {
        "command": command,
        "version": __version__,
        "topology": topology.name,
        "source": topology.source,
        "seed": topology.seed,
        "warnings": list(topology.warnings),
    }


def validate_document(topology: Topology) -> dict:
    """What `kpkt validate` shows: cluster, nodes and pods, routes, services, DNS names, steps."""
    network = run(topology, steps=0).network
    c = topology.cluster
    return {
        **_head("validate", topology),
        "cluster": {
            "cni": c.cni,
            "podCIDR": str(c.pod_cidr),
            "serviceCIDR": str(c.service_cidr),
            "clusterDomain": c.cluster_domain,
            "underlayCIDR": str(c.underlay_cidr),
            "underlayMTU": c.underlay_mtu,
            "subnets": [
                {
                    "name": subnet.name,
                    "cidr": str(subnet.cidr),
                    "gateway": str(subnet.gateway),
                    "routerInterface": f"eth{index}",
                    "routerMac": subnet.router_mac,
                }
                for index, subnet in enumerate(c.subnets)
            ],
            "cniSettings": dict(c.cni_options),
            "tunnels": sorted(tunnel_kinds(network)),
        },
        "nodes": [
            {
                "name": node.name,
                "ip": str(node.ip),
                "mac": node.mac,
                "podCIDR": str(node.pod_cidr),
                "devices": cni_devices(network.stacks[node.name], node),
                "pods": [
                    {
                        "name": pod.name,
                        "namespace": pod.namespace,
                        "ip": str(pod.ip),
                        "mac": pod.mac,
                        "hostVeth": pod.host_veth,
                        "hostVethMac": pod.host_veth_mac,
                        "ready": pod.ready,
                    }
                    for pod in node.pods
                ],
            }
            for node in topology.nodes
        ],
        "externals": [
            {"name": ext.name, "ip": str(ext.ip), "mac": ext.mac} for ext in topology.externals
        ],
        "routes": [
            {"owner": owner, "route": str(route)}
            for owner, stack in network.stacks.items()
            for route in stack.routes.routes()
        ],
        "services": [service_data(service) for service in topology.services],
        "dnsNames": [
            {"name": n.name, "type": n.type, "data": list(n.data), "source": n.source}
            for n in served_names(topology)
        ],
        "steps": [
            {
                "index": index,
                "text": step.text,
                "kind": step_kind(step),
                **({"expect": step.expect.as_data()} if step.expect else {}),
            }
            for index, step in enumerate(topology.steps)
        ],
    }


def service_data(service: ServiceSpec) -> dict:
    return {
        "name": service.name,
        "namespace": service.namespace,
        "type": service.type,
        "clusterIP": str(service.cluster_ip) if service.cluster_ip else None,
        "externalName": service.external_name,
        "ports": [
            {
                "name": port.name,
                "port": port.port,
                "protocol": port.protocol,
                "targetPort": port.target_port,
                "nodePort": port.node_port,
            }
            for port in service.ports
        ],
        "endpoints": [
            {
                "ip": str(endpoint.ip),
                "ready": endpoint.ready,
                "pod": endpoint.pod,
                "node": endpoint.node,
                "ports": [
                    {"name": port.name, "port": port.port, "protocol": port.protocol}
                    for port in endpoint.ports
                ],
            }
            for endpoint in service.endpoints
        ],
    }


def run_document(result, status: int) -> dict:
    """`kpkt run --json`: where the output went, each step's outcome, and the exit status."""
    topology, journal, folder = result.topology, result.network.journal, result.folder
    steps = [
        {"index": index, "text": step.text, "result": log.result, **step_outcome(step, log)}
        for index, (step, log) in enumerate(zip(topology.steps, journal.steps, strict=True))
    ]
    return {
        **_head("run", topology),
        "output": str(folder),
        "manifest": str(folder / "manifest.json"),
        "report": str(report) if (report := folder / "report.html").is_file() else None,
        "captures": [
            {"file": file, "capture": tap.name, "packets": tap.count}
            for tap, file in result.files.items()
        ],
        "steps": steps,
        "missed": [step["index"] for step in steps if step.get("met") is False],
        "exitStatus": status,
        "exitMeaning": EXIT_MEANINGS[status],
    }


def trace_document(topology: Topology, traced) -> dict:
    """`kpkt trace --json`: the step's hops with what changed at each, its drops and result."""
    log = traced.log
    step = topology.steps[traced.number - 1]
    return {
        **_head("trace", topology),
        "step": traced.number,
        "text": traced.text,
        "hops": [
            {
                "tUs": round((hop.t_ns - log.start_ns) / 1000, 3),
                "capture": hop.tap.name,
                "index": hop.index,
                "direction": hop.direction,
                "packet": hop.pid,
                "change": change,
                "note": hop.note,
            }
            for hop, change in zip(log.rows, traced.changes, strict=True)
        ],
        "framesNotShown": log.hop_count - len(log.rows),
        "drops": [
            {"where": d.where, "reason": d.reason, "detail": d.detail, "packet": d.pid}
            for d in log.drops
        ],
        "result": log.result,
        **step_outcome(step, log),
    }
