"""Nodes and their pods, from Node and Pod objects: a node's InternalIP and pod CIDR; a pod's
node, address, labels, container ports, readiness, hostname and subdomain. CoreDNS's pods become
kpkt's cluster DNS; host-network pods are their node; pods that hold no address are noted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from kpkt.errors import KpktError
from kpkt.importer.documents import KubeObject
from kpkt.importer.notes import Notes
from kpkt.topology.dns import NAMESPACE as DNS_NAMESPACE
from kpkt.topology.dns import SELECTOR as DNS_SELECTOR

# the nodes' pod ranges when the CNI's IPAM decides them: (Node, its spec.podCIDR) -> the ranges
PodRanges = Callable[[list[tuple[KubeObject, IPv4Network | None]]], list[IPv4Network]]
FINISHED = ("Succeeded", "Failed")
PROTOCOLS = ("TCP", "UDP")


@dataclass(slots=True)
class ImportedPod:
    obj: KubeObject
    node: str
    ip: IPv4Address
    labels: dict[str, str]
    ready: bool
    entry: dict[str, Any]  # the topology's pod


@dataclass(slots=True)
class ImportedNode:
    obj: KubeObject
    ip: IPv4Address
    pod_cidr: (
        IPv4Network | None
    )  # None: the CNI's IPAM ignores it (RANGE_IPAM), the loader gives one
    name: str = ""  # kpkt's name: the node's, or its first label when it is a dotted FQDN
    pods: list[ImportedPod] = field(default_factory=list)

    @property
    def entry(self) -> dict[str, Any]:
        """The topology's node."""
        node: dict[str, Any] = {"name": self.name, "ip": str(self.ip)}
        if self.pod_cidr is not None:
            node["podCIDR"] = str(self.pod_cidr)
        if self.pods:
            node["pods"] = [pod.entry for pod in self.pods]
        return node


@dataclass(slots=True)
class Cluster:
    """The nodes with their pods, and CoreDNS's pods (kpkt runs them as its cluster DNS)."""

    nodes: list[ImportedNode]
    dns_pods: list[ImportedPod]

    def pods(self) -> list[ImportedPod]:
        return [pod for node in self.nodes for pod in node.pods] + self.dns_pods


def read_cluster(
    nodes: list[KubeObject],
    pods: list[KubeObject],
    notes: Notes,
    ranges: PodRanges | None = None,
    node_ranges: bool = True,
) -> Cluster:
    """The nodes with their pods; a node's pod range is its spec.podCIDR, or what `ranges` says
    (a CNI's IPAM blocks). `node_ranges` false: the CNI's IPAM gives pods addresses from the
    whole cluster range (the registry's RANGE_IPAM), so a node may have no podCIDR and its pods
    need not be inside it."""
    if not nodes:
        raise KpktError(
            "no Node among the objects; include them (`kubectl get nodes,pods,services,"
            "endpointslices,networkpolicies,namespaces -A -o yaml`)"
        )
    required = ranges is None and node_ranges
    imported = {obj.name: _node(obj, notes, required) for obj in nodes}
    if ranges is not None:
        cidrs = ranges([(node.obj, node.pod_cidr) for node in imported.values()])
        for node, cidr in zip(imported.values(), cidrs, strict=True):
            node.pod_cidr = cidr
    _name_nodes(list(imported.values()), notes)
    _check_cidrs(list(imported.values()))
    cluster = Cluster(list(imported.values()), [])
    for obj in pods:
        placed = _placed_pod(obj, imported, notes, node_ranges)
        if placed is None:
            continue
        node, pod = placed
        if _is_dns(pod):
            cluster.dns_pods.append(pod)
        else:
            node.pods.append(pod)
    addresses = [(node.ip, node.obj.ref) for node in cluster.nodes]
    _check_unique(addresses + [(pod.ip, pod.obj.ref) for pod in cluster.pods()], "address")
    return cluster


def _node(obj: KubeObject, notes: Notes, required: bool) -> ImportedNode:
    """The node; without a pod CIDR, an error when it is `required`."""
    spec, status = obj.body.get("spec") or {}, obj.body.get("status") or {}
    addresses = status.get("addresses") or []
    internal = [a.get("address") for a in addresses if a.get("type") == "InternalIP"]
    ipv4 = [ip for ip in internal if _ipv4(ip)]
    if len(ipv4) < len(internal):
        notes.add("IPv6 addresses ignored (kpkt models IPv4)", obj.ref)
    if any(a.get("type") == "ExternalIP" for a in addresses):
        notes.add(
            "node ExternalIP addresses ignored (kpkt has no world outside the node network)",
            obj.ref,
        )
    if not ipv4:
        raise KpktError(
            f"{obj.ref}: no IPv4 InternalIP in status.addresses; kpkt needs the node's address"
        )
    cidrs = [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])]
    cidr = next((ip_network(c) for c in cidrs if isinstance(c, str) and _ipv4_net(c)), None)
    if cidr is None and required:
        raise KpktError(
            f"{obj.ref}: no IPv4 spec.podCIDR; kpkt needs each node's pod range (kube-controller-"
            "manager's --allocate-node-cidrs sets it)"
        )
    return ImportedNode(obj, IPv4Address(ipv4[0]), cidr)


