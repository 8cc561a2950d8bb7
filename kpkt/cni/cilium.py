"""Cilium in tunnel mode (VXLAN) as a CNI plugin (the interface is in `kpkt/cni/__init__.py`),
after tests/reference/cni-others.md §1: the devices the agent and cilium-cni create and the BPF
programs' decisions (bpf_lxc from-container, bpf_overlay from-overlay, bpf_host from-host).

- Per node: `cilium_host` (the router address /32, NOARP) paired with `cilium_net`, and
  `cilium_vxlan` in external mode on UDP 8472. The node routes its podCIDR and the other nodes'
  through `cilium_host`, whose egress program delivers to the pod (or tunnels), so the node
  never ARPs for a pod.
- Per pod: `lxc<12 hex>` in the node (no address, its own MAC) paired with the pod's `eth0`
  (the pod address /32, `<router> dev eth0 scope link`, `default via <router>`). from-container
  on the lxc's tc ingress: ARP requests for any address but the pod's own are answered with the
  lxc's MAC; IPv4 to a pod of this node is delivered with TTL - 1 and MACs lxc -> pod
  (legacy host routing: out of the destination lxc; BPF host routing: redirect_peer, the lxc
  sees nothing); IPv4 to another node's pod is tunnelled as it came from the pod (inner MACs
  pod -> lxc, TTL unchanged) with the VNI the sender's security identity; anything else goes
  to the node's stack.
- Security identities: one per label set (the pod's namespace and labels, or its name when it
  has none), drawn from 256-65535 reproducibly from the seed; the node itself is 6
  (remote-node, what host traffic carries in the tunnel). A `label` step gives the pod the
  identity of its new label set (a set seen before keeps its own, a new one draws a new one)
  for the packets it sends from then on, when the policies too judge it on its new labels.
- kubeProxyReplacement false: kube-proxy's rules in the nodes' stacks, as under any CNI; BPF
  passes what is no pod-to-pod packet to the stack, and also the replies of a connection the
  node translated (from the lxc or out of the tunnel), so that the stack undoes the NAT.
- kubeProxyReplacement true: no kube-proxy; socket load balancing, applied at connect/sendmsg in
  the client's own namespace (kpkt/net/socket_lb.py), so every capture point shows the
  backend's address.
- NAT: traffic from a pod to anything outside the pod network is masqueraded (iptables
  masquerading, Helm's default bpf.masquerade=false).
"""

from __future__ import annotations

import hashlib
import re
from ipaddress import IPv4Address, IPv4Network

from kpkt.derive import derive_mac
from kpkt.net import arp_responder
from kpkt.net.nat import MULTICAST, MasqPolicy, MasqRule
from kpkt.net.netfilter import Netfilter
from kpkt.net.route import Route
from kpkt.net.socket_lb import SocketLb
from kpkt.net.vxlan import MetadataVxlan
from kpkt.observe import Decision, Tag, Why
from kpkt.spec import LabelStep, NodeSpec, PodSpec
from kpkt.wire.ethernet import (
    ETH_LEN,
    ETH_P_IP,
    ETH_SRC,
    ETH_TYPE,
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    eth_header,
    mac_bytes,
)
from kpkt.wire.ipv4 import IP_DST, IP_SRC, TTL, decrement_ttl

DEFAULT = IPv4Network("0.0.0.0/0")
TUNNEL_PORT = 8472  # tunnel-port's default for vxlan (Documentation/network/concepts/routing.rst)
REMOTE_NODE_ID = 6  # the identity host traffic carries in the tunnel (encap.h: HOST_ID -> 6)
MIN_IDENTITY, MAX_IDENTITY = 256, 65535  # idpool range for cluster-id 0
NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
# the labels Cilium's default label filter (pkg/labelsfilter) leaves out of identities: keys
# that start with one of these patterns (what controllers stamp on every pod they make)
IGNORED_LABELS = re.compile(
    r"io\.kubernetes|kubernetes\.io|statefulset\.kubernetes\.io/pod-name"
    r"|apps\.kubernetes\.io/pod-index|batch\.kubernetes\.io/job-completion-index"
    r"|batch\.kubernetes\.io/controller-uid|.*beta\.kubernetes\.io|k8s\.io"
    r"|pod-template-generation|pod-template-hash|controller-revision-hash|controller-uid"
    r"|annotation.*|etcd_node|topology\.kubernetes\.io"
)


