"""Calico as a CNI plugin (the interface is in `kpkt/cni/__init__.py`): what the Calico CNI
plugin, felix and BIRD install on a node (tests/reference/calico.md §1-2).

- No bridge. Each pod is a point-to-point veth into the node's routing table: the host side
  (`cali` + 11 hex digits of sha1("<namespace>.<pod>"), MAC `ee:ee:ee:ee:ee:ee` on every node)
  has no address and answers ARP by proxy (proxy_arp 1, proxy_delay 0); the node routes
  `<pod IP> dev cali... scope link` and has no permanent neighbour for the pod (the Kubernetes
  datastore's behaviour: the node ARPs for its pods, its own address as the sender, unless the
  pod's ARP for its gateway taught it the pod's MAC first).
- In the pod: its address as a /32, `169.254.1.1 dev eth0 scope link` and `default via
  169.254.1.1`: every packet goes to the node, which answers the ARP for 169.254.1.1 by proxy.
- The node's block (its podCIDR) is blackholed; the first address of the block is the tunnel
  device's (/32).
- IPIP (`ipipMode`): the fallback tunnel `tunl0` (MTU underlay - 20, NOARP, raw IP captures);
  per remote node `<block> via <node IP> dev tunl0 onlink` (BIRD's route).
- VXLAN (`vxlanMode`): `vxlan.calico` (VNI 4096, port 4789, MTU underlay - 50, VTEP MAC from
  the node name); per remote node its VTEP address as a permanent neighbour, the FDB entry to
  its node address (for every remote node, felix's FDB sync), and `<block> via <VTEP address>
  dev vxlan.calico onlink`.
- `CrossSubnet`: encapsulated only toward a node outside this node's subnet (of
  `underlay.subnets`, reached through the router); toward the others, and with both modes
  `Never`, `<block> via <node IP> dev eth0`.
- NAT: `natOutgoing` (felix's cali-nat-outgoing): traffic from the pool to anywhere outside it
  is masqueraded; pod-to-pod traffic never is.
- NetworkPolicy (felix's workload chains, netpol.md §6.1): each cali veth is its pod's workload
  endpoint (`guard_with`, by the builder); the node's stack judges in filter FORWARD (and INPUT)
  what comes in from a cali veth and what is routed to one (kpkt/net/stack.py).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from kpkt.net.device import Veth
from kpkt.net.ipip import IpipTunnel
from kpkt.net.nat import MasqPolicy, MasqRule
from kpkt.net.route import Route
from kpkt.net.vxlan import Vxlan
from kpkt.spec import NodeSpec, PodSpec
from kpkt.wire.ethernet import mac_bytes

DEFAULT = IPv4Network("0.0.0.0/0")
GATEWAY = IPv4Address("169.254.1.1")  # the pods' gateway: no device has it, proxy ARP answers
GATEWAY_ROUTE = IPv4Network("169.254.1.1/32")
TUNL0 = "tunl0"
VXLAN_DEVICE = "vxlan.calico"
VXLAN_VNI = 4096  # felix's VXLANVNI
VXLAN_PORT = 4789  # felix's VXLANPort
IPIP_OVERHEAD = 20
VXLAN_OVERHEAD = 50
HOST_VETH = "veth, the host's end (routed, proxy ARP)"  # how all.pcapng describes a cali
ALWAYS, CROSS_SUBNET, NEVER = "Always", "CrossSubnet", "Never"


def masquerade_rules(pool: IPv4Network, nat_outgoing: bool) -> MasqPolicy:
    """felix's cali-nat-outgoing: from the pool to anything outside every pool, masquerade."""
    if not nat_outgoing:
        return MasqPolicy("calico", ())
    return MasqPolicy("calico", (MasqRule(pool, pool, masquerade=True, not_dst=True),))


