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

NetworkPolicy's egress side (kpkt/net/policy_filter.py) judges a frame from a pod's port (its
workload endpoint) right after PREROUTING, where a policy dataplane's egress chain (cali-fw, as
Canal runs it) sees it in filter FORWARD; never a frame from a port to an overlay, whose egress
the sender's own node judged.
"""

from __future__ import annotations

from collections import defaultdict

from kpkt.engine import generation
from kpkt.net import sanity
from kpkt.net.neighbor import Nud
from kpkt.observe import Decision, Tag, Why, then
from kpkt.wire.ethernet import ETH_DST, ETH_LEN, ETH_SRC, ETH_SRC_TYPE, ETH_TYPE
from kpkt.wire.ipv4 import IP_DST

_CONNECTED = (Nud.REACHABLE, Nud.PERMANENT)


class BrNetfilter:
    def __init__(self, bridge) -> None:
        self.bridge = bridge
        self.stack = bridge.stack
        # packets on a neighbour-layer detour -> (original source MAC, ingress port)
        self.detours: dict[bytes, list] = defaultdict(list)

    def prerouting(self, frame: bytes, port, tag: Tag) -> tuple[bytes, Decision | str] | None:
        """nat PREROUTING on a frame from `port`, then the client pod's egress policy: the frame
        to switch on and what NAT decided, or None when this hook took the frame over (bridged
        DNAT, a policy drop, or no route)."""
        netfilter = self.stack.netfilter
        policy = netfilter.policy
        if not netfilter.conntrack.active and policy is None:
            return frame, ""
        packet = frame[ETH_LEN:]
        if tag.checked:  # br_validate_ipv4(): a crafted packet meets ip_rcv's checks here
            packet = sanity.ipv4(self.stack, packet, tag, self.bridge.where)
            if packet is None:
                return None
            frame = frame[:ETH_LEN] + packet
        translated, nat = (
            netfilter.prerouting(packet) if netfilter.conntrack.active else (packet, "")
        )
        # the client pod's egress policy, after the DNAT, on what comes from a pod's own port
        # (not from a port to an overlay: a policy agent judges only its local pods' egress)
        if port.guard is not None and not policy.egress(packet, translated, tag, port.where):
            return None
        if translated is packet:
            return frame, nat
        if translated[IP_DST] == packet[IP_DST]:
            return frame[:ETH_LEN] + translated, nat
        route = self.stack.route_for(translated[IP_DST])
        if route is None:
            self.stack.drop(Decision(Why.NO_ROUTE_AFTER_DNAT, translated[IP_DST]), tag)
            return None
        bridge = self.bridge
        if route.dev is not bridge:  # routed: up to the stack, addressed to the bridge
            return bridge.mac + frame[ETH_SRC_TYPE] + translated, nat
        self._bridged_dnat(frame, translated, port, route, tag, nat)
        return None

    def _bridged_dnat(
        self, frame: bytes, packet: bytes, port, route, tag: Tag, nat: Decision | str
    ) -> None:
        stack, bridge = self.stack, self.bridge
        next_hop = route.via or packet[IP_DST]
        entry = stack.arp.table(bridge).get(next_hop, stack.sched.now)
        if entry is not None and entry.state in _CONNECTED:
            bridge.switch(entry.mac + frame[ETH_SRC_TYPE] + packet, port, tag, then(nat, _BRIDGED))
            return
        generation.changed()
        self.detours[packet].append((frame[ETH_SRC], port))
        stack.arp.output(bridge, next_hop, packet, tag, then(nat, _VIA_NEIGHBOUR))

    def detour(self, frame: bytes) -> tuple[bytes, object] | None:
        """A frame the bridge device is sending: if it is on a bridged-DNAT detour, the frame
        with its original source MAC back, and the port it came in on."""
        waiting = self.detours.get(frame[ETH_LEN:])
        if not waiting:
            return None
        generation.changed()
        src, port = waiting.pop(0)
        if not waiting:
            del self.detours[frame[ETH_LEN:]]
        return frame[ETH_DST] + src + frame[ETH_TYPE.start :], port

    def postrouting(self, frame: bytes) -> bytes:
        """nat POSTROUTING at the output port, for a frame that went through PREROUTING."""
        packet = frame[ETH_LEN:]
        translated, _ = self.stack.netfilter.postrouting(packet, self.bridge)
        if translated is packet:
            return frame
        return frame[:ETH_LEN] + translated


_BRIDGED = Decision(Why.BRIDGED)
_VIA_NEIGHBOUR = Decision(Why.BRIDGED_VIA_NEIGHBOUR)
