"""The cluster's address ranges, which no object states outright: the pod range from the CNI's
configuration or the nodes' pod CIDRs, the service range from the kubernetes service's address
(the first of the range), the node network from the nodes' addresses."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any

from kpkt.spec import ClusterSpec

DEFAULTS = ClusterSpec()
WIDEST_SERVICE_PREFIX = 12  # kube-apiserver refuses a wider --service-cluster-ip-range
NARROWEST_SERVICE_PREFIX = 29
POD_PREFIX = 16  # a CNI's Network and kubeadm's --pod-network-cidr, as usually given
UNDERLAY_PREFIX = 24


def pod_range(
    held: list[IPv4Network], configured: str | None, also: list[IPv4Network] | None = None
) -> IPv4Network:
    """The CNI's configured `Network` when it holds the `held` ranges (the nodes' pod CIDRs, or
    the pods' addresses where the CNI's IPAM ignores those), else them and the `also` ones in
    one range, at least a /16."""
    configured_network = network(configured)
    if configured_network is not None and all(cidr.subnet_of(configured_network) for cidr in held):
        return configured_network
    return _spanning(held + (also or []), POD_PREFIX)


def service_range(
    kubernetes_ip: IPv4Address | None, cluster_ips: list[IPv4Address], taken: list[IPv4Network]
) -> IPv4Network:
    """The range that starts just before the kubernetes service's address, holds every cluster
    IP and overlaps neither the pod range nor the node network: a /12 (kubeadm's 10.96.0.0/12)
    or else the widest from a /16 (k3s's 10.43.0.0/16, EKS's 172.20.0.0/16) down."""
    if kubernetes_ip is None:
        if all(ip in DEFAULTS.service_cidr for ip in cluster_ips):
            return DEFAULTS.service_cidr
        return _spanning([IPv4Network(ip) for ip in cluster_ips], POD_PREFIX)
    start = kubernetes_ip - 1
    for prefix in (WIDEST_SERVICE_PREFIX, *range(POD_PREFIX, NARROWEST_SERVICE_PREFIX + 1)):
        network = IPv4Network((start, prefix), strict=False)
        if network.network_address != start:
            continue
        if all(ip in network for ip in cluster_ips) and not any(map(network.overlaps, taken)):
            return network
    return IPv4Network((start, NARROWEST_SERVICE_PREFIX), strict=False)


def underlay_range(node_ips: list[IPv4Address]) -> IPv4Network:
    """kpkt's default node network when it holds every node, else the nodes' addresses in one
    range, at least a /24."""
    if all(ip in DEFAULTS.underlay_cidr for ip in node_ips):
        return DEFAULTS.underlay_cidr
    return _spanning([IPv4Network(ip) for ip in node_ips], UNDERLAY_PREFIX)


def _spanning(networks: list[IPv4Network], widest_needed: int) -> IPv4Network:
    """The smallest network holding all of `networks`, widened to at least /`widest_needed`."""
    prefix = min(widest_needed, *(network.prefixlen for network in networks))
    first = networks[0]
    while prefix > 0 and not all(n.subnet_of(first.supernet(new_prefix=prefix)) for n in networks):
        prefix -= 1
    return first.supernet(new_prefix=prefix)


def network(text: Any) -> IPv4Network | None:
    """The IPv4 network `text` names, or None."""
    try:
        network = ip_network(text) if isinstance(text, str) and text else None
    except ValueError:
        return None
    return network if isinstance(network, IPv4Network) else None
