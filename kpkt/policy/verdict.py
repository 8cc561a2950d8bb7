"""Who may open a connection to whom (netpol.md §1): the client's egress policies and the
server's ingress policies must both allow the first packet; the pod's own node always gets in.

Endpoints are addresses. An address that is a pod's is that pod (its namespace, labels and
container ports); any other address (a node, an external host, a Service VIP never reached
after DNAT) is only an address, which only an ipBlock can match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from kpkt.policy.model import (
    EGRESS,
    INGRESS,
    NAME_LABEL,
    Namespace,
    NetworkPolicy,
    Peer,
    PolicyPort,
    Rule,
)
from kpkt.spec import Topology

ICMP = "ICMP"  # not a policy protocol: only a rule without ports allows it


class Workload:
    """A pod as policy sees it."""

    __slots__ = ("namespace", "name", "ip", "labels", "ports")

    def __init__(
        self,
        namespace: str,
        name: str,
        ip: IPv4Address,
        labels: Mapping[str, str],
        ports: Iterable[tuple[str | None, int, str]] = (),
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.ip = ip
        self.labels = dict(labels)
        self.ports = tuple(ports)  # (name, number, protocol) of its containers' ports

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> int | None:
        """The number of the container port called `name` with `protocol`, if it has one."""
        for port_name, number, port_protocol in self.ports:
            if port_name == name and port_protocol == protocol:
                return number
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A connection's verdict: denied on a side (egress first, as dataplanes judge it), with the
    policies that isolate that pod in that direction; or allowed, with the policies whose
    rules allowed it (empty when neither end is isolated)."""

    allowed: bool
    side: str | None = None  # "egress" | "ingress" when denied
    policies: tuple[str, ...] = ()

    def text(self) -> str:
        if self.allowed:
            return "allowed" + (f" by {', '.join(self.policies)}" if self.policies else "")
        return f"{self.side} denied: no rule of {', '.join(self.policies)} matched"


ALLOWED = Verdict(True)


