"""An IPIP tunnel device: Linux's per-namespace fallback tunnel `tunl0` (`ipip any remote any
local any ttl inherit nopmtudisc`), as the `ipip` module creates it.

It has no link layer (ARPHRD_TUNNEL, NOARP): the stack hands it IP packets with their next hop,
not Ethernet frames, and what a capture on it shows is raw IP. Sending (`ip_tunnel_xmit`): the
outer destination is the route's next hop (the remote node of `via <node> dev tunl0 onlink`),
the outer source is what the route to it picks, the outer TTL and DF are the inner ones and the
TOS carries only the inner ECN bits (kpkt/wire/ipip.py); the outer packet leaves through the
namespace's stack (OUTPUT, routing, ARP on the underlay). An outer route that leads back into
the tunnel is dropped. Receiving: the stack hands IP protocol 4 for a local address to `decap`,
which receives the inner packet on the tunnel as if it had arrived there.
"""

from __future__ import annotations

from kpkt.net.device import NetDevice
from kpkt.observe import IN, OUT, Decision, Tag, Why
from kpkt.wire.ipip import ipip_packet
from kpkt.wire.ipv4 import IP_MIN_LEN

DEFAULT_MTU = 1480  # 1500 of the underlay minus the outer header
NO_MAC = b""
_DECAP = Decision(Why.IPIP_DECAP)
_MALFORMED = Decision(Why.IPIP_MALFORMED)


class IpipTunnel(NetDevice):
    kind = "ipip"
    link_layer = False

    def __init__(self, stack, name: str, mtu: int = DEFAULT_MTU) -> None:
        super().__init__(stack, name, NO_MAC, mtu)
        stack.ipip_tunnel = self  # the namespace's one fallback tunnel: what protocol 4 reaches
        self._encaps: dict[bytes, Decision] = {}  # remote -> the decision to encapsulate to it

    def xmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        raise TypeError(f"{self.where} has no link layer: send IP packets with `output`")

    def output(self, packet: bytes, next_hop: bytes, tag: Tag, note: Decision | str) -> None:
        """Send `packet` (raw IPv4) to the remote end `next_hop`, encapsulated."""
        self.observer.seen(packet, OUT, tag, note)
        stack = self.stack
        route = stack.route_for(next_hop)
        if route is None:
            stack.drop(Decision(Why.NO_ROUTE, next_hop), tag)
            return
        if route.dev is self:
            stack.drop(Decision(Why.TUNNEL_LOOP, self.name, next_hop), tag, self.where)
            return
        encap = self._encaps.get(next_hop)
        if encap is None:
            encap = self._encaps[next_hop] = Decision(Why.IPIP_ENCAP, next_hop)
        src = stack.pick_source(route, next_hop)
        stack.send_ip_packet(
            ipip_packet(src, next_hop, packet, ident=stack.ids.ip_id()), tag, encap
        )

    def decap(self, packet: bytes, ihl: int, tag: Tag) -> None:
        """A packet of IP protocol 4 for one of our addresses: receive what it carries."""
        inner = packet[ihl:]
        if len(inner) < IP_MIN_LEN or inner[0] >> 4 != 4:
            self.stack.drop(_MALFORMED, tag, self.where)
            return
        self.observer.seen(inner, IN, tag, _DECAP)
        self.stack.receive_ip(inner, self, tag)
