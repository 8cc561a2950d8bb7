"""How a traffic step names a service: `web`, `web.default`, `web.default.svc` or its full DNS
name `web.default.svc.cluster.local` (resolved from the cluster state, not by sending DNS)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from ipaddress import IPv4Address

from kpkt.spec import ServiceSpec


class ServiceNames:
    """The services a step may name; `headless` holds the keys of the headless ones (a service
    whose clusterIP was rejected has no cluster IP either, but is not headless)."""

    def __init__(
        self, services: Iterable[ServiceSpec], cluster_domain: str, headless: Collection[str] = ()
    ):
        self.domain, self.headless = cluster_domain, set(headless)
        self.by_key = {(service.namespace, service.name): service for service in services}
        self.addresses: dict[IPv4Address, str] = {
            service.cluster_ip: service.key
            for service in self.by_key.values()
            if service.cluster_ip is not None
        }

    def find(self, name: str, namespace: str) -> ServiceSpec | None:
        """The service `name` stands for when written in `namespace` (a bare name means a
        service there, as the pod's DNS search list would), or None."""
        if name.endswith("."):  # only the full name may be absolute
            suffix = f".svc.{self.domain}."
            if not name.endswith(suffix):
                return None
            name = name[: -len(suffix)] + f".svc.{self.domain}"
        parts = name.split(".")
        if len(parts) == 1:
            return self.by_key.get((namespace, name))
        if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
            return self.by_key.get((parts[1], parts[0]))
        if len(parts) > 3 and parts[2] == "svc" and ".".join(parts[3:]) == self.domain:
            return self.by_key.get((parts[1], parts[0]))
        return None

    def names(self, namespace: str) -> list[str]:
        """What a step may write for each service: the bare name in `namespace`, else
        `name.namespace` (for "did you mean" hints)."""
        return [name if space == namespace else f"{name}.{space}" for space, name in self.by_key]

    def elsewhere(self, name: str, namespace: str) -> list[str]:
        """`name.namespace` for each service called `name` outside `namespace`."""
        return [
            f"{name}.{space}"
            for space, other in self.by_key
            if other == name and space != namespace
        ]
