"""kube-proxy's rules, the connection tracker and the netfilter hooks driven on their own, with
no capture layer and no topology: a namespace built by hand, rules made from plain values
(`ServicePortInfo`), packets checked as bytes and decisions (kpkt/observe.py)."""

from __future__ import annotations

from ipaddress import IPv4Network

from handmade import ip, namespace, to, udp_packet, why

from kpkt.cni.flannel import masquerade_rules
from kpkt.net.kubeproxy import ServicePortInfo, ServiceRules
from kpkt.net.netfilter import Netfilter
from kpkt.net.route import Route
from kpkt.observe import Decision, Why
from kpkt.wire import icmp
from kpkt.wire.ethernet import ETH_LEN
from kpkt.wire.ipv4 import IP_MIN_LEN, IP_SRC, PROTO_TCP, PROTO_UDP

TAG = "tag"
CLUSTER = IPv4Network("10.244.0.0/16")
VIP = "10.96.0.10"
ENDPOINT = "10.244.2.5"
WEB = ServicePortInfo("default/web:http", PROTO_UDP, ip(VIP), 80, 30080, ((ip(ENDPOINT), 8080),))
EMPTY = ServicePortInfo("default/none", PROTO_UDP, ip("10.96.0.11"), 53, None, ())


def node(*ports: ServicePortInfo, masquerade: bool = False):
    """node1 with kube-proxy's rules for `ports` (and flannel's masquerade rules), and a route
    to node2's pods."""
    stack, recorder, eth0, cni0 = namespace()
    stack.add_route(Route(IPv4Network("10.244.2.0/24"), eth0, via=ip("192.168.50.2")))
    stack.arp.table(eth0).add_permanent(ip("192.168.50.2"), bytes.fromhex("020000000002"))
    netfilter = stack.netfilter = Netfilter(stack)
    netfilter.add_services(ServiceRules(ports, CLUSTER))
    if masquerade:
        netfilter.add_masquerade(masquerade_rules(CLUSTER, IPv4Network("10.244.1.0/24")))
    return stack, recorder, eth0, cni0


def sent(dev) -> list[tuple[bytes, Decision]]:
    return [(frame[ETH_LEN:], decision) for frame, decision in dev.sent]


# --- kube-proxy's rules, as values --------------------------------------------------------------


def test_a_cluster_ip_is_dnated_to_an_endpoint_and_outside_traffic_is_marked():
    rules = ServiceRules([WEB], CLUSTER)
    inside = rules.dnat(PROTO_UDP, ip("10.244.1.5"), ip(VIP), 80, False, pick=None)
    assert (inside.address, inside.port, inside.masquerade) == (ip(ENDPOINT), 8080, False)
    assert why(inside.decision) == (Why.DNAT, ip(VIP), 80, ip(ENDPOINT), 8080, WEB.name, "")
    outside = rules.dnat(PROTO_UDP, ip("192.168.50.2"), ip(VIP), 80, False, pick=None)
    assert outside.masquerade and outside.decision.args[-1] == "masquerade"
    hairpin = rules.dnat(PROTO_UDP, ip(ENDPOINT), ip(VIP), 80, False, pick=None)
    assert hairpin.masquerade and hairpin.decision.args[-1] == "hairpin"
    assert rules.dnat(PROTO_TCP, ip("10.244.1.5"), ip(VIP), 80, False, pick=None) is None
    assert rules.dnat(PROTO_UDP, ip("10.244.1.5"), ip(VIP), 81, False, pick=None) is None


def test_a_node_port_is_dnated_only_on_the_nodes_own_addresses():
    rules = ServiceRules([WEB], CLUSTER)
    dnat = rules.dnat(PROTO_UDP, ip("10.244.1.5"), ip("192.168.50.1"), 30080, True, pick=None)
    assert why(dnat.decision) == (Why.DNAT, None, 30080, ip(ENDPOINT), 8080, WEB.name, "masquerade")
    assert rules.dnat(PROTO_UDP, ip("10.244.1.5"), ip("8.8.8.8"), 30080, False, None) is None


def test_the_endpoint_is_drawn_among_several():
    two = ServicePortInfo(
        "default/two",
        PROTO_UDP,
        ip(VIP),
        80,
        None,
        ((ip("10.244.2.5"), 80), (ip("10.244.2.6"), 80)),
    )
    rules = ServiceRules([two], CLUSTER)
    draws = []

    def pick(n: int) -> int:
        draws.append(n)
        return 1

    assert rules.dnat(PROTO_UDP, ip("10.244.1.5"), ip(VIP), 80, False, pick).address == ip(
        "10.244.2.6"
    )
    assert draws == [2]


def test_a_service_port_without_endpoints_is_rejected_not_dnated():
    rules = ServiceRules([WEB, EMPTY], CLUSTER)
    assert rules.rejecting and rules.reject(PROTO_UDP, ip("10.96.0.11"), 53, False) == EMPTY.name
    assert rules.reject(PROTO_UDP, ip(VIP), 80, False) is None
    assert rules.dnat(PROTO_UDP, ip("10.244.1.5"), ip("10.96.0.11"), 53, False, None) is None
    assert not ServiceRules([WEB], CLUSTER).rejecting


# --- through the hooks of a node ----------------------------------------------------------------


