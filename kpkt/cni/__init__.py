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
set) and `encapsulation_overhead` (what the CNI's tunnel takes off the underlay MTU for pods).
Adding a CNI (Calico: no bridge, proxy ARP, /32 routes, `tunl0` or `vxlan.calico`; Cilium;
Weave) is a module here and its entries in these tables.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

CNIS = ("flannel", "cilium")
# cluster.<cni>: setting -> the values it may take, the default first ("false"/"true": a YAML
# boolean)
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "flannel": {"backend": ("vxlan", "host-gw")},  # flannel's Backend.Type
    "cilium": {
        "routingMode": ("tunnel",),  # Helm routingMode (tunnelProtocol vxlan)
        "kubeProxyReplacement": ("false", "true"),
        "hostRouting": ("legacy", "bpf"),  # Helm bpf.hostLegacyRouting true / false
    },
}
# values a setting will take but kpkt does not model yet
LATER_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "cilium": {"routingMode": ("native",)},
}
NODE_DEVICES: dict[str, tuple[str, ...]] = {
    "flannel": ("cni0", "flannel.1"),
    "cilium": (),  # cilium_host, cilium_net, cilium_vxlan: MACs derived from the seed
}
# CNIs whose host-side veths are always named prefix + hex digits of a hash (Cilium's
# Endpoint2IfName: "lxc" + 12 hex digits); the others: `veth-<pod>` when it fits
HASHED_HOST_VETHS: dict[str, tuple[str, int]] = {"cilium": ("lxc", 12)}
VXLAN_OVERHEAD = 50  # outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8


def default_options(cni: str) -> dict[str, str]:
    return {key: values[0] for key, values in OPTIONS[cni].items()}


def option_problems(cni: str, options: dict[str, str]) -> list[tuple[str, str]]:
    """(setting, why) for settings that each take a value but not together."""
    if (
        cni == "cilium"
        and options["hostRouting"] == "bpf"
        and options["kubeProxyReplacement"] != "true"
    ):
        return [
            (
                "hostRouting",
                "BPF host routing needs kubeProxyReplacement: true (Cilium falls back to legacy "
                "without it); set kubeProxyReplacement: true or hostRouting: legacy",
            )
        ]
    return []


def unsupported_service(cni: str, options: dict[str, str], service_type: str) -> str | None:
    """Why a Service of `service_type` cannot run under these settings yet (None: it can)."""
    if cni == "cilium" and options["kubeProxyReplacement"] == "true" and service_type == "NodePort":
        return (
            "a NodePort service with cluster.cilium.kubeProxyReplacement: true is not supported "
            "yet (Cilium's BPF NodePort is not modelled, only its socket load balancing); make "
            "it a ClusterIP service or set kubeProxyReplacement: false"
        )
    return None


def encapsulation_overhead(cni: str, options: dict[str, str]) -> int:
    """How much smaller than the underlay MTU the pods' MTU is."""
    if cni == "flannel" and options.get("backend") == "host-gw":
        return 0  # plain routing: no encapsulation
    return VXLAN_OVERHEAD


def plugin(cni: str) -> Any:
    """The `Plugin` class of the CNI named `cni` (one of CNIS)."""
    if cni not in CNIS:
        raise ValueError(f"unknown CNI {cni!r}")
    return import_module(f"kpkt.cni.{cni}").Plugin
