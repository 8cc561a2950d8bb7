"""Reads the nodes, pods and externals of a topology file into drafts that still miss defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from kpkt.cni import NODE_DEVICES as CNI_DEVICES
from kpkt.derive import MAX_IFNAME
from kpkt.spec import ContainerPort, ContainerSpec
from kpkt.topology.fields import Fields, Report, show

NODE_KEYS = ("name", "ip", "mac", "subnet", "podCIDR", "devices", "pods")
# devices whose MAC a node may set under `devices`: its CNI's
NODE_DEVICES = tuple(dict.fromkeys(d for devices in CNI_DEVICES.values() for d in devices))
POD_KEYS = (
    "name",
    "namespace",
    "ip",
    "mac",
    "hostVeth",
    "labels",
    "hostname",
    "subdomain",
    "ready",
    "resolver",
    "containers",
)
EXTERNAL_KEYS = ("name", "ip", "mac", "subnet")
PORT_KEYS = ("name", "containerPort", "protocol")

_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")
_PORT_NAME = re.compile(r"(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?")


@dataclass(slots=True)
class PodDraft:
    path: str
    name: str
    namespace: str
    ip: IPv4Address | None  # None until IPAM picks one
    mac: str | None
    veth: str | None
    veth_mac: str | None
    details: dict[str, Any]  # the PodSpec fields that need no defaults (labels, hostname, ...)
    paths: dict[str, str] = field(default_factory=dict)  # where a key lives, when not under path

    def at(self, key: str) -> str:
        """The YAML path of the pod's `key` (the CoreDNS pods live under cluster.dns)."""
        return self.paths.get(key) or f"{self.path}.{key}"


@dataclass(slots=True)
class NodeDraft:
    path: str
    name: str
    ip: IPv4Address | None
    pod_cidr: IPv4Network | None
    pod_cidr_failed: bool  # a podCIDR was given but rejected: its pods' addresses go unchecked
    macs: dict[str, str | None]  # "eth0" and each of NODE_DEVICES -> MAC
    pods: list[PodDraft] = field(default_factory=list)
    subnet: str | None = None  # the name of its cluster.underlay.subnets entry, if given


@dataclass(slots=True)
class ExternalDraft:
    path: str
    name: str
    ip: IPv4Address | None
    mac: str | None
    subnet: str | None = None  # the name of its cluster.underlay.subnets entry, if given


def read_nodes(doc: Fields) -> list[NodeDraft]:
    """The nodes with a usable name (the others are reported, and their fields still checked)."""
    entries = doc.entries("nodes")
    if not entries and "nodes" not in doc.failed:
        doc.report.error(
            "nodes", "a topology needs at least one node: add `nodes: [{name: node1}]`"
        )
    nodes = [_read_node(path, value, doc.report) for path, value in entries]
    return [node for node in nodes if node is not None]


def read_externals(doc: Fields) -> list[ExternalDraft]:
    externals = []
    for path, value in doc.entries("externals"):
        f = Fields.check(value, path, doc.report, EXTERNAL_KEYS)
        if f is None:
            continue
        name = f.label("name", required="give every external host a name")
        ip, mac = f.ipv4("ip"), f.mac("mac")
        if name is not None:
            externals.append(ExternalDraft(path, name, ip, mac, f.label("subnet")))
    return externals


def _read_node(path: str, value: Any, report: Report) -> NodeDraft | None:
    f = Fields.check(value, path, report, NODE_KEYS)
    if f is None:
        return None
    name = f.label("name", required="give every node a name")
    ip = f.ipv4("ip")
    pod_cidr = f.network("podCIDR")
    if pod_cidr is not None and pod_cidr.prefixlen > 30:
        f.bad("podCIDR", f"{pod_cidr} is too small: a node needs at least a /30 for its pods")
        pod_cidr = None
    macs = {"eth0": f.mac("mac")} | _device_macs(f)
    pods = [read_pod(pod_path, item, report) for pod_path, item in f.entries("pods")]
    if name is None:
        return None
    failed = "podCIDR" in f.failed
    pods = [p for p in pods if p is not None]
    return NodeDraft(path, name, ip, pod_cidr, failed, macs, pods, f.label("subnet"))


