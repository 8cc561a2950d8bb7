"""Decisions as the capture files show them (kpkt/capture/decisions.py): the text every kind of
decision renders to, which the hop tables and all.pcapng comments have always shown."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given
from hypothesis import strategies as st

from kpkt.capture.decisions import _ip, render
from kpkt.dns.stub import Query
from kpkt.net.drops import REASON_OF, REASONS
from kpkt.net.route import Route
from kpkt.observe import Decision, Resend, Why
from kpkt.policy.verdict import Verdict
from kpkt.spec import Impairment
from kpkt.wire.ethernet import mac_str
from kpkt.wire.tcp import ACK, SYN

MAC = bytes.fromhex("0a580af40102")
IP = bytes((10, 244, 1, 1))
LEARN = "fdb learn 0a:58:0a:f4:01:02 on veth1"
NODE = bytes((192, 168, 50, 2))
VIP = bytes((10, 96, 0, 10))
POD = bytes((10, 244, 2, 5))


class Device:
    name = "flannel.1"


ROUTE = Route(IPv4Network("10.244.2.0/24"), Device(), via=bytes((10, 244, 2, 0)), onlink=True)


def test_every_kind_of_decision_has_its_text():
    texts = {
        Why.FDB_LEARN: (
            Decision(Why.FDB_LEARN, MAC, "veth1"),
            "fdb learn 0a:58:0a:f4:01:02 on veth1",
        ),
        Why.FDB_LOCAL: (Decision(Why.FDB_LOCAL, MAC), "fdb: 0a:58:0a:f4:01:02 is local"),
        Why.FDB_PORT: (Decision(Why.FDB_PORT, MAC, "veth1"), "fdb: 0a:58:0a:f4:01:02 on veth1"),
        Why.PASSED_UP: (Decision(Why.PASSED_UP), "broadcast: also passed up to the bridge"),
        Why.FLOODED: (
            Decision(Why.FLOODED, MAC, 3, True),
            "fdb miss for 0a:58:0a:f4:01:02: flooded to 3 port(s) (hairpin)",
        ),
        Why.ARP_WHO_HAS: (Decision(Why.ARP_WHO_HAS, IP, 1), "arp who-has 10.244.1.1 (try 1)"),
        Why.ARP_PROBE: (Decision(Why.ARP_PROBE, IP, 2), "arp unicast probe 10.244.1.1 (try 2)"),
        Why.ARP_REPLY: (
            Decision(Why.ARP_REPLY, IP, MAC),
            "arp reply 10.244.1.1 is-at 0a:58:0a:f4:01:02",
        ),
        Why.ARP_PROXY_REPLY: (
            Decision(Why.ARP_PROXY_REPLY, IP, MAC),
            "proxy arp reply 10.244.1.1 is-at 0a:58:0a:f4:01:02",
        ),
        Why.ARP_RESOLVED: (Decision(Why.ARP_RESOLVED, IP), "arp resolved 10.244.1.1"),
        Why.GRATUITOUS_ARP: (
            Decision(Why.GRATUITOUS_ARP, IP, "arp_notify"),
            "gratuitous arp for 10.244.1.1 (arp_notify)",
        ),
        Why.THEN: (
            Decision(Why.THEN, "dnat to 10.244.2.5:80", Decision(Why.FDB_LOCAL, MAC)),
            "dnat to 10.244.2.5:80; fdb: 0a:58:0a:f4:01:02 is local",
        ),
        Why.FORWARD: (
            Decision(Why.FORWARD, ROUTE, 63),
            "forward: route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink, ttl 63",
        ),
        Why.ECHO_REPLY: (Decision(Why.ECHO_REPLY), "icmp echo reply"),
        Why.ICMP_ERROR: (
            Decision(Why.ICMP_ERROR, 3, 3, IP),
            "icmp port unreachable to 10.244.1.1",
        ),
        Why.ICMP_RATE_LIMITED: (
            Decision(Why.ICMP_RATE_LIMITED, 11, 0),
            "icmp time exceeded in transit rate-limited",
        ),
        Why.VXLAN_ENCAP: (Decision(Why.VXLAN_ENCAP, 1, NODE), "vxlan encap vni 1 -> 192.168.50.2"),
        Why.VXLAN_DECAP: (Decision(Why.VXLAN_DECAP, 1), "vxlan decap vni 1"),
        Why.DNAT: (
            Decision(Why.DNAT, VIP, 80, POD, 8080, "default/web:http", ""),
            "dnat 10.96.0.10:80 -> 10.244.2.5:8080 (default/web:http)",
        ),
        Why.MASQUERADE: (
            Decision(Why.MASQUERADE, "flannel", IP, 40000, NODE, 61000),
            "masquerade (flannel) 10.244.1.1:40000 -> 192.168.50.2:61000",
        ),
        Why.UNDO_SNAT: (Decision(Why.UNDO_SNAT, IP, 40000), "reverse nat -> 10.244.1.1:40000"),
        Why.UNDO_DNAT: (Decision(Why.UNDO_DNAT, VIP, 80), "reverse nat <- 10.96.0.10:80"),
        Why.RELATED: (
            Decision(Why.RELATED, True, IP),
            "related icmp: reverse nat -> 10.244.1.1",
        ),
        Why.BRIDGED: (Decision(Why.BRIDGED), "bridged"),
        Why.BRIDGED_VIA_NEIGHBOUR: (
            Decision(Why.BRIDGED_VIA_NEIGHBOUR),
            "bridged, via the neighbour",
        ),
        Why.NO_ROUTE: (Decision(Why.NO_ROUTE, IP), "no route to 10.244.1.1"),
        Why.NO_ROUTE_AFTER_DNAT: (
            Decision(Why.NO_ROUTE_AFTER_DNAT, POD),
            "no route to 10.244.2.5 after dnat",
        ),
        Why.UNREACHABLE: (
            Decision(Why.UNREACHABLE, IP),
            "no route to 10.244.1.1 (sendmsg: network is unreachable)",
        ),
        Why.NOT_FOR_US: (
            Decision(Why.NOT_FOR_US, IP, "default/client"),
            "10.244.1.1 is not an address of default/client",
        ),
        Why.TTL_EXCEEDED: (Decision(Why.TTL_EXCEEDED, 1, IP), "ttl 1 forwarding to 10.244.1.1"),
        Why.MTU_EXCEEDED: (
            Decision(Why.MTU_EXCEEDED, 1500, 1450, "flannel.1"),
            "1500 bytes > mtu 1450 of flannel.1",
        ),
        Why.REJECTED: (
            Decision(Why.REJECTED, "default/web:http"),
            "default/web:http has no endpoints: rejected",
        ),
        Why.NO_UDP_LISTENER: (
            Decision(Why.NO_UDP_LISTENER, 5000),
            "nothing listens on udp port 5000",
        ),
        Why.NO_TCP_LISTENER: (
            Decision(Why.NO_TCP_LISTENER, 80),
            "nothing listens on tcp port 80 (reset)",
        ),
        Why.ARP_QUEUE_FULL: (
            Decision(Why.ARP_QUEUE_FULL, "eth0", IP),
            "eth0: arp queue for 10.244.1.1 is full",
        ),
        Why.ARP_UNRESOLVED: (
            Decision(Why.ARP_UNRESOLVED, "eth0", IP),
            "eth0: no ARP reply from 10.244.1.1",
        ),
        Why.SAME_PORT: (
            Decision(Why.SAME_PORT, "cni0", MAC, "veth1"),
            "cni0: 0a:58:0a:f4:01:02 is behind veth1",
        ),
        Why.NO_VXLAN_FDB: (
            Decision(Why.NO_VXLAN_FDB, "flannel.1", MAC),
            "flannel.1: no fdb entry for 0a:58:0a:f4:01:02",
        ),
        Why.VXLAN_MALFORMED: (
            Decision(Why.VXLAN_MALFORMED),
            "vxlan: short packet or I flag clear",
        ),
        Why.VNI_MISMATCH: (Decision(Why.VNI_MISMATCH, 2, 1), "vxlan: vni 2, device has 1"),
        Why.LINK_DOWN: (Decision(Why.LINK_DOWN, "eth0"), "eth0 has no peer"),
        Why.NO_CARRIER: (Decision(Why.NO_CARRIER, "eth0"), "eth0 has no carrier"),
        Why.PORT_DISABLED: (
            Decision(Why.PORT_DISABLED, "cni0", "veth-web"),
            "cni0: port veth-web is disabled (its carrier is not reported yet), not forwarding",
        ),
        Why.CARRIER_LOST: (
            Decision(Why.CARRIER_LOST, "eth0"),
            "eth0 lost its carrier with the frame on the wire",
        ),
        Why.NETEM_LOSS: (Decision(Why.NETEM_LOSS, "eth0", 0.1), "eth0: netem loss 10.00%"),
        Why.CORRUPTED: (
            Decision(Why.CORRUPTED, "tcp checksum"),
            "tcp checksum does not match",
        ),
        Why.POLICY_DENIED: (
            Decision(Why.POLICY_DENIED, Verdict(False, "ingress", ("y/deny-all",))),
            "ingress denied: no rule of y/deny-all matched",
        ),
        Why.BPF_ARP_REPLY: (
            Decision(Why.BPF_ARP_REPLY, IP),
            "bpf arp responder: 10.244.1.1 is-at lxc",
        ),
        Why.BPF_ENCAP: (Decision(Why.BPF_ENCAP, 4242), "bpf encap: identity 4242"),
        Why.BPF_LOCAL_DELIVERY: (
            Decision(Why.BPF_LOCAL_DELIVERY, "default/web", 63),
            "bpf local delivery to default/web, ttl 63",
        ),
        Why.BPF_UNKNOWN_L3: (
            Decision(Why.BPF_UNKNOWN_L3),
            "bpf_lxc: unknown L3 protocol (DROP_UNKNOWN_L3)",
        ),
        Why.BPF_NO_ENDPOINT: (
            Decision(Why.BPF_NO_ENDPOINT, IP),
            "bpf_host: no endpoint 10.244.1.1",
        ),
        Why.BPF_TTL_EXCEEDED: (Decision(Why.BPF_TTL_EXCEEDED, 1), "bpf ipv4_l3: ttl 1"),
        Why.BPF_NOT_IPV4: (Decision(Why.BPF_NOT_IPV4), "bpf_overlay: not IPv4"),
        Why.BLACKHOLE: (
            Decision(Why.BLACKHOLE, Route(IPv4Network("10.245.1.0/26"), None, blackhole=True)),
            "route blackhole 10.245.1.0/26",
        ),
        Why.IPIP_ENCAP: (Decision(Why.IPIP_ENCAP, IP), "ipip encap -> 10.244.1.1"),
        Why.IPIP_DECAP: (Decision(Why.IPIP_DECAP), "ipip decap"),
        Why.IPIP_MALFORMED: (Decision(Why.IPIP_MALFORMED), "ipip: the inner packet is not IPv4"),
        Why.SLEEVE_MALFORMED: (
            Decision(Why.SLEEVE_MALFORMED, "sleeve: a frame runs past the datagram"),
            "sleeve: a frame runs past the datagram",
        ),
        Why.TUNNEL_LOOP: (
            Decision(Why.TUNNEL_LOOP, "tunl0", IP),
            "tunl0: the route to 10.244.1.1 leads back into the tunnel",
        ),
        Why.MALFORMED: (
            Decision(Why.MALFORMED, "total length 60 > the 40 bytes received"),
            "total length 60 > the 40 bytes received",
        ),
        Why.BAD_CHECKSUM: (
            Decision(Why.BAD_CHECKSUM, 0x1234, IP, 0x63C0),
            "ipv4 header checksum 0x1234 from 10.244.1.1, should be 0x63c0",
        ),
        Why.FRAGMENT: (
            Decision(Why.FRAGMENT, 1480, True),
            "offset 1480, more fragments: reassembly is not modelled",
        ),
        Why.TCP_SEGMENT: (
            Decision(Why.TCP_SEGMENT, SYN | ACK, 0, 1, 0, None),
            "tcp SA seq 0 ack 1 len 0",
        ),
        Why.UDP_SEND: (Decision(Why.UDP_SEND, 2, 3), "udp send 2/3"),
        Why.PING_REQUEST: (Decision(Why.PING_REQUEST, 1), "ping echo request seq 1"),
        Why.RAW_SEND: (Decision(Why.RAW_SEND, True, 1, 2), "raw frame send 1/2"),
        Why.DNS_QUERY: (
            Decision(
                Why.DNS_QUERY, Query("udp", 0, "10.96.0.10", 0xBEEF, "web.default.", "A", b"")
            ),
            "dns query udp #0 id 0xbeef A web.default.",
        ),
        Why.DNS_ANSWER: (Decision(Why.DNS_ANSWER), "dns answer"),
        Why.DNS_FORWARD: (Decision(Why.DNS_FORWARD), "dns forward"),
        Why.SLEEVE_UNKNOWN_PEER: (
            Decision(Why.SLEEVE_UNKNOWN_PEER, MAC),
            "sleeve: frame from unknown peer 0a:58:0a:f4:01:02",
        ),
        Why.OVERLAY_FLOOD: (
            Decision(Why.OVERLAY_FLOOD, b"\xff" * 6, 2),
            "overlay flood ff:ff:ff:ff:ff:ff to 2 peers",
        ),
        Why.OVERLAY_PEER: (
            Decision(Why.OVERLAY_PEER, MAC, MAC),
            "overlay 0a:58:0a:f4:01:02 is behind 0a:58:0a:f4:01:02",
        ),
        Why.OVERLAY_INJECT: (
            Decision(Why.OVERLAY_INJECT, MAC),
            "overlay inject from 0a:58:0a:f4:01:02",
        ),
        Why.FASTDP_ENCAP: (
            Decision(Why.FASTDP_ENCAP, 0x1002, NODE),
            "vxlan encap vni 0x001002 -> 192.168.50.2",
        ),
        Why.FASTDP_DECAP: (Decision(Why.FASTDP_DECAP, 0x2001), "vxlan decap vni 0x002001"),
        Why.SLEEVE_SEND: (Decision(Why.SLEEVE_SEND, 1, NODE), "sleeve 1 frame -> 192.168.50.2"),
        Why.LINK_SET: (
            Decision(Why.LINK_SET, False, "pod-a.default/eth0"),
            "link down (pod-a.default/eth0)",
        ),
        Why.NETEM_SET: (
            Decision(Why.NETEM_SET, Impairment(loss=0.05, delay_ns=2_000_000, jitter_ns=500_000)),
            "netem delay 2ms 0.5ms loss 5%",
        ),
        Why.POD_DELETED: (
            Decision(Why.POD_DELETED, "web-b.default"),
            "web-b.default deleted: its namespace and veth are gone, and its service endpoints",
        ),
        Why.POD_CREATED: (
            Decision(Why.POD_CREATED, "web-b.default", "node1", IP),
            "web-b.default: created on node1 with 10.244.1.1",
        ),
        Why.LABELS_SET: (
            Decision(Why.LABELS_SET, "web-b.default", (("app", "web"), ("tier", "1")), ("old",)),
            "web-b.default: labels app=web tier=1 old-",
        ),
        Why.RESTARTED: (
            Decision(Why.RESTARTED, "web-b.default", "nginx", 2),
            "web-b.default: container nginx restarted: 2 socket(s) closed",
        ),
    }
    assert set(texts) == set(Why), "a kind of decision without a test of its text"
    for decision, text in texts.values():
        assert render(decision) == text


def test_a_dnat_names_a_node_port_and_why_it_is_marked():
    node_port = Decision(Why.DNAT, None, 30080, POD, 8080, "default/web", "masquerade")
    assert render(node_port) == (
        "dnat node port 30080 -> 10.244.2.5:8080 (default/web); marked for masquerade"
    )
    hairpin = Decision(Why.DNAT, VIP, 80, POD, 8080, "default/web", "hairpin")
    assert render(hairpin) == (
        "dnat 10.96.0.10:80 -> 10.244.2.5:8080 (default/web); hairpin: marked for masquerade"
    )
    assert render(Decision(Why.RELATED, False, VIP)) == "related icmp: reverse nat <- 10.96.0.10"


def test_every_kind_of_drop_has_a_documented_reason():
    drop_kinds = set(REASON_OF)
    assert drop_kinds, "no drop decisions"
    assert set(REASON_OF.values()) <= set(REASONS)
    assert Why.NO_ROUTE in drop_kinds and Why.FORWARD not in drop_kinds


def test_a_segment_says_why_it_is_sent_and_a_packet_what_it_is():
    """Every Resend has its text after the segment's fields; an ACK-less segment shows no ack;
    a raw send names a packet, a repeated query says so."""
    reasons = {
        Resend.SYN_TIMER: "retransmitted",
        Resend.RTO: "retransmitted (rto)",
        Resend.PARTIAL_ACK: "retransmitted (partial ack)",
        Resend.FAST_RETRANSMIT: "retransmitted (fast retransmit)",
        Resend.SYN_AGAIN: "retransmitted (the SYN came again)",
        Resend.DUPLICATE_ACK: "duplicate ack",
        Resend.OUT_OF_ORDER: "duplicate ack, out of order",
        Resend.HOLE_FILLED: "the hole is filled",
        Resend.D_SACK: "d-sack",
        Resend.TIME_WAIT: "from the TIME_WAIT socket",
        Resend.TIME_WAIT_AGAIN: "from the TIME_WAIT socket, again",
        Resend.RESET: "reset",
    }
    assert set(reasons) == set(Resend), "a reason to send a segment without a test of its text"
    for reason, text in reasons.items():
        decision = Decision(Why.TCP_SEGMENT, ACK, 5, 9, 100, reason)
        assert render(decision) == f"tcp A seq 5 ack 9 len 100 {text}"
    assert render(Decision(Why.TCP_SEGMENT, SYN, 7, 0, 0, Resend.SYN_TIMER)) == (
        "tcp S seq 7 len 0 retransmitted"
    )
    assert render(Decision(Why.RAW_SEND, False, 3, 3)) == "raw packet send 3/3"
    assert render(Decision(Why.SLEEVE_SEND, 2, NODE)) == "sleeve 2 frames -> 192.168.50.2"
    again = Query("tcp", 1, "10.96.0.10", 0x0102, "example.com.", "AAAA", b"", retransmit=True)
    assert (
        render(Decision(Why.DNS_QUERY, again))
        == "dns query tcp #1 id 0x0102 AAAA example.com. (again)"
    )


def test_an_event_on_an_interface_says_what_a_step_changed():
    """A link brought up, netem removed, and a restart of every container (no name)."""
    assert render(Decision(Why.LINK_SET, True, "node1/eth0")) == "link up (node1/eth0)"
    assert render(Decision(Why.NETEM_SET, None)) == "netem removed"
    assert render(Decision(Why.NETEM_SET, Impairment(duplicate=0.01, corrupt=0.1))) == (
        "netem duplicate 1% corrupt 10%"
    )
    assert render(Decision(Why.RESTARTED, "a.x", None, 0)) == (
        "a.x: its containers restarted: 0 socket(s) closed"
    )


def test_a_broadcast_flood_names_no_mac():
    decision = Decision(Why.FLOODED, b"\xff" * 6, 2, False)
    assert render(decision) == "broadcast: flooded to 2 port(s)"


def test_text_is_taken_as_it_is_and_a_decision_is_rendered_once():
    assert render("forward: route default") == "forward: route default"
    decision = Decision(Why.FDB_LOCAL, MAC)
    assert render(decision) is render(decision)
    assert decision.text == "fdb: 0a:58:0a:f4:01:02 is local"


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=6, max_size=6))
def test_addresses_are_written_as_ipaddress_and_ip_link_write_them(ip: bytes, mac: bytes) -> None:
    assert _ip(ip) == str(IPv4Address(ip)) == _ip(IPv4Address(ip))
    assert mac_str(mac) == ":".join(f"{byte:02x}" for byte in mac)
