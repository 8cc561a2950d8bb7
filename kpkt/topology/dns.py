"""Reads `cluster.dns` (CoreDNS under kubeadm's Corefile) and adds the hosts it implies: the
coredns pods on their node and the upstream DNS server on the node network."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from kpkt.spec import (
    ContainerPort,
    ContainerSpec,
    DnsSpec,
    ExternalSpec,
    UpstreamSpec,
)
from kpkt.topology.fields import Fields, Report, did_you_mean, show
from kpkt.topology.hosts import ExternalDraft, NodeDraft, PodDraft
from kpkt.topology.zone import record_problem

DNS_KEYS = ("enabled", "serviceIP", "node", "podIP", "replicas", "podIPs", "ttl", "pods")
DNS_KEYS += ("upstream",)
POD_RECORDS = ("insecure", "verified", "disabled")
MAX_REPLICAS = 8
NAMESPACE = "kube-system"
SERVICE_NAME = "kube-dns"
SELECTOR = (("k8s-app", "kube-dns"),)
CONTAINERS = (
    ContainerSpec(
        "coredns",
        (
            ContainerPort("dns", 53, "UDP"),
            ContainerPort("dns-tcp", 53, "TCP"),
            ContainerPort("metrics", 9153, "TCP"),
        ),
    ),
)
DEFAULTS = DnsSpec()
UPSTREAM = "upstream-dns"  # the upstream server's host name (and capture-file owner)


@dataclass(slots=True)
class DnsDraft:
    """What `cluster.dns` says, before the coredns pods have addresses."""

    service_ip: IPv4Address | None  # None: given but unusable
    node: str | None  # "": the first node; None: given but unusable
    pod_ips: list[tuple[str, IPv4Address | None]]  # (YAML path, explicit address) per replica
    ttl: int
    pods: str
    upstream: ExternalDraft | None = None
    records: tuple[str, ...] = ()
    coredns: list[PodDraft] = field(default_factory=list)  # the pods added to their node


def dns_wanted(doc: Fields) -> bool:
    """Whether any traffic step is a `dns` step (which turns cluster DNS on by itself)."""
    steps = doc.data.get("traffic")
    return isinstance(steps, list) and any(
        isinstance(step, dict) and len(step) == 1 and "dns" in step for step in steps
    )


def read_dns(cluster: Fields, wanted: bool, service_cidr: IPv4Network | None) -> DnsDraft | None:
    """`cluster.dns` with its defaults, or None when cluster DNS is off: it is on when
    `cluster.dns` is given (and `enabled` is not false) or when `wanted` (a dns step).

    The settings of DNS that is off go unchecked but for their keys. `service_cidr` is None
    when unusable: serviceIP goes unchecked then."""
    given = cluster.given("dns")
    f = cluster.child("dns", DNS_KEYS) or Fields({}, cluster.at("dns"), cluster.report)
    if not f.boolean("enabled", True) or not (given or wanted):
        return None
    service_ip = _service_ip(f, service_cidr)
    node = f.label("node", "")
    return DnsDraft(
        service_ip=service_ip,
        node=None if "node" in f.failed else node,
        pod_ips=_pod_ips(f),
        ttl=f.integer("ttl", 0, 3600, DEFAULTS.ttl),
        pods=f.choice("pods", POD_RECORDS, DEFAULTS.pods),
        **_upstream(f),
    )


def _service_ip(f: Fields, cidr: IPv4Network | None) -> IPv4Address | None:
    if not f.given("serviceIP"):
        if cidr is not None and DEFAULTS.service_ip not in cidr:
            f.bad(
                "serviceIP",
                f"required: the default {DEFAULTS.service_ip} is outside cluster.serviceCIDR "
                f"{cidr}; give an address inside it (kubeadm takes the tenth)",
            )
            return None
        return DEFAULTS.service_ip
    ip = f.ipv4("serviceIP")
    if ip is None or cidr is None:
        return ip
    problem = None
    if ip not in cidr:
        problem = f"{ip} is outside cluster.serviceCIDR {cidr}"
    elif ip in (cidr.network_address, cidr.broadcast_address):
        end = "network" if ip == cidr.network_address else "broadcast"
        problem = f"{ip} is the {end} address of cluster.serviceCIDR {cidr}"
    elif ip == cidr.network_address + 1:
        problem = f"{ip} is the kubernetes service's address (the first of {cidr})"
    if problem:
        f.bad("serviceIP", f"{problem}; pick another, like {cidr.network_address + 10}")
        return None
    return ip


def _pod_ips(f: Fields) -> list[tuple[str, IPv4Address | None]]:
    """One (path, explicit address or None) per replica."""
    replicas = f.integer("replicas", 1, MAX_REPLICAS)
    if f.given("podIPs"):
        if f.given("podIP"):
            f.bad("podIP", "give podIP (one replica) or podIPs (one per replica), not both")
        entries = f.entries("podIPs")
        ips = [(path, _address(path, value, f)) for path, value in entries]
        if not f.given("replicas"):  # podIPs says how many
            if not 1 <= len(entries) <= MAX_REPLICAS and "podIPs" not in f.failed:
                f.bad("podIPs", f"give 1 to {MAX_REPLICAS} addresses, one per replica")
        elif replicas is not None and len(entries) != replicas and "podIPs" not in f.failed:
            count = f"{len(entries)} address{'es' if len(entries) != 1 else ''}"
            f.bad("podIPs", f"{count} for {replicas} replicas: give one per replica")
        return ips[: replicas or MAX_REPLICAS]
    replicas = replicas or 1
    if replicas == 1:
        return [(f.at("podIP"), f.ipv4("podIP"))]
    if f.given("podIP"):
        f.bad("podIP", f"podIP is for one replica: give podIPs, a list of {replicas} addresses")
    return [(f.at("replicas"), None)] * replicas


def _address(path: str, value: Any, f: Fields) -> IPv4Address | None:
    if isinstance(value, str):
        try:
            return IPv4Address(value)
        except ValueError:
            pass
    f.failed.add("podIPs")
    f.report.error(path, f"expected an IPv4 address like 10.244.1.53, got {show(value)}")
    return None


def _upstream(f: Fields) -> dict[str, Any]:
    upstream = f.child("upstream", ("ip", "records"))
    if upstream is None:
        return {}
    ip = upstream.ipv4("ip")
    if not upstream.given("ip"):
        upstream.bad("ip", "required; give the upstream DNS server's address on the node network")
    records = []
    for path, value in upstream.entries("records"):
        problem = None if isinstance(value, str) else "expected a string (put it in quotes)"
        if problem or (problem := record_problem(value)):
            f.report.error(path, problem)
        else:
            records.append(value)
    draft = ExternalDraft(upstream.path, UPSTREAM, ip, None) if ip is not None else None
    return {"upstream": draft, "records": tuple(records)}


def add_dns_hosts(
    dns: DnsDraft, nodes: list[NodeDraft], externals: list[ExternalDraft], report: Report
) -> None:
    """Put the coredns pods on their node (after its own pods, so host-local IPAM gives them
    the next addresses) and the upstream server after the externals."""
    _add_pods(dns, nodes, report)
    upstream = dns.upstream
    if upstream is None:
        return
    for host in [*nodes, *externals]:
        kind = "node" if isinstance(host, NodeDraft) else "external"
        if host.name == UPSTREAM:
            report.error(
                f"{host.path}.name",
                f"'{UPSTREAM}' is the upstream DNS server's name (cluster.dns.upstream); "
                f"rename the {kind}",
            )
            dns.upstream = None
        elif host.ip == upstream.ip:
            fix = "pick another" + (" or drop the external" if kind == "external" else "")
            report.error(
                f"{upstream.path}.ip",
                f"{upstream.ip} is {kind} {host.name}'s address ({host.path}.ip); {fix}",
            )
            dns.upstream = None
    if dns.upstream is not None:
        externals.append(dns.upstream)


def _add_pods(dns: DnsDraft, nodes: list[NodeDraft], report: Report) -> None:
    if not nodes or dns.node is None:
        return
    name = dns.node or nodes[0].name
    dns.node = name
    node = next((node for node in nodes if node.name == name), None)
    if node is None:
        hint = did_you_mean(name, [node.name for node in nodes])
        report.error("cluster.dns.node", f"no node named '{name}'{hint}: name the coredns node")
        dns.node = None
        return
    taken = {
        pod.name: pod.path for node in nodes for pod in node.pods if pod.namespace == NAMESPACE
    }
    for index, (path, ip) in enumerate(dns.pod_ips):
        name = f"coredns-{chr(ord('a') + index)}"
        if name in taken:
            report.error(
                f"{taken[name]}.name",
                f"{NAMESPACE}/{name} is a CoreDNS pod (cluster DNS is on): rename this pod",
            )
            continue
        details = {"labels": SELECTOR, "ready": True, "containers": CONTAINERS}
        pod = PodDraft("cluster.dns", name, NAMESPACE, ip, None, None, None, details)
        pod.paths = {"ip": path, "name": "cluster.dns"}
        node.pods.append(pod)
        dns.coredns.append(pod)


def dns_spec(dns: DnsDraft, externals: tuple[ExternalSpec, ...]) -> DnsSpec:
    """The DnsSpec of a topology without problems (every coredns pod has its address)."""
    upstream = None
    if dns.upstream is not None:
        host = next(external for external in externals if external.name == UPSTREAM)
        upstream = UpstreamSpec(host.ip, dns.records, UPSTREAM, host.mac)
    return DnsSpec(
        service_ip=dns.service_ip,
        node=dns.node,
        pod_ips=tuple(pod.ip for pod in dns.coredns),
        ttl=dns.ttl,
        pods=dns.pods,
        upstream=upstream,
    )