class Plugin:
    def __init__(self, builder) -> None:
        self.builder = builder
        self.cluster = builder.cluster
        options = self.cluster.cni_options
        self.ipip, self.vxlan = options["ipipMode"], options["vxlanMode"]
        self.nat_outgoing = options["natOutgoing"]
        self.tunnels: dict[str, object] = {}  # node name -> tunl0 or vxlan.calico
        self.eth0s: dict[str, object] = {}  # node name -> its eth0

    @staticmethod
    def describe(cluster, node: NodeSpec) -> str:
        """The node's CNI devices, addresses and MACs, for `kpkt validate`."""
        options = cluster.cni_options
        tunnel = f"{node.pod_cidr.network_address}/32"
        if options["ipipMode"] != NEVER:
            return f"{TUNL0} {tunnel}, blackhole {node.pod_cidr}"
        if options["vxlanMode"] != NEVER:
            return f"{VXLAN_DEVICE} {tunnel} {node.vtep_mac}, blackhole {node.pod_cidr}"
        return f"blackhole {node.pod_cidr}"

    def masquerade(self, node: NodeSpec) -> MasqPolicy:
        return masquerade_rules(self.cluster.pod_cidr, self.nat_outgoing)

    def node(self, node: NodeSpec, stack, eth0) -> None:
        b, cluster = self.builder, self.cluster
        self.eth0s[node.name] = eth0
        tunnel_ip = node.pod_cidr.network_address.packed
        if self.ipip != NEVER:
            tunnel = IpipTunnel(stack, TUNL0, cluster.underlay_mtu - IPIP_OVERHEAD)
            b.capture(tunnel, "ipip", node.name, None)
        elif self.vxlan != NEVER:
            tunnel = Vxlan(
                stack,
                VXLAN_DEVICE,
                mac_bytes(node.vtep_mac),
                cluster.underlay_mtu - VXLAN_OVERHEAD,
                vni=VXLAN_VNI,
                port=VXLAN_PORT,
                local_ip=node.ip.packed,
                hash_key=b.flow_hash_key,
            )
            b.capture(tunnel, "vxlan", node.name, node.vtep_mac)
            stack.vxlan_ports[VXLAN_PORT] = tunnel
        else:
            tunnel = None
        if tunnel is not None:
            b.address(stack, tunnel, tunnel_ip, 32)
            self.tunnels[node.name] = tunnel
        stack.add_route(Route(node.pod_cidr, None, blackhole=True))

    def pod(self, pod: PodSpec, node: NodeSpec, node_stack, eth0) -> None:
        b, mtu = self.builder, self.cluster.pod_mtu
        host = Veth(node_stack, pod.host_veth, mac_bytes(pod.host_veth_mac), mtu)
        b.capture(host, "veth", node.name, pod.host_veth_mac, what=HOST_VETH)
        host.proxy_arp = True
        b.pair(eth0, host)
        node_stack.add_route(Route(IPv4Network(pod.ip), host))
        stack = eth0.stack
        b.address(stack, eth0, pod.ip.packed, 32)
        stack.add_route(Route(GATEWAY_ROUTE, eth0))
        stack.add_route(Route(DEFAULT, eth0, via=GATEWAY.packed))

    def peers(self, node: NodeSpec) -> None:
        """What BIRD (IPIP) or felix (VXLAN) adds per remote node's block."""
        stack = self.builder.net.stacks[node.name]
        for peer in self.builder.topo.nodes:
            if peer is node:
                continue
            tunnel = self.tunnels.get(node.name)
            peer_vtep_ip = peer.pod_cidr.network_address.packed
            if isinstance(tunnel, Vxlan):  # felix's FDB sync: every remote VTEP, on any subnet
                stack.arp.table(tunnel).add_permanent(peer_vtep_ip, mac_bytes(peer.vtep_mac))
                tunnel.add_fdb(mac_bytes(peer.vtep_mac), peer.ip.packed)
            if not self._encapsulates(node, peer) or tunnel is None:
                stack.add_route(Route(peer.pod_cidr, self.eth0s[node.name], via=peer.ip.packed))
            elif isinstance(tunnel, IpipTunnel):
                stack.add_route(Route(peer.pod_cidr, tunnel, via=peer.ip.packed, onlink=True))
            else:
                stack.add_route(Route(peer.pod_cidr, tunnel, via=peer_vtep_ip, onlink=True))

    def _encapsulates(self, node: NodeSpec, peer: NodeSpec) -> bool:
        """CrossSubnet: only toward a node outside this node's subnet (confd's krt_tunnel for
        IPIP, tests/reference/calico.md §2.3; felix's noEncapRoute, which gives a route update
        marked SameSubnet `<block> via <DstNodeIp>` on the parent device instead of the tunnel
        route, for VXLAN and for IPIP when felix programs the routes)."""
        mode = self.ipip if self.ipip != NEVER else self.vxlan
        if mode == CROSS_SUBNET:
            return peer.ip not in self.cluster.subnet_of(node.ip).cidr
        return mode == ALWAYS
