"""Reads the traffic steps of a topology file, resolving the names in `from:` and `to:`."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import yaml

from kpkt.cni import RANGE_IPAM
from kpkt.net.drops import REASONS
from kpkt.outcome import KIND_OUTCOMES
from kpkt.spec import (
    DEFAULT_RESPONSE,
    NS_PER_SECOND,
    PROBE_PROTOCOLS,
    SCTP_NOT_MODELLED,
    ClusterSpec,
    CreateStep,
    DeleteStep,
    DnsStep,
    Expectation,
    HostRef,
    Impairment,
    ImpairStep,
    LabelStep,
    LinkStep,
    PingStep,
    PodSpec,
    ProbeStep,
    RestartStep,
    ServiceSpec,
    Step,
    TcpStep,
    UdpStep,
)
from kpkt.topology.fields import Fields, Report, did_you_mean, dns_name_problem, show, unknown_key
from kpkt.topology.hosts import NodeDraft, interface_name, read_labels, read_pod
from kpkt.topology.ipam import HostLocal, bridge_addresses, pod_ip_problem
from kpkt.topology.limits import MAX_COUNT, MAX_SECONDS, check_run_length
from kpkt.topology.packet_step import PACKET_KEYS, read_packet
from kpkt.topology.service_names import ServiceNames

UDP_KEYS = ("from", "to", "sport", "dport", "payload", "payloadHex")
UDP_KEYS += ("count", "interval", "listen", "at", "ttl", "expect")
PING_KEYS = ("from", "to", "id", "seq", "count", "interval", "size", "at", "ttl", "expect")
TCP_KEYS = ("from", "to", "sport", "dport", "payload", "payloadHex", "response", "listen", "at")
TCP_KEYS += ("expect",)
DNS_KEYS = ("from", "name", "type", "at", "expect")
WHERE_KEYS = ("node", "pod", "interface")
LINK_KEYS = (*WHERE_KEYS, "state", "at")
IMPAIR_KEYS = (*WHERE_KEYS, "loss", "delay", "jitter", "duplicate", "reorder", "corrupt")
IMPAIR_KEYS += ("clear", "at")
RESTART_KEYS = ("pod", "container", "at")
DELETE_KEYS = ("pod", "at")
CREATE_KEYS = ("pod", "node", "at")
LABEL_KEYS = ("pod", "namespace", "set", "remove", "at")
IMPAIR_PERCENTS = ("loss", "duplicate", "reorder", "corrupt")
POD_INTERFACE = "eth0"  # what link and impair steps may name in a pod (a node: its devices)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
PROBE_KEYS = ("from", "to", "port", "protocol", "at", "expect")
QUERY_TYPES = ("A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "NS", "SOA", "ANY")
MAX_TCP_DATA = 1 << 20
HEADERS = 28  # IPv4 header + UDP header, or IPv4 header + ICMP echo header
MAX_PAYLOAD = 65535 - HEADERS
LOOPBACK = IPv4Network("127.0.0.0/8")
LOOPBACK_MTU = 65536
_ADDRESS = re.compile(r"\d+(\.\d+){3}")


@dataclass(frozen=True, slots=True)
class Host:
    """A pod, node or external host that steps may name, with the addresses it owns."""

    ref: HostRef
    ip: IPv4Address | None  # None when an earlier problem left it without one
    also: tuple[IPv4Address, ...] = ()  # a node's addresses in its podCIDR (.1, .0)
    containers: tuple[str, ...] = ()  # a pod's containers, by name
    node: str | None = None  # the node a pod runs on


class Directory:
    """Everything a step may name, and the checks that need the whole cluster."""

    def __init__(
        self,
        hosts: Iterable[Host],
        cluster: ClusterSpec,
        services: ServiceNames,
        report: Report,
        dns_on: bool = False,
        nodes: Iterable[NodeDraft] = (),
    ):
        self.cluster, self.services, self.report, self.dns_on = cluster, services, report, dns_on
        self.named: dict[str, Host] = {}  # nodes and externals by name, pods as `ns/name`
        self.pods: dict[str, list[Host]] = defaultdict(list)  # pods by bare name
        self.kinds: set[str] = set()
        self.deleted: dict[str, str] = {}  # pods deleted by a step so far: owner -> its path
        self.namespaces: list[str] = []  # where pods run, in order
        for host in hosts:  # a duplicate name (reported already) keeps its first host
            ref = host.ref
            self.kinds.add(ref.kind)
            key = f"{ref.namespace}/{ref.name}" if ref.kind == "pod" else ref.name
            if key not in self.named:
                self.named[key] = host
                if ref.kind == "pod":
                    self.pods[ref.name].append(host)
                    if ref.namespace not in self.namespaces:
                        self.namespaces.append(ref.namespace)
        self.owners = {
            ip: self.step_name(host) for host in self.named.values() for ip in _ips(host)
        }
        self.nodes = {node.name: node for node in nodes if node.pod_cidr is not None}
        # each node's host-local IPAM, for the pods `create` steps make
        self.ipam = {
            node.name: HostLocal(node.pod_cidr, [pod.ip for pod in node.pods if pod.ip])
            for node in self.nodes.values()
        }
        # the cluster range a `create` step's pod address is checked against (RANGE_IPAM)
        self.pool = cluster.pod_cidr if cluster.cni in RANGE_IPAM else None
        self.bridges = bridge_addresses(self.nodes.values())

    def holders(self, node: str) -> dict[str, HostLocal]:
        """The IPAM of the nodes whose pods' addresses a pod made on `node` may not take: its
        own, and under RANGE_IPAM every node's (their pods hold addresses of the whole range)."""
        return self.ipam if self.pool is not None else {node: self.ipam[node]}

    def deleted_pod(self, host: Host, path: str) -> None:
        """A `delete` step at `path` removed the pod: it sends nothing more, and IPAM frees its
        address."""
        self.deleted[host.ref.owner] = path
        if host.node in self.ipam and host.ip is not None:
            self.ipam[host.node].release(host.ip)

    def created_pod(self, host: Host) -> None:
        """A `create` step made the pod: later steps find it by its name and its address."""
        ref = host.ref
        self.named[f"{ref.namespace}/{ref.name}"] = host
        same = self.pods[ref.name]
        same[:] = [other for other in same if other.ref.namespace != ref.namespace] + [host]
        self.deleted.pop(ref.owner, None)
        if ref.namespace not in self.namespaces:
            self.namespaces.append(ref.namespace)
        self.owners[host.ip] = self.step_name(host)

    def step_name(self, host: Host) -> str:
        """How a step names `host`: a pod by its bare name when that is unique."""
        ref = host.ref
        if ref.kind == "pod" and len(self.pods[ref.name]) > 1:
            return f"{ref.namespace}/{ref.name}"
        return ref.name

    def sender(self, f: Fields) -> HostRef | None:
        name = f.string("from", required="name the pod, node or external host that sends")
        if name is None:
            return None
        if ":" in name:
            f.bad("from", f"'{name}': the sender takes no port here (a udp step has sport)")
        elif _ADDRESS.fullmatch(name):
            owner = self.owners.get(_address(name))
            hint = f" ({name} is '{owner}')" if owner else ""
            f.bad("from", f"expected the name of a pod, node or external host, not {name}{hint}")
        elif host := self.find(name, f, "from"):
            if deleted := self.deleted.get(host.ref.owner):
                f.bad("from", f"'{name}' was deleted by {deleted}: it sends nothing any more")
                return None
            return host.ref
        return None

    def receiver(self, f: Fields, src: HostRef | None) -> tuple[IPv4Address | None, str | None]:
        """The destination address `to:` names, and the text after its colon, if any."""
        text = f.string("to", required="name a pod, node, external host, address or localhost")
        if text is None:
            return None, None
        name, colon, port = text.rpartition(":")
        if not colon:
            name, port = text, None
        if name == "localhost" or _ADDRESS.fullmatch(name):
            return self._address(name, f, src), port
        namespace = src.namespace if src is not None and src.kind == "pod" else "default"
        service = self.services.find(name, namespace)
        if name not in self.named and name not in self.pods:
            if service is None:
                f.bad("to", self._unknown(name, namespace))
                return None, port
            return self.cluster_ip(service, name, f), port
        host = self.find(name, f, "to")
        if host and service:
            self.report.warn(
                f.at("to"),
                f"'{name}' is both a {host.ref.kind} and a service: this means the "
                f"{host.ref.kind}; write '{service.name}.{service.namespace}' for the service",
            )
        return (host.ip if host else None), port

    def check_fits(self, f: Fields, key: str, size: int, src: HostRef, dst: IPv4Address) -> None:
        """Report a payload of `size` bytes that does not fit in one packet on its way to `dst`."""
        if dst in LOOPBACK:
            where, mtu = "loopback MTU", LOOPBACK_MTU
        elif src.kind == "pod" or dst in self.cluster.pod_cidr or dst in self.cluster.service_cidr:
            where, mtu = "pod MTU", self.cluster.pod_mtu
        else:
            where, mtu = "underlay MTU", self.cluster.underlay_mtu
        room = min(mtu - HEADERS, MAX_PAYLOAD)
        if size > room:
            f.bad(
                key,
                f"{size} bytes do not fit the {where} {mtu}: at most {room} bytes fit after "
                f"the {HEADERS} bytes of headers",
            )

    def _address(self, name: str, f: Fields, src: HostRef | None) -> IPv4Address | None:
        ip = IPv4Address("127.0.0.1") if name == "localhost" else _address(name)
        if ip is None:
            f.bad("to", f"'{name}' is not an IPv4 address")
        elif ip in LOOPBACK:
            if src is not None and src.kind == "external":
                f.bad("to", f"{name} is the sender's own loopback: only pods and nodes have one")
                return None
        elif ip not in self.owners and ip not in self.services.addresses:
            self.report.warn(f.at("to"), f"no pod, node or external host has {ip}: nothing answers")
        return ip

    def find(self, name: str, f: Fields, key: str) -> Host | None:
        """The host `name` stands for, or None with the problem reported at `key`."""
        host, pods = self.named.get(name), self.pods.get(name, [])
        if host and pods:
            kind = host.ref.kind
            self.report.warn(
                f.at(key),
                f"'{name}' is both a {kind} and a pod: this means the {kind}; write "
                f"'{pods[0].ref.namespace}/{name}' for the pod",
            )
        if host or len(pods) == 1:
            return host or pods[0]
        if pods:
            choices = ", ".join(f"{pod.ref.namespace}/{name}" for pod in pods)
            f.bad(key, f"'{name}' is a pod in several namespaces: write one of {choices}")
        else:
            f.bad(key, self._unknown(name))
        return None

    def cluster_ip(self, service: ServiceSpec, name: str, f: Fields) -> IPv4Address | None:
        """The cluster IP a step sends to when it names `service` (kube-proxy does the rest)."""
        if service.type == "ExternalName":
            f.bad(
                "to",
                f"'{name}' is ExternalName service {service.key} (an alias of "
                f"{service.external_name}): it has no cluster IP; look it up with a dns step",
            )
        elif service.key in self.services.headless:
            f.bad(
                "to",
                f"'{name}' is headless service {service.key}: a headless service has no cluster "
                "IP; name one of its pods, or look it up with a dns step",
            )
        return service.cluster_ip

    def _unknown(self, name: str, namespace: str | None = None) -> str:
        """Why nothing is called `name`; `namespace` (where a bare service name would live) is
        given for a receiver, which may be a service."""
        if namespace is None and self.services.find(name, "default"):
            return f"'{name}' is a service, which sends nothing: name a pod, node or external host"
        kinds = ["pod", "node", *(["external host"] if "external" in self.kinds else [])]
        choices = [*self.pods, *self.named]
        if namespace is not None and "/" not in name:
            kinds.append("service")
            choices += self.services.names(namespace)
        hint = did_you_mean(name, choices)
        if (
            not hint
            and namespace is not None
            and (others := self.services.elsewhere(name, namespace))
        ):
            hint = f" (a service in another namespace: write {' or '.join(others)})"
        return f"no {', '.join(kinds[:-1])} or {kinds[-1]} named '{name}'{hint}"