LabelSet = tuple[tuple[str, str], ...]


class Identities:
    """The cluster's security identities by label set, as the agents allocate them: a label set
    seen for the first time gets one drawn at random (reproducibly from the seed) from
    256-65535 like idpool.LeaseAvailableID, never one taken; a set seen before keeps its own
    (the agents release an identity only minutes after its last endpoint, longer than a run)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.ids: dict[LabelSet, int] = {}
        self.taken: set[int] = set()

    def of(self, labels: LabelSet) -> int:
        number = self.ids.get(labels)
        if number is not None:
            return number
        attempt = 0
        while True:
            key = f"{self.seed}:identity:{labels}#{attempt}".encode()
            digest = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
            number = MIN_IDENTITY + digest % (MAX_IDENTITY - MIN_IDENTITY + 1)
            if number not in self.taken:
                break
            attempt += 1
        self.taken.add(number)
        self.ids[labels] = number
        return number

    def allocate(self, pods: list[PodSpec]) -> dict[str, int]:
        """Each pod's identity by its owner name, the label sets new to it drawn in order."""
        sets = {pod.owner: label_set(pod) for pod in pods}
        for labels in sorted(set(sets.values())):
            self.of(labels)
        return {owner: self.ids[labels] for owner, labels in sets.items()}


def identities(seed: int, pods: list[PodSpec]) -> dict[str, int]:
    """Each pod's security identity by its owner name: pods with the same labels (namespace
    included) share one (`Identities`); labels Cilium's default filter ignores do not count
    (IGNORED_LABELS), and a pod with no other labels is labelled with its name."""
    return Identities(seed).allocate(pods)


def label_set(pod: PodSpec) -> LabelSet:
    return identity_labels(pod.namespace, pod.name, pod.labels)


def identity_labels(namespace: str, name: str, labels) -> LabelSet:
    """What of a pod's labels (`(key, value)` pairs) makes its identity."""
    kept = tuple((k, v) for k, v in labels if not IGNORED_LABELS.match(k))
    kept = kept or (("name", name),)
    return tuple(sorted({(NAMESPACE_LABEL, namespace), *kept}))


class Endpoint:
    """What the endpoint map holds of a pod: its lxc (host side), its MACs, its identity."""

    __slots__ = ("lxc", "node", "pod_mac", "identity", "owner")

    def __init__(self, lxc, node: str, pod_mac: bytes, identity: int, owner: str) -> None:
        self.lxc, self.node, self.pod_mac, self.identity = lxc, node, pod_mac, identity
        self.owner = owner


