"""The fixed list of reasons a frame can be dropped, with what each means."""

from __future__ import annotations

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
    "link-down": "the device has no peer, or no carrier (a `link` step took the link down)",
    "netem-loss": "netem on the egress interface lost it (an `impair` step's loss)",
    "bad-checksum": "the receiver's checksum check failed: netem corrupted it (an `impair` "
    "step's corrupt)",
    "policy-denied": "a NetworkPolicy denied the connection's first packet, on the client's "
    "egress or the server's ingress side (dropped silently: no RST, no ICMP)",
    "malformed": "a frame too short or with a header that does not parse",
}


def check(reason: str) -> str:
    """`reason`, after making sure it is one of the documented codes."""
    if reason not in REASONS:
        raise ValueError(f"undocumented drop reason {reason!r}")
    return reason