def read_traffic(doc: Fields, directory: Directory) -> list[Step]:
    """The steps under `traffic:`, in order (the bad ones are reported and left out)."""
    steps = []
    for path, item in doc.entries("traffic"):
        step = _read_step(path, item, directory, doc.report)
        if step is not None:
            steps.append((path, step))
    check_run_length(steps, doc.report)
    return [step for _, step in steps]


def _read_step(path: str, item: Any, directory: Directory, report: Report) -> Step | None:
    if not isinstance(item, dict) or len(item) != 1:
        report.error(path, f"expected one `udp:` or `ping:` mapping, got {_describe(item)}")
        return None
    [(kind, body)] = item.items()
    kind = str(kind)
    at = f"{path}.{kind}"
    if kind not in READERS:
        report.error(at, unknown_key(kind, READERS))
        return None
    keys, reader = READERS[kind]
    f = Fields.check(body, at, report, keys)
    if f is None:
        return None
    traffic = {key: value for key, value in body.items() if key != "expect"}
    step = reader(f, f"{kind}: {_flow(traffic)}", directory)
    expect = _expect(f, kind)
    return dataclasses.replace(step, expect=expect) if step and expect else step


def _expect(f: Fields, kind: str) -> Expectation | None:
    """`expect:` an outcome word, a drop reason, or `{outcome: word, drop: reason}`."""
    value = f.get("expect")
    outcomes = KIND_OUTCOMES[kind]
    if value is None:
        return None
    if isinstance(value, dict):
        inner = Fields.check(value, f.at("expect"), f.report, ("outcome", "drop"))
        outcome, drop = _word(inner, "outcome", outcomes), _word(inner, "drop", tuple(REASONS))
        if not value:
            f.bad("expect", "an empty mapping: give outcome, drop or both")
        return Expectation(outcome, drop) if (outcome or drop) and not inner.failed else None
    if isinstance(value, str) and value in outcomes:
        return Expectation(outcome=value)
    if isinstance(value, str) and value in REASONS:
        return Expectation(drop=value)
    hint = did_you_mean(value, (*outcomes, *REASONS)) if isinstance(value, str) else ""
    f.bad(
        "expect",
        f"{show(value)} is neither an outcome of a {kind} step ({', '.join(outcomes)}) nor a "
        f"drop reason ({', '.join(REASONS)}){hint}; or write {{outcome: ..., drop: ...}}",
    )
    return None


