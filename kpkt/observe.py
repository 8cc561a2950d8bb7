"""The hook through which devices report what they did, in the spirit of ns-3's trace sources.

Every device has an observer, whose `seen(frame, direction, tag, decision)` it calls for each
frame: "this frame crossed this interface, in this direction, because of this decision". Each
namespace's stack has the network's observer, which hands out the tags of new flows and packets
(`new_flow(step)`, `packet(tag)`) and is told of what happens to a packet between frames:
`decided(tag, decision)` (about the packet's newest frame) and `dropped(where, reason, decision,
tag)` (`reason` a code of kpkt/net/drops.py). A device's default observer does nothing; the
capture layer gives each device its tap and each stack the journal, a unit test gives them a
recorder. What a device decided is data, a `Decision`: a kind and its arguments, turned into
text only by whoever records it (kpkt/capture/decisions.py). When something happens to an
interface itself (a fault or lifecycle step), the step tells the device's observer with
`remark(event)`, the event a `Decision` too (`Decision(Why.LINK_SET, False, "node1/eth0")`),
which a capture notes on the interface's next frame. An observer's class may also offer
`seen_each(observers, frame, direction, tag, note)`, the same frame seen by several of its
observers in turn at one instant (a bridge's flood, kpkt/net/device.py); capture points do.
Applications and TCP connections say what they send with decisions too (a segment, a query, a
send of a step).

This module is at the bottom of the import graph: it imports nothing of kpkt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

IN = "in"
OUT = "out"


@dataclass(slots=True)
class Tag:
    """What a frame belongs to: the packet (its id, the same at every hop, through NAT and
    tunnels), the flow (a conversation a step or a kernel timer started: the packets it sends
    and every packet sent because of them, answers, errors, ARP) and the traffic step (and the
    observer's log of it). A flow's own tag has packet id 0: each packet sent gets its id from
    the observer (`Journal.packet`, kpkt/capture/tap.py), which hands out the tags. A flow
    that carries packets kpkt did not build (crafted ones) is `checked`: the stacks its packets
    reach check them as the kernel does (kpkt/net/sanity.py); kpkt's own packets are correct
    by construction and skip those checks."""

    step: int
    pid: int
    flow: int
    log: object  # the observer's record of the step (a capture StepLog)
    label: str  # "step 3 flow 2" (or "background flow 7"), the start of the packet's comment
    checked: bool = False


class Why(Enum):
    """The kinds of decision, with the arguments each carries."""

    FDB_LEARN = "fdb-learn"  # (mac, port name): a new or moved entry
    FDB_LOCAL = "fdb-local"  # (mac,): up to the bridge device, a local MAC
    FDB_PORT = "fdb-port"  # (mac, port name): out of the one port the entry names
    PASSED_UP = "passed-up"  # (): a broadcast, also passed up to the bridge device
    FLOODED = "flooded"  # (mac, ports, hairpin): broadcast or fdb miss, sent to `ports` ports
    ARP_WHO_HAS = "arp-who-has"  # (ip, try): a broadcast request for an INCOMPLETE entry
    ARP_PROBE = "arp-probe"  # (ip, try): a unicast request for an entry in PROBE
    ARP_REPLY = "arp-reply"  # (ip, mac): the answer to a request for one of our addresses
    ARP_PROXY_REPLY = "arp-proxy-reply"  # (ip, mac): proxy ARP's answer for a routed address
    ARP_RESOLVED = "arp-resolved"  # (ip,): a packet that waited for the neighbour, sent
    GRATUITOUS_ARP = "gratuitous-arp"  # (ip, by): a request for the sender's own address
    FORWARD = "forward"  # (route, ttl): routed on, with the TTL it leaves with
    ECHO_REPLY = "echo-reply"  # (): the answer to an ICMP echo request for a local address
    ICMP_ERROR = "icmp-error"  # (type, code, ip): an ICMP error sent to `ip`
    ICMP_RATE_LIMITED = "icmp-rate-limited"  # (type, code): an ICMP error not sent
    VXLAN_ENCAP = "vxlan-encap"  # (vni, remote ip): sent to the remote VTEP
    VXLAN_DECAP = "vxlan-decap"  # (vni,): the inner frame of a VXLAN packet, delivered
    DNAT = "dnat"  # (ip or None for a node port, port, to ip, to port, service, mark):
    # kube-proxy's DNAT of a new connection; `mark` is "hairpin", "masquerade" or ""
    MASQUERADE = "masquerade"  # (by, ip, port, to ip, to port): a new connection's SNAT
    UNDO_SNAT = "undo-snat"  # (ip, port): a reply's destination back to the original source
    UNDO_DNAT = "undo-dnat"  # (ip, port): a reply's source back to the original destination
    RELATED = "related"  # (to destination, ip): an ICMP error about a translated connection
    BRIDGED = "bridged"  # (): after br_netfilter's DNAT, switched back into the bridge
    BRIDGED_VIA_NEIGHBOUR = "bridged-via-neighbour"  # (): ... after resolving the endpoint
    THEN = "then"  # (decision or text, ...): several decisions, in order
    # drops (the reason code of each is in kpkt/net/drops.py)
    NO_ROUTE = "no-route"  # (ip,)
    NO_ROUTE_AFTER_DNAT = "no-route-after-dnat"  # (ip,)
    UNREACHABLE = "unreachable"  # (ip,): a socket's send with no route
    NOT_FOR_US = "not-for-us"  # (ip, namespace)
    TTL_EXCEEDED = "ttl-exceeded"  # (ttl, ip)
    MTU_EXCEEDED = "mtu-exceeded"  # (size, mtu, device name)
    REJECTED = "rejected"  # (service port name,): kube-proxy's REJECT
    NO_UDP_LISTENER = "no-udp-listener"  # (port,)
    NO_TCP_LISTENER = "no-tcp-listener"  # (port,): answered with a reset
    ARP_QUEUE_FULL = "arp-queue-full"  # (device name, ip)
    ARP_UNRESOLVED = "arp-unresolved"  # (device name, ip)
    SAME_PORT = "same-port"  # (bridge name, mac, port name)
    NO_VXLAN_FDB = "no-vxlan-fdb"  # (device name, mac)
    VXLAN_MALFORMED = "vxlan-malformed"  # ()
    VNI_MISMATCH = "vni-mismatch"  # (vni, the device's vni)
    SLEEVE_MALFORMED = "sleeve-malformed"  # (what is wrong,): a sleeve datagram's framing
    SLEEVE_UNKNOWN_PEER = "sleeve-unknown-peer"  # (peer name,): a frame no known peer sent
    LINK_DOWN = "link-down"  # (device name,)
    NO_CARRIER = "no-carrier"  # (device name,): a `link` step took the link down
    PORT_DISABLED = "port-disabled"  # (bridge name, port name): its carrier is not seen yet
    CARRIER_LOST = "carrier-lost"  # (device name,): ... with the frame on the wire
    NETEM_LOSS = "netem-loss"  # (device name, loss): an `impair` step's loss
    CORRUPTED = "corrupted"  # (checksum name,): what netem corrupted, as the receiver sees
    BLACKHOLE = "blackhole"  # (route,): a blackhole route
    IPIP_ENCAP = "ipip-encap"  # (remote ip,)
    IPIP_DECAP = "ipip-decap"  # ()
    IPIP_MALFORMED = "ipip-malformed"  # (): the inner packet is not IPv4
    TUNNEL_LOOP = "tunnel-loop"  # (device name, remote ip): the outer route leads back inside
    POLICY_DENIED = "policy-denied"  # (verdict,): a kpkt.policy Verdict, its side and policies
    # an overlay router (kpkt/net/overlay.py): its switch over the peers, its VXLAN and UDP tunnels
    OVERLAY_FLOOD = "overlay-flood"  # (mac, peers): to every peer
    OVERLAY_PEER = "overlay-peer"  # (mac, peer name): to the peer the MAC is behind
    OVERLAY_INJECT = "overlay-inject"  # (peer name,): a peer's frame, into the bridge
    FASTDP_ENCAP = "fastdp-encap"  # (vni, remote ip): the VNI the two peers' short IDs
    FASTDP_DECAP = "fastdp-decap"  # (vni,)
    SLEEVE_SEND = "sleeve-send"  # (frames, remote ip): one UDP datagram
    # a CNI's BPF programs on tc hooks
    BPF_ARP_REPLY = "bpf-arp-reply"  # (ip,): the ARP responder's answer with the device's MAC
    BPF_ENCAP = "bpf-encap"  # (identity,): into the tunnel, the VNI the source's identity
    BPF_LOCAL_DELIVERY = "bpf-local-delivery"  # (pod owner, ttl): to a pod of the node
    BPF_UNKNOWN_L3 = "bpf-unknown-l3"  # (): neither ARP nor IPv4 from a pod (DROP_UNKNOWN_L3)
    BPF_NO_ENDPOINT = "bpf-no-endpoint"  # (ip,): routed to the host device, no endpoint has it
    BPF_TTL_EXCEEDED = "bpf-ttl-exceeded"  # (ttl,): local delivery of a packet at TTL 1
    BPF_NOT_IPV4 = "bpf-not-ipv4"  # (): out of the tunnel, not IPv4
    # the kernel's header checks of crafted packets (kpkt/net/sanity.py)
    MALFORMED = "malformed"  # (what lies,): a header that lies or is cut short
    BAD_CHECKSUM = "bad-checksum"  # (stated checksum, source ip, right checksum)
    FRAGMENT = "fragment"  # (offset in bytes, more fragments): at local delivery
    # what sockets and applications send
    TCP_SEGMENT = "tcp-segment"  # (flags, seq, ack, length, Resend or None): a segment sent
    UDP_SEND = "udp-send"  # (number, count): a `udp` step's datagram
    PING_REQUEST = "ping-request"  # (seq,): a `ping` step's echo request
    RAW_SEND = "raw-send"  # (frame, number, count): a `packet` step's frame (True) or packet
    DNS_QUERY = "dns-query"  # (query,): a stub resolver's query (a kpkt.dns.stub.Query)
    DNS_ANSWER = "dns-answer"  # (): CoreDNS's answer over UDP
    DNS_FORWARD = "dns-forward"  # (): CoreDNS forwarding a query upstream
    # events on an interface itself (fault and lifecycle steps): `remark(event)`
    LINK_SET = "link-set"  # (up, where): a `link` step set the carrier of the link `where` is
    NETEM_SET = "netem-set"  # (impairment or None): an `impair` step's netem, or its removal
    POD_DELETED = "pod-deleted"  # (pod owner,): on the host side of its veth
    POD_CREATED = "pod-created"  # (pod owner, node name, ip): on both ends of its new veth
    LABELS_SET = "labels-set"  # (pod owner, ((key, value), ...) set, (key, ...) removed)
    RESTARTED = "restarted"  # (pod owner, container or None for all, sockets closed)


class Resend(Enum):
    """Why a TCP segment is sent (again), beyond its own fields: a `Why.TCP_SEGMENT`'s cause."""

    SYN_TIMER = "syn-timer"  # the SYN's retransmission timer
    RTO = "rto"  # the retransmission timeout
    PARTIAL_ACK = "partial-ack"  # NewReno: an ack of part of what was outstanding
    FAST_RETRANSMIT = "fast-retransmit"  # the third duplicate ack
    SYN_AGAIN = "syn-again"  # the SYN came again: the SYN-ACK resent
    DUPLICATE_ACK = "duplicate-ack"  # an ack of nothing new
    OUT_OF_ORDER = "out-of-order"  # a duplicate ack for a segment past a hole (with SACK)
    HOLE_FILLED = "hole-filled"  # the ack of a segment that filled a hole
    D_SACK = "d-sack"  # the ack of a segment received twice (RFC 2883)
    TIME_WAIT = "time-wait"  # the TIME_WAIT socket's ack
    TIME_WAIT_AGAIN = "time-wait-again"  # ... of a FIN that came again
    RESET = "reset"  # the reset of a segment no socket takes


class Decision:
    """One decision: `why` and its `args`. `text` is the rendered form, filled in by the first
    recorder that renders it (decisions that stay the same, such as an FDB entry's, are built
    once and rendered once)."""

    __slots__ = ("why", "args", "text")

    def __init__(self, why: Why, *args) -> None:
        self.why = why
        self.args = args
        self.text: str | None = None

    def __repr__(self) -> str:
        return f"Decision({self.why.name}, {', '.join(map(repr, self.args))})"


def then(first: Decision | str, second: Decision | str) -> Decision | str:
    """`first`, then `second` (either may be "", nothing to say)."""
    if not first:
        return second
    if not second:
        return first
    return Decision(Why.THEN, first, second)


class Unobserved:
    """The observer of a device nobody observes."""

    __slots__ = ()

    def seen(self, frame: bytes, direction: str, tag, decision: Decision | str = "") -> None:
        pass

    def remark(self, event: Decision) -> None:
        pass


UNOBSERVED = Unobserved()