def test_a_pod_to_a_service_is_dnated_in_prerouting_and_the_reply_un_dnated():
    stack, recorder, eth0, cni0 = node(WEB)
    stack.receive(to(cni0, udp_packet("10.244.1.5", VIP, 40000, 80)), cni0, TAG)
    ((packet, decision),) = sent(eth0)
    assert packet == udp_packet("10.244.1.5", ENDPOINT, 40000, 8080, ttl=63)
    dnat, forward = decision.args
    assert decision.why is Why.THEN and forward.why is Why.FORWARD
    assert why(dnat) == (Why.DNAT, ip(VIP), 80, ip(ENDPOINT), 8080, WEB.name, "")

    stack.receive(to(eth0, udp_packet(ENDPOINT, "10.244.1.5", 8080, 40000)), eth0, TAG)
    ((reply, decision),) = sent(cni0)
    assert reply == udp_packet(VIP, "10.244.1.5", 80, 40000, ttl=63)
    forward, undo = decision.args
    assert forward.why is Why.FORWARD and why(undo) == (Why.UNDO_DNAT, ip(VIP), 80)
    assert recorder.drops == []


def test_only_the_first_packet_of_a_connection_meets_the_rules():
    stack, _, eth0, cni0 = node(WEB)
    for _ in range(2):
        stack.receive(to(cni0, udp_packet("10.244.1.5", VIP, 40000, 80)), cni0, TAG)
    (first, one), (second, other) = sent(eth0)
    assert first == second and one.args[0] is other.args[0]  # the connection's own decision
    assert len(stack.netfilter.conntrack.incoming) == 2  # the original and the reply


def test_a_pod_leaving_the_cluster_is_masqueraded_and_the_reply_un_snated():
    stack, _, eth0, cni0 = node(masquerade=True)
    stack.receive(to(cni0, udp_packet("10.244.1.5", "192.168.50.2", 40000, 5000)), cni0, TAG)
    ((packet, decision),) = sent(eth0)
    forward, masquerade = decision.args
    by, src, sport, address, port = masquerade.args
    assert masquerade.why is Why.MASQUERADE and forward.why is Why.FORWARD
    assert (by, src, sport, address) == ("flannel", ip("10.244.1.5"), 40000, ip("192.168.50.1"))
    assert packet == udp_packet("192.168.50.1", "192.168.50.2", port, 5000, ttl=63)

    stack.receive(to(eth0, udp_packet("192.168.50.2", "192.168.50.1", 5000, port)), eth0, TAG)
    ((reply, decision),) = sent(cni0)
    undo, forward = decision.args
    assert why(undo) == (Why.UNDO_SNAT, ip("10.244.1.5"), 40000) and forward.why is Why.FORWARD
    assert reply == udp_packet("192.168.50.2", "10.244.1.5", 5000, 40000, ttl=63)


def test_pod_to_pod_traffic_is_not_masqueraded():
    stack, _, eth0, cni0 = node(masquerade=True)
    packet = udp_packet("10.244.1.5", ENDPOINT)
    stack.receive(to(cni0, packet), cni0, TAG)
    ((out, decision),) = sent(eth0)
    assert decision.why is Why.FORWARD and out[IP_SRC] == packet[IP_SRC]


def test_a_node_port_from_outside_is_dnated_and_masqueraded_by_kube_proxy():
    stack, _, eth0, _ = node(WEB, masquerade=True)
    stack.receive(to(eth0, udp_packet("192.168.50.2", "192.168.50.1", 40000, 30080)), eth0, TAG)
    ((packet, decision),) = sent(eth0)
    then, masquerade = decision.args
    dnat, forward = then.args
    assert dnat.why is Why.DNAT and dnat.args[:2] == (None, 30080)
    assert forward.why is Why.FORWARD
    assert masquerade.why is Why.MASQUERADE and masquerade.args[0] == "kube-proxy"
    port = masquerade.args[4]
    assert packet == udp_packet("192.168.50.1", ENDPOINT, port, 8080, ttl=63)


def test_forward_to_a_service_without_endpoints_is_rejected_with_port_unreachable():
    stack, recorder, eth0, cni0 = node(WEB, EMPTY)
    stack.receive(to(cni0, udp_packet("10.244.1.5", "10.96.0.11", 40000, 53)), cni0, TAG)
    assert [(r, why(d)) for _, r, d in recorder.drops] == [
        ("service-no-endpoints", (Why.REJECTED, EMPTY.name))
    ]
    ((error, decision),) = sent(cni0)
    assert why(decision) == (Why.ICMP_ERROR, icmp.DEST_UNREACH, icmp.PORT_UNREACH, ip("10.244.1.5"))
    assert error[IP_MIN_LEN + 8 + 8] == 63  # the quoted packet's TTL: rejected in FORWARD
    assert eth0.sent == []


def test_the_nodes_own_packet_to_a_service_is_dnated_in_output():
    stack, recorder, eth0, _ = node(WEB)
    stack.send_udp(None, ip(VIP), 40000, 80, bytes(8), TAG, note="udp send 1/1")
    ((packet, decision),) = sent(eth0)
    then, masquerade = decision.args
    note, dnat = then.args
    assert note == "udp send 1/1" and dnat.why is Why.DNAT
    # from outside the cluster CIDR (the node's address): marked, and masqueraded (to itself)
    assert masquerade.why is Why.MASQUERADE and masquerade.args[0] == "kube-proxy"
    assert packet[IP_SRC] == ip("192.168.50.1") and packet[16:20] == ip(ENDPOINT)
    assert recorder.drops == []


def test_a_node_without_rules_translates_nothing():
    stack, _, eth0, cni0 = namespace()
    stack.netfilter = Netfilter(stack)
    stack.netfilter.add_services(ServiceRules([], CLUSTER))
    assert stack.netfilter.services is None and not stack.netfilter.conntrack.active
    packet = udp_packet("10.244.1.5", "192.168.50.2")
    stack.receive(to(cni0, packet), cni0, TAG)
    ((out, decision),) = sent(eth0)
    assert decision.why is Why.FORWARD and out[IP_SRC.start :] == packet[IP_SRC.start :]
