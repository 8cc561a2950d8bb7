"""CoreDNS behaviours the conformance file does not spell out: the wire details (truncation fill,
compression, EDNS echo, header-only errors), the cache, the forward plugin's edges, the other
profile, and the upstream server's rules."""

from __future__ import annotations

import dataclasses
import struct
from ipaddress import IPv4Address
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from kpkt.dns import wire
from kpkt.dns.coredns import ClusterDns, Forward
from kpkt.dns.framing import Deframer, frame
from kpkt.dns.profile import PLUGIN_DEFAULTS
from kpkt.dns.upstream import UpstreamDns
from kpkt.spec import EndpointPort, ServiceEndpoint, ServicePort, ServiceSpec
from kpkt.topology.load import load_topology

CLUSTER = Path(__file__).resolve().parent / "cluster.yaml"
SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def topology():
    return load_topology(CLUSTER)


@pytest.fixture
def server(topology):
    return ClusterDns.from_topology(topology, strict=True)


@pytest.fixture(scope="module")
def upstream(topology):
    return UpstreamDns.from_spec(topology.cluster.dns.upstream)


def query(name, rtype="A", ident=0x1234, **kwargs) -> bytes:
    message = dns.message.make_query(name, rtype, **kwargs)
    message.id = ident
    return message.to_wire()


def ask(server, upstream, data, transport="udp", now_ns=0):
    """(reply bytes, number of queries the upstream server got)."""
    outcome = server.handle(data, transport, now_ns=now_ns)
    forwards = 0
    while isinstance(outcome, Forward):
        forwards += 1
        outcome = outcome.relay(upstream.handle(outcome.query, outcome.transport), now_ns)
    return outcome, forwards


def records(reply: bytes, section: str = "answer") -> list[str]:
    message = dns.message.from_wire(reply, one_rr_per_rrset=True)
    return [rrset.to_text() for rrset in getattr(message, section)]


# ---------------------------------------------------------------- wire


def test_truncation_fills_whole_records_with_compression(server, upstream):
    reply, _ = ask(server, upstream, query("bulk.apps.svc.cluster.local."))
    assert len(reply) == 12 + 33 + 29 * 16 == 509
    message = dns.message.from_wire(reply)
    assert message.flags & dns.flags.TC and len(message.answer[0]) == 29
    assert reply[45:47] == b"\xc0\x0c", "owner names point at the question"


def test_a_big_udp_reply_that_fits_is_compressed_anyway(server, upstream):
    reply, _ = ask(server, upstream, query("bulk.apps.svc.cluster.local.", payload=4096))
    message = dns.message.from_wire(reply)
    assert not message.flags & dns.flags.TC and len(message.answer[0]) == 40
    assert len(reply) == 12 + 33 + 40 * 16 + 11  # over 1480 uncompressed, so compressed
    over_tcp, _ = ask(server, upstream, query("bulk.apps.svc.cluster.local."), "tcp")
    assert len(over_tcp) == 12 + 33 + 40 * (29 + 10 + 4), "TCP: uncompressed, it fits"


def test_edns_is_echoed_with_only_the_options_coredns_keeps(server, upstream):
    options = [
        dns.edns.GenericOption(10, b"12345678"),  # cookie: kept
        dns.edns.GenericOption(3, b""),  # NSID: kept
        dns.edns.GenericOption(65001, b"x"),  # unknown: dropped
    ]
    data = query(
        "web.default.svc.cluster.local.",
        use_edns=0,
        payload=1400,
        options=options,
        want_dnssec=True,
    )
    message = dns.message.from_wire(ask(server, upstream, data)[0])
    assert message.payload == 1400 and message.edns == 0
    assert message.ednsflags & dns.flags.DO
    assert sorted(option.otype for option in message.options) == [3, 10]


def test_badvers_has_no_udp_size(server, upstream):
    reply, _ = ask(server, upstream, query("web.default.svc.cluster.local.", use_edns=1))
    message = dns.message.from_wire(reply)
    assert message.rcode() == dns.rcode.BADVERS and message.payload == 0 and message.edns == 0
    assert not message.answer and not message.flags & dns.flags.AA


