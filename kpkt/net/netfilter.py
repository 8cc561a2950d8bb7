"""The netfilter hooks of one namespace, and the order of the tables in each, in one place.

The stack (kpkt/net/stack.py) and br_netfilter (kpkt/net/br_netfilter.py) call a hook where the
kernel would; what runs in it is decided here, as iptables orders the tables of a hook:

    PREROUTING   conntrack, then nat (a new connection meets the DNAT rules)
    INPUT        filter (REJECT), then nat (a reply to the node's own connection is un-DNATed)
    FORWARD      filter (REJECT)
    OUTPUT       conntrack, then nat (DNAT; the caller routes again), then filter (REJECT)
    POSTROUTING  nat (a new connection meets the SNAT rules), then conntrack confirms it

Rule providers register into the tables: kube-proxy's rules (kpkt/net/kubeproxy.py) for nat DNAT
and filter REJECT, a CNI's masquerade rules (kpkt/net/nat.py) for nat POSTROUTING, and the
NetworkPolicy workload chains (kpkt/net/policy_filter.py) for filter FORWARD at the pods' veths.
The connection tracker (kpkt/net/conntrack.py) keeps what each connection was translated to, so
only the first packet of a connection meets the rules.

A filter hook answers with a REJECT decision (kpkt/observe.py), or None to accept; the caller
drops the packet and sends the ICMP port unreachable.
"""

from __future__ import annotations

from kpkt.net.conntrack import Conntrack
from kpkt.net.kubeproxy import Removed, ServiceRules
from kpkt.net.nat import MasqPolicy
from kpkt.observe import Decision, Why
from kpkt.wire.ipv4 import IP_DST, IP_HEADER_LEN, PROTO, PROTO_ICMP
from kpkt.wire.udp import PORTS


class Netfilter:
    def __init__(self, stack) -> None:
        self.stack = stack
        self.services: ServiceRules | None = None  # kube-proxy's nat DNAT and filter REJECT
        self.masquerades: list[MasqPolicy] = []  # nat POSTROUTING, in order
        self.rejecting = False  # whether the filter table has a REJECT
        self.policy = None  # the NetworkPolicy workload chains (a NodePolicy), if any
        self.conntrack = Conntrack(stack, self)
        # the PREROUTING and POSTROUTING hooks are the connection tracker's own: a packet of a
        # known connection is translated from its entry, a new one meets the nat rules there
        self.prerouting = self.conntrack.prerouting
        self.postrouting = self.conntrack.postrouting

    # --- rule providers -------------------------------------------------------------------------

    def add_services(self, services: ServiceRules) -> None:
        """kube-proxy's rules: nat KUBE-SERVICES (DNAT, KUBE-MARK-MASQ) in PREROUTING and
        OUTPUT, KUBE-POSTROUTING in POSTROUTING, filter REJECTs in INPUT, FORWARD and OUTPUT."""
        if not services:
            return
        self.services = services
        self.rejecting = services.rejecting
        self.conntrack.active = True

    def services_synced(self, removed: set[Removed]) -> None:
        """kube-proxy synced its rules again: the UDP connections to the endpoints service
        ports lost are deleted, and the filter table's REJECTs may have changed."""
        self.conntrack.endpoints_removed(removed)
        self.rejecting = self.services is not None and self.services.rejecting

    def add_policy(self, policy) -> None:
        """The NetworkPolicy workload chains in filter FORWARD (a NodePolicy): the client's
        egress as the packet enters from its veth, after the DNAT of PREROUTING; the server's
        ingress as it leaves into its veth."""
        self.policy = policy

    def add_masquerade(self, policy: MasqPolicy) -> None:
        """A chain of masquerade rules in nat POSTROUTING (a CNI's), after those already
        added."""
        self.masquerades.append(policy)

    # --- the rules a new connection meets (called by the connection tracker) -------------------

    def dnat(self, proto: int, src: bytes, dst: bytes, dport: int, pick):
        """nat PREROUTING or OUTPUT for a new connection: kube-proxy's Dnat, or None."""
        services = self.services
        if services is None or proto == PROTO_ICMP:
            return None
        local = dst in self.stack.local_ips
        return services.dnat(proto, src, dst, dport, local, pick)

    def masquerader(self, marked: bool, src: bytes, dst: bytes) -> str | None:
        """nat POSTROUTING for a new connection (addresses as it has them after DNAT): who
        masquerades it, or None. KUBE-POSTROUTING comes first and takes what KUBE-MARK-MASQ
        marked; then each chain in turn, whose first matching rule masquerades or returns."""
        if marked:
            return "kube-proxy"
        src_ip, dst_ip = int.from_bytes(src, "big"), int.from_bytes(dst, "big")
        for policy in self.masquerades:
            if policy.masquerades(src_ip, dst_ip):
                return policy.by
        return None

    # --- the filter hooks -----------------------------------------------------------------------

    def input(self, packet: bytes) -> tuple[bytes, Decision | None]:
        """INPUT, for a packet to a local address: filter (kube-proxy's REJECT of a node port
        without endpoints), then nat (the un-DNAT of a reply). The packet, and the REJECT."""
        if self.rejecting:
            reject = self._reject(packet, local=True)
            if reject is not None:
                return packet, reject
        if self.conntrack.translating:
            packet, _ = self.conntrack.local_in(packet)
        return packet, None

    def forward(self, packet: bytes) -> Decision | None:
        """FORWARD: filter (kube-proxy's REJECT of a cluster IP without endpoints)."""
        return self._reject(packet, local=False) if self.rejecting else None

    def output(self, packet: bytes):
        """OUTPUT, for a packet the namespace sends: conntrack and nat (kube-proxy's DNAT), then
        filter when the destination stayed. The packet, its NAT decision and the REJECT."""
        dst = packet[IP_DST]
        packet, decision = self.conntrack.prerouting(packet)
        if packet[IP_DST] == dst and self.rejecting:
            return packet, decision, self._reject(packet, local=False)
        return packet, decision, None

    def _reject(self, packet: bytes, *, local: bool) -> Decision | None:
        """KUBE-SERVICES (cluster IPs) or, `local`, KUBE-EXTERNAL-SERVICES (node ports on our
        addresses): a service port without endpoints is rejected. ICMP is never."""
        if packet[PROTO] == PROTO_ICMP:
            return None
        _, dport = PORTS.unpack_from(packet, IP_HEADER_LEN[packet[0]])
        name = self.services.reject(packet[PROTO], packet[IP_DST], dport, local)
        return None if name is None else Decision(Why.REJECTED, name)
