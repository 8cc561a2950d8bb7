"""Service load balancing at the socket, as an eBPF datapath's cgroup hooks do it (connect4,
sendmsg4, recvmsg4): a socket that connects or sends to a service address and port gets one of
the service's ready endpoints instead, picked once per socket and destination, so the packet
leaves the client's own interface already addressed to the endpoint and no per-packet DNAT
happens anywhere on its path. What the socket receives from that endpoint is shown to the
application as from the service (recvmsg4's reverse translation); the packets on the wire keep
the endpoint's address.
"""

from __future__ import annotations

from kpkt.net.kubeproxy import ServiceRules


class SocketLb:
    def __init__(self, services: ServiceRules, pick) -> None:
        self.services = services
        self.pick = pick  # pick(n): one of n endpoints
        # (proto, endpoint address, endpoint port, local port) -> (service address, port)
        self.reverse: dict[tuple[int, bytes, int, int], tuple[bytes, int]] = {}
        self.chosen: dict[tuple[int, bytes, int, int], tuple[bytes, int]] = {}

    def connect(self, proto: int, dst: bytes, dport: int, sport: int) -> tuple[bytes, int]:
        """Where a socket bound to `sport` connecting (or sending) to `dst`:`dport` really
        goes: one of the service's endpoints, or `dst`:`dport` itself when it is no service."""
        key = (proto, dst, dport, sport)
        chosen = self.chosen.get(key)
        if chosen is None:
            endpoints = self.services.endpoints(proto, dst, dport, node_port=False)
            if not endpoints:
                return dst, dport
            chosen = endpoints[self.pick(len(endpoints)) if len(endpoints) > 1 else 0]
            self.chosen[key] = chosen
            self.reverse[(proto, *chosen, sport)] = (dst, dport)
        return chosen

    def received(self, proto: int, src: bytes, sport: int, dport: int) -> tuple[bytes, int]:
        """The source a socket on `dport` is told of a datagram from `src`:`sport`."""
        return self.reverse.get((proto, src, sport, dport), (src, sport))
