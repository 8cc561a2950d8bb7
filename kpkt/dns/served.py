"""The names the cluster's DNS answers, as `kpkt validate` lists them: what CoreDNS's
kubernetes plugin serves for each service (ClusterIP A, headless A per ready endpoint and each
endpoint's own name, ExternalName CNAME, SRV per named port of a ClusterIP service as
"<port> <target>"), the pods' dashed names when pod records are on, and the upstream server's
records for names outside the cluster."""

from __future__ import annotations

from dataclasses import dataclass

from kpkt.dns.cluster_view import ClusterView
from kpkt.spec import Topology


@dataclass(frozen=True, slots=True)
class ServedName:
    name: str  # fully qualified, with the trailing dot
    type: str  # A, CNAME, SRV
    data: tuple[str, ...]  # the answers' data
    source: str  # "service", "endpoint", "pod" or "upstream"


def served_names(topology: Topology) -> list[ServedName]:
    """Every name the cluster's DNS answers from its own data; [] when cluster DNS is off."""
    dns = topology.cluster.dns
    if dns is None:
        return []
    domain = topology.cluster.cluster_domain.strip(".")
    served = []
    for service in ClusterView.from_topology(topology).services:
        name = f"{service.name}.{service.namespace}.svc.{domain}."
        if service.external:
            served.append(ServedName(name, "CNAME", (f"{service.external_name}.",), "service"))
            continue
        ips = service.cluster_ips or tuple(address.ip for address in service.addresses)
        if ips:
            served.append(ServedName(name, "A", tuple(map(str, ips)), "service"))
        if service.headless:
            served += [
                ServedName(f"{address.hostname}.{name}", "A", (str(address.ip),), "endpoint")
                for address in service.addresses
            ]
        for port in service.ports if service.cluster_ips else ():
            if port.name:
                srv = f"_{port.name}._{port.protocol.lower()}.{name}"
                served.append(ServedName(srv, "SRV", (f"{port.port} {name}",), "service"))
    if dns.pods != "disabled":
        for pod in topology.pods():
            dashed = str(pod.ip).replace(".", "-")
            served.append(
                ServedName(f"{dashed}.{pod.namespace}.pod.{domain}.", "A", (str(pod.ip),), "pod")
            )
    if dns.upstream is not None:
        for line in dns.upstream.records:
            owner, _, _, rtype, data = line.split(None, 4)
            served.append(ServedName(owner, rtype.upper(), (data.strip(),), "upstream"))
    return served