def test_formerr_after_the_question_keeps_the_question(server):
    good = query("web.default.svc.cluster.local.")
    bad = good[:10] + b"\x00\x01" + good[12:] + b"\x00\x00\x01"  # ARCOUNT=1, an RR cut short
    bad = bad[:2] + struct.pack("!H", 0x0300) + bad[4:]  # TC and RD set by the client
    reply = server.handle(bad)
    ident, bits, qd, an, ns, ar = struct.unpack("!HHHHHH", reply[:12])
    assert (ident, bits, qd, an, ns, ar) == (0x1234, 0x8301, 1, 0, 0, 0)
    assert reply[12:] == good[12:]


def test_notimp_keeps_the_opcode(server):
    good = query("web.default.svc.cluster.local.")
    update = good[:2] + struct.pack("!H", 5 << 11) + good[4:]
    assert server.handle(update) == good[:2] + struct.pack(
        "!HHHHH", 0x8000 | 5 << 11 | 4, 0, 0, 0, 0
    )


def test_tcp_framing():
    deframer = Deframer()
    stream = frame(b"abc") + frame(b"") + frame(b"0123456789")
    got = [m for i in range(len(stream)) for m in deframer.feed(stream[i : i + 1])]
    assert got == [b"abc", b"", b"0123456789"] and deframer.pending == 0


def test_names_with_odd_bytes_are_echoed_as_they_came(server, upstream):
    name = dns.name.Name([b"we.b", b"\x00\xff", b"default", b"svc", b"cluster", b"local", b""])
    message = dns.message.make_query(name, "A")
    reply, _ = ask(server, upstream, message.to_wire())
    answer = dns.message.from_wire(reply)
    assert answer.question[0].name == name and answer.rcode() == dns.rcode.NXDOMAIN


# ---------------------------------------------------------------- the kubernetes plugin


def test_headless_srv_names_each_endpoint(server, upstream):
    reply, _ = ask(server, upstream, query("_postgres._tcp.db.default.svc.cluster.local.", "SRV"))
    assert sorted(records(reply)) == [
        "_postgres._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 "
        "10-244-2-11.db.default.svc.cluster.local.",
        "_postgres._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 "
        "db-0.db.default.svc.cluster.local.",
    ]
    assert sorted(records(reply, "additional")) == [
        "10-244-2-11.db.default.svc.cluster.local. 30 IN A 10.244.2.11",
        "db-0.db.default.svc.cluster.local. 30 IN A 10.244.2.10",
    ]


def test_srv_weight_counts_every_entry(server, upstream):
    reply, _ = ask(server, upstream, query("web.default.svc.cluster.local.", "SRV"))
    assert sorted(records(reply)) == [
        "web.default.svc.cluster.local. 30 IN SRV 0 50 443 web.default.svc.cluster.local.",
        "web.default.svc.cluster.local. 30 IN SRV 0 50 80 web.default.svc.cluster.local.",
    ]
    assert records(reply, "additional") == ["web.default.svc.cluster.local. 30 IN A 10.96.0.50"]


def test_the_default_ns_name_and_the_soa_in_the_query_case(server, upstream):
    reply, _ = ask(server, upstream, query("ns.dns.cluster.local."))
    assert records(reply) == ["ns.dns.cluster.local. 30 IN A 10.96.0.10"]
    reply, _ = ask(server, upstream, query("NoSuch.default.svc.CLUSTER.local."))
    soa = records(reply, "authority")[0].split()
    assert soa[:6] == [
        "CLUSTER.local.",
        "30",
        "IN",
        "SOA",
        "ns.dns.CLUSTER.local.",
        "hostmaster.CLUSTER.local.",
    ]


def test_ns_falls_back_to_ns_dns_when_the_pod_backs_no_service(topology, upstream):
    server = ClusterDns.from_topology(topology, local_ip=IPv4Address("10.244.0.99"), strict=True)
    reply, _ = ask(server, upstream, query("cluster.local.", "NS"))
    assert records(reply) == ["cluster.local. 30 IN NS ns.dns.cluster.local."]
    assert records(reply, "additional") == ["ns.dns.cluster.local. 30 IN A 10.244.0.99"]


