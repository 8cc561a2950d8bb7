"""Plain, frozen data for a loaded topology: every default filled in, every name resolved.

`kpkt/topology/` produces these from YAML; `kpkt/build.py` turns them into a running network.
Nothing here knows about YAML or about packets, and this module imports nothing of kpkt: every
other layer may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str | None
    port: int
    protocol: str  # "TCP" | "UDP"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True, slots=True)
class PodSpec:
    name: str
    namespace: str
    node: str  # the name of the node it runs on
    ip: IPv4Address
    mac: str  # "02:00:0a:f4:01:02", lower case
    host_veth: str  # the host-side veth's interface name (<= 15 characters)
    host_veth_mac: str
    labels: tuple[tuple[str, str], ...] = ()
    hostname: str | None = None
    subdomain: str | None = None
    ready: bool = True
    resolver: str = "glibc"  # "glibc" | "musl"
    containers: tuple[ContainerSpec, ...] = ()

    @property
    def owner(self) -> str:
        """The capture-file owner name: `<pod>.<namespace>`."""
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    ip: IPv4Address  # eth0 on the underlay
    mac: str  # eth0's MAC
    pod_cidr: IPv4Network  # e.g. 10.244.1.0/24
    cni0_mac: str
    vtep_mac: str  # the CNI's tunnel device's MAC
    pods: tuple[PodSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ExternalSpec:
    """A host on the node network outside the cluster (a laptop, a router, a DNS server)."""

    name: str
    ip: IPv4Address
    mac: str


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    """The DNS server behind CoreDNS's `forward . /etc/resolv.conf`: a host on the node network
    answering from zone-file lines."""

    ip: IPv4Address
    records: tuple[str, ...] = ()  # "example.com. 300 IN A 198.51.100.10"
    name: str = "upstream-dns"  # its capture-file owner name
    mac: str = ""


@dataclass(frozen=True, slots=True)
class DnsSpec:
    """CoreDNS under kubeadm's Corefile: the kube-dns service and the coredns pod(s)."""

    service_ip: IPv4Address = IPv4Address("10.96.0.10")
    node: str = ""  # where the coredns pods run (filled in by the loader: the first node)
    pod_ips: tuple[IPv4Address, ...] = ()  # one per replica
    ttl: int = 30
    pods: str = "insecure"  # insecure | verified | disabled
    upstream: UpstreamSpec | None = None


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    """One subnet of the node network. With `cluster.underlay.subnets` each has the router's
    interface (`router/eth<N>`, N its index), whose address is the subnet's gateway."""

    name: str  # "" for the one subnet `underlay.cidr` (no router)
    cidr: IPv4Network
    gateway: IPv4Address | None  # the hosts' default route, if any
    router_mac: str = ""  # the router's interface on it ("" without a router)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    cni: str = ""  # one of kpkt.cni.CNIS (the loader gives the default, the first)
    pod_cidr: IPv4Network = IPv4Network("10.244.0.0/16")
    service_cidr: IPv4Network = IPv4Network("10.96.0.0/12")
    cluster_domain: str = "cluster.local"
    underlay_cidr: IPv4Network = IPv4Network("192.168.50.0/24")
    underlay_mtu: int = 1500
    underlay_gateway: IPv4Address | None = None  # the nodes' default gateway, if any
    vni: int = 1
    vxlan_port: int = 8472
    hairpin: bool = True
    dns: DnsSpec | None = None  # None: no cluster DNS
    cni_options: dict[str, str] = field(default_factory=dict)  # cluster.<cni>: its settings
    encapsulation_overhead: int = 50  # what the CNI's tunnel takes off the underlay MTU
    subnets: tuple[SubnetSpec, ...] = ()  # a routed node network (underlay.subnets), else ()

    @property
    def underlay_subnets(self) -> tuple[SubnetSpec, ...]:
        """The subnets of the node network: `underlay.subnets`, or the one `underlay.cidr`."""
        return self.subnets or (SubnetSpec("", self.underlay_cidr, self.underlay_gateway),)

    def subnet_of(self, ip: IPv4Address) -> SubnetSpec:
        """The subnet a host of the node network (a node, an external) is on."""
        return next(net for net in self.underlay_subnets if ip in net.cidr)

    @property
    def pod_mtu(self) -> int:
        """The MTU of the CNI's devices, the veths and pod eth0."""
        return self.underlay_mtu - self.encapsulation_overhead


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None
    port: int
    protocol: str  # "TCP" | "UDP"
    target_port: int | str  # a number, or a container port's name
    node_port: int | None = None  # NodePort services only


