"""Checks the addresses and podCIDRs a topology gives and assigns the ones it leaves out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network
from itertools import islice

from kpkt.topology.fields import Report
from kpkt.topology.hosts import ExternalDraft, NodeDraft


def assign_pod_cidrs(
    nodes: list[NodeDraft], cluster: IPv4Network | None, prefix: int, report: Report
) -> None:
    """Check the podCIDRs nodes name, then give each other node the next free /`prefix` of the
    cluster's podCIDR (None when that was unusable: then only the nodes' own are checked)."""
    named = [node for node in nodes if node.pod_cidr is not None]
    for index, node in enumerate(named):
        path, net = f"{node.path}.podCIDR", node.pod_cidr
        if cluster is not None and not net.subnet_of(cluster):
            report.error(path, f"{net} is outside cluster.podCIDR {cluster}")
        for other in named[:index]:
            if net.overlaps(other.pod_cidr):
                where = f"{other.name}'s podCIDR {other.pod_cidr} ({other.path}.podCIDR)"
                report.error(path, f"{net} overlaps {where}")
    if cluster is None:
        return
    pool = node_pod_cidrs(cluster, [node.pod_cidr for node in named], prefix)
    for node in nodes:
        if node.pod_cidr is None and not node.pod_cidr_failed:
            node.pod_cidr = next(pool, None)
            if node.pod_cidr is None:
                report.error(
                    f"{node.path}.podCIDR",
                    f"no free /{prefix} left in cluster.podCIDR {cluster}: widen it or give the "
                    "node a podCIDR",
                )
                return


def assign_underlay_ips(
    hosts: list[NodeDraft | ExternalDraft],
    underlay: IPv4Network,
    report: Report,
    where: str = "cluster.underlay.cidr",
    reserved: Iterable[IPv4Address] = (),
) -> None:
    """Check the underlay addresses given, then give each other node and external host, in
    that order, the next free address from .1 upwards (but the `reserved` ones) of `underlay`,
    the range at `where`."""
    named = [host for host in hosts if host.ip is not None]
    for host in named:
        if problem := _underlay_problem(host.ip, underlay, where):
            report.error(f"{host.path}.ip", problem)
    pool = free(underlay.hosts(), {host.ip for host in named} | set(reserved))
    for host in hosts:
        if host.ip is None:
            host.ip = next(pool, None)
            if host.ip is None:
                report.error(
                    f"{host.path}.ip",
                    f"no free address left in {where} {underlay}: widen it or "
                    "give addresses explicitly",
                )
                return


def assign_pod_ips(
    nodes: list[NodeDraft], report: Report, cluster_range: IPv4Network | None = None
) -> None:
    """Check the pod addresses given, then host-local IPAM on each node: .2 upwards in
    declaration order, skipping the addresses pods name. `cluster_range`: the cluster's pod range,
    where the CNI's IPAM hands pods addresses from all of it (the registry's RANGE_IPAM)."""
    taken = {pod.ip for node in nodes for pod in node.pods if pod.ip is not None}
    bridges = bridge_addresses(nodes) if cluster_range is not None else {}
    for node in nodes:
        if node.pod_cidr is None:
            continue
        for pod in node.pods:
            if pod.ip is not None and (
                problem := pod_ip_problem(pod.ip, node, cluster_range, bridges)
            ):
                report.error(pod.at("ip"), problem)
        pool = free(pod_addresses(node.pod_cidr), taken)
        for pod in node.pods:
            if pod.ip is None:
                pod.ip = next(pool, None)
                if pod.ip is None:
                    report.error(
                        pod.at("ip"),
                        f"no free address left in {node.name}'s podCIDR {node.pod_cidr}: give "
                        "the node a larger podCIDR",
                    )
                    break


class HostLocal:
    """host-local IPAM on one node as the run goes on (`create` and `delete` steps): the
    addresses in use and the last one it gave. It gives the next free address after that one,
    wrapping around (host-local's round robin over its range), so an address a deleted pod
    freed is not given again at once."""

    def __init__(self, pod_cidr: IPv4Network, in_use: Iterable[IPv4Address]) -> None:
        self.pod_cidr = pod_cidr
        self.in_use = set(in_use)
        self.last = max(self.in_use, default=None)

    def allocate(self, elsewhere: set[IPv4Address] | None = None) -> IPv4Address | None:
        """The next free address after the last one given, none of `elsewhere` (what other
        nodes' pods hold, under RANGE_IPAM) (None: the range is full)."""
        first, end = int(self.pod_cidr.network_address) + 2, int(self.pod_cidr.broadcast_address)
        size = end - first
        start = int(self.last) + 1 - first if self.last is not None else 0
        for offset in range(size):
            ip = IPv4Address(first + (start + offset) % size)
            if ip not in self.in_use and ip not in (elsewhere or ()):
                self.reserve(ip)
                return ip
        return None

    def reserve(self, ip: IPv4Address) -> None:
        self.in_use.add(ip)
        self.last = ip

    def release(self, ip: IPv4Address) -> None:
        self.in_use.discard(ip)


def _underlay_problem(ip: IPv4Address, underlay: IPv4Network, where: str) -> str | None:
    if ip not in underlay:
        return f"{ip} is outside {where} {underlay}"
    ends = {underlay.network_address: "network", underlay.broadcast_address: "broadcast"}
    if underlay.prefixlen <= 30 and ip in ends:
        return f"{ip} is the {ends[ip]} address of {where} {underlay}"
    return None


def bridge_addresses(nodes: Iterable[NodeDraft]) -> dict[IPv4Address, str]:
    """The nodes' bridge addresses under a CNI of RANGE_IPAM (the first usable address of each
    node's podCIDR), with the node's name."""
    return {node.pod_cidr[1]: node.name for node in nodes if node.pod_cidr is not None}


def pod_ip_problem(
    ip: IPv4Address,
    node: NodeDraft,
    pool: IPv4Network | None = None,
    bridges: dict[IPv4Address, str] | None = None,
) -> str | None:
    """Why `ip` can not be a pod address of `node` (None: it can). `pool`: the cluster's pod
    range where the CNI's IPAM hands out all of it (RANGE_IPAM), `bridges` the nodes' bridge
    addresses in it (`bridge_addresses`)."""
    if pool is not None:
        return _range_ip_problem(ip, pool, bridges or {})
    net = node.pod_cidr
    reserved = {
        net.network_address: "the network address (the VTEP's)",
        net.network_address + 1: "the cni0 gateway address",
        net.broadcast_address: "the broadcast address",
    }
    if ip not in net:
        return f"{ip} is outside {node.name}'s podCIDR {net}"
    if ip in reserved:
        return f"{ip} is {reserved[ip]} of {node.name}'s podCIDR {net}; pods start at .2"
    return None


def _range_ip_problem(
    ip: IPv4Address, pool: IPv4Network, bridges: dict[IPv4Address, str]
) -> str | None:
    if ip not in pool:
        return f"{ip} is outside cluster.podCIDR {pool}, the CNI's allocation range"
    if ip in (pool.network_address, pool.broadcast_address):
        return f"{ip} is the network or broadcast address of cluster.podCIDR {pool}"
    if ip in bridges:
        return (
            f"{ip} is {bridges[ip]}'s bridge address (the first usable one of its podCIDR): give "
            "the pod another address or the node another podCIDR"
        )
    return None


def free(pool: Iterable[IPv4Address], taken: set[IPv4Address]) -> Iterator[IPv4Address]:
    """The addresses of `pool` in order, skipping those in `taken`."""
    return (address for address in pool if address not in taken)


def pod_addresses(pod_cidr: IPv4Network) -> Iterator[IPv4Address]:
    """host-local IPAM's range on a node: .2 upwards (.0 is the network and the VTEP's
    address, .1 the cni0 gateway), stopping before the broadcast address."""
    first = int(pod_cidr.network_address) + 2
    return (IPv4Address(value) for value in range(first, int(pod_cidr.broadcast_address)))


def node_pod_cidrs(
    cluster: IPv4Network, named: list[IPv4Network], prefix: int
) -> Iterator[IPv4Network]:
    """The /`prefix` subnets of the cluster's podCIDR from the second one on, skipping any that
    overlaps a podCIDR a node names."""
    if cluster.prefixlen > prefix:
        return iter(())
    subnets = islice(cluster.subnets(new_prefix=prefix), 1, None)
    return (net for net in subnets if not any(net.overlaps(other) for other in named))
