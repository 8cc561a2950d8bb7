"""The CNI seam: where a CNI plugin plugs into kpkt, and the registry of the CNIs there are.

`kpkt/build.py` builds what every cluster has whatever its CNI: the namespaces, each node's
`eth0` on the node network and its underlay routes, each pod's namespace with its `eth0`,
kube-proxy's rules, conntrack and the applications. Everything else is the CNI's, in one module
per CNI (`kpkt/cni/<name>.py`) made of generic kernel models from `kpkt/net/` (veth, bridge,
VXLAN, ...), which carry no CNI's name. A CNI module defines `Plugin`, which the builder makes
once per network, `Plugin(builder)`, and calls in this order:

- `masquerade(node) -> MasqPolicy`: the node's source-NAT policy for traffic no kube-proxy rule
  marked (flannel's FLANNEL-POSTRTG, Calico's natOutgoing): `kpkt.net.nat.MasqPolicy`, rules
  matched first-match-wins on the addresses after DNAT.
- `node(node, stack, eth0)`: after the node's namespace and `eth0` (addressed) exist: the
  node's CNI devices (bridge, tunnel device), their addresses, the routes to its own pods, its
  sysctls. The builder adds the underlay routes right after.
- `pod(pod, node, stack, eth0)`: after the pod's namespace and its `eth0` exist (not yet
  addressed): the host side of the pod's interface in the node's namespace `stack` (a veth
  joined to `eth0`, a bridge port or proxy ARP), the pod's address and its routes.
- `peers(node)`: once every node exists: what the node learns of the others (routes, permanent
  neighbour and FDB entries, tunnel endpoints).
- `attached(pod, eth0) -> int`, only where the CNI has something to do then: after a pod a
  `create` step makes mid-run went through `pod()` and its `eth0` came up (weave's gratuitous
  ARP); how long after that the plugin's ADD returns, in nanoseconds.
- `detached(ip)`, only where the CNI keeps state of its own about a pod: a deleted pod's
  address (Cilium's endpoint map). The builder removes the namespace, the veth pair and what
  the kernel removes with them (bridge port, routes, neighbours).
- `relabeled(step)`, only where the CNI keeps state of its own about labels: a `label` step
  (`kpkt.spec.LabelStep`), as the policies see it (Cilium's security identities).

A pod created mid-run goes through the same `pod()`; what the kernel does as its veth comes up
is the builder's (a bridge port disabled until its carrier is seen, `arp_notify`'s gratuitous
ARP where `pod()` set the sysctl).

`Plugin.describe(cluster, node) -> str` (a static method) names the node's CNI devices with
their addresses and MACs for `kpkt validate`.

The plugin makes its devices through the builder's device kit (`kpkt.build`): `builder.veth(stack,
name, mac, mtu, kind, node, delay_ns=None, what=None)`, `builder.capture(dev, kind, node, mac,
what=None)` (the device's capture point; `what` overrides how all.pcapng describes the kind),
`builder.pair(a, b)`,
`builder.address(stack, dev, ip, prefixlen)` (an address the network routes to its namespace),
and reads `builder.cluster`, `builder.topo` (the nodes), `builder.net` (the namespaces by name)
and `builder.flow_hash_key` (the seed's key for tunnels' flow-hash source ports).

What the topology loader must know of a CNI without building anything (`kpkt/topology/` does not
import the datapath) is data here: `CNIS` (the names `cluster.cni` may take, each the key of its
own settings section, `cluster.<name>`), `OPTIONS` (the settings of that section: the values each
may take, its default first), `NODE_DEVICES` (the node devices whose MAC `nodes[].devices` may
set), `RANGE_IPAM` (the CNIs whose pods' addresses come from the cluster range, not the
node's podCIDR) and `encapsulation_overhead` (what the CNI's tunnel takes off the underlay MTU
for pods).
Adding a CNI (Calico: no bridge, proxy ARP, /32 routes, `tunl0` or `vxlan.calico`; Cilium;
Weave) is a module here and its entries in these tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from ipaddress import IPv4Network
from typing import Any


@dataclass(frozen=True)
class Number:
    """A whole-number setting: its default and the range it may take."""

    default: int
    low: int
    high: int


# a setting: the words it may take (the default first), a boolean (its default) or a Number
Option = tuple[str, ...] | bool | Number
CNIS = ("flannel", "calico", "cilium", "weave")
ENCAPSULATION_MODES = ("Always", "CrossSubnet", "Never")  # a Calico IPPool's ipipMode, vxlanMode
# cluster.<cni>: setting -> the values it may take
OPTIONS: dict[str, dict[str, Option]] = {
    "flannel": {"backend": ("vxlan", "host-gw")},  # flannel's Backend.Type
    # Calico's IPPool fields: IPIP by default, as a manifest install gives
    "calico": {
        "ipipMode": ENCAPSULATION_MODES,
        "vxlanMode": ("Never", "Always", "CrossSubnet"),
        "natOutgoing": True,
        "blockSize": Number(26, 20, 32),
    },
    "weave": {"mode": ("fastdp", "sleeve")},  # the overlay weave's router forwards with
    "cilium": {
        "routingMode": ("tunnel",),  # Helm routingMode (tunnelProtocol vxlan)
        "kubeProxyReplacement": False,
        "hostRouting": ("legacy", "bpf"),  # Helm bpf.hostLegacyRouting true / false
    },
}
# values a setting will take but kpkt does not model yet
LATER_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "cilium": {"routingMode": ("native",)},
}
NODE_DEVICES: dict[str, tuple[str, ...]] = {
    "flannel": ("cni0", "flannel.1"),
    "calico": ("vxlan.calico",),
    "weave": ("weave", "vethwe-bridge"),  # the bridge's MAC is the weave peer name
    "cilium": ("cilium_host", "cilium_vxlan"),  # cilium_net's MAC: derived from cilium_host's
}
# the node devices a CNI makes that have no MAC (no host veth may take their names either)
MACLESS_DEVICES: dict[str, tuple[str, ...]] = {"calico": ("tunl0",)}
VXLAN_OVERHEAD = 50  # outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8
WEAVE_OVERHEAD = 124  # weave's default MTU 1376 on a 1500-byte underlay
# cluster.podCIDR when the topology gives none, where the CNI has its own default
POD_CIDRS = {"weave": IPv4Network("10.32.0.0/12")}  # weave's --ipalloc-range
IPIP_OVERHEAD = 20  # the outer IPv4 header
NODE_PREFIX = 24  # a node's podCIDR when it names none, but where the CNI has blocks
# `cni:` values that name a CNI and a setting: what to write instead
RENAMED = {
    "calico-ipip": "`cni: calico` (its default is `calico: {ipipMode: Always}`)",
    "calico-vxlan": "`cni: calico` with `calico: {ipipMode: Never, vxlanMode: Always}`",
}
# what goes wrong on a CNI's nodes without a default route (`cluster.underlay.gateway`)
WITHOUT_GATEWAY = {
    "calico": "not set, so the nodes have no default route, and Calico's proxy ARP answers a "
    "pod's ARP for its gateway 169.254.1.1 only when the node has a route for it "
    "(projectcalico/calico#3270): every pod packet will wait for an ARP reply that never "
    "comes; set a gateway",
}

# What a cluster running a CNI shows in its Kubernetes objects, for `kpkt import` to tell which
# it runs (CNIs kpkt does not model too, to name them in its error): the name prefixes of its
# pods in the namespaces it installs to (`skip`: prefixes that are not its datapath), node
# annotations (`backend`: the one whose value is the backend), its configuration ConfigMap
# (`config`: name and key of JSON with `Network` and `Backend.Type`), the apiVersion
# prefixes of its IPPool objects (`ipipMode`, `vxlanMode`: the encapsulation), and the kinds of
# its own objects that only it makes (`kinds`: Calico's BlockAffinity, Cilium's CiliumNode), and
# its ConfigMap of flat settings (`settings`: its name; CONFIG_SETTINGS says what it holds), and
# the environment of its pods' containers (`range_env`: the variable of its pod range; `no_env`:
# a variable that, set, turns the backend named next to it on: weave's `--no-fastdp`).
SIGNS: dict[str, dict[str, tuple[str, ...]]] = {
    "flannel": {
        "pods": ("kube-flannel-ds-",),
        "namespaces": ("kube-flannel", "kube-system"),
        "annotations": ("flannel.alpha.coreos.com/backend-type",),
        "backend": ("flannel.alpha.coreos.com/backend-type",),
        "config": ("kube-flannel-cfg", "net-conf.json"),
    },
    "calico": {
        "pods": ("calico-node-",),
        "namespaces": ("calico-system", "kube-system"),
        "annotations": ("projectcalico.org/IPv4Address",),
        "pools": ("crd.projectcalico.org/", "projectcalico.org/"),
        "kinds": ("BlockAffinity",),
    },
    "cilium": {
        "pods": ("cilium-",),
        "skip": ("cilium-operator-",),
        "namespaces": ("kube-system", "cilium"),
        # pkg/annotation: network.cilium.io/ since v1.14, io.cilium.network. before
        "annotations": ("network.cilium.io/ipv4-pod-cidr", "io.cilium.network.ipv4-pod-cidr"),
        "kinds": ("CiliumNode",),
        "settings": ("cilium-config",),
    },
    "weave": {
        "pods": ("weave-net-",),
        "namespaces": ("kube-system", "weave"),
        "range_env": ("IPALLOC_RANGE",),
        "no_env": ("WEAVE_NO_FASTDP", "sleeve"),
    },
    # CNIs kpkt does not model: recognised, so an import names them instead of guessing
    "kindnet": {"pods": ("kindnet-",), "namespaces": ("kube-system",)},
    "antrea": {"pods": ("antrea-agent-",), "namespaces": ("kube-system",)},
    "kube-router": {"pods": ("kube-router-",), "namespaces": ("kube-system",)},
}


@dataclass(frozen=True)
class BlockIpam:
    """How a CNI whose IPAM hands each node blocks of a pool (not the node's spec.podCIDR) shows
    them in Kubernetes objects, for `kpkt import` to give each node its block (kpkt models one
    block per node, the node's podCIDR)."""

    affinity: str  # the kind of the objects that tie a block to its node (spec.cidr, spec.node)
    addresses: tuple[str, ...]  # node annotations of addresses taken from the node's block
    size: str  # the `cluster.<cni>` setting of the blocks' prefix length


BLOCK_IPAM = {
    "calico": BlockIpam(
        "BlockAffinity",
        ("projectcalico.org/IPv4IPIPTunnelAddr", "projectcalico.org/IPv4VXLANTunnelAddr"),
        "blockSize",
    ),
}

# CNIs whose IPAM hands pods addresses from the whole cluster range (`cluster.podCIDR`), in
# chunks it owns per node, and ignores the nodes' spec.podCIDR (weave's IPALLOC_RANGE): a pod's
# address need only be in the range, a node's podCIDR only gives it its bridge address (its
# first usable one) and the addresses of pods that name none
RANGE_IPAM = frozenset({"weave"})

# A CNI's ConfigMap of flat settings (`SIGNS[cni]["settings"]`): for each key kpkt reads, the
# `cluster.<cni>` setting it gives and what each of its values means there (a value not listed is
# taken as it is, and refused when the setting cannot take it)
CONFIG_SETTINGS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "cilium": {
        "routing-mode": ("routingMode", {}),
        "tunnel": ("routingMode", {"vxlan": "tunnel", "disabled": "native"}),  # before v1.14
        "kube-proxy-replacement": (
            "kubeProxyReplacement",
            {"true": True, "false": False, "strict": True, "disabled": False},  # also < v1.14
        ),
        "enable-host-legacy-routing": ("hostRouting", {"true": "legacy", "false": "bpf"}),
    },
}


def _cali_veth_name(namespace: str, pod: str) -> str:
    """Calico's host-side veth name (`VethNameForWorkload`): `cali` and the first 11 hex
    digits of the SHA-1 of `<namespace>.<pod>`."""
    return "cali" + hashlib.sha1(f"{namespace}.{pod}".encode()).hexdigest()[:11]


def _felix_vtep_mac(node: str) -> str:
    """felix's VXLAN tunnel MAC for a node (`vtepMACForHost`): the byte of "f" (0x66) and the
    first 5 bytes of the SHA-1 of the node's name."""
    return ":".join(f"{byte:02x}" for byte in b"f" + hashlib.sha1(node.encode()).digest()[:5])


@dataclass(frozen=True)
class Naming:
    """How a CNI names what it makes, where kpkt's own derived names and MACs do not apply."""

    host_veth: Callable[[str, str], str] | None = None  # (namespace, pod) -> the host veth
    host_veth_mac: str | None = None  # the one MAC of every host veth (not unique, then)
    device_macs: dict[str, Callable[[str], str]] = field(default_factory=dict)  # by node name
    # (prefix, digits): every host veth is the prefix and that many hex digits of a hash of the
    # seed and the pod, unique on the node (Cilium's Endpoint2IfName: "lxc" + 12 hex digits)
    hashed_host_veth: tuple[str, int] | None = None


NAMING: dict[str, Naming] = {
    "flannel": Naming(),
    "weave": Naming(),
    # the CNI plugin's hostSideMAC on every cali veth; felix's VTEP MAC
    "calico": Naming(_cali_veth_name, "ee:ee:ee:ee:ee:ee", {"vxlan.calico": _felix_vtep_mac}),
    "cilium": Naming(hashed_host_veth=("lxc", 12)),
}


def default_options(cni: str) -> dict[str, Any]:
    return {key: default_of(option) for key, option in OPTIONS[cni].items()}


def default_of(option: Option) -> Any:
    if isinstance(option, tuple):
        return option[0]
    return option.default if isinstance(option, Number) else option


def encapsulation_overhead(cni: str, options: dict[str, Any]) -> int:
    """How much smaller than the underlay MTU the pods' MTU is."""
    if cni == "flannel" and options.get("backend") == "host-gw":
        return 0  # plain routing: no encapsulation
    if cni == "weave":
        return WEAVE_OVERHEAD
    if cni == "calico":
        if options["ipipMode"] != "Never":
            return IPIP_OVERHEAD
        return VXLAN_OVERHEAD if options["vxlanMode"] != "Never" else 0
    return VXLAN_OVERHEAD


def option_problems(cni: str, options: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, what is wrong) for settings that do not go together."""
    if cni == "calico" and options["ipipMode"] != "Never" and options["vxlanMode"] != "Never":
        return [
            (
                "vxlanMode",
                f"{options['vxlanMode']} with ipipMode {options['ipipMode']}: a pool "
                "encapsulates one way at most; set one of them to Never",
            )
        ]
    if cni == "cilium" and options["hostRouting"] == "bpf" and not options["kubeProxyReplacement"]:
        return [
            (
                "hostRouting",
                "BPF host routing needs kubeProxyReplacement: true (Cilium falls back to legacy "
                "without it); set kubeProxyReplacement: true or hostRouting: legacy",
            )
        ]
    return []


def one_subnet_only(cni: str, options: dict[str, Any]) -> str | None:
    """Why the CNI under these settings needs every node on one subnet of the node network
    (its routes to other nodes' pods are `via <node IP> dev eth0`, which Linux refuses when the
    node is not on link: "Nexthop has invalid gateway"); None when it can span subnets."""
    if cni == "flannel" and options["backend"] == "host-gw":
        return (
            "flannel's host-gw routes `<podCIDR> via <node IP> dev eth0` need every node on "
            "one subnet (Linux refuses a next hop that is not on link, and flanneld fails to "
            "add the route); use backend vxlan or put the nodes on one subnet"
        )
    if cni == "calico" and options["ipipMode"] == options["vxlanMode"] == "Never":
        return (
            "with ipipMode and vxlanMode Never, Calico routes `<block> via <node IP> dev eth0`, "
            "which needs every node on one subnet (or an underlay router that learns the "
            "blocks by BGP, which kpkt does not model); use CrossSubnet or put the nodes on one "
            "subnet"
        )
    return None


def unsupported_service(cni: str, options: dict[str, Any], service_type: str) -> str | None:
    """Why a Service of `service_type` cannot run under these settings yet (None: it can)."""
    if cni == "cilium" and options["kubeProxyReplacement"] and service_type == "NodePort":
        return (
            "a NodePort service with cluster.cilium.kubeProxyReplacement: true is not supported "
            "yet (Cilium's BPF NodePort is not modelled, only its socket load balancing); make "
            "it a ClusterIP service or set kubeProxyReplacement: false"
        )
    return None


def node_block(cni: str, options: dict[str, Any]) -> tuple[int, str | None]:
    """The prefix length of a node's podCIDR when the topology names none, and, when the CNI
    requires exactly that length, the setting that says so."""
    if cni == "calico":  # a node's podCIDR is its IPAM block
        return options["blockSize"], f"cluster.{cni}.blockSize"
    return NODE_PREFIX, None


def plugin(cni: str) -> Any:
    """The `Plugin` class of the CNI named `cni` (one of CNIS)."""
    if cni not in CNIS:
        raise ValueError(f"unknown CNI {cni!r}")
    return import_module(f"kpkt.cni.{cni}").Plugin
