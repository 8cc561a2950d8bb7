"""What CoreDNS's informers hold about a cluster, from a loaded Topology at the start and again
whenever a lifecycle step changes it: services by `<namespace>/<name>`, their ready endpoint
addresses (EndpointSlice `ready`, which already includes publishNotReadyAddresses), the
namespaces that exist, pods by IP (for `pods verified`), and the SOA serial.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from kpkt.spec import PodSpec, ServiceSpec, Topology

ALWAYS_NAMESPACES = ("default", "kube-system")


@dataclass(frozen=True, slots=True)
class PortView:
    """A service or endpoint port as CoreDNS matches it: the name ("" when unnamed), the
    number (-1: the sentinel for an endpoint without ports) and the protocol."""

    name: str
    port: int
    protocol: str


NO_PORTS = (PortView("", -1, ""),)  # object/endpoint.go: "Add sentinel if there are no ports"


@dataclass(frozen=True, slots=True)
class AddressView:
    """A ready endpoint address with the hostname CoreDNS gives it (endpointHostname)."""

    ip: IPv4Address | IPv6Address
    hostname: str
    ports: tuple[PortView, ...]


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str
    namespace: str
    type: str
    cluster_ips: tuple[IPv4Address | IPv6Address, ...]  # () when headless or ExternalName
    external_name: str | None
    ports: tuple[PortView, ...]
    addresses: tuple[AddressView, ...]  # ready endpoints only, in EndpointSlice order

    @property
    def headless(self) -> bool:
        return self.type != "ExternalName" and not self.cluster_ips

    @property
    def external(self) -> bool:
        return self.type == "ExternalName"


def endpoint_hostname(ip: IPv4Address | IPv6Address, hostname: str | None) -> str:
    """kubernetes.go endpointHostname without endpoint_pod_names: the EndpointSlice hostname,
    else the address with its dots (or colons) turned into dashes."""
    if hostname:
        return hostname
    if isinstance(ip, IPv4Address):
        return str(ip).replace(".", "-")
    dashed = str(ip).replace(":", "-")
    return dashed + "0" if dashed.endswith("-") else dashed


class ClusterView:
    def __init__(
        self,
        services: list[ServiceView],
        namespaces: set[str],
        pods: list[tuple[str, str]],  # (namespace, ip text)
        serial: int,
    ):
        self.services = services
        self.namespaces = frozenset(namespaces)
        self.serial = serial
        self._by_key = {}
        for service in services:
            self._by_key.setdefault((service.namespace, service.name), service)
        self._pods_by_ip: dict[str, list[str]] = {}
        for namespace, ip in pods:
            self._pods_by_ip.setdefault(ip, []).append(namespace)

    @classmethod
    def from_topology(cls, topology: Topology) -> ClusterView:
        return cls.of(topology.services, topology.pods(), ALWAYS_NAMESPACES)

    @classmethod
    def of(
        cls, services: tuple[ServiceSpec, ...], pods: list[PodSpec], namespaces: Iterable[str]
    ) -> ClusterView:
        """The view of these services and pods; `namespaces` exist besides theirs (a namespace
        outlives the pods deleted from it)."""
        known = set(namespaces)
        known.update(pod.namespace for pod in pods)
        known.update(spec.namespace for spec in services)
        return cls(
            [_service_view(spec) for spec in services],
            known,
            [(pod.namespace, str(pod.ip)) for pod in pods],
            serial_of(services, pods, known),
        )

    def service(self, namespace: str, name: str) -> ServiceView | None:
        """SvcIndex(ServiceKey(name, namespace)): an exact lookup."""
        return self._by_key.get((namespace, name))

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def pod_namespaces(self, ip_text: str) -> list[str]:
        """PodIndex(ip): the namespaces of the pods with exactly this address text."""
        return self._pods_by_ip.get(ip_text, [])

    def service_with_cluster_ip(self, ip: IPv4Address | IPv6Address) -> ServiceView | None:
        """SvcIndexReverse: the first service with this ClusterIP."""
        for service in self.services:
            if ip in service.cluster_ips:
                return service
        return None

    def endpoints_with_ip(
        self, ip: IPv4Address | IPv6Address
    ) -> list[tuple[ServiceView, AddressView]]:
        """EpIndexReverse: every ready endpoint address with this IP, service by service."""
        return [
            (service, address)
            for service in self.services
            for address in service.addresses
            if address.ip == ip
        ]


def _service_view(spec: ServiceSpec) -> ServiceView:
    ports = tuple(PortView(port.name or "", port.port, port.protocol) for port in spec.ports)
    addresses = []
    for endpoint in spec.endpoints:
        if not endpoint.ready:
            continue
        endpoint_ports = tuple(
            PortView(port.name or "", port.port, port.protocol) for port in endpoint.ports
        )
        addresses.append(
            AddressView(
                endpoint.ip,
                endpoint_hostname(endpoint.ip, endpoint.hostname),
                endpoint_ports or NO_PORTS,
            )
        )
    cluster_ips = ()
    if spec.cluster_ip is not None and spec.type != "ExternalName":
        cluster_ips = (spec.cluster_ip,)
    return ServiceView(
        name=spec.name,
        namespace=spec.namespace,
        type=spec.type,
        cluster_ips=cluster_ips,
        external_name=spec.external_name,
        ports=ports,
        addresses=tuple(addresses),
    )


def serial_of(services: tuple[ServiceSpec, ...], pods: list[PodSpec], namespaces: set[str]) -> int:
    """The SOA serial: CoreDNS uses the time of the last informer change; here a stable uint32
    digest of everything the informers hold, the same in every reply until a lifecycle step
    changes what they hold (then it changes, as the time of that change would), and whatever
    order the topology declares its services and pods in (informers hold sets)."""
    lines = [f"ns {name}" for name in sorted(namespaces)]
    for service in services:
        lines.append(
            f"svc {service.key} {service.type} {service.cluster_ip} {service.external_name} "
            f"{[(p.name, p.port, p.protocol) for p in service.ports]}"
        )
        for endpoint in service.endpoints:
            lines.append(
                f"ep {service.key} {endpoint.ip} {endpoint.ready} {endpoint.hostname} "
                f"{[(p.name, p.port, p.protocol) for p in endpoint.ports]}"
            )
    for pod in pods:
        lines.append(f"pod {pod.namespace}/{pod.name} {pod.ip} {pod.ready}")
    digest = hashlib.sha256("\n".join(sorted(lines)).encode()).digest()
    return int.from_bytes(digest[:4], "big")