class Policies:
    """The policies of a cluster, with its namespaces and pods."""

    def __init__(
        self,
        policies: Iterable[NetworkPolicy],
        namespaces: Iterable[Namespace],
        pods: Iterable[Workload],
    ) -> None:
        self.policies = tuple(policies)
        self.namespaces = {ns.name: dict(ns.labels) for ns in namespaces}
        self.pods = {pod.ip: pod for pod in pods}
        self._isolating: dict[tuple[str, str], tuple[NetworkPolicy, ...]] = {}

    def pod(self, ip: IPv4Address) -> Workload | None:
        return self.pods.get(ip)

    def namespace_labels(self, name: str) -> dict[str, str]:
        labels = self.namespaces.get(name)
        return labels if labels is not None else dict(Namespace.unlisted(name).labels)

    def relabel(
        self, namespace: str, pod: str | None, changes: Mapping[str, str], removed: Iterable[str]
    ) -> None:
        """A label step: the labels of the pod `namespace/pod` (`pod` None: of the namespace)
        change, and with them, from now on, which policies select which pods and which peers
        they match. The API server keeps a namespace's name label whatever the step says."""
        if pod is None:
            labels = self.namespace_labels(namespace) | dict(changes)
        else:
            labels = next(w for w in self.pods.values() if w.key == f"{namespace}/{pod}").labels
            labels.update(changes)
        for key in removed:
            labels.pop(key, None)
        if pod is None:
            self.namespaces[namespace] = labels | {NAME_LABEL: namespace}
        self._isolating.clear()

    def isolating(self, pod: Workload, direction: str) -> tuple[NetworkPolicy, ...]:
        """The policies that select `pod` and have `direction` in their effective types."""
        key = (pod.key, direction)
        found = self._isolating.get(key)
        if found is None:
            found = self._isolating[key] = tuple(
                policy
                for policy in self.policies
                if direction in policy.types
                and policy.namespace == pod.namespace
                and policy.pod_selector.matches(pod.labels)
            )
        return found

    def judge(
        self,
        src: IPv4Address,
        dst: IPv4Address,
        protocol: str,
        port: int | None,
        *,
        from_own_node: bool = False,
    ) -> Verdict:
        """The verdict on a new connection from `src` to `dst` (after DNAT) on `protocol` and
        destination `port` (None for ICMP). `from_own_node`: `src` is the server's own node."""
        egress = self.egress(src, dst, protocol, port)
        if not egress.allowed:
            return egress
        ingress = self.ingress(src, dst, protocol, port, from_own_node=from_own_node)
        if not ingress.allowed:
            return ingress
        return Verdict(True, None, egress.policies + ingress.policies)

    def egress(self, src: IPv4Address, dst: IPv4Address, protocol: str, port: int | None):
        client = self.pods.get(src)
        if client is None:
            return ALLOWED  # a node or an external host: never subject to egress policy
        return self._side(client, EGRESS, self.pods.get(dst), dst, protocol, port)

    def ingress(
        self,
        src: IPv4Address,
        dst: IPv4Address,
        protocol: str,
        port: int | None,
        *,
        from_own_node: bool = False,
    ) -> Verdict:
        server = self.pods.get(dst)
        if server is None or from_own_node:
            return ALLOWED
        return self._side(server, INGRESS, self.pods.get(src), src, protocol, port)

    def _side(
        self,
        pod: Workload,
        direction: str,
        other: Workload | None,
        other_ip: IPv4Address,
        protocol: str,
        port: int | None,
    ) -> Verdict:
        isolating = self.isolating(pod, direction)
        if not isolating:
            return ALLOWED
        server = pod if direction == INGRESS else other
        allowing = tuple(
            policy.key
            for policy in isolating
            if any(
                self._rule_matches(rule, policy.namespace, other, other_ip, server, protocol, port)
                for rule in policy.rules(direction)
            )
        )
        if allowing:
            return Verdict(True, None, allowing)
        return Verdict(False, direction.lower(), tuple(policy.key for policy in isolating))

    def _rule_matches(
        self,
        rule: Rule,
        namespace: str,
        other: Workload | None,
        other_ip: IPv4Address,
        server: Workload | None,
        protocol: str,
        port: int | None,
    ) -> bool:
        if rule.ports and not any(
            port_matches(entry, server, protocol, port) for entry in rule.ports
        ):
            return False
        return not rule.peers or any(
            self._peer_matches(peer, namespace, other, other_ip) for peer in rule.peers
        )

    def _peer_matches(
        self, peer: Peer, namespace: str, other: Workload | None, other_ip: IPv4Address
    ) -> bool:
        if peer.ip_block is not None:  # pod addresses included (upstream e2e)
            return peer.ip_block.contains(other_ip)
        if other is None:  # selectors match pods only
            return False
        if peer.namespace_selector is None:
            if other.namespace != namespace:
                return False
        elif not peer.namespace_selector.matches(self.namespace_labels(other.namespace)):
            return False
        return peer.pod_selector is None or peer.pod_selector.matches(other.labels)


def port_matches(
    entry: PolicyPort, server: Workload | None, protocol: str, port: int | None
) -> bool:
    """One `ports` entry against the (post-DNAT) destination: the protocol first, then a
    number, a range up to endPort, or a name the destination pod gives that number."""
    if entry.protocol != protocol or port is None:
        return False
    if entry.port is None:
        return True
    if isinstance(entry.port, str):
        return server is not None and server.named_port(entry.port, protocol) == port
    if entry.end_port is not None:
        return entry.port <= port <= entry.end_port
    return entry.port == port


def cluster_policies(topology: Topology) -> Policies:
    """The policies of a loaded topology, over its namespaces and pods (those `create` steps
    make too)."""
    pods = (
        Workload(
            pod.namespace,
            pod.name,
            pod.ip,
            dict(pod.labels),
            (
                (port.name, port.port, port.protocol)
                for container in pod.containers
                for port in container.ports
            ),
        )
        for pod in [*topology.pods(), *topology.created_pods()]
    )
    return Policies(topology.policies, topology.namespaces, pods)