def _read_udp(f: Fields, text: str, directory: Directory) -> UdpStep | None:
    src = directory.sender(f)
    dst, port_text = directory.receiver(f, src)
    dport = _dport(f, port_text)
    payload = _payload(f)
    sport = f.integer("sport", 1, 65535)
    count = f.integer("count", 1, MAX_COUNT, default=1)
    interval_ns = f.duration("interval", 1_000_000, MAX_SECONDS)
    listen = f.boolean("listen", True)
    at_ns = f.duration("at", None, MAX_SECONDS)
    ttl = f.integer("ttl", 1, 255, 64)
    if src is None or dst is None or dport is None or payload is None:
        return None
    key, data = payload
    directory.check_fits(f, key, len(data), src, dst)
    return UdpStep(text, src, dst, sport, dport, data, count, interval_ns, listen, at_ns, ttl)


def _read_ping(f: Fields, text: str, directory: Directory) -> PingStep | None:
    src = directory.sender(f)
    dst, port_text = directory.receiver(f, src)
    if port_text is not None:
        f.bad("to", f"ping has no ports: remove ':{port_text}'")
    ident = f.integer("id", 0, 65535)
    seq = f.integer("seq", 0, 65535, 1)
    count = f.integer("count", 1, MAX_COUNT, default=1)
    interval_ns = f.duration("interval", NS_PER_SECOND, MAX_SECONDS)
    size = f.integer("size", 0, MAX_PAYLOAD, 56)
    at_ns = f.duration("at", None, MAX_SECONDS)
    ttl = f.integer("ttl", 1, 255, 64)
    if src is None or dst is None or port_text is not None:
        return None
    directory.check_fits(f, "size", size, src, dst)
    return PingStep(text, src, dst, ident, seq, count, interval_ns, size, at_ns, ttl)