@dataclass(frozen=True, slots=True)
class EndpointPort:
    """One service port as one endpoint serves it (a named targetPort resolved per pod)."""

    name: str | None  # the service port's name
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    """One address behind a service, as the EndpointSlice controller would list it."""

    ip: IPv4Address
    ports: tuple[EndpointPort, ...]
    ready: bool = True  # ready for traffic (publishNotReadyAddresses already applied)
    pod: str | None = None  # the backing pod's owner name `<pod>.<namespace>`, if any
    node: str | None = None  # the node the pod runs on
    hostname: str | None = None  # set when the pod's hostname and subdomain name this service


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    namespace: str
    type: str  # "ClusterIP" | "NodePort" | "ExternalName"
    cluster_ip: IPv4Address | None  # None: headless (clusterIP: None) or ExternalName
    ports: tuple[ServicePort, ...] = ()
    selector: tuple[tuple[str, str], ...] | None = None  # None: no selector (explicit endpoints)
    publish_not_ready: bool = False
    endpoints: tuple[ServiceEndpoint, ...] = ()  # ready and not ready, in a stable order
    external_name: str | None = None

    @property
    def key(self) -> str:
        """`<namespace>/<name>`, as kube-proxy names it."""
        return f"{self.namespace}/{self.name}"

    def ready_endpoints(self) -> list[ServiceEndpoint]:
        return [endpoint for endpoint in self.endpoints if endpoint.ready]


@dataclass(frozen=True, slots=True)
class HostRef:
    """A pod, a node's root namespace or an external host, by name: where a step starts."""

    kind: str  # "pod" | "node" | "external"
    name: str  # pod name, node name or external name
    namespace: str | None = None  # pods only

    @property
    def owner(self) -> str:
        return f"{self.name}.{self.namespace}" if self.kind == "pod" else self.name


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a step's `expect:` asks: an outcome word, a drop reason among its drops, or both."""

    outcome: str | None = None
    drop: str | None = None

    def met(self, outcome: str, reasons: Iterable[str]) -> bool:
        return (self.outcome is None or self.outcome == outcome) and (
            self.drop is None or self.drop in set(reasons)
        )

    def text(self) -> str:
        """As the step table prints it: "dropped, drop ttl-exceeded"."""
        parts = [self.outcome] if self.outcome else []
        return ", ".join(parts + ([f"drop {self.drop}"] if self.drop else []))

    def as_data(self) -> dict:
        """As manifest.json and --json write it: only the keys the topology gave."""
        data = {"outcome": self.outcome, "drop": self.drop}
        return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True, slots=True)
class UdpStep:
    text: str  # the step as written in the file, for the manifest and tables
    src: HostRef
    dst: IPv4Address  # 127.0.0.1 for container-to-container over lo
    sport: int | None  # None: an ephemeral port from the seed
    dport: int
    payload: bytes
    count: int = 1
    interval_ns: int = 1_000_000  # between datagrams (1 ms)
    listen: bool = True  # False: nobody listens on dport, the receiver answers port unreachable
    at_ns: int | None = None  # None: when the previous step is done
    ttl: int = 64  # the IP TTL the sender uses (IP_TTL), 1..255
    expect: Expectation | None = None  # what the step should end as (`expect:`), if said


@dataclass(frozen=True, slots=True)
class PingStep:
    text: str
    src: HostRef
    dst: IPv4Address
    id: int | None  # None: from the seed (Linux ping sockets pick the id)
    seq: int = 1  # the first sequence number
    count: int = 1
    interval_ns: int = NS_PER_SECOND
    size: int = 56  # ICMP payload bytes, as `ping -s`
    at_ns: int | None = None
    ttl: int = 64  # as `ping -t`
    expect: Expectation | None = None


DEFAULT_RESPONSE = b"HTTP/1.0 200 OK\r\n\r\nhello"  # what the reference's server answered


@dataclass(frozen=True, slots=True)
class TcpStep:
    """A client connects, sends `payload`, reads the answer and closes when the server does;
    the server in the target (an HTTP/1.0-like responder) answers `response`."""

    text: str
    src: HostRef
    dst: IPv4Address
    sport: int | None  # None: an ephemeral port from the seed
    dport: int
    payload: bytes
    response: bytes = DEFAULT_RESPONSE
    listen: bool = True  # False: nothing listens on dport, the target answers with a reset
    at_ns: int | None = None
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class DnsStep:
    """The pod's stub resolver (glibc or musl, as the pod says) looks `name` up through the
    cluster DNS, as getaddrinfo does (A and AAAA), or asks one `qtype` when the step names it."""

    text: str
    src: HostRef
    name: str
    qtype: str | None = None  # None: getaddrinfo (A and AAAA together)
    at_ns: int | None = None
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class PacketStep:
    """A packet crafted outside kpkt's applications (a `packet:` step, or `send` on a live
    network): `data` is an IPv4 packet routed by the sender's stack as a raw IP socket sends
    it, or with `frame` a whole Ethernet frame put on the sender's eth0 as a packet socket
    does. `fill` names what the sender's stack completes at send time (kpkt/net/raw.py):
    "src" (the route's source address), "id" (the next IP ID), "ether-src" (eth0's MAC), and
    the checksums to redo after that, "chksum" (IPv4 header) and "l4-chksum" (UDP or TCP)."""

    text: str
    src: HostRef
    data: bytes
    frame: bool = False
    fill: frozenset[str] = frozenset()
    count: int = 1
    interval_ns: int = 1_000_000
    at_ns: int | None = None
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class LinkStep:
    """A fault: the carrier of `interface` in `target`'s namespace goes down or comes back up,
    for both ends of its link (a veth pair, or a node's cable to the node network)."""

    text: str
    target: HostRef  # a pod or a node
    interface: str
    up: bool
    at_ns: int | None = None
    expect: Expectation | None = None  # event steps expect nothing