class Plugin:
    def __init__(self, builder) -> None:
        self.builder = builder
        self.cluster = builder.cluster
        options = self.cluster.cni_options
        self.bpf_host_routing = options.get("hostRouting") == "bpf"
        self.socket_lb = bool(options.get("kubeProxyReplacement"))
        topo = builder.topo
        self.identities = Identities(topo.seed)
        self.identities.allocate([*topo.pods(), *topo.created_pods()])  # the sets known at start
        self.labels: dict[str, dict[str, str]] = {}  # a pod's labels now, by its owner name
        self.endpoints: dict[bytes, Endpoint] = {}  # pod IP -> endpoint, cluster-wide
        self.tunnels: dict[IPv4Network, bytes] = {}  # a node's podCIDR -> the node's IP
        self.vxlans: dict[str, MetadataVxlan] = {}  # node name -> its cilium_vxlan
        self.node_ips = {node.name: node.ip.packed for node in topo.nodes}

    @staticmethod
    def describe(cluster, node: NodeSpec) -> str:
        """The node's CNI devices, addresses and MACs, for `kpkt validate`."""
        host, net, vxlan = device_macs(node)
        return (
            f"cilium_host {node.pod_cidr[1]}/32 {host}, cilium_net {net}, "
            f"cilium_vxlan port {TUNNEL_PORT} {vxlan}"
        )

    def masquerade(self, node: NodeSpec) -> MasqPolicy:
        pods = self.cluster.pod_cidr
        return MasqPolicy(
            "cilium",
            (
                MasqRule(pods, pods, masquerade=False),
                MasqRule(pods, MULTICAST, masquerade=False),
                MasqRule(node.pod_cidr, pods, masquerade=True, not_dst=True),
            ),
        )

    def node(self, node: NodeSpec, stack, eth0) -> None:
        b, cluster = self.builder, self.cluster
        macs = dict(zip(DEVICES, device_macs(node), strict=True))
        mtu = cluster.underlay_mtu
        host = b.veth(stack, "cilium_host", macs["cilium_host"], mtu, "node-veth", node.name)
        net = b.veth(stack, "cilium_net", macs["cilium_net"], mtu, "node-veth", node.name)
        b.pair(host, net)
        router = node.pod_cidr[1].packed
        b.address(stack, host, router, 32)
        # NOARP: the kernel's neighbour for anything out of cilium_host is its own address
        stack.arp.table(host).add_permanent(router, host.mac)
        host.tc_egress = self.from_host
        vxlan = MetadataVxlan(
            stack,
            "cilium_vxlan",
            mac_bytes(macs["cilium_vxlan"]),
            cluster.underlay_mtu,
            port=TUNNEL_PORT,
            hash_key=b.flow_hash_key,
        )
        b.capture(vxlan, "vxlan", node.name, macs["cilium_vxlan"], what="VXLAN device (cilium)")
        vxlan.tc_ingress = self.from_overlay
        stack.vxlan_ports[TUNNEL_PORT] = vxlan
        self.vxlans[node.name] = vxlan
        self.tunnels[node.pod_cidr] = node.ip.packed
        stack.add_route(Route(node.pod_cidr, host, via=router, src=router))
        if self.socket_lb:  # no kube-proxy: services are the sockets' (kpkt/net/socket_lb.py)
            stack.netfilter = without_kube_proxy(stack)
            stack.socket_lb = SocketLb(b.services, stack.ids.pick)

    def pod(self, pod: PodSpec, node: NodeSpec, node_stack, eth0) -> None:
        b, cluster = self.builder, self.cluster
        mtu = cluster.underlay_mtu  # DeviceMTU; the pod's default route has RouteMTU
        eth0.mtu = mtu
        what = "veth, the host's end (BPF from-container on tc ingress)"
        lxc = b.veth(
            node_stack, pod.host_veth, pod.host_veth_mac, mtu, "veth", node.name, what=what
        )
        b.pair(eth0, lxc)
        lxc.tc_ingress = self.from_container
        self.labels[pod.owner] = dict(pod.labels)
        identity = self.identities.of(label_set(pod))
        self.endpoints[pod.ip.packed] = Endpoint(
            lxc, node.name, mac_bytes(pod.mac), identity, pod.owner
        )
        stack = eth0.stack
        b.address(stack, eth0, pod.ip.packed, 32)
        router = node.pod_cidr[1].packed
        stack.add_route(Route(IPv4Network(f"{node.pod_cidr[1]}/32"), eth0))
        stack.add_route(Route(DEFAULT, eth0, via=router, mtu=cluster.pod_mtu))
        if self.socket_lb:
            stack.socket_lb = SocketLb(b.services, stack.ids.pick)

    def relabeled(self, step: LabelStep) -> None:
        """A pod's labels changed (a `label` step): the agent resolves its new label set to an
        identity and its endpoint carries that one from now on, in the VNI of what it sends."""
        if step.pod is None:  # a namespace's labels: not part of the identities here
            return
        owner = step.pod.owner
        labels = self.labels[owner]
        labels.update(step.set)
        for key in step.remove:
            labels.pop(key, None)
        identity = self.identities.of(
            identity_labels(step.namespace, step.pod.name, labels.items())
        )
        for endpoint in self.endpoints.values():
            if endpoint.owner == owner:
                endpoint.identity = identity

    def detached(self, ip: bytes) -> None:
        """A deleted pod's address (cilium-cni's DEL): its endpoint leaves the endpoint map,
        so what still comes for the address is the stack's, then BPF's to drop."""
        self.endpoints.pop(ip, None)

    def peers(self, node: NodeSpec) -> None:
        """The other nodes' podCIDRs routed through cilium_host (the agent's routes); the
        ipcache's tunnel endpoints are `self.tunnels`."""
        stack = self.builder.net.stacks[node.name]
        host = next(dev for dev in stack.devices if dev.name == "cilium_host")
        for peer in self.builder.topo.nodes:
            if peer is not node:
                stack.add_route(Route(peer.pod_cidr, host, via=node.pod_cidr[1].packed))

    # --- the BPF programs ----------------------------------------------------------------------

    def from_container(self, frame: bytes, lxc, tag: Tag) -> None:
        """bpf_lxc's cil_from_container on the lxc's tc ingress."""
        ethertype = frame[ETH_TYPE]
        if ethertype == ETH_TYPE_ARP:
            if (
                arp_responder.is_request(frame)
                and arp_responder.target(frame) not in self.endpoints
            ):
                reply = arp_responder.reply_in_place(frame, lxc.mac)
                who = arp_responder.target(frame)
                lxc.xmit(reply, lxc.stack.observer.packet(tag), Decision(Why.BPF_ARP_REPLY, who))
                return
            lxc.stack.receive(frame, lxc, tag)  # the pod's own address, replies: to the stack
            return
        if ethertype != ETH_TYPE_IP:
            lxc.stack.drop(_UNKNOWN_L3, tag)
            return
        if not self._egress_allowed(frame[ETH_LEN:], lxc, tag):
            return
        if translated_reply(lxc.stack, frame[ETH_LEN:]):
            lxc.stack.receive(frame, lxc, tag)  # kube-proxy's NAT to undo: to the stack
            return
        self._route(frame, lxc, tag)

    @staticmethod
    def _egress_allowed(packet: bytes, lxc, tag: Tag) -> bool:
        """The sending pod's egress policy (Cilium enforces it in from-container), judged on
        the destination kube-proxy would translate the packet to."""
        netfilter = lxc.stack.netfilter
        if netfilter.policy is None:
            return True
        translated = packet
        if netfilter.conntrack.active:
            translated, _ = netfilter.prerouting(packet)
        return netfilter.policy.egress(packet, translated, tag, lxc.where)

    def _route(self, frame: bytes, dev, tag: Tag) -> None:
        """handle_ipv4_from_lxc: local endpoint, tunnel, or the stack."""
        dst = frame[ETH_LEN + IP_DST.start : ETH_LEN + IP_DST.stop]
        endpoint = self.endpoints.get(dst)
        stack = dev.stack
        if endpoint is not None and endpoint.node == stack.node:
            self._deliver(frame, endpoint, stack, tag)
            return
        remote = self._tunnel_endpoint(dst)
        if remote is not None and remote != self.node_ips[stack.node]:
            source = self.endpoints.get(frame[ETH_LEN + IP_SRC.start : ETH_LEN + IP_SRC.stop])
            identity = REMOTE_NODE_ID if source is None else source.identity
            note = Decision(Why.BPF_ENCAP, identity)
            self.vxlans[stack.node].encap(frame, tag, remote, identity, note)
            return
        if dev.name == "cilium_host":
            stack.drop(Decision(Why.BPF_NO_ENDPOINT, dst), tag)
            return
        stack.receive(frame, dev, tag)  # pass to the stack

    def _tunnel_endpoint(self, dst: bytes) -> bytes | None:
        address = IPv4Address(dst)
        for cidr, node_ip in self.tunnels.items():
            if address in cidr:
                return node_ip
        return None

    def _deliver(self, frame: bytes, endpoint: Endpoint, stack, tag: Tag) -> None:
        """ipv4_local_delivery: ipv4_l3 (TTL - 1, MACs lxc -> pod), then redirect_ep."""
        packet = frame[ETH_LEN:]
        if packet[TTL] <= 1:
            stack.drop(Decision(Why.BPF_TTL_EXCEEDED, packet[TTL]), tag)
            return
        packet = decrement_ttl(packet)
        lxc = endpoint.lxc
        out = eth_header(endpoint.pod_mac, lxc.mac, ETH_P_IP) + packet
        if self.bpf_host_routing:
            lxc.redirect_peer(out, tag)
        else:
            lxc.xmit(out, tag, Decision(Why.BPF_LOCAL_DELIVERY, endpoint.owner, packet[TTL]))

    def from_overlay(self, inner: bytes, vxlan, tag: Tag, vni: int) -> None:
        """bpf_overlay's cil_from_overlay: the VNI is the source identity; a packet for a pod
        of this node is delivered locally."""
        if inner[ETH_TYPE] != ETH_TYPE_IP:
            vxlan.stack.drop(_NOT_IPV4, tag)
            return
        dst = inner[ETH_LEN + IP_DST.start : ETH_LEN + IP_DST.stop]
        endpoint = self.endpoints.get(dst)
        stack = vxlan.stack
        packet = inner[ETH_LEN:]
        if endpoint is None or endpoint.node != stack.node or translated_reply(stack, packet):
            # the node's own addresses, or kube-proxy's NAT to undo: to the stack (PACKET_HOST)
            stack.receive(eth_header(vxlan.mac, inner[ETH_SRC], ETH_P_IP) + packet, vxlan, tag)
            return
        self._deliver(inner, endpoint, stack, tag)

    def from_host(self, frame: bytes, host, tag: Tag) -> None:
        """bpf_host's cil_from_host on cilium_host's egress: what the node routes to a pod."""
        if frame[ETH_TYPE] != ETH_TYPE_IP:
            return
        self._route(frame, host, tag)


