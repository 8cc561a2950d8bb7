"""Kubernetes objects to a kpkt topology document: sorts the objects by kind, hands each kind to
its mapping, and notes every object kpkt has no use for (Secrets are never looked into)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any

from kpkt import cni as registry
from kpkt.errors import KpktError
from kpkt.importer import blocks
from kpkt.importer import cni as cni_detection
from kpkt.importer.documents import KubeObject, read_dump
from kpkt.importer.nodes import Cluster, PodRanges, read_cluster
from kpkt.importer.notes import Notes
from kpkt.importer.policies import read_namespaces, read_policies
from kpkt.importer.ranges import network, pod_range, service_range, underlay_range
from kpkt.importer.services import SERVICE_NAME_LABEL, read_services
from kpkt.topology.dns import MAX_REPLICAS
from kpkt.topology.dns import NAMESPACE as DNS_NAMESPACE
from kpkt.topology.dns import SERVICE_NAME as DNS_SERVICE

MAPPED = ("Node", "Pod", "Service", "EndpointSlice", "Namespace", "NetworkPolicy")
KUBERNETES = ("default", "kubernetes")
KUBE_DNS = (DNS_NAMESPACE, DNS_SERVICE)


@dataclass(slots=True)
class Imported:
    """The topology document, what was left out, and the files it came from (path, sha256)."""

    document: dict[str, Any]
    notes: Notes
    sources: list[tuple[str, str]] = field(default_factory=list)


def import_files(paths: list[Path], cni: str | None = None) -> Imported:
    """The topology the objects of `paths` describe; `cni` overrides what they show."""
    objects: list[KubeObject] = []
    sources = []
    for path in paths:
        found, data = read_dump(path)
        objects.extend(found)
        sources.append((str(path), hashlib.sha256(data).hexdigest()))
    imported = import_objects(objects, cni, _name(paths[0]))
    imported.sources = sources
    return imported


def import_objects(objects: list[KubeObject], cni: str | None, name: str) -> Imported:
    notes = Notes()
    by_kind: dict[str, list[KubeObject]] = {kind: [] for kind in MAPPED}
    for obj in _unique(objects):
        if obj.kind in by_kind:
            by_kind[obj.kind].append(obj)
        else:
            _note_unused(obj, notes)
    settings = cni_detection.cluster_settings(cni_detection.detect(objects), cni, notes)
    ipam = _ipam(settings, objects, notes)
    range_ipam = settings["cni"] in registry.RANGE_IPAM
    cluster = read_cluster(by_kind["Node"], by_kind["Pod"], notes, ipam, not range_ipam)
    configured = cni_detection.configured_range(objects, settings["cni"])
    pods = _pod_range(cluster, configured, range_ipam)
    if range_ipam:
        _drop_node_ranges(cluster, pods, notes)
    dns = _dns(cluster, by_kind["Service"], notes)
    own = {KUBERNETES} | ({KUBE_DNS} if dns else set())
    services = [obj for obj in by_kind["Service"] if (obj.namespace, obj.name) not in own]
    for obj in by_kind["Service"]:
        if (obj.namespace, obj.name) == KUBERNETES:
            notes.add(
                "the kubernetes service is kpkt's own (the API server: first node, port 6443)",
                obj.ref,
            )
    slices = []
    for obj in by_kind["EndpointSlice"]:
        owner = (obj.metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if (obj.namespace, owner) in own:
            notes.add("EndpointSlices of kpkt's own services (kubernetes, kube-dns)", obj.ref)
        else:
            slices.append(obj)
    document: dict[str, Any] = {
        "apiVersion": "kpkt/v1",
        "kind": "Topology",
        "metadata": {"name": name},
        "cluster": _cluster_settings(settings, cluster, pods, by_kind["Service"], dns),
        "nodes": [node.entry for node in cluster.nodes],
    }
    namespaces = read_namespaces(by_kind["Namespace"], notes)
    if namespaces:
        document["namespaces"] = namespaces
    imported_services = read_services(services, slices, cluster.pods(), notes)
    if imported_services:
        document["services"] = imported_services
    policies = read_policies(by_kind["NetworkPolicy"], notes)
    if policies:
        document["networkPolicies"] = policies
    return Imported(document, notes)


def _unique(objects: list[KubeObject]) -> list[KubeObject]:
    """Each object once: the same object twice (two dumps overlapping) is kept once; two
    different objects of one kind, namespace and name are an error."""
    first: dict[tuple[str, str, str], KubeObject] = {}
    for obj in objects:
        key = (obj.kind, obj.namespace, obj.name)
        if key not in first:
            first[key] = obj
        elif first[key].body != obj.body:
            raise KpktError(
                f"{obj.ref}: given twice, differently ({first[key].source} and {obj.source}); "
                "keep one dump of the cluster"
            )
    return list(first.values())


def _note_unused(obj: KubeObject, notes: Notes) -> None:
    if obj.kind == "Secret":
        notes.add("Secrets skipped without reading their data", obj.ref)
    elif obj.kind == "Endpoints":
        notes.add("Endpoints skipped (kpkt reads their EndpointSlices)", obj.ref)
    elif not cni_detection.configures(obj):
        notes.add(f"{obj.kind} objects: kpkt has no use for them", obj.ref)


def _ipam(settings: dict[str, Any], objects: list[KubeObject], notes: Notes) -> PodRanges | None:
    """Where the nodes' pod ranges come from when the CNI's IPAM hands out blocks (the
    registry's BLOCK_IPAM), or None: their spec.podCIDR."""
    cni = settings["cni"]
    ipam = registry.BLOCK_IPAM.get(cni)
    if ipam is None:
        return None
    size = (registry.default_options(cni) | settings.get(cni, {}))[ipam.size]
    found = blocks.evidence(objects, ipam)
    pool = network(cni_detection.configured_range(objects, cni))
    return lambda nodes: blocks.node_blocks(nodes, found, size, pool, notes)


def _pod_range(cluster: Cluster, configured: str | None, range_ipam: bool) -> IPv4Network:
    """`cluster.podCIDR`: the range that holds the nodes' podCIDRs or, where the CNI's IPAM
    hands pods addresses from the whole range (RANGE_IPAM), the pods' addresses."""
    cidrs = [node.pod_cidr for node in cluster.nodes if node.pod_cidr is not None]
    if not range_ipam:
        return pod_range(cidrs, configured)
    return pod_range([IPv4Network(pod.ip) for pod in cluster.pods()], configured, cidrs)


def _drop_node_ranges(cluster: Cluster, pods: IPv4Network, notes: Notes) -> None:
    """Under a CNI of RANGE_IPAM, a node's spec.podCIDR outside the pod range is left out
    (the CNI's IPAM ignores it): the loader gives the node one of the range."""
    for node in cluster.nodes:
        if node.pod_cidr is not None and not node.pod_cidr.subnet_of(pods):
            notes.add(
                f"node spec.podCIDR outside the CNI's allocation range {pods} left out (its IPAM "
                "ignores it; kpkt gives the node a /24 of the range for its bridge address)",
                node.obj.ref,
            )
            node.pod_cidr = None


def _dns(cluster: Cluster, services: list[KubeObject], notes: Notes) -> dict[str, Any] | None:
    """`cluster.dns` from CoreDNS's pods and the kube-dns service: kpkt runs the replicas on the
    node of the first one, as coredns-a, coredns-b, ..."""
    if not cluster.dns_pods:
        return None
    node = cluster.dns_pods[0].node
    kept = [pod for pod in cluster.dns_pods if pod.node == node][:MAX_REPLICAS]
    for pod in cluster.dns_pods:
        if pod in kept:
            notes.add(
                "CoreDNS pods run as kpkt's cluster DNS (coredns-a, coredns-b, ...)", pod.obj.ref
            )
        else:
            notes.add(
                f"CoreDNS replicas off {node} left out (kpkt runs them on one node)", pod.obj.ref
            )
    dns: dict[str, Any] = {"node": node, "replicas": len(kept), "podIPs": [str(p.ip) for p in kept]}
    for obj in services:
        if (obj.namespace, obj.name) == KUBE_DNS:
            ip = (obj.body.get("spec") or {}).get("clusterIP")
            if isinstance(ip, str) and ip != "None":
                dns["serviceIP"] = ip
    return dns


def _cluster_settings(
    settings: dict[str, Any],
    cluster: Cluster,
    pods: IPv4Network,
    services: list[KubeObject],
    dns: dict[str, Any] | None,
) -> dict[str, Any]:
    underlay = underlay_range([node.ip for node in cluster.nodes])
    kubernetes_ip, cluster_ips = None, []
    for obj in services:
        ip = _ipv4((obj.body.get("spec") or {}).get("clusterIP"))
        if ip is None:
            continue
        cluster_ips.append(ip)
        if (obj.namespace, obj.name) == KUBERNETES:
            kubernetes_ip = ip
    service_cidr = service_range(kubernetes_ip, cluster_ips, [pods, underlay])
    result = {
        **settings,
        "podCIDR": str(pods),
        "serviceCIDR": str(service_cidr),
        "underlay": {"cidr": str(underlay)},
    }
    if dns is not None:
        result["dns"] = dns
    return result


def _ipv4(value: Any) -> IPv4Address | None:
    try:
        ip = ip_address(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return ip if isinstance(ip, IPv4Address) else None


def _name(path: Path) -> str:
    """metadata.name from the first file's name, as a DNS label."""
    label = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")[:63].strip("-")
    return label or "imported"
