"""flannel as a CNI plugin (the interface is in `kpkt/cni/__init__.py`): what the bridge CNI
plugin, the flannel CNI plugin and flanneld install on a node.

- Per node: the bridge `cni0` with the node's first pod address (.1) as the pods' gateway, and a
  route to the node's podCIDR through it; with the vxlan backend also `flannel.1` (VNI
  `cluster.vxlan.vni`, port `cluster.vxlan.port`, nolearning) with the podCIDR's network
  address /32. Pods' MTU: the underlay's minus 50 with vxlan, the underlay's with host-gw.
- Per pod: a veth pair, the host side a port of cni0 (hairpin as `cluster.hairpin`); in the pod
  `arp_notify=1`, the address in the node's podCIDR, `default via` the gateway and the cluster's
  pod network via the gateway (the route the bridge plugin's IPAM config adds).
- Per remote node (flanneld's handleSubnetEvents): vxlan: the permanent neighbour for the remote
  VTEP address, its FDB entry, then the onlink route of its podCIDR via flannel.1; host-gw: the
  route of its podCIDR via the node's address on eth0 (the node ARPs for it like any neighbour).
- NAT: FLANNEL-POSTRTG (`masquerade_rules`).
"""

from __future__ import annotations

from ipaddress import IPv4Network

from kpkt.net.br_netfilter import BrNetfilter
from kpkt.net.bridge import Bridge
from kpkt.net.nat import MULTICAST, MasqPolicy, MasqRule
from kpkt.net.route import Route
from kpkt.net.vxlan import Vxlan
from kpkt.spec import NodeSpec, PodSpec
from kpkt.wire.ethernet import mac_bytes

DEFAULT = IPv4Network("0.0.0.0/0")
VTEP = "flannel.1"
HOST_GW = "host-gw"


def masquerade_rules(cluster_cidr: IPv4Network, node_cidr: IPv4Network) -> MasqPolicy:
    """masqRules() of flannel's iptables traffic manager, in order (the kube-proxy mark rule
    has nothing to match until Services exist): pod-to-pod traffic is never translated; traffic
    from a pod to anything outside the pod network (another node's address, a host on the node
    network) is masqueraded."""
    return MasqPolicy(
        "flannel",
        (
            MasqRule(node_cidr, cluster_cidr, masquerade=False),
            MasqRule(cluster_cidr, node_cidr, masquerade=False),
            MasqRule(cluster_cidr, node_cidr, masquerade=False, not_src=True),
            MasqRule(cluster_cidr, MULTICAST, masquerade=True, not_dst=True),
            MasqRule(cluster_cidr, cluster_cidr, masquerade=True, not_src=True),
        ),
    )


class Plugin:
    def __init__(self, builder) -> None:
        self.builder = builder
        self.cluster = builder.cluster
        self.host_gw = self.cluster.cni_options.get("backend") == HOST_GW
        self.bridges: dict[str, Bridge] = {}  # node name -> its cni0
        self.gateways: dict[str, bytes] = {}  # node name -> cni0's address, its pods' gateway
        self.vteps: dict[str, Vxlan] = {}  # node name -> its flannel.1 (vxlan backend)
        self.eth0s: dict[str, object] = {}  # node name -> its eth0 (host-gw's next hop device)

    @staticmethod
    def describe(cluster, node: NodeSpec) -> str:
        """The node's CNI devices, addresses and MACs, for `kpkt validate`."""
        text = f"cni0 {node.pod_cidr[1]} {node.cni0_mac}"
        if cluster.cni_options.get("backend") == HOST_GW:
            return text
        return f"{text}, {VTEP} {node.pod_cidr.network_address}/32 {node.vtep_mac}"

    def masquerade(self, node: NodeSpec) -> MasqPolicy:
        return masquerade_rules(self.cluster.pod_cidr, node.pod_cidr)

    def node(self, node: NodeSpec, stack, eth0) -> None:
        b, cluster = self.builder, self.cluster
        self.eth0s[node.name] = eth0
        cni0 = Bridge(stack, "cni0", mac_bytes(node.cni0_mac), cluster.pod_mtu, cluster.hairpin)
        b.capture(cni0, "bridge", node.name, node.cni0_mac)
        cni0.netfilter = BrNetfilter(cni0)
        self.bridges[node.name] = cni0
        gateway = self.gateways[node.name] = node.pod_cidr[1].packed
        b.address(stack, cni0, gateway, node.pod_cidr.prefixlen)
        if not self.host_gw:
            self._vtep(node, stack)
        stack.add_route(Route(node.pod_cidr, cni0, src=gateway))

    def _vtep(self, node: NodeSpec, stack) -> None:
        b, cluster = self.builder, self.cluster
        vtep = Vxlan(
            stack,
            VTEP,
            mac_bytes(node.vtep_mac),
            cluster.pod_mtu,
            vni=cluster.vni,
            port=cluster.vxlan_port,
            local_ip=node.ip.packed,
            hash_key=b.flow_hash_key,
        )
        b.capture(vtep, "vxlan", node.name, node.vtep_mac, what="VXLAN device (flannel)")
        stack.vxlan_ports[cluster.vxlan_port] = vtep
        b.address(stack, vtep, node.pod_cidr.network_address.packed, 32)
        self.vteps[node.name] = vtep

    def pod(self, pod: PodSpec, node: NodeSpec, node_stack, eth0) -> None:
        b, mtu = self.builder, self.cluster.pod_mtu
        host = b.veth(node_stack, pod.host_veth, pod.host_veth_mac, mtu, "veth", node.name)
        b.pair(eth0, host)
        self.bridges[node.name].add_port(host)
        stack = eth0.stack
        stack.arp_notify = True
        b.address(stack, eth0, pod.ip.packed, node.pod_cidr.prefixlen)
        gateway = self.gateways[node.name]
        stack.add_route(Route(DEFAULT, eth0, via=gateway))
        stack.add_route(Route(self.cluster.pod_cidr, eth0, via=gateway))
        stack.add_route(Route(node.pod_cidr, eth0, src=pod.ip.packed))

    def peers(self, node: NodeSpec) -> None:
        """What flanneld's handleSubnetEvents adds per remote node: vxlan, the permanent
        neighbour, the FDB entry, then the onlink route; host-gw, the route via its address."""
        stack = self.builder.net.stacks[node.name]
        for peer in self.builder.topo.nodes:
            if peer is node:
                continue
            if self.host_gw:
                stack.add_route(Route(peer.pod_cidr, self.eth0s[node.name], via=peer.ip.packed))
                continue
            vtep, remote = self.vteps[node.name], self.vteps[peer.name]  # the peer's flannel.1
            peer_vtep_ip = peer.pod_cidr.network_address.packed
            stack.arp.table(vtep).add_permanent(peer_vtep_ip, remote.mac)
            vtep.add_fdb(remote.mac, remote.local_ip)
            stack.add_route(Route(peer.pod_cidr, vtep, via=peer_vtep_ip, onlink=True))