def test_one_ptr_per_service_selecting_the_pod(topology, upstream):
    web = next(s for s in topology.services if s.key == "default/web")
    port = EndpointPort("http", 80, "TCP")
    other = ServiceSpec(
        "web-canary",
        "default",
        "ClusterIP",
        IPv4Address("10.96.0.77"),
        (ServicePort("http", 80, "TCP", 80),),
        None,
        False,
        (ServiceEndpoint(web.endpoints[0].ip, (port,)),),
    )
    two = dataclasses.replace(topology, services=(*topology.services, other))
    server = ClusterDns.from_topology(two, strict=True)
    reply, _ = ask(server, upstream, query("10.1.244.10.in-addr.arpa.", "PTR"))
    assert records(reply) == [
        "10.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-10.web.default.svc.cluster.local.",
        "10.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-10.web-canary.default.svc.cluster.local.",
    ]
    assert server.view.serial != ClusterDns.from_topology(topology).view.serial


def test_externalname_inside_the_zone_is_chased_without_the_upstream(topology, upstream):
    alias = ServiceSpec(
        "alias", "default", "ExternalName", None, external_name="web.default.svc.cluster.local"
    )
    server = ClusterDns.from_topology(
        dataclasses.replace(topology, services=(*topology.services, alias)), strict=True
    )
    reply, forwards = ask(server, upstream, query("alias.default.svc.cluster.local."))
    assert forwards == 0
    assert records(reply) == [
        "alias.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
        "web.default.svc.cluster.local. 30 IN A 10.96.0.50",
    ]


def test_pods_verified_answers_only_real_pods(topology, upstream):
    verified = dataclasses.replace(
        topology,
        cluster=dataclasses.replace(
            topology.cluster, dns=dataclasses.replace(topology.cluster.dns, pods="verified")
        ),
    )
    server = ClusterDns.from_topology(verified, strict=True)
    reply, _ = ask(server, upstream, query("10-244-1-10.default.pod.cluster.local."))
    assert records(reply) == ["10-244-1-10.default.pod.cluster.local. 30 IN A 10.244.1.10"]
    reply, _ = ask(server, upstream, query("10-244-1-10.apps.pod.cluster.local."))
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NXDOMAIN


def test_zone_transfers_are_refused(server, upstream):
    reply, forwards = ask(server, upstream, query("cluster.local.", "AXFR"), "tcp")
    message = dns.message.from_wire(reply)
    assert message.rcode() == dns.rcode.REFUSED and not message.authority and forwards == 0
    assert not message.flags & dns.flags.AA


# ---------------------------------------------------------------- cache and forward


def test_forwarded_answers_are_cached_and_count_down(server, upstream):
    first, forwards = ask(server, upstream, query("www.example.com."), now_ns=0)
    assert forwards == 1 and not dns.message.from_wire(first).flags & dns.flags.AA
    hit, forwards = ask(server, upstream, query("WWW.example.com.", ident=7), now_ns=12 * SECOND)
    message = dns.message.from_wire(hit)
    assert forwards == 0 and message.id == 7 and message.flags & dns.flags.AA
    assert message.flags & dns.flags.RA, "RA as stored"
    assert records(hit) == ["www.example.com. 18 IN A 198.51.100.80"]
    assert message.question[0].name.to_text() == "WWW.example.com."
    _, forwards = ask(server, upstream, query("www.example.com."), now_ns=30 * SECOND)
    assert forwards == 1, "expired"


def test_cluster_answers_are_never_cached(server, upstream):
    ask(server, upstream, query("web.default.svc.cluster.local."), now_ns=0)
    later, _ = ask(server, upstream, query("web.default.svc.cluster.local."), now_ns=10 * SECOND)
    assert records(later) == ["web.default.svc.cluster.local. 30 IN A 10.96.0.50"]


def test_reverse_answers_are_cached(server, upstream):
    ask(server, upstream, query("1.0.96.10.in-addr.arpa.", "PTR"), now_ns=0)
    later, _ = ask(server, upstream, query("1.0.96.10.in-addr.arpa.", "PTR"), now_ns=5 * SECOND)
    assert records(later) == [
        "1.0.96.10.in-addr.arpa. 25 IN PTR kubernetes.default.svc.cluster.local."
    ]


def test_the_forwarded_query_is_the_clients_under_a_new_id(server):
    data = query("www.example.com.", ident=0x4242)
    forward = server.handle(data)
    assert isinstance(forward, Forward) and forward.transport == "udp"
    assert forward.server == IPv4Address("192.0.2.53")
    assert forward.query[2:] == data[2:] and forward.query[:2] != data[:2]
    assert forward.relay(b"\x00\x00" if forward.id else b"\x00\x01") is forward, "not its ID"
    reply = dns.message.from_wire(forward.relay(None))
    assert reply.rcode() == dns.rcode.SERVFAIL and reply.id == 0x4242
    assert forward.relay(None) is None, "one answer per query"