def _read_tcp(f: Fields, text: str, directory: Directory) -> TcpStep | None:
    src = directory.sender(f)
    dst, port_text = directory.receiver(f, src)
    dport = _dport(f, port_text)
    payload = _payload(f)
    response = f.string("response", DEFAULT_RESPONSE.decode())
    sport = f.integer("sport", 1, 65535)
    listen = f.boolean("listen", True)
    at_ns = f.duration("at", None, MAX_SECONDS)
    if src is None or dst is None or dport is None or payload is None or response is None:
        return None
    for key, size in (("payload", len(payload[1])), ("response", len(response.encode()))):
        if size > MAX_TCP_DATA:
            f.bad(key, f"{size} bytes is more than kpkt sends in one step ({MAX_TCP_DATA})")
            return None
    return TcpStep(text, src, dst, sport, dport, payload[1], response.encode(), listen, at_ns)


def _read_dns(f: Fields, text: str, directory: Directory) -> DnsStep | None:
    src = directory.sender(f)
    if src is not None and src.kind != "pod":
        f.bad(
            "from",
            f"dns steps run a pod's stub resolver: name a pod ('{f.get('from')}' is "
            f"{'a node' if src.kind == 'node' else 'an external host'})",
        )
        src = None
    name = f.string("name", required="name what to look up, like web or web.default.svc")
    if name is not None and (problem := dns_name_problem(name)):
        f.bad("name", problem)
    qtype = f.string("type")
    if qtype is not None and qtype.upper() not in QUERY_TYPES:
        hint = did_you_mean(qtype, QUERY_TYPES)
        f.bad(
            "type",
            f"{show(qtype)} is not one of: {', '.join(QUERY_TYPES)}{hint}; or leave type out "
            "to look up A and AAAA as getaddrinfo does",
        )
    at_ns = f.duration("at", None, MAX_SECONDS)
    if not directory.dns_on:
        f.report.error(
            f.path,
            "cluster DNS is off (cluster.dns.enabled: false): remove `enabled: false`, or the "
            "dns step",
        )
        return None
    if src is None or name is None or f.failed:
        return None
    return DnsStep(text, src, name, qtype.upper() if qtype else None, at_ns)


