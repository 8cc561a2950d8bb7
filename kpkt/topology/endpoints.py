"""The endpoints of each service, as the EndpointSlice controller lists them, and the frozen
ServiceSpec that carries them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from kpkt.spec import (
    CreateStep,
    DeleteStep,
    EndpointPort,
    LabelStep,
    PodSpec,
    ServiceEndpoint,
    ServicePort,
    ServiceSpec,
    Step,
)
from kpkt.topology.fields import Report
from kpkt.topology.hosts import NodeDraft, PodDraft
from kpkt.topology.services import ServiceDraft


class _Pods:
    """The pods with an address, nodes and pods in declaration order, by namespace and by
    label: what a selector picks is found without walking every pod for every service."""

    def __init__(self, nodes: list[NodeDraft]) -> None:
        self.by_namespace: dict[str, list[tuple[NodeDraft, PodDraft]]] = defaultdict(list)
        self.by_label: dict[tuple[str, str, str], list[tuple[NodeDraft, PodDraft]]] = defaultdict(
            list
        )
        for node in nodes:
            for pod in node.pods:
                if pod.ip is None:
                    continue
                self.by_namespace[pod.namespace].append((node, pod))
                for key, value in pod.details.get("labels", ()):
                    self.by_label[pod.namespace, key, value].append((node, pod))

    def selected(self, namespace: str, selector: tuple[tuple[str, str], ...]) -> list:
        """(node, pod) of every pod of the namespace whose labels hold the selector."""
        wanted = set(selector)
        candidates = [self.by_label.get((namespace, *pair), []) for pair in wanted]
        fewest = min(candidates, key=len) if candidates else self.by_namespace.get(namespace, [])
        return [(n, pod) for n, pod in fewest if wanted.issubset(pod.details.get("labels", ()))]


def service_specs(
    services: list[ServiceDraft], nodes: list[NodeDraft], report: Report
) -> list[ServiceSpec]:
    """Each service with its endpoints (see service_spec)."""
    pods = _Pods(nodes)
    return [service_spec(service, nodes, pods, report) for service in services]


def service_spec(
    service: ServiceDraft, nodes: list[NodeDraft], pods: _Pods, report: Report
) -> ServiceSpec:
    """The service with its endpoints: the pods its selector picks, or the ones it lists."""
    if service.type == "ExternalName":
        endpoints: list[ServiceEndpoint] = []
    elif service.selector is not None:
        endpoints = _selected(service, pods, report)
    else:
        endpoints = _listed(service, nodes)
    return ServiceSpec(
        name=service.name,
        namespace=service.namespace,
        type=service.type or "ClusterIP",
        cluster_ip=service.cluster_ip,
        ports=tuple(draft.port for draft in service.ports),
        selector=service.selector,
        publish_not_ready=service.publish_not_ready,
        endpoints=tuple(endpoints),
        external_name=service.external_name,
    )


def _selected(service: ServiceDraft, pods: _Pods, report: Report) -> list[ServiceEndpoint]:
    """Every pod of the service's namespace whose labels hold the selector, nodes and pods in
    declaration order. A named targetPort is looked up in each pod's containers (name and
    protocol); a pod without it is left out of that port, and out of the service when it then
    serves none of its ports. Ready: the pod is, or publishNotReadyAddresses says so."""
    picked = pods.selected(service.namespace, service.selector or ())
    if not picked:
        report.warn(
            f"{service.path}.selector",
            f"selects no pod in namespace {service.namespace}: {service.key} has no endpoints "
            "(kube-proxy rejects what is sent to it)",
        )
        return []
    served: set[int] = set()
    endpoints = []
    for node, pod in picked:
        ports = []
        for index, draft in enumerate(service.ports):
            number = _target(draft.port, pod)
            if number is not None:
                served.add(index)
                ports.append(EndpointPort(draft.port.name, number, draft.port.protocol))
        if service.ports and not ports:
            continue
        details = pod.details
        hostname = details.get("hostname") if details.get("subdomain") == service.name else None
        ready = details.get("ready", True) or service.publish_not_ready
        owner = f"{pod.name}.{pod.namespace}"
        endpoints.append(ServiceEndpoint(pod.ip, tuple(ports), ready, owner, node.name, hostname))
    for index, draft in enumerate(service.ports):
        if index not in served:
            report.warn(
                f"{draft.path}.targetPort",
                f"no pod {service.key} selects has a {draft.port.protocol} container port named "
                f"'{draft.port.target_port}': this port has no endpoints",
            )
    return endpoints


def _target(port: ServicePort, pod: PodDraft) -> int | None:
    """The pod's port for a service port: a number as is, a name from the pod's containers."""
    if isinstance(port.target_port, int):
        return port.target_port
    for container in pod.details.get("containers", ()):
        for container_port in container.ports:
            if container_port.name == port.target_port and container_port.protocol == port.protocol:
                return container_port.port
    return None


def _listed(service: ServiceDraft, nodes: list[NodeDraft]) -> list[ServiceEndpoint]:
    """The endpoints a service without selector lists: each serves every service port, on its
    own `port` or else the port's numeric targetPort; `ready` as written (publishNotReady-
    Addresses is the endpoints controller's, which leaves such a service alone)."""
    node_by_ip = {node.ip: node.name for node in nodes if node.ip is not None}
    endpoints = []
    for draft in service.endpoints:
        ports = tuple(
            EndpointPort(port.name, number, port.protocol)
            for port in (item.port for item in service.ports)
            if isinstance(number := draft.port or port.target_port, int)
        )
        node = node_by_ip.get(draft.ip)
        endpoints.append(ServiceEndpoint(draft.ip, ports, draft.ready, None, node, draft.hostname))
    return endpoints


