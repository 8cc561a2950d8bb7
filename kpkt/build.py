"""Turn a loaded topology into a running `Network`: the namespaces, each node's eth0 on the node
network, each pod's eth0, kube-proxy and the applications; the cluster's CNI plugin
(`kpkt/cni/`) adds its devices, addresses, routes and NAT policy through the device kit here."""

from __future__ import annotations

import hashlib
from functools import partial
from ipaddress import IPv4Network
from socket import inet_ntoa

from kpkt.apps.dns import CoreDnsPod, DnsApp, UpstreamHost
from kpkt.apps.faults import FaultApp
from kpkt.apps.lifecycle import LifecycleApp
from kpkt.apps.packet import PacketApp
from kpkt.apps.ping import PingApp
from kpkt.apps.probe import ProbeApp
from kpkt.apps.tcp import TcpApp
from kpkt.apps.udp import UdpApp
from kpkt.capture.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW
from kpkt.cni import plugin
from kpkt.derive import ROUTER, derive_mac, switch_owner, switch_port_names
from kpkt.dns.cluster_view import ClusterView
from kpkt.dns.coredns import ClusterDns
from kpkt.dns.upstream import UpstreamDns
from kpkt.errors import TopologyError
from kpkt.net.bridge import Bridge
from kpkt.net.device import WIRE_DELAY_NS, Loopback, Veth
from kpkt.net.kubeproxy import Removed, ServicePortInfo, ServiceRules
from kpkt.net.netfilter import Netfilter
from kpkt.net.policy_filter import NodePolicy, PolicyLog
from kpkt.net.route import Route
from kpkt.net.sockets import close_all
from kpkt.net.stack import LOOPBACK, Stack
from kpkt.network import Network
from kpkt.observe import Decision
from kpkt.policy.verdict import cluster_policies
from kpkt.spec import (
    CreateStep,
    DeleteStep,
    DnsStep,
    ImpairStep,
    LabelStep,
    LinkStep,
    NodeSpec,
    PacketStep,
    PingStep,
    PodSpec,
    ProbeStep,
    RestartStep,
    ServiceSpec,
    SubnetSpec,
    TcpStep,
    Topology,
    UdpStep,
)
from kpkt.wire.ethernet import ZERO_MAC, mac_bytes
from kpkt.wire.ipv4 import PROTO_TCP, PROTO_UDP

LOOPBACK_IP = LOOPBACK[1].packed  # 127.0.0.1, the loopback's address
DEFAULT = IPv4Network("0.0.0.0/0")


def build(topology: Topology) -> tuple[Network, list]:
    """The network for `topology` and one application per traffic step."""
    network = Network(topology.seed)
    builder = _Builder(network, topology)
    builder.build()
    return network, [builder.app(step) for step in topology.steps]


def service_ports(services: tuple[ServiceSpec, ...]) -> list[ServicePortInfo]:
    """What kube-proxy sees of the Services: each port of a Service with a cluster IP (headless
    and ExternalName Services get no rules) and its ready endpoints serving that port."""
    protocols = {"TCP": PROTO_TCP, "UDP": PROTO_UDP}
    return [
        ServicePortInfo(
            name=service.key + (f":{port.name}" if port.name else ""),
            protocol=protocols[port.protocol],
            cluster_ip=service.cluster_ip.packed,
            port=port.port,
            node_port=port.node_port,
            endpoints=tuple(
                (endpoint.ip.packed, served.port)
                for endpoint in service.ready_endpoints()
                for served in endpoint.ports
                if served.name == port.name and served.protocol == port.protocol
            ),
        )
        for service in services
        if service.cluster_ip is not None
        for port in service.ports
    ]


