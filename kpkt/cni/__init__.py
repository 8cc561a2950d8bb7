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
name, mac, mtu, kind, node)`, `builder.capture(dev, kind, node, mac, what=None)` (the device's
capture point; `what` overrides how all.pcapng describes the kind), `builder.pair(a, b)`,
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

CNIS = ("flannel",)
# cluster.<cni>: setting -> the values it may take, the default first
OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "flannel": {"backend": ("vxlan", "host-gw")},  # flannel's Backend.Type
}
NODE_DEVICES: dict[str, tuple[str, ...]] = {
    "flannel": ("cni0", "flannel.1"),
}
VXLAN_OVERHEAD = 50  # outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8


def default_options(cni: str) -> dict[str, str]:
    return {key: values[0] for key, values in OPTIONS[cni].items()}


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