def _read_link(f: Fields, text: str, directory: Directory) -> LinkStep | None:
    target, interface = _where(f, directory)
    state = f.string("state", required="say down or up")
    if state is not None and state not in ("down", "up"):
        f.bad("state", f"{show(state)} is not one of: down, up")
    at_ns = f.duration("at", None, MAX_SECONDS)
    if target is None or interface is None or state not in ("down", "up"):
        return None
    return LinkStep(text, target, interface, state == "up", at_ns)


def _read_impair(f: Fields, text: str, directory: Directory) -> ImpairStep | None:
    target, interface = _where(f, directory)
    at_ns = f.duration("at", None, MAX_SECONDS)
    percents = {key: _percent(f, key) for key in IMPAIR_PERCENTS}
    delay_ns = f.duration("delay", 0, MAX_SECONDS)
    jitter_ns = f.duration("jitter", 0, MAX_SECONDS)
    clear = f.boolean("clear", False)
    given = [key for key in IMPAIR_KEYS if key not in (*WHERE_KEYS, "at", "clear") and f.given(key)]
    if clear and given:
        f.bad("clear", f"clear removes the impairment: give it alone, without {', '.join(given)}")
    elif not clear and not given:
        f.report.error(
            f.path,
            "nothing to impair: give loss, delay, jitter, duplicate, reorder or corrupt, "
            "or clear: true",
        )
        return None
    if jitter_ns and not delay_ns:
        f.bad("jitter", "jitter varies the delay: give delay too (as tc's netem needs)")
    if percents["reorder"] and not delay_ns:
        f.bad("reorder", "a reordered packet skips the delay: give delay too (as tc's netem needs)")
    if target is None or interface is None or f.failed:
        return None
    impairment = None if clear else Impairment(delay_ns=delay_ns, jitter_ns=jitter_ns, **percents)
    return ImpairStep(text, target, interface, impairment, at_ns)


def _read_restart(f: Fields, text: str, directory: Directory) -> RestartStep | None:
    host = _pod(f, directory, "name the pod whose container restarts")
    name = f.get("pod")
    container = f.string("container")
    if host is not None and container is not None and container not in host.containers:
        names = ", ".join(host.containers) or "none (the pod lists no containers)"
        f.bad("container", f"'{container}' is not a container of '{name}': it has {names}")
    at_ns = f.duration("at", None, MAX_SECONDS)
    if host is None or f.failed:
        return None
    return RestartStep(text, host.ref, container, at_ns)


def _read_delete(f: Fields, text: str, directory: Directory) -> DeleteStep | None:
    host = _pod(f, directory, "name the pod to delete")
    at_ns = f.duration("at", None, MAX_SECONDS)
    if host is None or f.failed:
        return None
    directory.deleted_pod(host, f.path)
    return DeleteStep(text, host.ref, at_ns)


