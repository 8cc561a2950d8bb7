"""Loads a topology file into frozen specs, reporting every problem with the file and YAML path."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from kpkt.cni import (
    CNIS,
    LATER_OPTIONS,
    MACLESS_DEVICES,
    NAMING,
    NODE_DEVICES,
    OPTIONS,
    POD_CIDRS,
    RANGE_IPAM,
    RENAMED,
    WITHOUT_GATEWAY,
    Number,
    Option,
    default_of,
    default_options,
    encapsulation_overhead,
    node_block,
    option_problems,
    unsupported_service,
)
from kpkt.derive import (
    external_key,
    node_key,
    pod_key,
    unique_mac,
    veth_names,
)
from kpkt.engine.collector import paused
from kpkt.errors import TopologyError
from kpkt.spec import (
    ClusterSpec,
    CreateStep,
    DeleteStep,
    ExternalSpec,
    HostRef,
    NodeSpec,
    PodSpec,
    ServiceSpec,
    Step,
    Topology,
)
from kpkt.topology.allocate import allocate_cluster_ips, allocate_node_ports
from kpkt.topology.cluster_services import with_cluster_services
from kpkt.topology.dns import DnsDraft, add_dns_hosts, dns_spec, dns_wanted, read_dns
from kpkt.topology.endpoints import after_lifecycle_steps, service_specs
from kpkt.topology.fields import Fields, Report, did_you_mean, label_problem, show
from kpkt.topology.hosts import ExternalDraft, NodeDraft, PodDraft, read_externals, read_nodes
from kpkt.topology.ipam import assign_pod_cidrs, assign_pod_ips
from kpkt.topology.limits import MAX_DEPTH, check_characters, deep_nesting, read_topology_file
from kpkt.topology.policies import read_namespaces, read_policies
from kpkt.topology.service_names import ServiceNames
from kpkt.topology.services import ServiceDraft, read_services
from kpkt.topology.traffic import Directory, Host, read_traffic
from kpkt.topology.underlay import (
    check_cni_subnets,
    check_reserved_names,
    place_hosts,
    read_subnets,
    with_router_macs,
)

API_VERSION = "kpkt/v1"
KIND = "Topology"
TOP_KEYS = ("apiVersion", "kind", "metadata", "seed", "cluster", "nodes", "externals")
TOP_KEYS += ("services", "traffic", "namespaces", "networkPolicies")
UNDERLAY_KEYS = ("cidr", "mtu", "gateway", "subnets")
CLUSTER_KEYS = ("cni", "podCIDR", "serviceCIDR", "clusterDomain", "underlay", "vxlan")
CLUSTER_KEYS += ("hairpin", "dns", *CNIS)  # cluster.<cni>: that CNI's settings
MIN_SERVICE_PREFIX = 29  # kube-apiserver wants at least 8 addresses in the service range
DEFAULTS = ClusterSpec(cni=CNIS[0], cni_options=default_options(CNIS[0]))


class TagErrors:
    """For a PyYAML loader: a value its explicit tag's constructor refuses (`!!int x`,
    `!!timestamp x`, which PyYAML lets out as a ValueError or an AttributeError) is refused
    as a YAML error at its node, as any other."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError):
            tag = node.tag.rpartition(":")[2]
            problem = f"{node.value!r} is not a value `!!{tag}` takes; fix it, or drop the tag"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