DEVICES = ("cilium_host", "cilium_net", "cilium_vxlan")
_UNKNOWN_L3 = Decision(Why.BPF_UNKNOWN_L3)
_NOT_IPV4 = Decision(Why.BPF_NOT_IPV4)


def translated_reply(stack, packet: bytes) -> bool:
    """Whether `packet` is a reply of a connection the node's netfilter translated."""
    return stack.netfilter.conntrack.translated_reply(packet)


def without_kube_proxy(stack) -> Netfilter:
    """The node's netfilter with what the builder registered but kube-proxy's rules: the
    masquerade and the NetworkPolicy chains."""
    old, netfilter = stack.netfilter, Netfilter(stack)
    for masquerade in old.masquerades:
        netfilter.add_masquerade(masquerade)
    if old.policy is not None:
        netfilter.add_policy(old.policy)
    return netfilter


def device_macs(node: NodeSpec) -> tuple[str, str, str]:
    """The MACs of the node's cilium_host, cilium_net and cilium_vxlan (random in Cilium):
    the node's CNI-bridge and tunnel-device MACs for cilium_host and cilium_vxlan, and one
    derived from cilium_host's for cilium_net."""
    return node.cni0_mac, derive_mac(0, f"{node.cni0_mac}/cilium_net"), node.vtep_mac