def _read_create(f: Fields, text: str, directory: Directory) -> CreateStep | None:
    """The pod under `pod:` (a pod as `nodes[].pods` lists them) on the node `node:` names,
    its address from the node's IPAM unless it gives one. Its MACs and host veth are the
    loader's (kpkt/topology/load.py), once every pod of the topology has its own."""
    node_name = f.string("node", required="name the node the pod is scheduled to")
    body = f.get("pod", required="give the pod, as nodes[].pods lists one: {name: web-c, ...}")
    at_ns = f.duration("at", None, MAX_SECONDS)
    draft = read_pod(f.at("pod"), body, f.report) if body is not None else None
    node = None
    if node_name is not None:
        node = directory.nodes.get(node_name)
        host = directory.named.get(node_name)
        if node is None and host is not None and host.ref.kind == "node":
            return None  # a node without a usable podCIDR: reported already
        if node is None:
            hint = did_you_mean(node_name, list(directory.nodes))
            f.bad("node", f"no node named '{node_name}'{hint}")
    if draft is None or node is None or f.failed:
        return None
    key = f"{draft.namespace}/{draft.name}"
    running = directory.named.get(key)
    if running is not None and running.ref.owner not in directory.deleted:
        f.bad(
            "pod",
            f"pod {key} already runs on {running.node}: delete it first (a step "
            "`delete: {pod: " + directory.step_name(running) + "}`), or give another name",
        )
        return None
    ipam = directory.ipam[node.name]
    if draft.ip is not None:
        problem = pod_ip_problem(draft.ip, node, directory.pool, directory.bridges)
        holders = directory.holders(node.name)
        owner = next((name for name, local in holders.items() if draft.ip in local.in_use), None)
        if problem is None and owner is not None:
            problem = f"{draft.ip} is in use on {owner}"
        if problem:
            f.bad("pod.ip", problem)
            return None
        ipam.reserve(draft.ip)
        ip = draft.ip
    else:
        others = [local.in_use for local in directory.holders(node.name).values()]
        ip = ipam.allocate(set().union(*others))
        if ip is None:
            f.bad("pod", f"no free address left in {node.name}'s podCIDR {node.pod_cidr}")
            return None
    containers = tuple(c.name for c in draft.details["containers"])
    ref = HostRef("pod", draft.name, draft.namespace)
    directory.created_pod(Host(ref, ip, (), containers, node.name))
    # the MACs and the host veth's name: the loader's, once the topology's pods have theirs
    pod = PodSpec(
        draft.name,
        draft.namespace,
        node.name,
        ip,
        draft.mac or "",
        draft.veth or "",
        draft.veth_mac or "",
        **draft.details,
    )
    return CreateStep(text, pod, at_ns)


def _read_label(f: Fields, text: str, directory: Directory) -> LabelStep | None:
    pod, namespace = None, f.string("namespace")
    if f.given("pod") == f.given("namespace"):
        f.report.error(f.path, "name the pod (pod:) or the namespace (namespace:) to label")
        return None
    if f.given("pod"):
        host = _pod(f, directory, "name the pod to label")
        if host is None:
            return None
        pod, namespace = host.ref, host.ref.namespace
    elif namespace not in directory.namespaces:
        hint = did_you_mean(namespace, directory.namespaces)
        f.bad("namespace", f"no pod runs in namespace '{namespace}'{hint}")
    labels = tuple(read_labels(f, "set"))
    remove = f.get("remove")
    if remove is None:
        remove = []
    elif not isinstance(remove, list) or not all(isinstance(key, str) for key in remove):
        f.bad("remove", f"expected a list of label keys, got {show(remove)}")
    if not labels and not remove:
        f.report.error(f.path, "nothing to change: give labels to set, or keys to remove")
    at_ns = f.duration("at", None, MAX_SECONDS)
    if f.failed or (not labels and not remove):
        return None
    return LabelStep(text, pod, namespace, labels, tuple(remove), at_ns)


def _pod(f: Fields, directory: Directory, required: str) -> Host | None:
    """The pod under `pod:` that a lifecycle step names (one still running)."""
    name = f.string("pod", required=required)
    host = directory.find(name, f, "pod") if name is not None else None
    if host is not None and host.ref.kind != "pod":
        f.bad("pod", f"'{name}' is a {host.ref.kind}, not a pod")
        return None
    if host is not None and (deleted := directory.deleted.get(host.ref.owner)):
        f.bad("pod", f"'{name}' was deleted by {deleted}")
        return None
    return host