def _name_nodes(nodes: list[ImportedNode], notes: Notes) -> None:
    """kpkt names hosts with DNS labels: a node named by a dotted FQDN (EKS's
    `ip-10-0-1-5.ec2.internal`) is named by its first label when no other node has it."""
    firsts = [node.obj.name.split(".")[0] for node in nodes]
    for node, first in zip(nodes, firsts, strict=True):
        node.name = node.obj.name
        if "." in node.obj.name and firsts.count(first) == 1:
            node.name = first
            notes.add(
                "node names cut to their first label (kpkt names hosts with DNS labels)",
                node.obj.ref,
            )


def _check_cidrs(nodes: list[ImportedNode]) -> None:
    nodes = [node for node in nodes if node.pod_cidr is not None]
    for index, node in enumerate(nodes):
        for other in nodes[:index]:
            if node.pod_cidr.overlaps(other.pod_cidr):
                raise KpktError(
                    f"{node.obj.ref}: spec.podCIDR {node.pod_cidr} overlaps {other.obj.ref}'s "
                    f"{other.pod_cidr}; node pod ranges are apart"
                )


def _placed_pod(
    obj: KubeObject, nodes: dict[str, ImportedNode], notes: Notes, node_ranges: bool
) -> tuple[ImportedNode, ImportedPod] | None:
    """The pod on its node, or None when it has no network of its own (noted); with
    `node_ranges`, its address must be inside its node's podCIDR."""
    spec, status = obj.body.get("spec") or {}, obj.body.get("status") or {}
    phase = status.get("phase")
    if spec.get("hostNetwork"):
        notes.add("hostNetwork pods are their node (the node's address and ports)", obj.ref)
        return None
    if phase in FINISHED:
        notes.add(f"finished pods (phase {'/'.join(FINISHED)}) hold no address", obj.ref)
        return None
    node_name = spec.get("nodeName")
    if not node_name:
        notes.add("pods not scheduled to a node (no spec.nodeName) hold no address", obj.ref)
        return None
    node = nodes.get(node_name)
    if node is None:
        raise KpktError(
            f"{obj.ref}: spec.nodeName {node_name} is not among the Nodes; include it "
            "(`kubectl get nodes -o yaml`)"
        )
    ip = _pod_ip(obj, status, notes)
    if node_ranges and ip not in node.pod_cidr:
        raise KpktError(
            f"{obj.ref}: status.podIP {ip} is outside {node.obj.ref}'s podCIDR {node.pod_cidr}"
        )
    labels = {str(k): str(v) for k, v in (obj.metadata.get("labels") or {}).items()}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    entry: dict[str, Any] = {"name": obj.name}
    if obj.namespace != "default":
        entry["namespace"] = obj.namespace
    entry["ip"] = str(ip)
    if labels:
        entry["labels"] = labels
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            entry[key] = spec[key]
    if not ready:
        entry["ready"] = False
    containers = _containers(obj, spec, notes)
    if containers:
        entry["containers"] = containers
    return node, ImportedPod(obj, node.name, ip, labels, ready, entry)


def _pod_ip(obj: KubeObject, status: dict[str, Any], notes: Notes) -> IPv4Address:
    ips = [status.get("podIP"), *(item.get("ip") for item in status.get("podIPs") or [])]
    ips = [ip for ip in ips if isinstance(ip, str) and ip]
    ipv4 = [ip for ip in ips if _ipv4(ip)]
    if not ipv4:
        phase = status.get("phase") or "no phase"
        raise KpktError(
            f"{obj.ref}: no IPv4 status.podIP ({phase}); kpkt needs the address of every "
            "scheduled pod: dump the cluster again when it has one, or leave the pod out"
        )
    if any(not _ipv4(ip) for ip in ips):
        notes.add("IPv6 addresses ignored (kpkt models IPv4)", obj.ref)
    return IPv4Address(ipv4[0])


def _containers(obj: KubeObject, spec: dict[str, Any], notes: Notes) -> list[dict[str, Any]]:
    """The containers that declare ports, with their TCP and UDP ports."""
    containers = []
    for container in spec.get("containers") or []:
        ports = []
        for port in container.get("ports") or []:
            protocol = port.get("protocol", "TCP")
            if protocol not in PROTOCOLS:
                notes.add(f"{protocol} container ports ignored (kpkt has TCP and UDP)", obj.ref)
                continue
            if port.get("hostPort"):
                notes.add("hostPort ignored (kpkt reaches pods by their own address)", obj.ref)
            entry = {"name": port["name"]} if port.get("name") else {}
            entry |= {"containerPort": port.get("containerPort"), "protocol": protocol}
            ports.append(entry)
        if ports:
            containers.append({"name": container.get("name"), "ports": ports})
    return containers


def _is_dns(pod: ImportedPod) -> bool:
    """Whether the pod is one of CoreDNS's (kube-system, `k8s-app: kube-dns`)."""
    return pod.obj.namespace == DNS_NAMESPACE and all(
        pod.labels.get(key) == value for key, value in DNS_SELECTOR
    )


def _check_unique(entries: list[tuple[IPv4Address, str]], noun: str) -> None:
    first: dict[IPv4Address, str] = {}
    for value, ref in entries:
        if value in first:
            raise KpktError(
                f"{ref}: {noun} {value} is also {first[value]}'s; the dump is inconsistent"
            )
        first[value] = ref


def _ipv4(text: Any) -> bool:
    try:
        return isinstance(text, str) and ip_address(text).version == 4
    except ValueError:
        return False


def _ipv4_net(text: str) -> bool:
    try:
        return ip_network(text).version == 4
    except ValueError:
        return False
