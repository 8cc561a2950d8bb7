"""Reads the `services:` of a topology file into drafts that still miss their cluster IPs, node
ports and endpoints (allocate.py and endpoints.py fill those in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from kpkt.spec import ServicePort
from kpkt.topology.fields import Fields, Report, did_you_mean, label_problem, show
from kpkt.topology.hosts import port_name_problem, read_labels

SERVICE_KEYS = ("name", "namespace", "type", "clusterIP", "selector", "ports")
SERVICE_KEYS += ("publishNotReadyAddresses", "endpoints", "externalName")
PORT_KEYS = ("name", "port", "targetPort", "protocol", "nodePort")
ENDPOINT_KEYS = ("ip", "port", "ready", "hostname")
TYPES = ("ClusterIP", "NodePort", "ExternalName")
LATER_TYPES = ("LoadBalancer",)
HEADLESS = "None"
NODE_PORTS = (30000, 32767)  # kube-apiserver's default --service-node-port-range


@dataclass(slots=True)
class PortDraft:
    path: str
    port: ServicePort  # node_port None until allocated (NodePort services)


@dataclass(slots=True)
class EndpointDraft:
    """An explicit endpoint of a service without selector."""

    path: str
    ip: IPv4Address
    port: int | None  # None: each service port's numeric targetPort
    ready: bool = True
    hostname: str | None = None


@dataclass(slots=True)
class ServiceDraft:
    path: str
    name: str
    namespace: str
    type: str | None  # None: given but unusable (the checks that depend on it are skipped)
    cluster_ip: IPv4Address | None  # explicit, then allocated; None when headless
    headless: bool = False
    ip_failed: bool = False  # a clusterIP was given but rejected: none is allocated
    ports: list[PortDraft] = field(default_factory=list)
    selector: tuple[tuple[str, str], ...] | None = None
    publish_not_ready: bool = False
    endpoints: list[EndpointDraft] = field(default_factory=list)
    external_name: str | None = None
    ip_path: str = ""  # where a problem with its cluster IP is reported

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def wants_ip(self) -> bool:
        """Whether it gets a cluster IP allocated when it names none."""
        return self.type != "ExternalName" and not self.headless and not self.ip_failed


def read_services(doc: Fields) -> list[ServiceDraft]:
    """The services with a usable name, in declaration order; (namespace, name) is unique."""
    services: list[ServiceDraft] = []
    first: dict[str, str] = {}
    for path, value in doc.entries("services"):
        service = _read_service(path, value, doc.report)
        if service is None:
            continue
        if service.key in first:
            doc.report.error(
                f"{path}.name",
                f"duplicate service: {service.key} is already at {first[service.key]}; "
                "service names are unique per namespace",
            )
            continue
        first[service.key] = f"{path}.name"
        services.append(service)
    return services


def _read_service(path: str, value: Any, report: Report) -> ServiceDraft | None:
    f = Fields.check(value, path, report, SERVICE_KEYS)
    if f is None:
        return None
    name = f.label("name", required="give every service a name")
    namespace = f.label("namespace", "default")
    kind = _type(f)
    cluster_ip, headless = _cluster_ip(f, kind)
    ports = _ports(f, kind, headless)
    selector = _selector(f, kind)
    publish_not_ready = f.boolean("publishNotReadyAddresses", False)
    endpoints = _endpoints(f, kind, ports)
    external_name = _external_name(f, kind)
    if name is None or "name" in f.failed or "namespace" in f.failed:
        return None
    return ServiceDraft(
        path=path,
        name=name,
        namespace=namespace,
        type=kind,
        cluster_ip=cluster_ip,
        headless=headless,
        ip_failed="clusterIP" in f.failed,
        ports=ports,
        selector=selector,
        publish_not_ready=publish_not_ready,
        endpoints=endpoints,
        external_name=external_name,
        ip_path=f.at("clusterIP"),
    )


def _type(f: Fields) -> str | None:
    kind = f.string("type", "ClusterIP")
    if kind in LATER_TYPES:
        f.bad("type", f"{kind} is not supported yet; use NodePort (or ClusterIP)")
    elif kind not in TYPES and "type" not in f.failed:
        f.bad(
            "type",
            f"unknown service type {show(kind)}{did_you_mean(kind, TYPES + LATER_TYPES)}; "
            f"use one of: {', '.join(TYPES)}",
        )
    return None if "type" in f.failed else kind


def _cluster_ip(f: Fields, kind: str | None) -> tuple[IPv4Address | None, bool]:
    """The clusterIP given (its place in serviceCIDR is checked when allocating), and whether
    the service is headless."""
    value = f.get("clusterIP")
    if value is None or value == "":
        return None, False
    if kind == "ExternalName":
        f.bad("clusterIP", "an ExternalName service has no cluster IP; remove clusterIP")
        return None, False
    if value == HEADLESS:
        if kind == "NodePort":
            f.bad("clusterIP", "a NodePort service cannot be headless; remove clusterIP: None")
        return None, True
    if isinstance(value, str) and value.lower() == "none":
        f.bad("clusterIP", f"{show(value)}: write None (capital N, no quotes needed) for headless")
        return None, False
    if isinstance(value, str):
        try:
            return IPv4Address(value), False
        except ValueError:
            pass
    f.bad(
        "clusterIP",
        f"expected an address in cluster.serviceCIDR like 10.96.0.50, or None for a headless "
        f"service, got {show(value)}",
    )
    return None, False


def _ports(f: Fields, kind: str | None, headless: bool) -> list[PortDraft]:
    given = f.entries("ports")
    ports = [port for path, item in given if (port := _port(path, item, f, kind))]
    if not given and kind in ("ClusterIP", "NodePort") and not headless and "ports" not in f.failed:
        f.bad(
            "ports",
            "required; add ports: [{port: 80}] (only a headless or ExternalName "
            "service may have none)",
        )
    if len(given) > 1:
        _check_port_names(f, ports, len(given))
    first: dict[tuple[int, str], str] = {}
    for draft in ports:
        key = (draft.port.port, draft.port.protocol)
        if key in first:
            f.report.error(
                f"{draft.path}.port",
                f"duplicate port {key[0]}/{key[1]}: already at {first[key]}; a service port "
                "is unique by number and protocol",
            )
        else:
            first[key] = f"{draft.path}.port"
    return ports


def _check_port_names(f: Fields, ports: list[PortDraft], count: int) -> None:
    first: dict[str, str] = {}
    for draft in ports:
        name = draft.port.name
        if name is None:
            f.report.error(
                f"{draft.path}.name",
                f"required: a service with {count} ports names every port (like http)",
            )
        elif name in first:
            f.report.error(
                f"{draft.path}.name", f"duplicate port name '{name}': already at {first[name]}"
            )
        else:
            first[name] = f"{draft.path}.name"


def _port(path: str, value: Any, service: Fields, kind: str | None) -> PortDraft | None:
    f = Fields.check(value, path, service.report, PORT_KEYS)
    if f is None:
        return None
    name = f.label("name")
    number = f.integer("port", 1, 65535, required="give the port number, like port: 80")
    protocol = f.choice("protocol", ("TCP", "UDP"), "TCP")
    target = _target_port(f, number)
    node_port = f.integer("nodePort", *NODE_PORTS)
    if f.given("nodePort") and kind not in ("NodePort", None):
        f.bad(
            "nodePort",
            f"only NodePort services have a nodePort (this one is {kind}); "
            "remove it or set type: NodePort",
        )
    if number is None or target is None or f.failed - {"nodePort"}:
        return None
    return PortDraft(path, ServicePort(name, number, protocol, target, node_port))


def _target_port(f: Fields, port: int | None) -> int | str | None:
    """A number, or the name of a container port; the service port when left out."""
    value = f.get("targetPort")
    if value is None:
        return port
    if isinstance(value, str):
        if problem := port_name_problem(value):
            f.bad("targetPort", f"{problem} (or give a number from 1 to 65535)")
            return None
        return value
    return f.integer("targetPort", 1, 65535)


def _selector(f: Fields, kind: str | None) -> tuple[tuple[str, str], ...] | None:
    if not f.given("selector"):
        return None
    if f.get("selector") == {}:
        f.bad(
            "selector",
            "an empty selector selects nothing here: remove selector for a "
            "service with explicit endpoints, or give labels to match, like {app: web}",
        )
        return None
    if kind == "ExternalName":
        f.bad("selector", "an ExternalName service has no endpoints; remove selector")
        return None
    return tuple(read_labels(f, "selector"))


def _endpoints(f: Fields, kind: str | None, ports: list[PortDraft]) -> list[EndpointDraft]:
    if not f.given("endpoints"):
        return []
    if kind == "ExternalName":
        f.bad("endpoints", "an ExternalName service has no endpoints; remove endpoints")
        return []
    if f.given("selector"):
        f.bad(
            "endpoints",
            "explicit endpoints are for a service without selector: remove "
            "selector (or endpoints, to take the pods it selects)",
        )
        return []
    drafts: list[EndpointDraft] = []
    first: dict[IPv4Address, str] = {}
    for path, item in f.entries("endpoints"):
        draft = _endpoint(path, item, f.report, ports)
        if draft is None:
            continue
        if draft.ip in first:
            f.report.error(
                f"{path}.ip", f"duplicate endpoint {draft.ip}: already at {first[draft.ip]}"
            )
            continue
        first[draft.ip] = f"{path}.ip"
        drafts.append(draft)
    return drafts


def _endpoint(
    path: str, value: Any, report: Report, ports: list[PortDraft]
) -> EndpointDraft | None:
    f = Fields.check(value, path, report, ENDPOINT_KEYS)
    if f is None:
        return None
    ip = f.ipv4("ip")
    if not f.given("ip"):
        f.bad("ip", "required; give the endpoint's address, like 192.168.50.1")
    elif ip is not None and (problem := _special(ip)):
        f.bad("ip", f"{ip} is {problem}: an endpoint may not be one; give a host's address")
    port = f.integer("port", 1, 65535)
    named = [draft.port.target_port for draft in ports if isinstance(draft.port.target_port, str)]
    if port is None and named and not f.given("port"):
        f.bad(
            "port",
            f"required: targetPort '{named[0]}' is a container port's name, which "
            "only a pod has; give the endpoint's port number",
        )
    ready = f.boolean("ready", True)
    hostname = f.label("hostname")
    if ip is None or f.failed:
        return None
    return EndpointDraft(path, ip, port, ready, hostname)


def _special(ip: IPv4Address) -> str | None:
    """What a special address is (Kubernetes refuses these as endpoints), or None."""
    for test, noun in (
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
    ):
        if test:
            return noun
    return None


def _external_name(f: Fields, kind: str | None) -> str | None:
    if kind != "ExternalName":
        if f.given("externalName") and kind is not None:
            f.bad(
                "externalName",
                f"only an ExternalName service has one (this one is {kind}); "
                "remove it or set type: ExternalName",
            )
        return None
    name = f.string("externalName", required="give the DNS name it aliases, like www.example.com")
    if name is None or "externalName" in f.failed:
        return None
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253 or any(map(label_problem, bare.split("."))):
        f.bad(
            "externalName",
            f"{show(name)} is not a DNS name: dot-separated lowercase labels "
            "of letters, digits and '-', like www.example.com",
        )
        return None
    return name
