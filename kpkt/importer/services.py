"""Services from Service objects (type, cluster IP, ports, selector, node ports), with their
EndpointSlices: where the slices name other endpoints than the selector picks, the slices win,
as kube-proxy programs what they say."""

from __future__ import annotations

from collections import defaultdict
from ipaddress import ip_address
from typing import Any

from kpkt.importer.documents import KubeObject
from kpkt.importer.nodes import ImportedPod
from kpkt.importer.notes import Notes

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("TCP", "UDP")


def read_services(
    services: list[KubeObject], slices: list[KubeObject], pods: list[ImportedPod], notes: Notes
) -> list[dict[str, Any]]:
    """The topology's `services:`, in the objects' order."""
    by_service = defaultdict(list)
    for obj in slices:
        owner = (obj.metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            by_service[obj.namespace, owner].append(obj)
        else:
            notes.add("EndpointSlices of no service (no kubernetes.io/service-name label)", obj.ref)
    index = PodIndex(pods)
    return [
        _service(obj, by_service.get((obj.namespace, obj.name), []), index, notes)
        for obj in services
    ]


def _service(
    obj: KubeObject, slices: list[KubeObject], pods: PodIndex, notes: Notes
) -> dict[str, Any]:
    spec = obj.body.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    service: dict[str, Any] = {"name": obj.name}
    if obj.namespace != "default":
        service["namespace"] = obj.namespace
    if kind == "LoadBalancer":
        notes.add("LoadBalancer services run as NodePort (no load balancer in kpkt)", obj.ref)
        kind = "NodePort"
    if (obj.body.get("status") or {}).get("loadBalancer", {}).get("ingress"):
        notes.add("status.loadBalancer ingress addresses ignored", obj.ref)
    if kind != "ClusterIP":
        service["type"] = kind
    if kind == "ExternalName":
        service["externalName"] = spec.get("externalName")
        return service
    _cluster_ip(obj, spec, service, notes)
    _note_unmodelled(obj, spec, notes)
    ports = [_port(obj, port, kind, notes) for port in spec.get("ports") or []]
    ports = [port for port in ports if port is not None]
    if ports:
        service["ports"] = ports
    selector = spec.get("selector") or {}
    if selector:
        service["selector"] = {str(k): str(v) for k, v in selector.items()}
    if spec.get("publishNotReadyAddresses"):
        service["publishNotReadyAddresses"] = True
    if slices:
        _endpoints(obj, service, slices, pods, notes)
    return service


def _cluster_ip(obj: KubeObject, spec: dict[str, Any], service: dict, notes: Notes) -> None:
    ips = [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]
    ips = [ip for ip in ips if isinstance(ip, str) and ip]
    if "None" in ips:
        service["clusterIP"] = "None"
        return
    ipv4 = [ip for ip in ips if ip_address(ip).version == 4]
    if len(ipv4) < len(ips):
        notes.add("IPv6 addresses ignored (kpkt models IPv4)", obj.ref)
    if ipv4:
        service["clusterIP"] = ipv4[0]


def _note_unmodelled(obj: KubeObject, spec: dict[str, Any], notes: Notes) -> None:
    if spec.get("externalIPs"):
        notes.add("spec.externalIPs ignored", obj.ref)
    if spec.get("externalTrafficPolicy") == "Local":
        notes.add("externalTrafficPolicy Local runs as Cluster (kpkt's kube-proxy)", obj.ref)
    if spec.get("internalTrafficPolicy") == "Local":
        notes.add("internalTrafficPolicy Local runs as Cluster (kpkt's kube-proxy)", obj.ref)
    if spec.get("sessionAffinity") == "ClientIP":
        notes.add("sessionAffinity ClientIP ignored", obj.ref)


def _port(obj: KubeObject, port: dict[str, Any], kind: str, notes: Notes) -> dict | None:
    protocol = port.get("protocol", "TCP")
    if protocol not in PROTOCOLS:
        notes.add(f"{protocol} service ports ignored (kpkt has TCP and UDP)", obj.ref)
        return None
    entry: dict[str, Any] = {"name": port["name"]} if port.get("name") else {}
    entry["port"] = port.get("port")
    if port.get("targetPort") not in (None, port.get("port")):
        entry["targetPort"] = port["targetPort"]
    entry["protocol"] = protocol
    if kind == "NodePort" and port.get("nodePort"):
        entry["nodePort"] = port["nodePort"]
    return entry


def _endpoints(
    obj: KubeObject,
    service: dict[str, Any],
    slices: list[KubeObject],
    pods: PodIndex,
    notes: Notes,
) -> None:
    """Give the service the endpoints of its slices when the selector picks other ones."""
    endpoints, numbers = [], {}
    for piece in slices:
        if piece.body.get("addressType", "IPv4") != "IPv4":
            notes.add("EndpointSlices of IPv6 or FQDN addresses ignored", piece.ref)
            continue
        for port in piece.body.get("ports") or []:
            numbers[port.get("name") or ""] = port.get("port")
        for endpoint in piece.body.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            for address in endpoint.get("addresses") or []:
                entry: dict[str, Any] = {"ip": address}
                if not ready:
                    entry["ready"] = False
                if endpoint.get("hostname"):
                    entry["hostname"] = endpoint["hostname"]
                endpoints.append(entry)
    ready_ips = {e["ip"] for e in endpoints if e.get("ready", True)}
    selector = service.get("selector")
    if selector and ready_ips == pods.selected(obj.namespace, service):
        return
    if selector:
        notes.add(
            "EndpointSlices name other endpoints than the selector picks: the slices win", obj.ref
        )
        del service["selector"]
    service["endpoints"] = endpoints
    for port in service.get("ports", []):
        number = numbers.get(port.get("name", ""))
        if number is not None:
            port["targetPort"] = number
        elif isinstance(port.get("targetPort"), str):
            del port["targetPort"]


class PodIndex:
    """The pods' addresses by namespace and label, to answer what a selector picks at once."""

    def __init__(self, pods: list[ImportedPod]) -> None:
        self._by_label: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._ready: dict[str, set[str]] = defaultdict(set)  # namespace -> ready addresses
        for pod in pods:
            for key, value in pod.labels.items():
                self._by_label[pod.obj.namespace, key, value].add(str(pod.ip))
            if pod.ready:
                self._ready[pod.obj.namespace].add(str(pod.ip))

    def selected(self, namespace: str, service: dict[str, Any]) -> set[str]:
        """The addresses the service's selector picks as ready endpoints."""
        picked = [
            self._by_label.get((namespace, k, v), set()) for k, v in service["selector"].items()
        ]
        found = set.intersection(*picked)
        return found if service.get("publishNotReadyAddresses") else found & self._ready[namespace]