def after_lifecycle_steps(
    steps: list[Step], services: list[ServiceDraft], nodes: list[NodeDraft]
) -> list[Step]:
    """The steps, each `label` and `create` step given the services as the EndpointSlice
    controller lists them once it happened (after the lifecycle steps before it: a deleted pod
    is no endpoint any more, a created one may be). Namespace labels select no Service
    endpoints: they change nothing here."""
    running = [replace(node, pods=list(node.pods)) for node in nodes]
    by_name = {node.name: node for node in running}
    done = []
    for step in steps:
        if isinstance(step, DeleteStep):
            for node in running:
                node.pods = [pod for pod in node.pods if _owner(pod) != step.pod.owner]
        elif isinstance(step, CreateStep):
            by_name[step.pod.node].pods.append(_draft(step.pod))
            step = replace(step, services=_listed_now(services, running, step.text))
        elif isinstance(step, LabelStep) and step.pod is not None:
            owner = step.pod.owner
            node, pod = next((n, pod) for n in running for pod in n.pods if _owner(pod) == owner)
            labels = dict(pod.details.get("labels", ()))
            labels.update(step.set)
            for key in step.remove:
                labels.pop(key, None)
            relabelled = replace(pod, details={**pod.details, "labels": tuple(labels.items())})
            node.pods = [relabelled if other is pod else other for other in node.pods]
            step = replace(step, services=_listed_now(services, running, step.text))
        done.append(step)
    return done


def _listed_now(
    services: list[ServiceDraft], nodes: list[NodeDraft], text: str
) -> tuple[ServiceSpec, ...]:
    quiet = Report(text)  # the file's own warnings are reported once, at load
    return tuple(service_specs(services, nodes, quiet))


def _owner(pod: PodDraft) -> str:
    return f"{pod.name}.{pod.namespace}"


def _draft(pod: PodSpec) -> PodDraft:
    """A created pod as the endpoints controller sees it: its address and its details."""
    details = {
        "labels": pod.labels,
        "hostname": pod.hostname,
        "subdomain": pod.subdomain,
        "ready": pod.ready,
        "resolver": pod.resolver,
        "containers": pod.containers,
    }
    return PodDraft("", pod.name, pod.namespace, pod.ip, pod.mac, pod.host_veth, None, details)
