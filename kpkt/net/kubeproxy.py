"""kube-proxy in iptables mode: the nat and filter rules it writes for the topology's Services,
as decisions on the first packet of a connection.

The rules are the same on every node (`syncProxyRules`):

- nat KUBE-SERVICES: `-d <clusterIP> --dport <port> -j KUBE-SVC-…` for a service port with
  ready endpoints; the SVC chain marks traffic from outside the cluster CIDR for masquerade
  (`! -s <clusterCIDR> -j KUBE-MARK-MASQ`) and picks an endpoint with `statistic --mode random`
  (equal weight); the SEP chain marks hairpin traffic (`-s <endpoint> -j KUBE-MARK-MASQ`) and
  DNATs to the endpoint. The last rule sends `--dst-type LOCAL` to KUBE-NODEPORTS, whose EXT
  chains mark everything for masquerade (externalTrafficPolicy Cluster) before KUBE-SVC.
- filter: a service port without endpoints gets `-j REJECT` (ICMP port unreachable) in
  KUBE-SERVICES (FORWARD and OUTPUT) for its cluster IP, and in KUBE-EXTERNAL-SERVICES
  (INPUT and FORWARD) for its node port on the node's own addresses; no nat rule at all.
- nat KUBE-POSTROUTING: a marked connection is masqueraded (`--random-fully`).

The rules are built from plain values, one `ServicePortInfo` per service port (the builder,
kpkt/build.py, makes them from the topology's Services), and registered with each node's
netfilter (kpkt/net/netfilter.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from kpkt.observe import Decision, Why

Removed = tuple[int, bytes, int, bytes]  # an endpoint a service port lost: proto, vip, port, ip


@dataclass(frozen=True, slots=True)
class ServicePortInfo:
    """One port of a Service with a cluster IP, as kube-proxy sees it."""

    name: str  # for notes: `default/web:http`
    protocol: int  # an IP protocol number (TCP or UDP)
    cluster_ip: bytes
    port: int
    node_port: int | None
    endpoints: tuple[tuple[bytes, int], ...]  # ready (address, port), in EndpointSlice order


@dataclass(frozen=True, slots=True)
class ServicePortRules:
    """One service port: its name for notes (`default/web:http`) and its ready endpoints."""

    name: str
    endpoints: tuple[tuple[bytes, int], ...]  # (address, port), in EndpointSlice order


@dataclass(frozen=True, slots=True)
class Dnat:
    """What the nat table decided for a new connection."""

    address: bytes
    port: int
    masquerade: bool  # KUBE-MARK-MASQ set the 0x4000 mark
    decision: Decision


class ServiceRules:
    """The rules kube-proxy writes for every node, built once from the service ports."""

    def __init__(self, ports: Iterable[ServicePortInfo], cluster_cidr: IPv4Network) -> None:
        self.cluster_cidr = cluster_cidr
        self.cluster_ips: dict[tuple[int, bytes, int], ServicePortRules] = {}
        self.node_ports: dict[tuple[int, int], ServicePortRules] = {}
        self.rejected_ips: dict[tuple[int, bytes, int], str] = {}
        self.rejected_node_ports: dict[tuple[int, int], str] = {}
        self.sync(ports)

    def sync(self, ports: Iterable[ServicePortInfo]) -> set[Removed]:
        """syncProxyRules: the rules for the service ports as they are now, replacing the ones
        before; what endpoints the service ports lost (`remove_endpoint` says why)."""
        before = self._endpoint_set()
        for table in (self.cluster_ips, self.node_ports, self.rejected_ips):
            table.clear()
        self.rejected_node_ports.clear()
        for port in ports:
            self._add(port)
        return before - self._endpoint_set()

    def _endpoint_set(self) -> set[Removed]:
        return {
            (*vip, address)
            for vip, rules in self.cluster_ips.items()
            for address, _ in rules.endpoints
        }

    def _add(self, port: ServicePortInfo) -> None:
        proto = port.protocol
        vip = (proto, port.cluster_ip, port.port)
        if port.endpoints:
            rules = ServicePortRules(port.name, port.endpoints)
            self.cluster_ips[vip] = rules
            if port.node_port is not None:
                self.node_ports[(proto, port.node_port)] = rules
        else:
            self.rejected_ips[vip] = port.name
            if port.node_port is not None:
                self.rejected_node_ports[(proto, port.node_port)] = port.name

    def remove_endpoint(self, address: bytes) -> set[Removed]:
        """kube-proxy's next sync after the endpoint's pod is gone: the service ports lose it,
        and a port left without endpoints gets the filter table's REJECT. Each (protocol,
        cluster IP, port, endpoint address) lost: kube-proxy clears their UDP conntrack
        entries."""
        before = self._endpoint_set()
        tables = (
            (self.cluster_ips, self.rejected_ips),
            (self.node_ports, self.rejected_node_ports),
        )
        for table, rejected in tables:
            for key, rules in list(table.items()):
                kept = tuple(endpoint for endpoint in rules.endpoints if endpoint[0] != address)
                if kept == rules.endpoints:
                    continue
                if kept:
                    table[key] = ServicePortRules(rules.name, kept)
                else:
                    del table[key]
                    rejected[key] = rules.name
        return before - self._endpoint_set()

    @property
    def rejecting(self) -> bool:
        """Whether any service port has no endpoints (so the filter table has REJECTs)."""
        return bool(self.rejected_ips or self.rejected_node_ports)

    def __bool__(self) -> bool:
        return bool(self.cluster_ips or self.node_ports or self.rejected_ips)

    def dnat(
        self,
        proto: int,
        src: bytes,
        dst: bytes,
        dport: int,
        dst_is_local: bool,
        pick: Callable[[int], int],
    ) -> Dnat | None:
        """nat KUBE-SERVICES for a new connection (PREROUTING, or OUTPUT for the node's own):
        the endpoint it goes to, or None when no rule matches. `pick(n)` chooses one of `n`
        endpoints (the statistic match's random draw)."""
        rules = self.cluster_ips.get((proto, dst, dport))
        if rules is not None:
            outside = IPv4Address(src) not in self.cluster_cidr
            via = dst
        elif dst_is_local:
            rules = self.node_ports.get((proto, dport))
            if rules is None:
                return None
            outside, via = True, None  # a node port
        else:
            return None
        address, port = rules.endpoints[
            pick(len(rules.endpoints)) if len(rules.endpoints) > 1 else 0
        ]
        masquerade = outside or address == src
        mark = "hairpin" if address == src else "masquerade" if masquerade else ""
        decision = Decision(Why.DNAT, via, dport, address, port, rules.name, mark)
        return Dnat(address, port, masquerade, decision)

    def endpoints(
        self, proto: int, dst: bytes, dport: int, node_port: bool
    ) -> tuple[tuple[bytes, int], ...]:
        """The ready endpoints behind a service address (or, `node_port`, a node's port)."""
        rules = self.cluster_ips.get((proto, dst, dport))
        if rules is None and node_port:
            rules = self.node_ports.get((proto, dport))
        return rules.endpoints if rules is not None else ()

    def reject(self, proto: int, dst: bytes, dport: int, dst_is_local: bool) -> str | None:
        """The filter table's REJECT for a service port without endpoints: the service port's
        name when the packet is to be rejected."""
        name = self.rejected_ips.get((proto, dst, dport))
        if name is None and dst_is_local:
            name = self.rejected_node_ports.get((proto, dport))
        return name