class _Builder:
    def __init__(self, network: Network, topology: Topology) -> None:
        self.net = network
        self.topo = topology
        self.cluster = topology.cluster
        self.node_eth0: dict[str, Veth] = {}
        # what a step names at its point of the steps: a pod's spec and namespace (a `create`
        # step makes a new namespace, even for a pod of a deleted one's name)
        self.running: dict[str, PodSpec] = {pod.owner: pod for pod in topology.pods()}
        self.namespaces: dict[str, Stack] = network.stacks  # until a create step copies it
        # the pods that run at this moment of the run, and each CoreDNS pod's model, which
        # follows them and the Services' endpoints as lifecycle steps change them
        self.pods_now: dict[str, PodSpec] = dict(self.running)
        self.coredns: list[ClusterDns] = []
        self.taps: dict = {}  # device -> its capture point (a Tap)
        seed_key = f"{topology.seed}:vxlan-flow-hash".encode()
        self.flow_hash_key = hashlib.sha256(seed_key).digest()[:16]
        self.services = ServiceRules(service_ports(topology.services), topology.cluster.pod_cidr)
        self.node_ips = {node.ip.packed for node in topology.nodes}
        self.cni = plugin(topology.cluster.cni)(self)
        # NetworkPolicy enforcement, only in a cluster that has policies
        self.policy_log = PolicyLog(cluster_policies(topology)) if topology.policies else None

    def build(self) -> None:
        for node in self.topo.nodes:
            self._node(node)
        for node in self.topo.nodes:
            self.cni.peers(node)
        for external in self.topo.externals:
            stack = self._stack(external.name, forwarding=False, node=None)
            eth0 = self.veth(
                stack,
                "eth0",
                external.mac,
                self.cluster.underlay_mtu,
                "underlay",
                None,
                WIRE_DELAY_NS,
            )
            subnet = self.cluster.subnet_of(external.ip)
            self.address(stack, eth0, external.ip.packed, subnet.cidr.prefixlen)
            stack.add_route(Route(subnet.cidr, eth0, src=external.ip.packed))
            if self.cluster.subnets:  # the router is its way to the other subnets
                stack.add_route(Route(DEFAULT, eth0, via=subnet.gateway.packed))
            self.node_eth0[external.name] = eth0
        self._underlay()
        self._cluster_dns()

    def _cluster_dns(self) -> None:
        """CoreDNS in its pods (each its own server: cache and NS answers are per pod) and the
        upstream DNS server on the node network."""
        dns = self.cluster.dns
        if dns is None:
            return
        for ip in dns.pod_ips:
            model = ClusterDns.from_topology(self.topo, local_ip=ip)
            CoreDnsPod(self.net.by_ip[ip.packed], model)
            self.coredns.append(model)
        if dns.upstream is not None:
            UpstreamHost(self.net.stacks[dns.upstream.name], UpstreamDns.from_spec(dns.upstream))

    # --- namespaces and devices ----------------------------------------------------------------

    def _stack(self, owner: str, *, forwarding: bool, node: str | None) -> Stack:
        return self._with_loopback(Stack(self.net, owner, forwarding=forwarding, node=node))

    def _with_loopback(self, stack: Stack) -> Stack:
        """The namespace joins the network, with its loopback."""
        self.net.add_stack(stack)
        lo = Loopback(stack, "lo", b"\x00" * 6, 65536)
        self.capture(lo, "loopback", stack.node, None)
        stack.set_loopback(lo)
        self._add_address(stack, lo, LOOPBACK_IP, LOOPBACK.prefixlen)
        return stack

    # the device kit a CNI plugin builds with (kpkt/cni/__init__.py)

    def capture(
        self, dev, kind: str, node: str | None, mac: str | None, what: str | None = None
    ) -> None:
        """Give `dev` its capture point: a tap, the device's observer."""
        link_type = LINKTYPE_ETHERNET if dev.link_layer else LINKTYPE_RAW
        tap = self.net.journal.tap(dev.stack.owner, dev.name, kind, node, mac, what, link_type)
        dev.observer = tap
        self.taps[dev] = tap

    def pair(self, a: Veth, b: Veth) -> None:
        Veth.pair(a, b)
        self.taps[a].peer, self.taps[b].peer = self.taps[b], self.taps[a]

    def _add_address(self, stack: Stack, dev, ip: bytes, prefixlen: int) -> None:
        stack.add_address(dev, ip, prefixlen)
        self.taps[dev].ips.append(f"{inet_ntoa(ip)}/{prefixlen}")  # as IPv4Address prints it

    def veth(
        self,
        stack: Stack,
        name: str,
        mac: str,
        mtu: int,
        kind: str,
        node: str | None,
        delay_ns: int | None = None,
        what: str | None = None,
    ) -> Veth:
        if delay_ns is None:
            veth = Veth(stack, name, mac_bytes(mac), mtu)
        else:
            veth = Veth(stack, name, mac_bytes(mac), mtu, delay_ns)
        self.capture(veth, kind, node, mac, what)
        return veth

    def address(self, stack: Stack, dev, ip: bytes, prefixlen: int) -> None:
        self._add_address(stack, dev, ip, prefixlen)
        self.net.register_ip(ip, stack)

    # --- a node: eth0, the CNI's devices and its pods --------------------------------------

    def _node(self, node: NodeSpec) -> None:
        cluster = self.cluster
        stack = self._stack(node.name, forwarding=True, node=node.name)
        netfilter = stack.netfilter = Netfilter(stack)
        netfilter.add_services(self.services)
        netfilter.add_masquerade(self.cni.masquerade(node))
        if self.policy_log is not None:
            netfilter.add_policy(NodePolicy(stack, self.policy_log))
        eth0 = self.veth(
            stack, "eth0", node.mac, cluster.underlay_mtu, "underlay", node.name, WIRE_DELAY_NS
        )
        self.node_eth0[node.name] = eth0
        subnet = cluster.subnet_of(node.ip)
        self.address(stack, eth0, node.ip.packed, subnet.cidr.prefixlen)
        self.cni.node(node, stack, eth0)
        stack.add_route(Route(subnet.cidr, eth0, src=node.ip.packed))
        if subnet.gateway is not None:
            stack.add_route(Route(DEFAULT, eth0, via=subnet.gateway.packed))
        for pod in node.pods:
            self._pod(pod, node, stack)

    def _pod(
        self, pod: PodSpec, node: NodeSpec, node_stack: Stack, stack: Stack | None = None
    ) -> Veth:
        """The pod's namespace (`stack`, if made already) with its eth0, attached by the CNI."""
        if stack is None:
            stack = self._stack(pod.owner, forwarding=False, node=node.name)
        else:
            self._with_loopback(stack)
        eth0 = self.veth(stack, "eth0", pod.mac, self.cluster.pod_mtu, "pod-eth", node.name)
        self.cni.pod(pod, node, node_stack, eth0)
        policy = node_stack.netfilter.policy
        if policy is not None:  # the pod's ingress policy, on its host-side veth
            eth0.peer.guard_with(policy, pod.ip.packed)
        return eth0

    def create_pod(self, pod: PodSpec, stack: Stack, event: Decision) -> int:
        """What creating a pod does mid-run: the kubelet's sandbox (a new namespace, replacing
        a deleted pod's of the same name) and the CNI plugin's ADD, as at the start; then its
        veth comes up as the kernel brings it up: a bridge port is enslaved before its
        carrier, so it is disabled until linkwatch reports the carrier (datapath.md §2.2:
        the pod's arp_notify gratuitous ARP, sent at once, is lost there), and the bridge
        learns the pod's MAC only when the pod first sends. Then what the CNI does once the
        pod is attached (its own gratuitous ARP). Both ends of the veth note `event` on their
        first frame. How long the CNI plugin's ADD takes (it returns once the host veth is up and
        what it sends is sent; only then is the pod ready)."""
        node = next(node for node in self.topo.nodes if node.name == pod.node)
        eth0 = self._pod(pod, node, self.net.stacks[node.name], stack)
        self.pods_now[pod.owner] = pod
        host = eth0.peer
        for end in (eth0, host):
            end.observer.remark(event)
        took = host.master.await_carrier(host) if host.master is not None else 0
        if eth0.stack.arp_notify:
            eth0.stack.arp.announce(eth0, ZERO_MAC, "arp_notify")
        attached = getattr(self.cni, "attached", None)
        if attached is not None:
            took = max(took, attached(pod, eth0))
        return took

    def delete_pod(self, stack: Stack, services: tuple[ServiceSpec, ...]) -> None:
        """What deleting a pod does to the node: the CNI plugin's DEL (the namespace goes with
        its veth pair, so whatever the host side was part of loses it: a bridge its port and
        the FDB entries behind it, the node the routes and neighbour entries through it; IPAM
        frees the address), kube-proxy's next sync (the Services lose the endpoint, its UDP
        conntrack entries are deleted) and CoreDNS's watch (`services`: as they are without
        the pod). The captures of its interfaces end: an interface of the same name later goes
        on in the same file."""
        close_all(stack)
        stack.arp.forget()
        for dev in stack.devices:
            self.taps[dev].retire()
        for eth0 in [dev for dev in stack.devices if isinstance(dev, Veth)]:
            host = eth0.peer
            self.taps[host].retire()
            host.stack.remove_device(host)
            eth0.set_carrier(False)
            eth0.peer = host.peer = None
        removed = set()
        detached = getattr(self.cni, "detached", None)
        for ip in stack.local_ips:
            if self.net.by_ip.get(ip) is stack:
                del self.net.by_ip[ip]
            if detached is not None:
                detached(ip)
            removed |= self.services.remove_endpoint(ip)
        self._endpoints_removed(removed)
        del self.pods_now[stack.owner]
        self._dns_watched(services)

    def sync_services(self, services: tuple[ServiceSpec, ...]) -> None:
        """kube-proxy's sync after the Services' endpoints changed (a label step, a created
        pod ready), and CoreDNS's watch."""
        self._endpoints_removed(self.services.sync(service_ports(services)))
        self._dns_watched(services)

    def _dns_watched(self, services: tuple[ServiceSpec, ...]) -> None:
        """What CoreDNS's kubernetes plugin learns through its informers: every CoreDNS pod
        answers from the Services and pods as they are now (namespaces stay)."""
        if not self.coredns:
            return
        namespaces = self.coredns[0].view.namespaces
        view = ClusterView.of(services, list(self.pods_now.values()), namespaces)
        for model in self.coredns:
            model.watch(view)

    def relabel(self, step: LabelStep) -> None:
        """A label step, as what watches labels carries it out: the EndpointSlice controller and
        kube-proxy's sync (a pod's labels select Service endpoints), the policy agent (felix)
        working out again which policies select which pods, and the CNI where labels are state
        of its own (a security identity per label set). Connections already allowed keep their
        conntrack entries; new ones are judged on the new labels."""
        if step.pod is not None:
            self.sync_services(step.services)
        if self.policy_log is not None:
            pod = step.pod.name if step.pod is not None else None
            self.policy_log.policies.relabel(step.namespace, pod, dict(step.set), step.remove)
        relabeled = getattr(self.cni, "relabeled", None)
        if relabeled is not None:
            relabeled(step)

    def _endpoints_removed(self, removed: set[Removed]) -> None:
        for node in self.topo.nodes:
            self.net.stacks[node.name].netfilter.services_synced(removed)

    # --- the underlay: per subnet a wire for two hosts, a switch for more; a router between ---

    def _underlay(self) -> None:
        hosts = [*self.topo.nodes, *self.topo.externals]
        segments: dict[SubnetSpec, list[Veth]] = {
            subnet: [] for subnet in self.cluster.underlay_subnets
        }
        for host in hosts:
            segments[self.cluster.subnet_of(host.ip)].append(self.node_eth0[host.name])
        if self.cluster.subnets:
            self._router(segments)
        for subnet, ends in segments.items():
            if len(ends) == 2:
                self.pair(ends[0], ends[1])
            elif len(ends) > 2:
                self._switch(ends, switch_owner(subnet.name))

    def _router(self, segments: dict[SubnetSpec, list[Veth]]) -> None:
        """A Linux router with an interface on each subnet (`eth<N>`, its address the subnet's
        gateway): it forwards between them (TTL - 1) and ARPs from its own MACs."""
        stack = self._stack(ROUTER, forwarding=True, node=None)
        for index, subnet in enumerate(self.cluster.subnets):
            mtu = self.cluster.underlay_mtu
            eth = self.veth(
                stack, f"eth{index}", subnet.router_mac, mtu, "underlay", None, WIRE_DELAY_NS
            )
            self.address(stack, eth, subnet.gateway.packed, subnet.cidr.prefixlen)
            stack.add_route(Route(subnet.cidr, eth, src=subnet.gateway.packed))
            segments[subnet].append(eth)

    def _switch(self, hosts: list[Veth], owner: str) -> None:
        seed = self.topo.seed
        stack = self._stack(owner, forwarding=False, node=None)
        mac = derive_mac(seed, f"{owner}/br-ul")
        switch = Bridge(
            stack,
            "br-ul",
            mac_bytes(mac),
            self.cluster.underlay_mtu,
            hairpin=False,
        )
        self.capture(switch, "bridge", None, mac)
        names = switch_port_names([host.stack.owner for host in hosts])
        for host, name in zip(hosts, names, strict=True):
            port_mac = derive_mac(seed, f"{owner}/{name}")
            port = self.veth(
                stack, name, port_mac, self.cluster.underlay_mtu, "switch-port", None, WIRE_DELAY_NS
            )
            self.pair(host, port)
            switch.add_port(port)

    # --- traffic -------------------------------------------------------------------------------

    def app(self, step):
        if isinstance(step, LinkStep | ImpairStep):
            return FaultApp(step, self._fault_namespace(step))
        if isinstance(step, CreateStep):
            # the namespace the steps after it name; it joins the network when the step runs
            owner, node = step.pod.owner, step.pod.node
            self.running[owner] = step.pod
            stack = Stack(self.net, owner, forwarding=False, node=node)
            self.namespaces = {**self.namespaces, owner: stack}
            return LifecycleApp(step, self.namespaces[owner], self)
        if isinstance(step, RestartStep | DeleteStep | LabelStep):
            # a namespace's labels belong to no namespace of the network: the first node's
            # stack only keeps the step's clock
            owner = step.pod.owner if step.pod else self.topo.nodes[0].name
            return LifecycleApp(step, self.namespaces[owner], self)
        sender = self.namespaces[step.src.owner]
        if isinstance(step, UdpStep):
            return UdpApp(step, sender, partial(self._receivers, step, sender, PROTO_UDP))
        if isinstance(step, PingStep):
            return PingApp(step, sender)
        if isinstance(step, TcpStep):
            return TcpApp(step, sender, partial(self._receivers, step, sender, PROTO_TCP))
        if isinstance(step, ProbeStep):
            return ProbeApp(step, sender, self._servers(step), self.policy_log)
        if isinstance(step, DnsStep):
            pod = self.running[step.src.owner]
            dns = self.cluster.dns
            return DnsApp(step, sender, pod, dns.service_ip, self.cluster.cluster_domain)
        if isinstance(step, PacketStep):
            return PacketApp(step, sender)
        raise TypeError(f"no application for {type(step).__name__}")

    def _fault_namespace(self, step: LinkStep | ImpairStep) -> Stack:
        """The namespace whose interface a `link` or `impair` step names: a pod's eth0 (the
        loader's check), or a node's interface that takes the fault, one it has or the host
        veth of a pod an earlier `create` step makes there: `link`, a veth or wire; `impair`,
        also a bridge or VXLAN device (their egress). Another name is refused, listing them."""
        stack = self.namespaces[step.target.owner]
        if step.target.kind == "pod":
            return stack
        devices = [dev for dev in stack.devices if dev is not stack.loopback]
        link = isinstance(step, LinkStep)
        able = [dev.name for dev in devices if (isinstance(dev, Veth) if link else dev.takes_qdisc)]
        able += [
            pod.host_veth
            for pod in self.running.values()
            if pod.node == stack.owner and pod.host_veth not in able
        ]
        if step.interface in able:
            return stack
        kind = next((dev.kind for dev in devices if dev.name == step.interface), None)
        takes = (
            "`ip link set` on veths and wires"
            if link
            else "netem on veths, wires, bridges and VXLAN devices"
        )
        why = (
            f"{step.interface} is the node's {kind} device: kpkt models {takes} only"
            if kind
            else f"{stack.owner} has no interface {step.interface!r} "
            f"(it has {', '.join(dev.name for dev in devices)})"
        )
        raise TopologyError(
            f"{self.topo.source}: {step.text}: {why}; name one of {', '.join(able)}"
        )

    def _servers(self, step: ProbeStep) -> list:
        """(stack, port, pod name) for each pod behind the probe's destination (the pod, or a
        service's endpoints) whose containers declare the port and protocol."""
        proto = PROTO_TCP if step.protocol == "TCP" else PROTO_UDP
        dst = step.dst.packed
        endpoints = self.services.endpoints(proto, dst, step.port, dst in self.node_ips)
        pods = {pod.ip.packed: pod for pod in self.running.values()}
        servers = []
        for ip, port in endpoints or [(dst, step.port)]:
            pod = pods.get(ip)
            declared = pod is not None and any(
                p.port == port and p.protocol == step.protocol
                for container in pod.containers
                for p in container.ports
            )
            if declared:
                servers.append((self.namespaces[pod.owner], port, pod.name))
        return servers

    def _receivers(self, step: UdpStep | TcpStep, sender: Stack, proto: int) -> list:
        """Who listens for the step: the owner of the destination address, or, for a service
        address or a node port, the namespaces of the service's ready endpoints, each on its
        own port."""
        if step.dst.is_loopback:
            return [(sender, step.dport)]
        dst = step.dst.packed
        node_port = dst in self.node_ips
        endpoints = self.services.endpoints(proto, dst, step.dport, node_port)
        if endpoints:
            return [(self.net.by_ip[ip], port) for ip, port in endpoints if ip in self.net.by_ip]
        owner = self.net.by_ip.get(dst)
        return [(owner, step.dport)] if owner is not None else []