def _device_macs(node: Fields) -> dict[str, str | None]:
    devices = node.child("devices", NODE_DEVICES)
    macs: dict[str, str | None] = {}
    for device in NODE_DEVICES:
        settings = devices.child(device, ("mac",)) if devices else None
        macs[device] = settings.mac("mac") if settings else None
    return macs


def read_pod(path: str, value: Any, report: Report) -> PodDraft | None:
    f = Fields.check(value, path, report, POD_KEYS)
    if f is None:
        return None
    name = f.label("name", required="give every pod a name")
    namespace = f.label("namespace", "default")
    ip, mac = f.ipv4("ip"), f.mac("mac")
    veth = f.child("hostVeth", ("name", "mac"))
    veth_name = interface_name(veth, "name") if veth else None
    veth_mac = veth.mac("mac") if veth else None
    details = {
        "labels": tuple(read_labels(f, "labels")),
        "hostname": f.label("hostname"),
        "subdomain": f.label("subdomain"),
        "ready": f.boolean("ready", True),
        "resolver": f.choice("resolver", ("glibc", "musl"), "glibc"),
        "containers": tuple(_containers(f)),
    }
    if name is None:
        return None
    return PodDraft(path, name, namespace, ip, mac, veth_name, veth_mac, details)


def port_name_problem(name: str) -> str | None:
    """Why `name` is not a container port name (an IANA service name), or None."""
    if _PORT_NAME.fullmatch(name):
        return None
    return (
        f"'{name}' is not a valid port name: up to 15 lowercase letters, digits "
        "and '-', with at least one letter, no '--', starting and ending alphanumeric"
    )


def interface_name(f: Fields, key: str) -> str | None:
    """A Linux interface name: 1 to 15 characters, no '/', ':' or white space, not '.' or '..'."""
    name = f.string(key)
    if name is None:
        return None
    if not 0 < len(name) <= MAX_IFNAME or name in (".", "..") or re.search(r"[/:\s]", name):
        f.bad(
            key,
            f"{show(name)} is not a Linux interface name: use 1 to 15 characters "
            "without '/', ':' or spaces",
        )
        return None
    return name


def read_labels(f: Fields, key: str) -> list[tuple[str, str]]:
    """The Kubernetes labels (or label selector) under `key`, each key and value checked."""
    labels = f.string_map(key)
    for name, value in labels:
        where = f"{key}.{name}"
        if not _LABEL_KEY.fullmatch(name):
            f.bad(
                where,
                f"'{name}' is not a valid label key: a name of up to 63 letters, "
                "digits, '-', '_' or '.', optionally after a DNS prefix and '/'",
            )
        elif not _LABEL_VALUE.fullmatch(value):
            f.bad(
                where,
                f"'{value}' is not a valid label value: up to 63 letters, digits, "
                "'-', '_' or '.', starting and ending with a letter or digit",
            )
    return labels


def _containers(pod: Fields) -> list[ContainerSpec]:
    containers: list[ContainerSpec] = []
    seen: dict[str, str] = {}
    for path, value in pod.entries("containers"):
        f = Fields.check(value, path, pod.report, ("name", "ports"))
        if f is None:
            continue
        name = f.label("name", required="give every container a name")
        ports = [port for p_path, item in f.entries("ports") if (port := _port(p_path, item, f))]
        if name in seen:
            f.bad("name", f"duplicate container name '{name}': already used at {seen[name]}")
        elif name is not None:
            seen[name] = f.at("name")
            containers.append(ContainerSpec(name, tuple(ports)))
    return containers


def _port(path: str, value: Any, container: Fields) -> ContainerPort | None:
    f = Fields.check(value, path, container.report, PORT_KEYS)
    if f is None:
        return None
    name = f.string("name")
    if name is not None and (problem := port_name_problem(name)):
        f.bad("name", problem)
    number = f.integer("containerPort", 1, 65535, required="give the port number")
    protocol = f.choice("protocol", ("TCP", "UDP"), "TCP")
    return ContainerPort(name, number, protocol) if number is not None else None