def test_a_reply_to_another_question_is_a_formerr(server, upstream):
    forward = server.handle(query("www.example.com."))
    other = dns.message.from_wire(upstream.handle(query("example.com.", ident=forward.id)))
    reply = dns.message.from_wire(forward.relay(other.to_wire()))
    assert reply.rcode() == dns.rcode.FORMERR


def test_forwarded_ids_repeat_with_the_seed(topology):
    ids = [
        [
            ClusterDns.from_topology(topology).handle(query(f"n{i}.example.com.")).id
            for i in range(5)
        ]
        for _ in range(2)
    ]
    assert ids[0] == ids[1]


# ---------------------------------------------------------------- the other profile


def test_plugin_defaults(topology, upstream):
    server = ClusterDns.from_topology(topology, profile=PLUGIN_DEFAULTS, strict=True)
    reply, _ = ask(server, upstream, query("web.default.svc.cluster.local."))
    assert records(reply) == ["web.default.svc.cluster.local. 5 IN A 10.96.0.50"]
    reply, _ = ask(server, upstream, query("dns-version.cluster.local.", "TXT"))
    assert records(reply) == ['dns-version.cluster.local. 28800 IN TXT "1.1.0"']
    for name, rtype in (("www.example.com.", "A"), ("1.0.96.10.in-addr.arpa.", "PTR")):
        reply, forwards = ask(server, upstream, query(name, rtype))
        assert dns.message.from_wire(reply).rcode() == dns.rcode.SERVFAIL and forwards == 0
    reply, _ = ask(server, upstream, query("web.default.svc.cluster.local.", rdclass="CH"))
    assert dns.message.from_wire(reply).rcode() == dns.rcode.REFUSED


# ---------------------------------------------------------------- the upstream server


def test_upstream_rules(upstream):
    message = dns.message.from_wire(upstream.handle(query("www.example.com.")))
    assert not message.flags & dns.flags.AA and message.flags & dns.flags.RA
    assert records(upstream.handle(query("www.example.com."))) == [
        "www.example.com. 300 IN A 198.51.100.80"
    ]
    nodata = upstream.handle(query("www.example.com.", "AAAA"))
    assert records(nodata, "authority") == [
        "example.com. 300 IN SOA ns.example.com. admin.example.com. 1 7200 900 1209600 300"
    ]
    nx = dns.message.from_wire(upstream.handle(query("nosuch.example.net.")))
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority


def test_upstream_wildcards_and_cnames():
    from kpkt.dns.upstream import parse_record

    server = UpstreamDns(
        parse_record(line)
        for line in (
            "*.apps.example.org. 60 IN A 203.0.113.9",
            "alias.example.org. 60 IN CNAME www.example.org.",
            "www.example.org. 60 IN A 203.0.113.1",
        )
    )
    assert records(server.handle(query("x.apps.example.org."))) == [
        "x.apps.example.org. 60 IN A 203.0.113.9"
    ]
    assert records(server.handle(query("alias.example.org."))) == [
        "alias.example.org. 60 IN CNAME www.example.org.",
        "www.example.org. 60 IN A 203.0.113.1",
    ]


def test_upstream_truncates_over_udp():
    from kpkt.dns.upstream import parse_record

    lines = [f"many.example.org. 60 IN A 203.0.113.{i}" for i in range(1, 60)]
    server = UpstreamDns(parse_record(line) for line in lines)
    udp = dns.message.from_wire(server.handle(query("many.example.org.")))
    assert udp.flags & dns.flags.TC and len(udp.answer[0]) < 59
    tcp = dns.message.from_wire(server.handle(query("many.example.org."), "tcp"))
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 59


def test_wire_pack_round_trip(server, upstream):
    reply, _ = ask(server, upstream, query("_http._tcp.web.default.svc.cluster.local.", "SRV"))
    assert wire.pack(wire.unpack(reply)) == reply


def test_the_soa_serial_does_not_depend_on_declaration_order(topology):
    """Informers hold sets: the same cluster with its services declared in another order (as
    an imported kubectl dump lists them) answers with the same serial."""
    turned = dataclasses.replace(topology, services=tuple(reversed(topology.services)))
    assert (
        ClusterDns.from_topology(turned).view.serial
        == ClusterDns.from_topology(topology).view.serial
    )