def _where(f: Fields, directory: Directory) -> tuple[HostRef | None, str | None]:
    """The pod or node (`pod:` or `node:`) and the interface a fault step names."""
    if f.given("node") == f.given("pod"):
        f.report.error(f.path, "name the pod (pod:) or the node (node:) the interface is in")
        return None, f.string("interface")
    key = "node" if f.given("node") else "pod"
    name = f.string(key)
    host = directory.find(name, f, key) if name is not None else None
    if host is not None and host.ref.kind != key:
        f.bad(key, f"'{name}' is a {host.ref.kind}, not a {key}")
        host = None
    if not f.given("interface"):
        f.bad("interface", "required: eth0, or another interface of the node (cni0, a host veth)")
        return (host.ref if host else None), None
    interface = interface_name(f, "interface")
    if key == "pod" and interface not in (None, POD_INTERFACE):
        f.bad(
            "interface",
            f"{show(interface)}: a pod's interface is {POD_INTERFACE} (its other end is the host "
            "veth on the node: name that with `node:` and the veth's name)",
        )
        interface = None
    # a node's interfaces are the CNI's: the builder checks them (kpkt/build.py)
    return (host.ref if host else None), interface


def _percent(f: Fields, key: str) -> float:
    """A probability written as a percentage (`5%`, `0.1%`), as a fraction from 0 to 1."""
    value = f.get(key)
    if value is None:
        return 0.0
    match = _PERCENT.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or float(match[1]) > 100:
        f.bad(key, f"expected a percentage from 0% to 100% like 5% or 0.1%, got {show(value)}")
        return 0.0
    return float(match[1]) / 100


def _read_probe(f: Fields, text: str, directory: Directory) -> ProbeStep | None:
    """`from`: a pod (`ns/pod`), a node (`node/<name>`) or an external host; `to`: a pod, a
    node, an external host, an address or a service's cluster IP (`service/<ns>/<name>`)."""
    src = directory.sender(_without_prefix(f, "from", "node/"))
    target = f.string("to", required="name a pod (ns/pod), service/<ns>/<name>, node or host")
    port = f.integer("port", 1, 65535, required="give the port to connect to")
    if f.get("protocol") == "SCTP":  # valid in a NetworkPolicy, but no probe can send it
        f.bad("protocol", f"{SCTP_NOT_MODELLED}: probe with TCP or UDP")
        return None
    protocol = f.choice("protocol", PROBE_PROTOCOLS, "TCP")
    at_ns = f.duration("at", None, MAX_SECONDS)
    dst = None
    if target is not None and target.startswith("service/"):
        namespace, _, name = target.removeprefix("service/").partition("/")
        service = directory.services.find(f"{name}.{namespace}", namespace) if name else None
        if service is None:
            f.bad(
                "to", f"no service '{target.removeprefix('service/')}': write service/<ns>/<name>"
            )
        else:
            dst = directory.cluster_ip(service, name, f)
    elif target is not None:
        dst, port_text = directory.receiver(_without_prefix(f, "to", "node/"), src)
        if port_text is not None:
            f.bad("to", f"give the port in `port`, not after a colon ('{target}')")
            return None
    if src is None or dst is None or port is None or f.failed:
        return None
    return ProbeStep(text, src, dst, port, protocol, target, at_ns)


def _without_prefix(f: Fields, key: str, prefix: str) -> Fields:
    """`f` with `prefix` taken off the string under `key` (`node/node1` is node1)."""
    value = f.get(key)
    if not isinstance(value, str) or not value.startswith(prefix):
        return f
    return Fields({**f.data, key: value.removeprefix(prefix)}, f.path, f.report, f.failed)


def _word(f: Fields, key: str, words: tuple[str, ...]) -> str | None:
    """The word under `key`, one of `words`, or None (a wrong one is reported)."""
    value = f.string(key)
    if value is not None and value not in words:
        f.bad(key, f"{show(value)} is not one of: {', '.join(words)}{did_you_mean(value, words)}")
        return None
    return value


