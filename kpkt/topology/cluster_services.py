"""The services every cluster has without a manifest: `default/kubernetes` (the API server) and,
with cluster DNS on, `kube-system/kube-dns` (in front of the coredns pods)."""

from __future__ import annotations

from kpkt.spec import ServicePort
from kpkt.topology.dns import NAMESPACE, SELECTOR, SERVICE_NAME, DnsDraft
from kpkt.topology.hosts import NodeDraft
from kpkt.topology.services import EndpointDraft, PortDraft, ServiceDraft

KUBERNETES = "default/kubernetes"
KUBE_DNS = f"{NAMESPACE}/{SERVICE_NAME}"
API_SERVER_PORT = 6443  # kubeadm's kube-apiserver --secure-port
KUBE_DNS_PORTS = (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP"))


def with_cluster_services(
    services: list[ServiceDraft], dns: DnsDraft | None, nodes: list[NodeDraft]
) -> list[ServiceDraft]:
    """All the services of the cluster, in the order Topology.services keeps: the built-in
    ones the file does not define itself (kubernetes, then kube-dns), then the file's own in
    declaration order (a file's `default/kubernetes` or `kube-system/kube-dns` stays there)."""
    defined = {service.key for service in services}
    builtin = []
    if KUBERNETES not in defined:
        builtin.append(_kubernetes(nodes))
    if dns is not None and KUBE_DNS not in defined:
        builtin.append(_kube_dns())
    return [*builtin, *services]


def _kubernetes(nodes: list[NodeDraft]) -> ServiceDraft:
    """The API server's service: kubeadm's single control-plane node (the first one), on 6443."""
    path = "cluster.serviceCIDR"
    https = ServicePort("https", 443, "TCP", API_SERVER_PORT)
    first = nodes[0] if nodes else None
    endpoints = []
    if first is not None and first.ip is not None:
        endpoints.append(EndpointDraft(first.path, first.ip, API_SERVER_PORT))
    return ServiceDraft(
        path=path,
        name="kubernetes",
        namespace="default",
        type="ClusterIP",
        cluster_ip=None,
        ports=[PortDraft(path, https)],
        endpoints=endpoints,
        ip_path=path,
    )


def _kube_dns() -> ServiceDraft:
    path = "cluster.dns"
    ports = [
        PortDraft(path, ServicePort(name, port, protocol, port))
        for name, port, protocol in KUBE_DNS_PORTS
    ]
    return ServiceDraft(
        path=path,
        name=SERVICE_NAME,
        namespace=NAMESPACE,
        type="ClusterIP",
        cluster_ip=None,
        ports=ports,
        selector=SELECTOR,
        ip_path=f"{path}.serviceIP",
    )