class _Constructor(TagErrors):
    """What both loaders construct a document with: PyYAML's SafeConstructor, with duplicate
    keys refused, and the plain nodes of a large file built without its machinery."""

    def construct_document(self, node: yaml.Node) -> Any:
        """What SafeConstructor.construct_document gives: plain mappings, lists and scalars
        built directly (each mapping and list once, however many aliases point at it, so a
        recursive one holds itself as there); anything else (another tag, a merge key, a key
        given twice, a value its constructor refuses) is left to SafeConstructor, whole."""
        try:
            return self._plain(node, {})
        except Exception:  # SafeConstructor builds it, or says what is wrong in its words
            return super().construct_document(node)

    def _plain(self, node: yaml.Node, made: dict[int, Any]) -> Any:
        """`node` as SafeConstructor builds it, when it is plain (_Unusual if not); `made`:
        the mappings and lists built so far, by their node's id."""
        kind, tag = type(node), node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            construct = _SCALAR_CONSTRUCTORS.get(tag)
            if construct is None:
                raise _Unusual
            return construct(self, node)
        done = made.get(id(node))
        if done is not None:
            return done
        if kind is yaml.SequenceNode and tag == _SEQ:
            items = made[id(node)] = []
            items.extend([self._plain(item, made) for item in node.value])
            return items
        if kind is not yaml.MappingNode or tag != _MAP:
            raise _Unusual
        mapping = made[id(node)] = {}
        seen = set()
        for key_node, value_node in node.value:
            if type(key_node) is not yaml.ScalarNode or key_node.value in seen:
                raise _Unusual  # a key that is a mapping or a list, or one given twice
            seen.add(key_node.value)
            mapping[self._plain(key_node, made)] = self._plain(value_node, made)
        return mapping

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """SafeConstructor's mapping, refusing a key given twice."""
        seen = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    problem = f"duplicate key '{key.value}'; keep one"
                    raise yaml.constructor.ConstructorError(None, None, problem, key.start_mark)
                seen.add(key.value)
        return super().construct_mapping(node, deep)


class _Unusual(Exception):
    """A node _Constructor leaves to SafeConstructor."""


_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{name}" for name in ("str", "seq", "map"))
# the scalars _Constructor builds as SafeConstructor does (a merge key `<<` is none of them)
_SCALAR_CONSTRUCTORS = {
    f"tag:yaml.org,2002:{name}": yaml.SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("int", "float", "bool", "null")
}


class _Loader(_Constructor, yaml.SafeLoader):
    """YAML 1.1 without its sexagesimal numbers (`12:30` stays a string), with duplicate
    keys refused, and nested at most MAX_DEPTH levels deep."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if problem := deep_nesting(self.depth):
                raise yaml.composer.ComposerError(None, None, problem, self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _FastLoader(_Constructor, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """_Loader's rules on libyaml's scanner, parser and composer, when PyYAML has them (about
    4 times as fast on a large file). It refuses a node at MAX_DEPTH, one level sooner than
    _Loader (an alias is not a node it counts), with no line to name: whatever it refuses,
    _Loader reads again, to refuse it in its own words, or take it."""

    depth = 0

    # libyaml's composer calls these around every node it composes
    def descend_resolver(self, parent: yaml.Node | None, index: Any) -> None:
        self.depth += 1
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, "nested too deep", None)

    def ascend_resolver(self) -> None:
        self.depth -= 1


for _loader in (_Loader, _FastLoader):
    _loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":int", ":float"))]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
        ),
        list("-+0123456789"),
    )
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )


def load_topology(path: str | Path, seed: int | None = None) -> Topology:
    """Load a topology file; `seed` (from `--seed`) overrides the file's `seed:`."""
    return load_topology_text(read_text(path), str(path), seed)


