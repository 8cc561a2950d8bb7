"""NetworkPolicy on the wire, where a policy-enforcing CNI's iptables dataplane enforces it
(netpol.md §6, §7), also under a CNI without policy as Canal adds it: at the pod's host-side
veth.

- egress: the client pod's policies judge a packet entering the node from the pod's veth,
  after kube-proxy's DNAT (cali-fw-<veth>, in filter FORWARD after nat PREROUTING);
- ingress: the server pod's policies judge a packet just before it leaves the node into the
  pod's veth (cali-tw-<veth>), on the server's node, after the tunnel;
- conntrack first: only a connection's first packet is judged. Once allowed on a side, every
  later packet of the connection, either way, passes that side (ctstate ESTABLISHED), and ICMP
  errors pass as RELATED; a packet from the pod's own node is always let in;
- a denied packet is dropped silently (the dataplane's default DROP): no RST, no ICMP.

Who calls it: for a routed pod veth (a cali veth) the node's stack (kpkt/net/stack.py), in
filter FORWARD and INPUT, on packets from and to it; for a pod on a bridge br_netfilter on a
pod's egress and the pod's veth on its ingress; under a BPF datapath its programs.

Each node has a `NodePolicy`; the verdicts come from kpkt/policy, which knows nothing of
packets. What was denied, per step, is kept in `PolicyLog` for the probes to report.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.net.nat import Flow, flow_of
from kpkt.observe import Decision, Tag, Why
from kpkt.policy.verdict import ICMP, Policies, Verdict
from kpkt.wire.ethernet import ETH_LEN, ETH_TYPE, ETH_TYPE_IP
from kpkt.wire.ipv4 import IP_DST, PROTO_ICMP, PROTO_TCP, PROTO_UDP

_PROTOCOLS = {PROTO_TCP: "TCP", PROTO_UDP: "UDP", PROTO_ICMP: ICMP}


class PolicyLog:
    """The cluster's policies and what they denied: step index -> the first denial's verdict."""

    def __init__(self, policies: Policies) -> None:
        self.policies = policies
        self.denied: dict[int, Verdict] = {}


class NodePolicy:
    """One node's workload chains: the connections each side let through, and the judging."""

    def __init__(self, stack, log: PolicyLog) -> None:
        self.stack = stack
        self.log = log
        self.policies = log.policies
        self.egress_ok: set[Flow] = set()  # flows (as the client sent them, and after DNAT)
        self.ingress_ok: set[Flow] = set()

    def egress(self, original: bytes, packet: bytes, tag: Tag, where: str) -> bool:
        """A packet from a pod's veth (`original`, and `packet` after kube-proxy's DNAT):
        whether it goes on."""
        flow = flow_of(packet)
        if flow is None:  # ICMP errors (RELATED), and what is no TCP, UDP or ICMP echo
            return True
        if flow in self.egress_ok or _reverse(flow) in self.ingress_ok:
            return True
        proto, src, _, dst, dport = flow
        verdict = self.policies.egress(
            IPv4Address(src), IPv4Address(dst), _PROTOCOLS[proto], _port(proto, dport)
        )
        if not verdict.allowed:
            return self._deny(verdict, tag, where)
        self.egress_ok.add(flow)
        if original is not packet:
            self.egress_ok.add(flow_of(original))  # replies come back un-DNATed
        return True

    def ingress(self, frame: bytes, tag: Tag, where: str, pod_ip: bytes) -> bool:
        """A frame about to enter the veth of the pod at `pod_ip`: whether it goes on."""
        if frame[ETH_TYPE] != ETH_TYPE_IP or frame[ETH_LEN:][IP_DST] != pod_ip:
            return True  # ARP, and flooded copies for another pod
        return self.ingress_packet(frame[ETH_LEN:], tag, where)

    def ingress_packet(self, packet: bytes, tag: Tag, where: str) -> bool:
        """A packet to the pod behind the veth `where`, in filter FORWARD (a routed veth's
        cali-tw chain, before the neighbour layer) or as it is sent: whether it goes on."""
        flow = flow_of(packet)
        if flow is None:
            return True
        if flow in self.ingress_ok or _reverse(flow) in self.egress_ok:
            return True
        proto, src, _, dst, dport = flow
        verdict = self.policies.ingress(
            IPv4Address(src),
            IPv4Address(dst),
            _PROTOCOLS[proto],
            _port(proto, dport),
            from_own_node=src in self.stack.local_ips,
        )
        if not verdict.allowed:
            return self._deny(verdict, tag, where)
        self.ingress_ok.add(flow)
        return True

    def _deny(self, verdict: Verdict, tag: Tag, where: str) -> bool:
        self.stack.drop(Decision(Why.POLICY_DENIED, verdict), tag, where)
        self.log.denied.setdefault(tag.step, verdict)
        return False


def _port(proto: int, dport: int) -> int | None:
    return None if proto == PROTO_ICMP else dport


def _reverse(flow: Flow) -> Flow:
    proto, src, sport, dst, dport = flow
    return proto, dst, dport, src, sport
