"""The fixed list of reasons a frame can be dropped, with what each means."""

from __future__ import annotations

from kpkt.observe import Why

REASONS: dict[str, str] = {
    "no-route": "no route to the destination (ICMP net unreachable to the sender)",
    "ttl-exceeded": "TTL reached 0 while forwarding (ICMP time exceeded to the sender)",
    "neighbour-unresolved": "ARP got no answer after 3 tries (ICMP host unreachable)",
    "neighbour-queue-full": "too many packets waiting for ARP (the oldest is dropped)",
    "port-unreachable": "no socket listens on the UDP port (ICMP port unreachable)",
    "service-no-endpoints": "kube-proxy's REJECT: the service port has no ready endpoints "
    "(ICMP port unreachable)",
    "mtu-exceeded": "larger than the egress MTU with DF set (ICMP fragmentation needed)",
    "not-for-us": "an IP packet for another host on a namespace that does not forward",
    "otherhost": "a frame for another MAC reached a host interface",
    "same-port": "the bridge's FDB points back at the ingress port, which is not hairpin",
    "no-fdb-and-no-flood": "the VXLAN device has no FDB entry for the inner destination MAC",
    "vni-mismatch": "a VXLAN packet with a VNI this node has no device for",
    "link-down": "the device has no peer, or no carrier (a `link` step took the link down; "
    "a just-created pod's bridge port before its carrier is seen)",
    "netem-loss": "netem on the egress interface lost it (an `impair` step's loss)",
    "bad-checksum": "a checksum the receiver checks does not verify: a crafted packet's IPv4 "
    "header checksum, or what netem corrupted (an `impair` step's corrupt)",
    "blackhole": "the route to the destination is a blackhole (discarded, no ICMP error)",
    "tunnel-loop": "the route to a tunnel's remote end leads back into the tunnel",
    "policy-denied": "a NetworkPolicy denied the connection's first packet, on the client's "
    "egress or the server's ingress side (dropped silently: no RST, no ICMP)",
    "malformed": "a frame too short or with a header that does not parse, or an IPv4 header "
    "whose header length or total length lies",
    "fragment": "an IP fragment reached its destination: reassembly is not modelled",
}


# the reason code of each kind of drop decision (kpkt/observe.py)
REASON_OF: dict[Why, str] = {
    Why.NO_ROUTE: "no-route",
    Why.NO_ROUTE_AFTER_DNAT: "no-route",
    Why.UNREACHABLE: "no-route",
    Why.TTL_EXCEEDED: "ttl-exceeded",
    Why.ARP_UNRESOLVED: "neighbour-unresolved",
    Why.ARP_QUEUE_FULL: "neighbour-queue-full",
    Why.NO_UDP_LISTENER: "port-unreachable",
    Why.NO_TCP_LISTENER: "port-unreachable",
    Why.REJECTED: "service-no-endpoints",
    Why.MTU_EXCEEDED: "mtu-exceeded",
    Why.NOT_FOR_US: "not-for-us",
    Why.SAME_PORT: "same-port",
    Why.NO_VXLAN_FDB: "no-fdb-and-no-flood",
    Why.VNI_MISMATCH: "vni-mismatch",
    Why.LINK_DOWN: "link-down",
    Why.NO_CARRIER: "link-down",
    Why.PORT_DISABLED: "link-down",
    Why.CARRIER_LOST: "link-down",
    Why.NETEM_LOSS: "netem-loss",
    Why.CORRUPTED: "bad-checksum",
    Why.POLICY_DENIED: "policy-denied",
    Why.BLACKHOLE: "blackhole",
    Why.TUNNEL_LOOP: "tunnel-loop",
    Why.IPIP_MALFORMED: "malformed",
    Why.VXLAN_MALFORMED: "malformed",
    Why.SLEEVE_MALFORMED: "malformed",
    Why.SLEEVE_UNKNOWN_PEER: "malformed",
    Why.BPF_UNKNOWN_L3: "malformed",
    Why.BPF_NOT_IPV4: "malformed",
    Why.BPF_NO_ENDPOINT: "no-route",
    Why.BPF_TTL_EXCEEDED: "ttl-exceeded",
    Why.MALFORMED: "malformed",
    Why.BAD_CHECKSUM: "bad-checksum",
    Why.FRAGMENT: "fragment",
}
