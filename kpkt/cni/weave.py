"""Weave Net as a CNI plugin (the interface is in `kpkt/cni/__init__.py`): what weave-kube's
router (bridged fastdp) and the weave CNI plugin install on a node (cni-others.md §2).

- One flat L2 segment over the whole allocation range (`cluster.podCIDR`, default
  10.32.0.0/12): every pod has its address with the whole prefix, so any other pod, on any node,
  is on-link; pods ARP each other directly, across nodes too, and nothing decrements the TTL.
- Per node: the bridge `weave` (its MAC is the weave peer name) with the node's first pod
  address and the cluster prefix, and the route of the range through it; the veth pair
  `vethwe-bridge` (a bridge port, no hairpin) / `vethwe-datapath` (the port of the router's
  switch, kpkt/net/overlay.py). fastdp: the switch's tunnel is the `vxlan-6784` vport (VXLAN on
  UDP 6784, VNI = destination short ID << 12 | source short ID, DF 1, UDP checksum 0, TTL 64);
  sleeve: weave's own UDP framing on 6783, frames batched per datagram. MTU 1376 everywhere.
- Per pod: a veth `vethwepl<...>` joined to the bridge, hairpin on; in the pod its address with
  the cluster prefix, `default via` the bridge's address and the range on-link.
- Per remote node: only the peer (its name, short ID and address): MACs are learned from the
  frames, and broadcasts and unknown unicast are flooded to every peer.
- NAT: weave's WEAVE chain: traffic from the range leaving it, and traffic from outside the
  range entering it, is masqueraded; multicast from the range is not.
- NetworkPolicy (weave-npc: iptables on the bridge, through br_netfilter): a local pod's egress
  as its frame enters the bridge from its veth (never what comes from `vethwe-bridge`), a pod's
  ingress just before its veth (kpkt/net/br_netfilter.py, kpkt/net/policy_filter.py).

A pod created mid-run (a `create` step): weave's CNI plugin sends a gratuitous ARP (arping:
`tha` all ones) 1 ms after the address is set, flooded like any broadcast, to every peer too.

Not modelled: heartbeats and MTU probes (fastdp and sleeve), the gratuitous ARP the bridge
sends on `expose`, the TCP 6783 control connection (so the first tunnel packet ARPs for the
peer node), the `datapath` internal port, encryption, weave's own IPAM split of the range (pods
may have any address of the range, as a real cluster's have (RANGE_IPAM), but each node's
bridge address and the pods named without one come from a /24 of it, as kpkt gives every CNI)
and pure sleeve mode (no kernel datapath, MTU 65535).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Network

from kpkt.derive import derive_mac
from kpkt.net.br_netfilter import BrNetfilter
from kpkt.net.bridge import Bridge
from kpkt.net.nat import MULTICAST, MasqPolicy, MasqRule
from kpkt.net.overlay import SHORT_ID_MASK, OverlaySwitch, Peer, Sleeve, VxlanVport
from kpkt.net.route import Route
from kpkt.spec import NodeSpec, PodSpec
from kpkt.wire.ethernet import BROADCAST, mac_bytes

DEFAULT = IPv4Network("0.0.0.0/0")
BRIDGE = "weave"
FASTDP_PORT = 6784  # weave's port 6783 + 1
VPORT = f"vxlan-{FASTDP_PORT}"
SLEEVE = "sleeve"
GARP_DELAY_NS = 1_000_000  # weave's gratuitous ARP after a pod's address is set


def masquerade_rules(range_: IPv4Network) -> MasqPolicy:
    """The WEAVE chain of weave-kube's expose (`-s range -d 224.0.0.0/4 RETURN`,
    `! -s range -d range MASQUERADE`, `-s range ! -d range MASQUERADE`)."""
    return MasqPolicy(
        "weave",
        (
            MasqRule(range_, MULTICAST, masquerade=False),
            MasqRule(range_, range_, masquerade=True, not_src=True),
            MasqRule(range_, range_, masquerade=True, not_dst=True),
        ),
    )


def short_ids(seed: int, nodes) -> dict[str, int]:
    """Each node's 12-bit peer short ID: random in weave (mesh's randomPeerShortID), here from
    the seed, the next free one on a collision (as mesh resolves them)."""
    taken: dict[str, int] = {}
    for node in nodes:
        digest = hashlib.sha256(f"{seed}:peer-short-id/{node.name}".encode()).digest()
        short = int.from_bytes(digest[:2], "big") & SHORT_ID_MASK
        while short in taken.values():
            short = (short + 1) & SHORT_ID_MASK
        taken[node.name] = short
    return taken


def _datapath_mac(seed: int, node: str) -> str:
    return derive_mac(seed, f"node/{node}/vethwe-datapath")


class Plugin:
    def __init__(self, builder) -> None:
        self.builder = builder
        self.cluster = builder.cluster
        self.sleeve = self.cluster.cni_options.get("mode") == SLEEVE
        ids = short_ids(builder.topo.seed, builder.topo.nodes)
        self.peer = {
            node.name: Peer(mac_bytes(node.cni0_mac), ids[node.name], node.ip.packed)
            for node in builder.topo.nodes
        }
        self.bridges: dict[str, Bridge] = {}  # node name -> its weave bridge
        self.switches: dict[str, OverlaySwitch] = {}  # node name -> its router's switch

    @staticmethod
    def describe(cluster, node: NodeSpec) -> str:
        """The node's weave devices, addresses and MACs, for `kpkt validate`."""
        bridge = f"{BRIDGE} {node.pod_cidr[1]}/{cluster.pod_cidr.prefixlen} {node.cni0_mac}"
        tunnel = "sleeve udp 6783" if cluster.cni_options.get("mode") == SLEEVE else VPORT
        return f"{bridge} (peer name), vethwe-bridge, vethwe-datapath, {tunnel}"

    def masquerade(self, node: NodeSpec) -> MasqPolicy:
        return masquerade_rules(self.cluster.pod_cidr)

    def node(self, node: NodeSpec, stack, eth0) -> None:
        b, cluster, mtu = self.builder, self.cluster, self.cluster.pod_mtu
        bridge = Bridge(stack, BRIDGE, mac_bytes(node.cni0_mac), mtu, cluster.hairpin)
        b.capture(bridge, "bridge", node.name, node.cni0_mac)
        bridge.netfilter = BrNetfilter(bridge)  # weave-kube sets bridge-nf-call-iptables=1
        self.bridges[node.name] = bridge
        address = node.pod_cidr[1].packed
        b.address(stack, bridge, address, cluster.pod_cidr.prefixlen)
        stack.add_route(Route(cluster.pod_cidr, bridge, src=address))
        switch = OverlaySwitch(stack, self.peer[node.name])
        self.switches[node.name] = switch
        bridge_mac = node.vtep_mac  # the second of the CNI's NODE_DEVICES: vethwe-bridge
        datapath_mac = _datapath_mac(self.builder.topo.seed, node.name)
        to_bridge = b.veth(stack, "vethwe-bridge", bridge_mac, mtu, "veth", node.name)
        to_switch = b.veth(stack, "vethwe-datapath", datapath_mac, mtu, "veth", node.name)
        b.pair(to_bridge, to_switch)
        bridge.add_port(to_bridge, hairpin=False)
        switch.attach(to_switch)
        if self.sleeve:
            Sleeve(stack, switch, cluster.underlay_mtu)
            return
        vport = VxlanVport(stack, VPORT, mtu, switch, FASTDP_PORT, b.flow_hash_key)
        b.capture(vport, "vxlan", node.name, None, what="VXLAN vport (weave fastdp)")

    def pod(self, pod: PodSpec, node: NodeSpec, node_stack, eth0) -> None:
        b, mtu, range_ = self.builder, self.cluster.pod_mtu, self.cluster.pod_cidr
        host = b.veth(node_stack, pod.host_veth, pod.host_veth_mac, mtu, "veth", node.name)
        b.pair(eth0, host)
        self.bridges[node.name].add_port(host)
        stack = eth0.stack
        b.address(stack, eth0, pod.ip.packed, range_.prefixlen)
        stack.add_route(Route(DEFAULT, eth0, via=node.pod_cidr[1].packed))
        stack.add_route(Route(range_, eth0, src=pod.ip.packed))

    def attached(self, pod: PodSpec, eth0) -> int:
        """A pod created mid-run: weave's `setupIfaceAddrs` arpings its address 1 ms after
        setting it (cni-others.md §2.3, row 0), before the plugin's ADD returns."""
        eth0.sched.after(GARP_DELAY_NS, eth0.stack.arp.announce, eth0, BROADCAST, "weave arping")
        return GARP_DELAY_NS

    def peers(self, node: NodeSpec) -> None:
        """The router connects to every other peer; it learns no MAC in advance."""
        switch = self.switches[node.name]
        for peer in self.builder.topo.nodes:
            if peer is not node:
                switch.add_peer(self.peer[peer.name])
