"""Namespaces and NetworkPolicies as frozen data, with the API server's defaults applied."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from kpkt.policy.selector import EVERYTHING, Selector

NAME_LABEL = "kubernetes.io/metadata.name"  # every namespace carries it, set by the API server
PROTOCOLS = ("TCP", "UDP", "SCTP")
INGRESS = "Ingress"
EGRESS = "Egress"


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: tuple[tuple[str, str], ...]  # NAME_LABEL included

    @classmethod
    def unlisted(cls, name: str) -> Namespace:
        """A namespace the topology does not list: only the label the API server sets."""
        return cls(name, ((NAME_LABEL, name),))


@dataclass(frozen=True, slots=True)
class PolicyPort:
    protocol: str = "TCP"  # the API server's default
    port: int | str | None = None  # None: every port of the protocol; a str is a port name
    end_port: int | None = None  # inclusive, only with a numeric port


@dataclass(frozen=True, slots=True)
class IpBlock:
    cidr: IPv4Network
    excepted: tuple[IPv4Network, ...] = ()

    def contains(self, ip: IPv4Address) -> bool:
        return ip in self.cidr and not any(ip in net for net in self.excepted)


@dataclass(frozen=True, slots=True)
class Peer:
    """One `from`/`to` entry: selectors (each None when not given) or an ipBlock."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IpBlock | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ingress or egress rule. An empty `peers` or `ports` (missing or `[]`) matches all."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PolicyPort, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    name: str
    namespace: str
    pod_selector: Selector = EVERYTHING
    types: frozenset[str] = frozenset({INGRESS})  # the effective policyTypes
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == INGRESS else self.egress


def default_policy_types(given: list[str], egress_rules: int) -> frozenset[str]:
    """SetDefaults_NetworkPolicy: no policyTypes means Ingress, plus Egress when there is at
    least one egress rule (`egress: []` is no rule)."""
    if given:
        return frozenset(given)
    return frozenset({INGRESS, EGRESS} if egress_rules else {INGRESS})
