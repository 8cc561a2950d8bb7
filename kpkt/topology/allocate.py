"""Checks the cluster IPs and node ports services name and allocates the ones they leave out."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from kpkt.topology.cluster_services import KUBE_DNS, KUBERNETES
from kpkt.topology.dns import DnsDraft
from kpkt.topology.fields import Report
from kpkt.topology.services import NODE_PORTS, ServiceDraft

_CIDR = "cluster.serviceCIDR"
_RESERVED_FOR = {
    KUBERNETES: "the kubernetes service's address (the first of cluster.serviceCIDR)",
    KUBE_DNS: "the kube-dns service's address (cluster.dns.serviceIP)",
}


def allocate_cluster_ips(
    services: list[ServiceDraft], cidr: IPv4Network | None, dns: DnsDraft | None, report: Report
) -> None:
    """Check the cluster IPs services give, then allocate: `default/kubernetes` has the first
    address of serviceCIDR, `kube-system/kube-dns` cluster.dns.serviceIP (with cluster DNS on),
    and every other service without one the lowest free address, in declaration order.

    `cidr` is None when serviceCIDR is unusable (reported): nothing is checked or allocated."""
    if cidr is None:
        return
    reserved = {KUBERNETES: cidr.network_address + 1}
    if dns is not None and dns.service_ip is not None:
        reserved[KUBE_DNS] = dns.service_ip
    owners = {ip: key for key, ip in reserved.items()}
    taken: dict[IPv4Address, ServiceDraft] = {}
    for service in services:
        if service.key in reserved and _builtin_problem(service, reserved, report):
            service.ip_failed, service.cluster_ip = True, None
            continue
        ip = service.cluster_ip
        if ip is None:
            continue
        problem = _ip_problem(ip, cidr)
        if problem is None and owners.get(ip, service.key) != service.key:
            problem = f"{ip} is {_RESERVED_FOR[owners[ip]]}; pick another or leave clusterIP out"
        if problem is None and ip in taken:
            other = taken[ip]
            problem = f"duplicate cluster IP: {ip} is already {other.key}'s ({other.ip_path})"
        if problem:
            report.error(service.ip_path, problem)
            service.ip_failed, service.cluster_ip = True, None
        else:
            taken[ip] = service
    for service in services:
        if service.cluster_ip is None and service.wants_ip and service.key in reserved:
            service.cluster_ip = reserved[service.key]
    used = {*taken, *reserved.values()}
    pool = (ip for ip in cidr.hosts() if ip not in used)
    for service in services:
        if service.cluster_ip is None and service.wants_ip:
            service.cluster_ip = next(pool, None)
            if service.cluster_ip is None:
                report.error(
                    service.ip_path,
                    f"no free address left in cluster.serviceCIDR {cidr}: widen it or make "
                    "some services headless",
                )
                return


def _ip_problem(ip: IPv4Address, cidr: IPv4Network) -> str | None:
    if ip not in cidr:
        return f"{ip} is outside cluster.serviceCIDR {cidr}; pick an address inside it"
    if ip in (cidr.network_address, cidr.broadcast_address):
        end = "network" if ip == cidr.network_address else "broadcast"
        return f"{ip} is the {end} address of cluster.serviceCIDR {cidr}; pick another"
    return None


def _builtin_problem(
    service: ServiceDraft, reserved: dict[str, IPv4Address], report: Report
) -> bool:
    """Report what keeps a file's own kubernetes or kube-dns service from its reserved address."""
    want = reserved[service.key]
    if service.key == KUBERNETES:
        role = f"is the API server's service: it has the first address of {_CIDR}, {want}"
    else:
        role = f"is cluster DNS's service: it has cluster.dns.serviceIP {want}"
    if service.type == "ExternalName":
        report.error(f"{service.path}.type", f"{service.key} {role}; remove type: ExternalName")
    elif service.headless:
        report.error(service.ip_path, f"{service.key} {role}; remove clusterIP: None")
    elif service.cluster_ip is not None and service.cluster_ip != want:
        fix = "remove clusterIP" + (
            " or set cluster.dns.serviceIP" if service.key == KUBE_DNS else ""
        )
        report.error(service.ip_path, f"{service.key} {role}, not {service.cluster_ip}; {fix}")
    else:
        return False
    return True


def allocate_node_ports(services: list[ServiceDraft], report: Report) -> None:
    """Check the nodePorts NodePort services give (unique in the cluster; one service may use a
    number once per protocol), then give each port without one, in declaration order, the
    nodePort of a port of its service with the same number (as the API server does for a TCP
    and a UDP port), else the lowest free one from 30000 up."""
    node_port_services = [service for service in services if service.type == "NodePort"]
    used: dict[int, tuple[str, str]] = {}  # nodePort -> (service, path)
    for service in node_port_services:
        mine: dict[tuple[int, str], str] = {}
        for draft in service.ports:
            number, protocol = draft.port.node_port, draft.port.protocol
            if number is None:
                continue
            path = f"{draft.path}.nodePort"
            if (number, protocol) in mine:
                report.error(
                    path,
                    f"duplicate nodePort {number}/{protocol}: already at {mine[number, protocol]}",
                )
            elif number in used and used[number][0] != service.key:
                owner, where = used[number]
                report.error(
                    path,
                    f"nodePort {number} is already {owner}'s ({where}); node "
                    "ports are unique in the cluster: pick another or leave it out",
                )
            else:
                mine[number, protocol] = path
                used.setdefault(number, (service.key, path))
    low, high = NODE_PORTS
    pool = (number for number in range(low, high + 1) if number not in used)
    for service in node_port_services:
        by_port = {}
        for draft in service.ports:
            if draft.port.node_port is not None:
                by_port.setdefault(draft.port.port, draft.port.node_port)
        for draft in service.ports:
            if draft.port.node_port is not None:
                continue
            number = by_port.get(draft.port.port) or next(pool, None)
            if number is None:
                report.error(
                    f"{draft.path}.nodePort",
                    f"no free node port left in {low}-{high}: use fewer NodePort services",
                )
                return
            by_port[draft.port.port] = number
            used.setdefault(number, (service.key, f"{draft.path}.nodePort"))
            draft.port = replace(draft.port, node_port=number)