@dataclass(frozen=True, slots=True)
class Impairment:
    """What `tc qdisc replace dev <interface> root netem ...` sets: probabilities from 0 to 1,
    times in nanoseconds."""

    loss: float = 0.0
    delay_ns: int = 0
    jitter_ns: int = 0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0

    def text(self) -> str:
        """As tc prints it: "loss 5% delay 2ms 1ms"."""
        parts = []
        if self.delay_ns:
            jitter = f" {_ms(self.jitter_ns)}" if self.jitter_ns else ""
            parts.append(f"delay {_ms(self.delay_ns)}{jitter}")
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {value * 100:g}%")
        return " ".join(parts)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:g}ms"


@dataclass(frozen=True, slots=True)
class ImpairStep:
    """A fault: netem on the egress of `interface` in `target`'s namespace (`impairment` None:
    `clear: true`, the qdisc removed)."""

    text: str
    target: HostRef
    interface: str
    impairment: Impairment | None
    at_ns: int | None = None
    expect: Expectation | None = None


PROBE_PROTOCOLS = ("TCP", "UDP")  # what a probe speaks
# SCTP is a NetworkPolicy protocol the engine judges, but nothing in kpkt sends it
SCTP_NOT_MODELLED = (
    "SCTP traffic is not modelled (kpkt sends TCP and UDP; NetworkPolicy rules may still name SCTP)"
)


@dataclass(frozen=True, slots=True)
class ProbeStep:
    """One connection attempt as the upstream NetworkPolicy tests' `agnhost connect` makes it
    (TCP: the handshake completes; UDP: one request is answered; one second of timeout). The
    target serves `port` only if a container of its pod declares it."""

    text: str
    src: HostRef
    dst: IPv4Address  # a pod's address, a service's cluster IP, a node's or an external's
    port: int
    protocol: str  # "TCP" | "UDP"
    target: str  # the destination as `to:` names it: "y/b", "service/y/s-y-b", "node/node1"
    at_ns: int | None = None
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class RestartStep:
    """A lifecycle step: a container of `pod` restarts. The pause container keeps the network
    namespace (address, MAC, veth, neighbours, FDB entries); the sockets of the pod's
    applications are closed, as the kernel closes them when their process exits."""

    text: str
    pod: HostRef
    container: str | None
    at_ns: int | None = None
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class DeleteStep:
    """A lifecycle step: `pod` is deleted. Its namespace and veth go (the CNI plugin's DEL),
    Services lose the endpoint (kube-proxy clears the UDP conntrack entries to it). `services`:
    every Service with its endpoints once the pod is gone (the loader works them out)."""

    text: str
    pod: HostRef
    at_ns: int | None = None
    services: tuple[ServiceSpec, ...] = ()
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class LabelStep:
    """A lifecycle step: the labels of a pod (or of a namespace) change. `services`: every
    Service with its endpoints as the EndpointSlice controller lists them after the change
    (the loader works them out)."""

    text: str
    pod: HostRef | None  # None: a namespace's labels
    namespace: str
    set: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    at_ns: int | None = None
    services: tuple[ServiceSpec, ...] = ()
    expect: Expectation | None = None


@dataclass(frozen=True, slots=True)
class CreateStep:
    """A lifecycle step: `pod` is created on its node mid-run, as the kubelet and the CNI
    plugin's ADD bring a pod up (its address is the one host-local IPAM gives next). `services`:
    every Service with its endpoints once the pod runs (the loader works them out)."""

    text: str
    pod: PodSpec
    at_ns: int | None = None
    services: tuple[ServiceSpec, ...] = ()
    expect: Expectation | None = None


EventStep = LinkStep | ImpairStep | RestartStep | DeleteStep | CreateStep | LabelStep
Step = UdpStep | PingStep | TcpStep | DnsStep | PacketStep | ProbeStep | EventStep


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    source: str  # the file it was loaded from, as given
    sha256: str = ""  # of the file's content (hex): with its name, what the manifest records
    seed: int = 0
    description: str = ""
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    nodes: tuple[NodeSpec, ...] = ()
    externals: tuple[ExternalSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    steps: tuple[Step, ...] = ()
    warnings: tuple[str, ...] = ()  # non-fatal findings, printed by the CLI
    # kpkt.policy.model's Namespace (the listed ones; others carry only their name label) and
    # NetworkPolicy (API defaults applied): plain frozen data this module need not import
    namespaces: tuple = ()
    policies: tuple = ()

    def pods(self) -> list[PodSpec]:
        """The pods that run from the start (not the ones `create` steps make)."""
        return [pod for node in self.nodes for pod in node.pods]

    def created_pods(self) -> list[PodSpec]:
        """The pods `create` steps make, in step order."""
        return [step.pod for step in self.steps if isinstance(step, CreateStep)]
