"""The node network's subnets: `cluster.underlay.subnets` (a routed node network, its subnets
joined by kpkt's router) and where each node and external host sits on it."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from kpkt.cni import one_subnet_only
from kpkt.derive import ROUTER, SWITCH, router_key, switch_owner, unique_mac
from kpkt.spec import ClusterSpec, SubnetSpec
from kpkt.topology.fields import Fields, Report, did_you_mean
from kpkt.topology.hosts import ExternalDraft, NodeDraft
from kpkt.topology.ipam import assign_underlay_ips

SUBNET_KEYS = ("name", "cidr", "gateway")
MAX_SUBNET_PREFIX = 30  # room for the router and at least one host


def read_subnets(underlay: Fields) -> tuple[tuple[str, SubnetSpec], ...] | None:
    """`underlay.subnets`, each with its YAML path (None: not given); the router's MACs are
    derived later (`with_router_macs`). Reports a list of fewer than two, names given twice and
    gateways outside their subnet; a subnet with a problem is left out, and "subnets" is then
    among the failed keys (no host is placed on what is left)."""
    entries = underlay.entries("subnets")
    if not underlay.given("subnets"):
        return None
    for key in ("cidr", "gateway"):
        if underlay.given(key):
            underlay.bad(
                key,
                "with underlay.subnets each subnet has its own cidr and gateway; remove "
                f"underlay.{key}",
            )
    if len(entries) < 2 and "subnets" not in underlay.failed:
        underlay.bad(
            "subnets",
            "a routed node network needs at least two subnets; for one, write underlay.cidr "
            "(and underlay.gateway) instead",
        )
    subnets, names = [], set()
    for path, value in entries:
        f = Fields.check(value, path, underlay.report, SUBNET_KEYS)
        if f is None:
            continue
        name = f.label("name", required="name every subnet (nodes name theirs in `subnet`)")
        cidr = f.network("cidr")
        if cidr is None and "cidr" not in f.failed:
            f.bad("cidr", "required: the subnet's range, like 192.168.61.0/24")
        if cidr is not None and cidr.prefixlen > MAX_SUBNET_PREFIX:
            f.bad("cidr", f"{cidr} is too small: a subnet needs at least a /30 (router and host)")
            cidr = None
        if name in names:
            f.bad("name", f"duplicate subnet name '{name}'; give each subnet its own")
        names.add(name)
        if name is None or cidr is None or f.failed:
            continue
        gateway = _gateway(f, cidr)
        if gateway is not None:
            subnets.append((path, SubnetSpec(name, cidr, gateway)))
    if len(subnets) < len(entries):
        underlay.failed.add("subnets")
    return tuple(subnets)


def _gateway(f: Fields, cidr: IPv4Network) -> IPv4Address | None:
    """The router's address on the subnet: the given one, else its last host address."""
    gateway = f.ipv4("gateway")
    if gateway is None:
        return None if "gateway" in f.failed else cidr.broadcast_address - 1
    if gateway not in cidr or gateway in (cidr.network_address, cidr.broadcast_address):
        f.bad("gateway", f"{gateway} is not a host address of the subnet {cidr}")
        return None
    return gateway


def place_hosts(
    hosts: list[NodeDraft | ExternalDraft], cluster: ClusterSpec, report: Report
) -> None:
    """Put each node and external host on its subnet and give it an address there (from .1
    upwards, skipping the router's): the subnet it names, else the one holding the address it
    gives, else the first."""
    if not cluster.subnets:
        for host in hosts:
            if host.subnet is not None:
                report.error(
                    f"{host.path}.subnet",
                    "there is no cluster.underlay.subnets to name: every host is on "
                    "underlay.cidr; remove `subnet` or list the subnets",
                )
        assign_underlay_ips(hosts, cluster.underlay_cidr, report)
        return
    groups: dict[int, list[NodeDraft | ExternalDraft]] = {}
    for host in hosts:
        index = _subnet_index(host, cluster.subnets, report)
        if index is not None:
            groups.setdefault(index, []).append(host)
    for index, group in sorted(groups.items()):
        subnet = cluster.subnets[index]
        for host in group:
            if host.ip == subnet.gateway:
                report.error(
                    f"{host.path}.ip",
                    f"{host.ip} is the router's address on subnet {subnet.name} (its gateway); "
                    "pick another",
                )
        where = f"cluster.underlay.subnets[{index}].cidr"
        assign_underlay_ips(group, subnet.cidr, report, where, {subnet.gateway})


def _subnet_index(
    host: NodeDraft | ExternalDraft, subnets: tuple[SubnetSpec, ...], report: Report
) -> int | None:
    names = [subnet.name for subnet in subnets]
    if host.subnet is not None:
        if host.subnet in names:
            return names.index(host.subnet)
        hint = did_you_mean(host.subnet, names)
        report.error(
            f"{host.path}.subnet",
            f"no subnet '{host.subnet}' in cluster.underlay.subnets{hint}; use "
            f"{' or '.join(names)}",
        )
        return None
    if host.ip is None:
        return 0
    holding = [index for index, subnet in enumerate(subnets) if host.ip in subnet.cidr]
    if not holding:
        report.error(
            f"{host.path}.ip",
            f"{host.ip} is on none of cluster.underlay.subnets "
            f"({', '.join(str(subnet.cidr) for subnet in subnets)}); pick an address of one",
        )
        return None
    return holding[0]


def check_reserved_names(
    hosts: list[NodeDraft | ExternalDraft], cluster: ClusterSpec, report: Report
) -> None:
    """Hosts named like kpkt's own router or switches of the node network."""
    reserved = {SWITCH: "switch of the node network"}
    if cluster.subnets:
        reserved[ROUTER] = "router between the subnets of the node network"
        for subnet in cluster.subnets:
            reserved[switch_owner(subnet.name)] = f"switch of subnet {subnet.name}"
    for host in hosts:
        if host.name in reserved:
            report.error(
                f"{host.path}.name",
                f"'{host.name}' is the name of kpkt's {reserved[host.name]} (its captures are "
                f"{host.name}__*.pcap); pick another name",
            )


def check_cni_subnets(nodes: list[NodeDraft], cluster: ClusterSpec, report: Report) -> None:
    """A CNI whose routes to other nodes need them on link (kpkt.cni.one_subnet_only) cannot
    span subnets: report the first node off the first node's subnet."""
    why = one_subnet_only(cluster.cni, cluster.cni_options)
    placed = [node for node in nodes if node.ip is not None]
    if why is None or not cluster.subnets or not placed:
        return
    first = _subnet_name(cluster, placed[0].ip)
    for node in placed[1:]:
        subnet = _subnet_name(cluster, node.ip)
        if None not in (subnet, first) and subnet != first:
            report.error(
                f"{node.path}.subnet",
                f"node {node.name} is on subnet {subnet}, node {placed[0].name} on {first}: {why}",
            )
            return


def _subnet_name(cluster: ClusterSpec, ip: IPv4Address) -> str | None:
    return next((net.name for net in cluster.subnets if ip in net.cidr), None)


def with_router_macs(cluster: ClusterSpec, seed: int, taken: set[str]) -> ClusterSpec:
    """The cluster with each subnet's router interface (`eth<N>`) given its derived MAC."""
    subnets = tuple(
        replace(subnet, router_mac=unique_mac(seed, router_key(f"eth{index}"), taken))
        for index, subnet in enumerate(cluster.subnets)
    )
    return replace(cluster, subnets=subnets)