def read_text(path: str | Path) -> str:
    """A topology (or sweep) file's text: a missing, unreadable or non-UTF-8 file is reported
    with its path."""
    source = str(path)
    data = read_topology_file(Path(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TopologyError(f"{source}: not UTF-8 text (byte {error.start})") from None
    return text


def load_topology_text(text: str, source: str, seed: int | None = None) -> Topology:
    """Load a topology from YAML text; `source` names it in every problem reported."""
    with paused():  # a large topology is a heap of small objects that stay
        document = parse_document(text, source)
        return load_topology_document(document, text, source, seed, parsed=True)


def load_topology_document(
    document: Any, text: str, source: str, seed: int | None = None, *, parsed: bool = False
) -> Topology:
    """Load a topology already parsed from `text` (as parse_document gives it); `parsed`:
    `document` is what parse_document made of `text` (not an import's, written as `text`)."""
    report = Report(source)
    check_characters(document, report, text if parsed else None)
    if report.errors:  # before any message quotes such text
        raise TopologyError(report.errors)
    if not isinstance(document, dict):
        raise TopologyError(
            f"{source}: expected a mapping with apiVersion, kind, metadata and nodes, "
            f"got {'an empty file' if document is None else show(document)}"
        )
    doc = Fields(document, "", report)
    doc.reject_unknown(TOP_KEYS)
    _check_header(doc)
    name, description = _read_metadata(doc)
    seed = _read_seed(doc, seed)
    cluster, unsure, dns = _read_cluster(doc)
    nodes, externals = read_nodes(doc), read_externals(doc)
    drafts = read_services(doc)
    namespaces, policies = read_namespaces(doc), read_policies(doc)
    if dns is not None:
        add_dns_hosts(dns, nodes, externals, report)
    block, exact = node_block(cluster.cni, cluster.cni_options)
    if exact:
        _check_blocks(nodes, block, exact, report)
    assign_pod_cidrs(nodes, None if "podCIDR" in unsure else cluster.pod_cidr, block, report)
    if "underlay" not in unsure:
        place_hosts([*nodes, *externals], cluster, report)
        check_cni_subnets(nodes, cluster, report)
    assign_pod_ips(nodes, report, cluster.pod_cidr if cluster.cni in RANGE_IPAM else None)
    check_reserved_names([*nodes, *externals], cluster, report)
    _check_unique(nodes, externals, cluster.cni, report)
    _check_gateway(cluster, nodes, report)
    gateway = cluster.underlay_gateway is not None or cluster.subnets
    if cluster.cni in WITHOUT_GATEWAY and not gateway and nodes:
        report.warn("cluster.underlay.gateway", WITHOUT_GATEWAY[cluster.cni])
    all_drafts, services = _services(drafts, cluster, unsure, dns, nodes, report)
    headless = [draft.key for draft in drafts if draft.headless]
    names = ServiceNames(services, cluster.cluster_domain, headless)
    hosts = _hosts(nodes, externals)
    directory = Directory(hosts, cluster, names, report, dns is not None, nodes)
    steps = read_traffic(doc, directory)
    if report.errors:
        raise TopologyError(report.errors)
    steps = after_lifecycle_steps(steps, all_drafts, nodes)
    macs = {mac for mac, _, _ in _explicit_macs(nodes, externals, cluster.cni)}
    external_specs = tuple(_external_spec(external, seed, macs) for external in externals)
    node_specs = tuple(_node_spec(node, seed, macs, cluster.cni) for node in nodes)
    if cluster.subnets:
        cluster = with_router_macs(cluster, seed, macs)
    if dns is not None:
        cluster = replace(cluster, dns=dns_spec(dns, external_specs))
    steps = _created_pods(steps, node_specs, seed, macs, cluster.cni)
    return Topology(
        name=name,
        source=source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        seed=seed,
        description=description,
        cluster=cluster,
        nodes=node_specs,
        externals=external_specs,
        services=tuple(services),
        steps=tuple(steps),
        warnings=tuple(report.warnings),
        namespaces=tuple(namespaces),
        policies=tuple(policies),
    )


def parse_document(text: str, source: str) -> Any:
    """The YAML document in `text` as kpkt reads it (see _Loader), read by _FastLoader when it
    can; a syntax error names `source`, the line and the column."""
    if "\t" not in text:  # libyaml takes a tab where PyYAML refuses it (`key:\tvalue`)
        try:
            return yaml.load(text, Loader=_FastLoader)  # a SafeLoader
        except (yaml.YAMLError, UnicodeEncodeError):  # the latter: a lone surrogate
            pass  # _Loader decides, and says why
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({error.context})" if error.context else ""
        raise TopologyError(f"{source}: {where}{error.problem}{context}") from None
    except yaml.YAMLError as error:
        raise TopologyError(f"{source}: {error}") from None


def _check_header(doc: Fields) -> None:
    for key, wanted in (("apiVersion", API_VERSION), ("kind", KIND)):
        value = doc.get(key, required=f"add `{key}: {wanted}` at the top")
        if value is not None and value != wanted:
            doc.bad(key, f"expected {wanted}, got {show(value)}: this is not a kpkt topology file")


def _read_metadata(doc: Fields) -> tuple[str, str]:
    metadata = doc.child("metadata", ("name", "description"))
    if metadata is None:
        if "metadata" not in doc.failed:
            doc.bad("metadata", "required; add `metadata: {name: my-cluster}`")
        return "", ""
    name = metadata.label("name", required="name the topology (it names the output folder)")
    return name or "", metadata.string("description", "") or ""


def _read_seed(doc: Fields, override: int | None) -> int:
    seed = doc.integer("seed", 0, default=0)
    if override is None:
        return seed
    if isinstance(override, bool) or not isinstance(override, int) or override < 0:
        doc.report.error("seed", f"--seed must be an integer of at least 0, got {override!r}")
    return override


def _read_cluster(doc: Fields) -> tuple[ClusterSpec, set[str], DnsDraft | None]:
    """The cluster settings; which of "podCIDR", "serviceCIDR" and "underlay" were given but
    unusable (so that no address is checked against, or taken from, a made-up range); and
    the cluster DNS settings (None: no cluster DNS)."""
    f = doc.child("cluster", CLUSTER_KEYS)
    if f is None:
        failed = "cluster" in doc.failed
        service_cidr = None if failed else DEFAULTS.service_cidr
        dns = read_dns(Fields({}, "cluster", doc.report), dns_wanted(doc), service_cidr)
        return DEFAULTS, {"podCIDR", "serviceCIDR", "underlay"} if failed else set(), dns
    cni = _cni(f)
    options = _cni_options(f, cni)
    underlay = f.child("underlay", UNDERLAY_KEYS) or Fields({}, f.at("underlay"), f.report)
    vxlan = f.child("vxlan", ("vni", "port")) or Fields({}, f.at("vxlan"), f.report)
    default_pod_cidr = POD_CIDRS.get(cni, DEFAULTS.pod_cidr)
    pod_cidr = f.network("podCIDR", default_pod_cidr)
    service_cidr = f.network("serviceCIDR", DEFAULTS.service_cidr)
    if service_cidr is not None and service_cidr.prefixlen > MIN_SERVICE_PREFIX:
        f.bad(
            "serviceCIDR",
            f"{service_cidr} is too small: a service range needs at least 8 addresses (a /29)",
        )
        service_cidr = None
    subnets = read_subnets(underlay)
    if subnets is None:
        underlay_cidr = underlay.network("cidr", DEFAULTS.underlay_cidr)
        underlay_nets = [(f.at("underlay.cidr"), underlay_cidr)]
    else:  # a routed node network: underlay_cidr is its first subnet's
        underlay_cidr = subnets[0][1].cidr if subnets else None
        underlay_nets = [(f"{path}.cidr", subnet.cidr) for path, subnet in subnets]
    named = [(f.at("podCIDR"), pod_cidr), (f.at("serviceCIDR"), service_cidr), *underlay_nets]
    _check_overlaps([(path, net) for path, net in named if net is not None], f.report)
    cluster = ClusterSpec(
        cni=cni,
        cni_options=options,
        encapsulation_overhead=encapsulation_overhead(cni, options),
        pod_cidr=pod_cidr or default_pod_cidr,
        service_cidr=service_cidr or DEFAULTS.service_cidr,
        cluster_domain=_cluster_domain(f),
        underlay_cidr=underlay_cidr or DEFAULTS.underlay_cidr,
        underlay_mtu=underlay.integer("mtu", 576, 9000, DEFAULTS.underlay_mtu),
        vni=vxlan.integer("vni", 1, 16_777_215, DEFAULTS.vni),
        vxlan_port=vxlan.integer("port", 1, 65535, DEFAULTS.vxlan_port),
        hairpin=f.boolean("hairpin", DEFAULTS.hairpin),
        underlay_gateway=None if subnets is not None else _gateway(underlay, underlay_cidr),
        subnets=tuple(subnet for _, subnet in subnets or ()),
    )
    unsure = {"podCIDR"} if pod_cidr is None else set()
    if service_cidr is None:
        unsure.add("serviceCIDR")
    if underlay_cidr is None or "underlay" in f.failed or "subnets" in underlay.failed:
        unsure.add("underlay")
    return cluster, unsure, read_dns(f, dns_wanted(doc), service_cidr)


def _gateway(underlay: Fields, cidr: IPv4Network | None) -> IPv4Address | None:
    """The nodes' default gateway: a host address of the underlay (an external, or nobody)."""
    gateway = underlay.ipv4("gateway")
    if gateway is None or cidr is None:
        return gateway
    if gateway not in cidr or gateway in (cidr.network_address, cidr.broadcast_address):
        underlay.bad("gateway", f"{gateway} is not a host address of the underlay {cidr}")
        return None
    return gateway


def _check_gateway(cluster: ClusterSpec, nodes: list[NodeDraft], report: Report) -> None:
    for node in nodes:
        if node.ip is not None and node.ip == cluster.underlay_gateway:
            report.error(
                "cluster.underlay.gateway",
                f"{node.ip} is node {node.name}'s address; the gateway is another host "
                "(an external's address, or a free one)",
            )


def _cni(f: Fields) -> str:
    cni = f.string("cni", DEFAULTS.cni)
    supported = " or ".join(CNIS)
    if cni in RENAMED:
        f.bad("cni", f"'{cni}' is written {RENAMED[cni]}")
    elif cni not in CNIS:
        hint = did_you_mean(cni, CNIS + tuple(RENAMED))
        f.bad("cni", f"unknown CNI '{cni}'{hint}; use {supported}")
    return cni if cni in CNIS else DEFAULTS.cni


def _cni_options(f: Fields, cni: str) -> dict[str, str]:
    """`cluster.<cni>`: the CNI's own settings, each one of its values."""
    section = f.child(cni, OPTIONS[cni]) or Fields({}, f.at(cni), f.report)
    later = LATER_OPTIONS.get(cni, {})
    options = {
        key: _option(section, key, option, later.get(key, ()))
        for key, option in OPTIONS[cni].items()
    }
    for key, problem in option_problems(cni, options):
        section.bad(key, problem)
    return options


def _option(section: Fields, key: str, option: Option, later: tuple[str, ...]) -> Any:
    """The setting's value; one of the `later` values (not modelled yet) is reported."""
    default = default_of(option)
    if isinstance(option, tuple) and section.get(key) in later:
        section.bad(key, f"'{section.get(key)}' is not supported yet; use {' or '.join(option)}")
        return default
    if isinstance(option, Number):
        return section.integer(key, option.low, option.high, default)
    if isinstance(option, bool):
        return section.boolean(key, default)
    return section.choice(key, option, default)


def _check_blocks(nodes: list[NodeDraft], block: int, setting: str, report: Report) -> None:
    """Where a CNI's node podCIDR is one of its IPAM blocks, it is a /`block` (`setting`)."""
    for node in nodes:
        if node.pod_cidr is not None and node.pod_cidr.prefixlen != block:
            report.error(
                f"{node.path}.podCIDR",
                f"{node.pod_cidr} is not a /{block}: a node's podCIDR is its IPAM block, of "
                f"{setting} ({block}); give a /{block} or change {setting}",
            )


def _cluster_domain(f: Fields) -> str:
    domain = f.string("clusterDomain", DEFAULTS.cluster_domain)
    labels = domain.split(".")
    if "clusterDomain" not in f.failed and (len(domain) > 253 or any(map(label_problem, labels))):
        f.bad(
            "clusterDomain",
            f"'{domain}' is not a DNS name: dot-separated lowercase labels "
            "of letters, digits and '-', like cluster.local",
        )
    return domain


def _check_overlaps(cidrs: list[tuple[str, IPv4Network]], report: Report) -> None:
    for index, (path, net) in enumerate(cidrs):
        for other_path, other in cidrs[:index]:
            if net.overlaps(other):
                report.error(path, f"{net} overlaps {other_path} {other}; pick ranges apart")


def _services(
    drafts: list[ServiceDraft],
    cluster: ClusterSpec,
    unsure: set[str],
    dns: DnsDraft | None,
    nodes: list[NodeDraft],
    report: Report,
) -> tuple[list[ServiceDraft], list[ServiceSpec]]:
    """Every service of the cluster (the built-in ones first, see with_cluster_services) with
    its cluster IP, node ports and endpoints, as drafts and as specs."""
    services = with_cluster_services(drafts, dns, nodes)
    service_cidr = None if "serviceCIDR" in unsure else cluster.service_cidr
    allocate_cluster_ips(services, service_cidr, dns, report)
    allocate_node_ports(services, report)
    for service in services:
        why = unsupported_service(cluster.cni, cluster.cni_options, service.type or "")
        if why is not None:
            report.error(f"{service.path}.type", why)
    return services, service_specs(services, nodes, report)


def _check_unique(
    nodes: list[NodeDraft], externals: list[ExternalDraft], cni: str, report: Report
) -> None:
    """Report names, addresses, MACs and host-veth names that more than one thing has."""
    pods = [pod for node in nodes for pod in node.pods]
    names = [(host.name, f"{host.path}.name", _what(host)) for host in [*nodes, *externals]]
    _duplicates("name", names, report)
    pod_names = [((pod.namespace, pod.name), pod.at("name"), None) for pod in pods]
    _duplicates("pod (pod names are unique per namespace)", pod_names, report)
    addresses = [(host.ip, f"{host.path}.ip", _what(host)) for host in [*nodes, *externals]]
    addresses += [(pod.ip, pod.at("ip"), _what(pod)) for pod in pods]
    _duplicates("address", addresses, report)
    _duplicates("MAC", _explicit_macs(nodes, externals, cni), report)
    for node in nodes:
        _check_veths(node, cni, report)


def _check_veths(node: NodeDraft, cni: str, report: Report) -> None:
    veths = [
        (pod.veth, f"{pod.path}.hostVeth.name", _what(pod))
        for pod in node.pods
        if pod.veth is not None  # most are named later (_node_spec)
    ]
    for name, path, _ in veths:
        if name in ("lo", "eth0", *NODE_DEVICES[cni], *MACLESS_DEVICES.get(cni, ())):
            report.error(path, f"'{name}' is a device of {node.name} itself; pick another name")
    _duplicates(f"host veth name on {node.name}", veths, report)


def _duplicates(noun: str, entries: Iterable[tuple[Any, str, str | None]], report: Report) -> None:
    """Report each `(value, path, owner)` whose value an earlier entry already has."""
    first: dict[Any, str] = {}
    for value, path, owner in entries:
        if value is None:
            continue
        if value in first:
            report.error(path, f"duplicate {noun}: {_shown(value)} is already {first[value]}")
        else:
            first[value] = f"used by {owner} ({path})" if owner else f"at {path}"


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "/".join(value)
    return f"'{value}'" if isinstance(value, str) and ":" not in value else str(value)


def _explicit_macs(
    nodes: list[NodeDraft], externals: list[ExternalDraft], cni: str
) -> Iterator[tuple[str, str, str]]:
    """The MACs the topology names (the others are derived later), each of which must be unique
    (but a host veth's, where the CNI gives every host veth the same MAC)."""
    for node in nodes:
        if node.macs["eth0"] is not None:
            yield node.macs["eth0"], f"{node.path}.mac", f"node {node.name}"
        for device in NODE_DEVICES[cni]:
            if node.macs[device] is not None:
                where = f"{node.path}.devices.{device}.mac"
                yield node.macs[device], where, f"{node.name}'s {device}"
        for pod in node.pods:
            if pod.mac is not None:
                yield pod.mac, f"{pod.path}.mac", _what(pod)
            if pod.veth_mac is not None and NAMING[cni].host_veth_mac is None:
                yield pod.veth_mac, f"{pod.path}.hostVeth.mac", f"{_what(pod)}'s host veth"
    for external in externals:
        if external.mac is not None:
            yield external.mac, f"{external.path}.mac", _what(external)


def _what(item: NodeDraft | PodDraft | ExternalDraft) -> str:
    if isinstance(item, PodDraft):
        return f"pod {item.namespace}/{item.name}"
    return f"{'node' if isinstance(item, NodeDraft) else 'external'} {item.name}"


def _hosts(nodes: list[NodeDraft], externals: list[ExternalDraft]) -> Iterator[Host]:
    for node in nodes:
        net = node.pod_cidr
        also = (net.network_address, net.network_address + 1) if net else ()
        yield Host(HostRef("node", node.name), node.ip, also)
        for pod in node.pods:
            containers = tuple(c.name for c in pod.details.get("containers", ()))
            ref = HostRef("pod", pod.name, pod.namespace)
            yield Host(ref, pod.ip, (), containers, node.name)
    for external in externals:
        yield Host(HostRef("external", external.name), external.ip)


def _node_spec(node: NodeDraft, seed: int, taken: set[str], cni: str) -> NodeSpec:
    """The node with its MACs and host-veth names derived (by the CNI's naming where it has
    one): call only on a topology without problems (every value present, every name a DNS
    label)."""
    naming = NAMING[cni]
    macs = {"eth0": node.macs["eth0"] or unique_mac(seed, node_key(node.name, "eth0"), taken)}
    for device in NODE_DEVICES[cni]:
        named = naming.device_macs.get(device)
        derived = named(node.name) if named else None
        key = node_key(node.name, device)
        macs[device] = node.macs[device] or derived or unique_mac(seed, key, taken)
    bridge, vtep = _bridge_and_tunnel(cni)
    if naming.host_veth is None:
        wanted = [(pod.namespace, pod.name, pod.veth) for pod in node.pods]
        veths = veth_names(seed, wanted, naming.hashed_host_veth)
    else:
        veths = [pod.veth or naming.host_veth(pod.namespace, pod.name) for pod in node.pods]
    pods = tuple(
        _pod_spec(pod, node, veth, seed, taken, naming.host_veth_mac)
        for pod, veth in zip(node.pods, veths, strict=True)
    )
    return NodeSpec(
        name=node.name,
        ip=node.ip,
        mac=macs["eth0"],
        pod_cidr=node.pod_cidr,
        cni0_mac=macs.get(bridge, ""),
        vtep_mac=macs.get(vtep, ""),
        pods=pods,
    )


def _created_pods(
    steps: list[Step], nodes: tuple[NodeSpec, ...], seed: int, taken: set[str], cni: str
) -> list[Step]:
    """Each `create` step's pod with the MACs and host veth name it leaves out, derived as for
    the topology's pods and after theirs (so that no MAC is taken twice, not even by a pod
    created again with a deleted one's name); a host veth's name is unique among the veths
    on its node at that moment."""
    naming = NAMING[cni]
    veths = {node.name: {pod.owner: pod.host_veth for pod in node.pods} for node in nodes}
    done = []
    for step in steps:
        if isinstance(step, DeleteStep):
            for on_node in veths.values():
                on_node.pop(step.pod.owner, None)
        if not isinstance(step, CreateStep):
            done.append(step)
            continue
        pod, on_node = step.pod, veths[step.pod.node]
        veth = pod.host_veth
        if not veth and naming.host_veth is not None:
            veth = naming.host_veth(pod.namespace, pod.name)
        elif not veth:
            others = [("", owner, name) for owner, name in on_node.items()]
            wanted = [*others, (pod.namespace, pod.name, None)]
            veth = veth_names(seed, wanted, naming.hashed_host_veth)[-1]
        on_node[pod.owner] = veth
        mac = pod.mac or unique_mac(seed, pod_key(pod.namespace, pod.name, "eth0"), taken)
        veth_key = pod_key(pod.namespace, pod.name, "veth")
        veth_mac = pod.host_veth_mac or naming.host_veth_mac or unique_mac(seed, veth_key, taken)
        pod = replace(pod, mac=mac, host_veth=veth, host_veth_mac=veth_mac)
        done.append(replace(step, pod=pod))
    return done


def _bridge_and_tunnel(cni: str) -> tuple[str | None, str]:
    """The CNI's devices with a MAC: its bridge (if it has one) and its tunnel device."""
    devices = NODE_DEVICES[cni]
    return (devices[0], devices[1]) if len(devices) == 2 else (None, devices[0])


def _pod_spec(
    pod: PodDraft,
    node: NodeDraft,
    veth: str,
    seed: int,
    taken: set[str],
    veth_mac: str | None = None,  # the CNI's one MAC for every host veth; None: derived
) -> PodSpec:
    key = pod_key(pod.namespace, pod.name, "eth0")
    veth_key = pod_key(pod.namespace, pod.name, "veth")
    return PodSpec(
        name=pod.name,
        namespace=pod.namespace,
        node=node.name,
        ip=pod.ip,
        mac=pod.mac or unique_mac(seed, key, taken),
        host_veth=veth,
        host_veth_mac=pod.veth_mac or veth_mac or unique_mac(seed, veth_key, taken),
        **pod.details,
    )


def _external_spec(external: ExternalDraft, seed: int, taken: set[str]) -> ExternalSpec:
    mac = external.mac or unique_mac(seed, external_key(external.name), taken)
    return ExternalSpec(external.name, external.ip, mac)
