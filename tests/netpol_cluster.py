"""The upstream NetworkPolicy e2e cluster (test/e2e/network/netpol, netpol.md §5.1) as a kpkt
topology: namespaces x, y, z, pods a, b, c in each (label `pod=<name>`), every pod serving
ports 80 and 81 over TCP and UDP from one container per port and protocol (container port
`serve-<port>-<proto>`), and, when asked, behind a Service `s-<ns>-<pod>` of its own. Pods a
and c run on node1, b on node2. The CNI is flannel (VXLAN) unless a `cni` of CNIS is named."""

from __future__ import annotations

from typing import Any

import yaml

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP")
NODE_OF = {"a": "node1", "b": "node2", "c": "node1"}
POD_CIDR = "10.244.0.0/16"
# the cluster section per CNI: Calico needs the nodes' default route (its proxy ARP answers
# for the pods' gateway only then) and blocks the size of the nodes' /24 podCIDRs
CNIS: dict[str, dict[str, Any]] = {
    "flannel": {"cni": "flannel"},
    "calico-ipip": {
        "cni": "calico",
        "calico": {"ipipMode": "Always", "vxlanMode": "Never", "blockSize": 24},
        "underlay": {"gateway": "192.168.50.254"},
    },
    "calico-vxlan": {
        "cni": "calico",
        "calico": {"ipipMode": "Never", "vxlanMode": "Always", "blockSize": 24},
        "underlay": {"gateway": "192.168.50.254"},
    },
    "weave": {"cni": "weave"},
}


def pod_names() -> list[str]:
    return [f"{ns}/{pod}" for ns in NAMESPACES for pod in PODS]


def _pod(namespace: str, name: str, labels: dict[str, str] | None) -> dict[str, Any]:
    containers = [
        {
            "name": f"cont-{port}-{proto.lower()}",
            "ports": [
                {"name": f"serve-{port}-{proto.lower()}", "containerPort": port, "protocol": proto}
            ],
        }
        for port in PORTS
        for proto in PROTOCOLS
    ]
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels or {"pod": name},
        "containers": containers,
    }


def cluster(
    policies: list[dict] = (),
    namespace_labels: dict[str, dict[str, str]] | None = None,
    pod_labels: dict[str, dict[str, str]] | None = None,
    traffic: list[dict] = (),
    dns: bool = False,
    services: bool = False,
    cni: str = "flannel",
) -> dict[str, Any]:
    """The cluster as a topology document. `namespace_labels` adds labels to namespaces,
    `pod_labels` replaces a pod's labels (`{"x/a": {...}}`), `cni` is a key of CNIS."""
    namespace_labels = namespace_labels or {}
    pod_labels = pod_labels or {}
    nodes = [
        {
            "name": node,
            "pods": [
                _pod(ns, pod, pod_labels.get(f"{ns}/{pod}"))
                for ns in NAMESPACES
                for pod in PODS
                if NODE_OF[pod] == node
            ],
        }
        for node in ("node1", "node2")
    ]
    document: dict[str, Any] = {
        "apiVersion": "kpkt/v1",
        "kind": "Topology",
        "metadata": {"name": "netpol"},
        "cluster": {**CNIS[cni], "podCIDR": POD_CIDR},
        "namespaces": [
            {"name": ns, "labels": {"ns": ns, **namespace_labels.get(ns, {})}} for ns in NAMESPACES
        ],
        "nodes": nodes,
        "externals": [{"name": "outside", "ip": "192.168.50.100"}],
        "networkPolicies": list(policies),
    }
    if dns:
        document["cluster"]["dns"] = {"node": "node1"}
    if services:  # one per pod, as the e2e harness makes them: s-<ns>-<pod>
        document["services"] = [
            {
                "name": f"s-{ns}-{pod}",
                "namespace": ns,
                "selector": {"pod": pod},
                "ports": [
                    {
                        "name": f"service-port-{proto.lower()}-{port}",
                        "port": port,
                        "protocol": proto,
                    }
                    for port in PORTS
                    for proto in PROTOCOLS
                ],
            }
            for ns in NAMESPACES
            for pod in PODS
        ]
    if traffic:
        document["traffic"] = list(traffic)
    return document


def cluster_text(*args, **kwargs) -> str:
    return yaml.safe_dump(cluster(*args, **kwargs), sort_keys=False)


def policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
