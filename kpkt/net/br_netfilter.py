"""br_netfilter on cni0 (`net.bridge.bridge-nf-call-iptables=1`): iptables runs on IPv4 frames
the bridge switches, so a pod's packet to a Service is DNATed inside the bridge.

As `br_nf_pre_routing()` and `br_nf_pre_routing_finish()` do it:

- nat PREROUTING runs after the bridge port's tap (`veth-* RX` shows the service address) and
  before the frame reaches the bridge device (`cni0 RX` shows the endpoint);
- when the new destination routes out of another device (a VXLAN device), the frame goes up to the
  node's stack, which forwards it without running PREROUTING again;
- when it routes back into the bridge (an endpoint on this node: "bridged DNAT"), the frame is
  switched, not routed (TTL unchanged, the client's source MAC kept). With a REACHABLE neighbour
  entry the endpoint's MAC is copied in directly; otherwise the frame takes a detour through the
  neighbour layer and the bridge device (`cni0 TX` shows it with cni0's source MAC), and
  `br_nf_pre_routing_finish_bridge_slow()` restores the original source MAC;
- nat POSTROUTING runs at the output port of a frame that came in through PREROUTING (the
  hairpin masquerade, the un-DNAT of a same-node reply): `cni0 TX` shows it before, `veth-* TX`
  after.

NetworkPolicy's egress side (kpkt/net/policy_filter.py) judges the frame right after PREROUTING,
where Calico's cali-fw chain sees it in filter FORWARD.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address

from kpkt.net.neighbor import Nud
from kpkt.observe import Tag
from kpkt.wire.ethernet import ETH_DST, ETH_LEN, ETH_SRC, ETH_SRC_TYPE, ETH_TYPE
from kpkt.wire.ipv4 import IP_DST

_CONNECTED = (Nud.REACHABLE, Nud.PERMANENT)


class BrNetfilter:
    def __init__(self, bridge) -> None:
        self.bridge = bridge
        self.stack = bridge.stack
        # packets on a neighbour-layer detour -> (original source MAC, ingress port)
        self.detours: dict[bytes, list] = defaultdict(list)

    def prerouting(self, frame: bytes, port, tag: Tag) -> tuple[bytes, str] | None:
        """nat PREROUTING on a frame from `port`: the frame to switch on and the NAT note, or
        None when this hook took the frame over (bridged DNAT, or no route)."""
        conntrack, policy = self.stack.conntrack, self.stack.policy
        if not conntrack.active and policy is None:
            return frame, ""
        packet = frame[ETH_LEN:]
        translated, note = conntrack.prerouting(packet) if conntrack.active else (packet, "")
        # the client pod's egress policy, after the DNAT
        if policy is not None and not policy.egress(packet, translated, tag, port.where):
            return None
        if translated is packet:
            return frame, note
        if translated[IP_DST] == packet[IP_DST]:
            return frame[:ETH_LEN] + translated, note
        route = self.stack.route_for(translated[IP_DST])
        if route is None:
            detail = f"no route to {IPv4Address(translated[IP_DST])} after dnat"
            self.stack.drop("no-route", detail, tag)
            return None
        bridge = self.bridge
        if route.dev is not bridge:  # routed: up to the stack, addressed to the bridge
            return bridge.mac + frame[ETH_SRC_TYPE] + translated, note
        self._bridged_dnat(frame, translated, port, route, tag, note)
        return None

    def _bridged_dnat(self, frame: bytes, packet: bytes, port, route, tag: Tag, note: str) -> None:
        stack, bridge = self.stack, self.bridge
        next_hop = route.via or packet[IP_DST]
        entry = stack.arp.table(bridge).get(next_hop, stack.sched.now)
        if entry is not None and entry.state in _CONNECTED:
            bridge.switch(entry.mac + frame[ETH_SRC_TYPE] + packet, port, tag, f"{note}; bridged")
            return
        self.detours[packet].append((frame[ETH_SRC], port))
        stack.arp.output(bridge, next_hop, packet, tag, f"{note}; bridged, via the neighbour")

    def detour(self, frame: bytes) -> tuple[bytes, object] | None:
        """A frame the bridge device is sending: if it is on a bridged-DNAT detour, the frame
        with its original source MAC back, and the port it came in on."""
        waiting = self.detours.get(frame[ETH_LEN:])
        if not waiting:
            return None
        src, port = waiting.pop(0)
        if not waiting:
            del self.detours[frame[ETH_LEN:]]
        return frame[ETH_DST] + src + frame[ETH_TYPE.start :], port

    def postrouting(self, frame: bytes) -> tuple[bytes, str]:
        """nat POSTROUTING at the output port, for a frame that went through PREROUTING."""
        packet = frame[ETH_LEN:]
        translated, note = self.stack.conntrack.postrouting(packet, self.bridge)
        if translated is packet:
            return frame, note
        return frame[:ETH_LEN] + translated, note