READERS: dict[str, tuple[tuple[str, ...], Callable[[Fields, str, Directory], Step | None]]] = {
    "udp": (UDP_KEYS, _read_udp),
    "ping": (PING_KEYS, _read_ping),
    "tcp": (TCP_KEYS, _read_tcp),
    "dns": (DNS_KEYS, _read_dns),
    "packet": (PACKET_KEYS, read_packet),
    "link": (LINK_KEYS, _read_link),
    "impair": (IMPAIR_KEYS, _read_impair),
    "restart": (RESTART_KEYS, _read_restart),
    "delete": (DELETE_KEYS, _read_delete),
    "create": (CREATE_KEYS, _read_create),
    "label": (LABEL_KEYS, _read_label),
    "probe": (PROBE_KEYS, _read_probe),
}


def _dport(f: Fields, port_text: str | None) -> int | None:
    """The destination port from `dport:` or from `to:` after its colon; they must agree."""
    in_to = _port(f, port_text)
    dport = f.integer("dport", 1, 65535)
    if dport is not None and in_to is not None and dport != in_to:
        f.bad("dport", f"{dport} disagrees with the port {in_to} in `to`; keep one of them")
        return None
    if port_text is None and not f.given("dport"):
        f.bad("dport", "required; give dport, or the port in `to` (like pod-b:5000)")
    return in_to if dport is None else dport


def _port(f: Fields, text: str | None) -> int | None:
    if text is None:
        return None
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    f.bad("to", f"'{text}' after the colon is not a port from 1 to 65535")
    return None


def _payload(f: Fields) -> tuple[str, bytes] | None:
    """The UDP payload and the key it came from: `payload` (UTF-8 text) or `payloadHex`."""
    if f.given("payloadHex"):
        if f.given("payload"):
            f.bad("payloadHex", "give payload or payloadHex, not both")
            return None
        text = f.string("payloadHex")
        try:
            return ("payloadHex", bytes.fromhex(text)) if text is not None else None
        except ValueError:
            f.bad("payloadHex", f"{show(text)} is not hex: write pairs of hex digits like 4b52")
            return None
    text = f.string("payload", "")
    try:
        return ("payload", text.encode()) if text is not None else None
    except UnicodeEncodeError:
        f.bad("payload", "is not valid text: it holds a lone UTF-16 surrogate")
        return None


def _flow(body: dict[Any, Any]) -> str:
    """The step as written, on one line: `{from: pod-a, to: pod-b, dport: 5000}`, as
    yaml.safe_dump writes it in flow style; the common case, names and numbers that need no
    quotes, without it (a 10,000-step file spent most of its loading time in PyYAML's emitter)."""
    pairs = []
    for key, value in body.items():
        key, value = _plain(key), _plain(value)
        if key is None or value is None:
            text = yaml.safe_dump(
                body, default_flow_style=True, width=2**31 - 1, sort_keys=False, allow_unicode=True
            )
            return text.strip()
        pairs.append(f"{key}: {value}")
    return "{" + ", ".join(pairs) + "}"


def _plain(value: Any) -> str | None:
    """How yaml.safe_dump writes `value` in a flow mapping when it is an int, or a string it
    writes unquoted (_plain_string); None for anything else, or too long to be a simple key
    (PyYAML counts the 5 characters of a `!!str` or `!!int` tag it does not write)."""
    if type(value) is str:
        return _plain_string(value)
    if type(value) is int:
        text = str(value)
        return text if len(text) < 128 - 5 else None
    return None


@functools.lru_cache(maxsize=4096)  # a step's keys come in every step
def _plain_string(text: str) -> str | None:
    """`text` when yaml.safe_dump writes it unquoted, as a simple key: a name of letters, digits
    and `._/-` that reads back as a string (not `yes`, `null`, `1_000` or `12:30`), shorter
    than 128 characters with a `!!str` tag; else None."""
    if (
        _NAME.match(text)
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR
        and len(text) < 128 - 5
    ):
        return text
    return None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
_RESOLVER = yaml.resolver.Resolver()  # the resolver of yaml.SafeDumper
_STR = "tag:yaml.org,2002:str"


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        return "keys " + ", ".join(map(str, item)) if item else "an empty mapping"
    return show(item)


def _address(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _ips(host: Host) -> list[IPv4Address]:
    return [ip for ip in (host.ip, *host.also) if ip is not None]
