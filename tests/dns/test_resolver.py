"""The pod stub resolvers (glibc, musl) against the `resolver_cases` of the DNS reference
(tests/dns/cases.yaml, transcribed below), query by query, plus the kubelet's resolv.conf and the
candidate-order, retry and truncation edges read from the libc sources."""

from __future__ import annotations

import itertools
import re
import struct
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
import yaml

from kpkt.dns.resolv_conf import ResolvConf, parse_hosts, pod_hosts_text
from kpkt.dns.resolver import make_query, pod_resolver, resolver_for
from kpkt.dns.stub import GLIBC, MUSL, NS_PER_SECOND, Query, StubResolver
from kpkt.dns.stub_wire import parse_message

from stub_driver import run

CASES_YAML = Path(__file__).resolve().parent / "cases.yaml"

# ---------------------------------------------------------------------------------------------
# Building replies


RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}
SOA_RDATA_OWNER = b"\x07cluster\x05local\x00"


def reply(
    query: bytes,
    rcode: int = 0,
    addresses: tuple[str, ...] = (),
    *,
    aa: bool = True,
    ra: bool = False,
    tc: bool = False,
    soa: bool = True,
    ttl: int = 30,
    extra_answers: bytes = b"",
    extra_count: int = 0,
    qid: int | None = None,
) -> bytes:
    """A server's reply to `query`: the question echoed, `addresses` as A or AAAA records owned by
    the question name (compressed), and an SOA in the authority section of negative answers."""
    qid_, flags, *_ = struct.unpack("!HHHHHH", query[:12])
    question = query[12:]
    qtype = struct.unpack("!H", question[-4:-2])[0]
    answers = b""
    count = 0
    for address in addresses:
        packed = IPv6Address(address).packed if ":" in address else IPv4Address(address).packed
        if (qtype == 28) != (":" in address):
            continue
        answers += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, ttl, len(packed)) + packed
        count += 1
    answers += extra_answers
    count += extra_count
    authority = b""
    nscount = 0
    if soa and (rcode == 3 or (rcode == 0 and count == 0)):
        rdata = (
            b"\x02ns\x03dns"
            + SOA_RDATA_OWNER
            + b"\x0ahostmaster"
            + SOA_RDATA_OWNER
            + struct.pack("!IIIII", 1, 7200, 1800, 86400, 30)
        )
        authority = SOA_RDATA_OWNER + struct.pack("!HHIH", 6, 1, 30, len(rdata)) + rdata
        nscount = 1
    out_flags = 0x8000 | (flags & 0x7900)  # QR, opcode and RD echoed
    out_flags |= (0x0400 if aa else 0) | (0x0200 if tc else 0) | (0x0080 if ra else 0) | rcode
    header = struct.pack("!HHHHHH", qid_ if qid is None else qid, out_flags, 1, count, nscount, 0)
    return header + question + answers + authority


def bulk(n: int) -> tuple[str, ...]:
    return tuple(f"10.244.3.{i}" for i in range(1, n + 1))


def reply_from_text(query: bytes, text: str) -> bytes:
    """A reply from a case's words: "NOERROR 10.96.0.50", "NOERROR NODATA, AA=1", "NXDOMAIN
    (upstream)", "NOERROR TC=1, 29 answers", "NOERROR 198.51.100.10 (forwarded; aa=0 ra=1)"."""
    rcode = RCODES[text.split()[0]]
    addresses = tuple(re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", text))
    many = re.search(r"(\d+) answers", text)
    if many:
        addresses = bulk(int(many.group(1)))
    upstream = "forwarded" in text or "upstream" in text
    return reply(
        query,
        rcode,
        addresses,
        aa=not upstream or "AA=1" in text,
        ra=upstream,
        tc="TC=1" in text,
        soa=not upstream or rcode != 3,
    )


def id_source(start: int = 0x4A10):
    counter = itertools.count(start)
    return lambda: next(counter) & 0xFFFF


# ---------------------------------------------------------------------------------------------
# cases.yaml `resolver_cases`, transcribed


PODS = {"default/client": "default", "default/alpine": "default", "apps/tool": "apps"}

RESOLVER_CASES = [
    {
        "id": "res-glibc-short-name",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "web",
        "queries": [
            ("web.default.svc.cluster.local.", "A", "udp", "NOERROR 10.96.0.50"),
            ("web.default.svc.cluster.local.", "AAAA", "udp", "NOERROR NODATA"),
        ],
        "result": {"success": True, "addresses": ["10.96.0.50"], "total_queries": 2},
    },
    {
        "id": "res-glibc-name-dot-namespace",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "web.default",
        "queries": [
            ("web.default.default.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("web.default.default.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("web.default.svc.cluster.local.", "A", "udp", "NOERROR 10.96.0.50"),
            ("web.default.svc.cluster.local.", "AAAA", "udp", "NOERROR NODATA"),
        ],
        "result": {"success": True, "addresses": ["10.96.0.50"], "total_queries": 4},
    },
    {
        "id": "res-glibc-external-name",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "example.com",
        "queries": [
            ("example.com.default.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("example.com.default.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("example.com.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("example.com.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("example.com.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("example.com.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            (
                "example.com.",
                "A",
                "udp",
                "NOERROR 198.51.100.10 (forwarded; aa=0 ra=1; TTL<=30)",
            ),
            ("example.com.", "AAAA", "udp", "NOERROR NODATA (forwarded)"),
        ],
        "result": {"success": True, "addresses": ["198.51.100.10"], "total_queries": 8},
    },
    {
        "id": "res-glibc-trailing-dot",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "web.default.svc.cluster.local.",
        "queries": [
            ("web.default.svc.cluster.local.", "A", "udp", "NOERROR 10.96.0.50"),
            ("web.default.svc.cluster.local.", "AAAA", "udp", "NOERROR NODATA"),
        ],
        "result": {"success": True, "total_queries": 2},
    },
    {
        "id": "res-glibc-5-dots-as-is-first",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "db-0.db.default.svc.cluster.local",
        "queries": [
            ("db-0.db.default.svc.cluster.local.", "A", "udp", "NOERROR 10.244.2.10"),
            ("db-0.db.default.svc.cluster.local.", "AAAA", "udp", "NOERROR NODATA"),
        ],
        "result": {"success": True, "addresses": ["10.244.2.10"], "total_queries": 2},
    },
    {
        "id": "res-glibc-5-dots-miss-then-search",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "nosuch.db.default.svc.cluster.local",
        "queries": [
            (name, qtype, "udp", "NXDOMAIN")
            for name in (
                "nosuch.db.default.svc.cluster.local.",
                "nosuch.db.default.svc.cluster.local.default.svc.cluster.local.",
                "nosuch.db.default.svc.cluster.local.svc.cluster.local.",
                "nosuch.db.default.svc.cluster.local.cluster.local.",
            )
            for qtype in ("A", "AAAA")
        ],
        "result": {"success": False, "h_errno": "HOST_NOT_FOUND", "total_queries": 8},
    },
    {
        "id": "res-musl-external-name",
        "pod": "default/alpine",
        "libc": MUSL,
        "name": "example.com",
        "queries": [
            ("example.com.default.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("example.com.default.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("example.com.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("example.com.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("example.com.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("example.com.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("example.com.", "A", "udp", "NOERROR 198.51.100.10"),
            ("example.com.", "AAAA", "udp", "NOERROR NODATA"),
        ],
        "result": {"success": True, "addresses": ["198.51.100.10"], "total_queries": 8},
    },
    {
        "id": "res-musl-5-dots-no-search",
        "pod": "default/alpine",
        "libc": MUSL,
        "name": "nosuch.db.default.svc.cluster.local",
        "queries": [
            ("nosuch.db.default.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("nosuch.db.default.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
        ],
        "result": {"success": False, "error": "EAI_NONAME", "total_queries": 2},
    },
    {
        "id": "res-nodata-divergence-glibc",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "apps",
        "queries": [
            ("apps.default.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("apps.default.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("apps.svc.cluster.local.", "A", "udp", "NOERROR NODATA, AA=1"),
            ("apps.svc.cluster.local.", "AAAA", "udp", "NOERROR NODATA, AA=1"),
            ("apps.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("apps.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("apps.", "A", "udp", "NXDOMAIN (upstream)"),
            ("apps.", "AAAA", "udp", "NXDOMAIN (upstream)"),
        ],
        "result": {"success": False, "h_errno": "NO_DATA", "total_queries": 8},
    },
    {
        "id": "res-glibc-other-namespace-short-name-fails",
        "pod": "apps/tool",
        "libc": GLIBC,
        "name": "web",
        "queries": [
            ("web.apps.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("web.apps.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("web.svc.cluster.local.", "A", "udp", "NXDOMAIN (no namespace 'web')"),
            ("web.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("web.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("web.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("web.", "A", "udp", "NXDOMAIN (upstream)"),
            ("web.", "AAAA", "udp", "NXDOMAIN (upstream)"),
        ],
        "result": {"success": False, "h_errno": "HOST_NOT_FOUND", "total_queries": 8},
    },
    {
        "id": "res-truncated-udp-then-tcp",
        "pod": "default/client",
        "libc": GLIBC,
        "name": "bulk.apps",
        "queries": [
            ("bulk.apps.default.svc.cluster.local.", "A", "udp", "NXDOMAIN"),
            ("bulk.apps.default.svc.cluster.local.", "AAAA", "udp", "NXDOMAIN"),
            ("bulk.apps.svc.cluster.local.", "A", "udp", "NOERROR TC=1, 29 answers"),
            (
                "bulk.apps.svc.cluster.local.",
                "AAAA",
                "udp",
                "NOERROR NODATA (may or may not be read before the TC switch)",
            ),
            ("bulk.apps.svc.cluster.local.", "A", "tcp", "NOERROR 40 answers"),
            ("bulk.apps.svc.cluster.local.", "AAAA", "tcp", "NOERROR NODATA"),
        ],
        "result": {"success": True, "address_count": 40},
    },
]


def drive_case(case: dict) -> tuple[StubResolver, list[Query]]:
    """Feed each expected query its reply, in the order the case lists them. A reply to a
    socket the resolver already closed is lost, as on a real host."""
    conf = ResolvConf.for_pod(PODS[case["pod"]])
    resolver = resolver_for(case["libc"], conf, case["name"], next_id=id_source())
    outstanding = list(resolver.start(0))
    now = 0
    for name, qtype, transport, answer in case["queries"]:
        assert outstanding, f"{case['id']}: the resolver stopped before {qtype} {name}"
        query = outstanding.pop(0)
        assert (query.transport, query.qname, query.qtype) == (transport, name, qtype)
        now += 1_000_000
        outstanding += resolver.on_reply(query.socket, reply_from_text(query.wire, answer), now)
    assert not outstanding
    assert resolver.done
    return resolver, resolver.sent


@pytest.mark.parametrize("case", RESOLVER_CASES, ids=[case["id"] for case in RESOLVER_CASES])
def test_resolver_case(case):
    resolver, sent = drive_case(case)
    expected = [(t, n, q) for n, q, t, _ in case["queries"]]
    assert [(q.transport, q.qname, q.qtype) for q in sent] == expected
    result = resolver.result
    want = case["result"]
    assert result.ok == want["success"]
    if "addresses" in want:
        assert list(result.addresses) == want["addresses"]
    if "address_count" in want:
        assert len(result.addresses) == want["address_count"]
    if "total_queries" in want:
        assert result.queries == want["total_queries"]
    if "h_errno" in want:
        assert result.h_errno == want["h_errno"]
    if "error" in want:
        assert result.error == want["error"]
    assert list(result.candidates) == list(dict.fromkeys(n for n, _, t, _ in case["queries"]))


def test_transcription_matches_cases_yaml():
    """The transcription above says what cases.yaml says."""
    cases = yaml.safe_load(CASES_YAML.read_text())["resolver_cases"]
    assert [c["id"] for c in cases] == [c["id"] for c in RESOLVER_CASES]
    for source, copy in zip(cases, RESOLVER_CASES, strict=True):
        assert source["client"]["pod"] == copy["pod"]
        assert source["client"]["libc"] == copy["libc"]
        assert source["call"] == f'getaddrinfo("{copy["name"]}")'
        got = [
            (q["name"], q["type"], q.get("transport", "udp"), q["reply"]) for q in source["queries"]
        ]
        assert got == [tuple(q) for q in copy["queries"]]
        assert source["result"] == copy["result"]


def test_truncation_aaaa_reply_first_then_tc():
    """glibc: the AAAA reply may come before the truncated A; both still go again over TCP."""
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("apps"), "bulk", next_id=id_source())
    a, aaaa = resolver.start(0)
    assert a.qname == "bulk.apps.svc.cluster.local."
    assert resolver.on_reply(aaaa.socket, reply(aaaa.wire), 1) == []
    tcp = resolver.on_reply(a.socket, reply(a.wire, 0, bulk(29), tc=True), 2)
    assert [(q.transport, q.qtype, q.qid, q.wire) for q in tcp] == [
        ("tcp", "A", a.qid, a.wire),
        ("tcp", "AAAA", aaaa.qid, aaaa.wire),
    ]
    assert tcp[0].socket == tcp[1].socket != a.socket  # one connection, UDP socket closed
    assert a.socket not in resolver.open_sockets
    assert all(q.retransmit for q in tcp)
    assert tcp[0].framed == struct.pack("!H", len(a.wire)) + a.wire
    assert resolver.deadline_ns is None  # glibc's send_vc reads without a timeout
    resolver.on_reply(tcp[1].socket, reply(tcp[1].wire), 3)
    resolver.on_reply(tcp[0].socket, reply(tcp[0].wire, 0, bulk(40)), 4)
    assert resolver.result.ok and len(resolver.result.addresses) == 40
    assert resolver.result.queries == 4


# ---------------------------------------------------------------------------------------------
# resolv.conf and /etc/hosts


def test_kubelet_resolv_conf_text():
    conf = ResolvConf.for_pod("default", "cluster.local", "10.96.0.10")
    assert conf.text() == (
        "nameserver 10.96.0.10\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    assert ResolvConf.for_pod("apps").text() == (
        "nameserver 10.96.0.10\n"
        "search apps.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    assert ResolvConf.parse(conf.text()) == conf


def test_kubelet_appends_node_search_without_duplicates():
    conf = ResolvConf.for_pod("default", host_search=("corp.example.", "cluster.local"))
    assert conf.search == (
        "default.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "corp.example",
    )


def test_parse_node_resolv_conf():
    conf = ResolvConf.parse("# node\nnameserver 192.0.2.53\noptions timeout:2 attempts:3\n")
    assert conf == ResolvConf(("192.0.2.53",), (), ndots=1, timeout=2, attempts=3)
    assert conf.text() == "nameserver 192.0.2.53\noptions ndots:1 timeout:2 attempts:3\n"


def test_kubelet_hosts_file():
    text = pod_hosts_text("10.244.2.10", "db-0", "default", hostname="db-0", subdomain="db")
    assert text.endswith(
        "fe00::2\tip6-allrouters\n10.244.2.10\tdb-0.db.default.svc.cluster.local\tdb-0\n"
    )
    assert "::1\tlocalhost ip6-localhost ip6-loopback\n" in text
    table = parse_hosts(text)
    assert table["localhost"] == ("127.0.0.1", "::1")
    assert table["db-0"] == ("10.244.2.10",)


# ---------------------------------------------------------------------------------------------
# Query bytes


WEB = b"\x03web\x07default\x03svc\x07cluster\x05local\x00"


def test_glibc_query_bytes():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source(0x1234))
    a, aaaa = resolver.start(0)
    header = bytes.fromhex("1234 0100 0001 0000 0000 0000")
    assert a.wire == header + WEB + b"\x00\x01\x00\x01"
    assert aaaa.wire == bytes.fromhex("1235") + header[2:] + WEB + b"\x00\x1c\x00\x01"
    assert a.socket == aaaa.socket and a.server == "10.96.0.10" and a.port == 53


def test_glibc_keeps_case_and_escapes():
    wire = make_query(GLIBC, "WeB\\.x.Default.", 1, 7)
    assert wire[12:] == b"\x05WeB.x\x07Default\x00\x00\x01\x00\x01"
    assert make_query(GLIBC, "a..b", 1, 7) is None
    assert make_query(GLIBC, "x" * 64 + ".com", 1, 7) is None


def test_musl_getaddrinfo_query_bytes_and_distinct_ids():
    ids = iter([0x1234, 0x1299])
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=lambda: next(ids))
    a, aaaa = resolver.start(0)
    assert a.wire == bytes.fromhex("1234 0100 0001 0000 0000 0000") + WEB + b"\x00\x01\x00\x01"
    # same high byte as the A query's id: musl adds one to it
    assert aaaa.qid == 0x1399 and aaaa.wire[:2] == b"\x13\x99"
    assert aaaa.wire[2:4] == b"\x01\x00"  # AD cleared by getaddrinfo

    ids = iter([0xFF12, 0xFF34])
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=lambda: next(ids))
    assert resolver.start(0)[1].qid == 0x0034  # the high byte wraps


def test_musl_res_query_sets_ad_and_does_not_search():
    resolver = resolver_for(
        MUSL, ResolvConf.for_pod("default"), "_http._tcp.web", "SRV", next_id=id_source(0x0102)
    )
    (query,) = resolver.start(0)
    assert query.qname == "_http._tcp.web." and query.qtype == "SRV"
    assert query.wire[:4] == bytes.fromhex("0102 0120")  # RD and AD (musl res_mkquery)
    resolver.on_reply(query.socket, reply(query.wire, 3, aa=False, ra=True), 1)
    result = resolver.result
    assert not result.ok and result.h_errno == "HOST_NOT_FOUND" and result.queries == 1
    assert result.summary() == "_http._tcp.web SRV -> HOST_NOT_FOUND (1 query)"
    assert make_query(MUSL, "x", 65280, 1) is None  # musl refuses types above 255


# ---------------------------------------------------------------------------------------------
# Candidate order


def candidates(libc: str, name: str, namespace: str = "default") -> list[str]:
    """The names tried when every query gets NXDOMAIN."""
    resolver = resolver_for(libc, ResolvConf.for_pod(namespace), name, next_id=id_source())
    result = run(resolver, lambda q: reply(q.wire, 3))
    assert not result.ok
    return list(result.candidates)


SEARCH = [".default.svc.cluster.local.", ".svc.cluster.local.", ".cluster.local."]


@pytest.mark.parametrize("libc", [GLIBC, MUSL])
def test_trailing_dot_tries_the_name_alone(libc):
    assert candidates(libc, "web.") == ["web."]
    assert candidates(libc, "db-0.db.default.svc.cluster.local.") == [
        "db-0.db.default.svc.cluster.local."
    ]


@pytest.mark.parametrize("libc", [GLIBC, MUSL])
def test_single_label_searches_then_tries_as_is(libc):
    assert candidates(libc, "nosuch") == ["nosuch" + s for s in SEARCH] + ["nosuch."]


@pytest.mark.parametrize("libc", [GLIBC, MUSL])
def test_four_dots_search_first(libc):
    name = "web.default.svc.cluster.local"
    assert candidates(libc, name) == [name + s for s in SEARCH] + [name + "."]


def test_exactly_ndots_dots_glibc_as_is_first_then_search():
    name = "a.b.c.d.e.f"  # 5 dots = ndots
    assert candidates(GLIBC, name) == [name + "."] + [name + s for s in SEARCH]


def test_exactly_ndots_dots_musl_no_search():
    assert candidates(MUSL, "a.b.c.d.e.f") == ["a.b.c.d.e.f."]


def test_musl_ignores_a_search_line_too_long_for_its_buffer():
    long = tuple(f"{'x' * 60}{i}.example" for i in range(4))
    conf = ResolvConf.for_pod("default", host_search=long)
    resolver = resolver_for(MUSL, conf, "web", next_id=id_source())
    assert run(resolver, lambda q: reply(q.wire, 3)).candidates == ("web.",)
    resolver = resolver_for(GLIBC, conf, "web", next_id=id_source())
    assert len(run(resolver, lambda q: reply(q.wire, 3)).candidates) == 8


def nodata_at_svc(query: Query) -> bytes:
    if query.qname == "apps.svc.cluster.local.":
        return reply(query.wire, 0)  # the namespace exists: NODATA, AA=1
    return reply(query.wire, 3)


def test_musl_stops_at_nodata():
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "apps", next_id=id_source())
    result = run(resolver, nodata_at_svc)
    assert result.candidates == ("apps.default.svc.cluster.local.", "apps.svc.cluster.local.")
    assert not result.ok and result.error == "EAI_NODATA" and result.queries == 4


def test_glibc_goes_on_after_nodata():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "apps", next_id=id_source())
    result = run(resolver, nodata_at_svc)
    assert len(result.candidates) == 4 and result.queries == 8
    assert (result.h_errno, result.error) == ("NO_DATA", "EAI_NODATA")
    assert result.summary() == "apps -> EAI_NODATA (NO_DATA) (8 queries)"


def test_musl_nxdomain_beats_an_address_in_the_other_reply():
    """musl checks the rcodes first: an A answer with an NXDOMAIN AAAA goes to the next name."""

    def answer(query: Query) -> bytes:
        if query.qname == "web.default.svc.cluster.local.":
            return reply(query.wire, 0 if query.qtype == "A" else 3, ("10.96.0.50",))
        if query.qname == "web.svc.cluster.local.":
            return reply(query.wire, 0, ("10.96.0.99",))
        return reply(query.wire, 3)

    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=id_source())
    assert run(resolver, answer).addresses == ("10.96.0.99",)
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    assert run(resolver, answer).addresses == ("10.96.0.50",)


# ---------------------------------------------------------------------------------------------
# Sockets, retries, timeouts


def test_each_candidate_has_its_own_socket():
    for libc in (GLIBC, MUSL):
        resolver = resolver_for(libc, ResolvConf.for_pod("default"), "x", next_id=id_source())
        run(resolver, lambda q: reply(q.wire, 3))
        sockets = [q.socket for q in resolver.sent]
        assert sockets == [1, 1, 2, 2, 3, 3, 4, 4]
        assert resolver.open_sockets == frozenset()


def test_glibc_timeouts_end_the_search_but_not_the_as_is_try():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    first = resolver.start(0)
    assert resolver.deadline_ns == 5 * NS_PER_SECOND
    assert resolver.on_timeout(4 * NS_PER_SECOND) == []  # not yet
    again = resolver.on_timeout(5 * NS_PER_SECOND)
    # the second try: same socket, same ids
    assert [(q.socket, q.qid, q.retransmit) for q in again] == [
        (q.socket, q.qid, True) for q in first
    ]
    assert resolver.deadline_ns == 10 * NS_PER_SECOND
    as_is = resolver.on_timeout(10 * NS_PER_SECOND)
    assert [q.qname for q in as_is] == ["web.", "web."]  # TRY_AGAIN stops the search
    assert as_is[0].socket != first[0].socket
    resolver.on_timeout(15 * NS_PER_SECOND)
    resolver.on_timeout(20 * NS_PER_SECOND)
    result = resolver.result
    assert not result.ok and (result.h_errno, result.error) == ("TRY_AGAIN", "EAI_AGAIN")
    assert result.queries == 8 and result.elapsed_ns == 20 * NS_PER_SECOND


def test_glibc_servfail_retries_then_searches_on():
    def answer(query: Query) -> bytes:
        if query.qname == "web.default.svc.cluster.local.":
            return reply(query.wire, 2, aa=False)
        if query.qname == "web.svc.cluster.local.":
            return reply(query.wire, 0, ("10.96.0.77",))
        return reply(query.wire, 3)

    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    result = run(resolver, answer)
    assert result.ok and result.addresses == ("10.96.0.77",)
    sent = [(q.socket, q.qname, q.retransmit) for q in resolver.sent]
    assert sent[:4] == [
        (1, "web.default.svc.cluster.local.", False),
        (1, "web.default.svc.cluster.local.", False),
        (1, "web.default.svc.cluster.local.", True),
        (1, "web.default.svc.cluster.local.", True),
    ]
    assert result.queries == 6


def test_glibc_servfail_everywhere_is_try_again():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    result = run(resolver, lambda q: reply(q.wire, 2, aa=False))
    assert result.h_errno == "TRY_AGAIN" and len(result.candidates) == 4 and result.queries == 16


def test_musl_servfail_resends_at_once_then_gives_up_with_eai_again():
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=id_source())
    result = run(resolver, lambda q: reply(q.wire, 2, aa=False))
    assert not result.ok and result.error == "EAI_AGAIN"
    assert result.candidates == ("web.default.svc.cluster.local.",)  # EAI_AGAIN stops
    # per 2.5 s interval: the pair, then 2 x 2 immediate resends; two intervals in 5 s
    assert result.queries == 12 and result.elapsed_ns == 5 * NS_PER_SECOND


def test_musl_resends_the_unanswered_query_after_two_and_a_half_seconds():
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=id_source())
    a, aaaa = resolver.start(0)
    assert resolver.deadline_ns == 2_500_000_000
    resolver.on_reply(a.socket, reply(a.wire, 0, ("10.96.0.50",)), 1_000)
    (again,) = resolver.on_timeout(2_500_000_000)
    assert (again.qid, again.socket, again.retransmit) == (aaaa.qid, aaaa.socket, True)
    resolver.on_timeout(5_000_000_000)
    result = resolver.result
    assert (result.ok, result.error) == (False, "EAI_AGAIN")  # the AAAA never came


def test_glibc_half_answered_timeout_switches_to_single_request():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    a, aaaa = resolver.start(0)
    resolver.on_reply(a.socket, reply(a.wire, 0, ("10.96.0.50",)), 1_000)
    (serial_a,) = resolver.on_timeout(5 * NS_PER_SECOND)  # A alone first
    assert (serial_a.qid, serial_a.socket) == (a.qid, a.socket)
    (serial_aaaa,) = resolver.on_reply(a.socket, reply(a.wire, 0, ("10.96.0.50",)), 5_001_000)
    assert (serial_aaaa.qid, serial_aaaa.socket) == (aaaa.qid, aaaa.socket)
    resolver.on_reply(a.socket, reply(aaaa.wire), 5_002_000)
    assert resolver.result.ok and resolver.result.queries == 4


def test_glibc_icmp_unreachable_is_connection_refused():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    first = resolver.start(0)
    second = resolver.on_error(first[0].socket, 1_000)
    assert second[0].socket != first[0].socket  # the socket was closed, the try opens another
    assert resolver.on_error(second[0].socket, 2_000) == []
    result = resolver.result
    assert (result.h_errno, result.queries) == ("TRY_AGAIN", 4)  # ECONNREFUSED: no more names


def test_musl_does_not_hear_icmp_errors():
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=id_source())
    first = resolver.start(0)
    assert resolver.on_error(first[0].socket, 1_000) == []
    assert not resolver.done and resolver.deadline_ns == 2_500_000_000


def test_glibc_lame_nodata_is_no_answer():
    """NOERROR, no answer, AA=0, RA=0, no additional: glibc's res_send treats it like SERVFAIL."""
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    a, aaaa = resolver.start(0)
    assert resolver.on_reply(a.socket, reply(a.wire, 0, aa=False, soa=False), 1) == []
    retry = resolver.on_reply(a.socket, reply(aaaa.wire, 0, aa=False, soa=False), 2)
    assert [(q.qid, q.socket, q.retransmit) for q in retry] == [
        (a.qid, a.socket, True),
        (aaaa.qid, a.socket, True),
    ]
    resolver.on_reply(a.socket, reply(a.wire, 0, aa=False, soa=False), 3)
    as_is = resolver.on_reply(a.socket, reply(aaaa.wire, 0, aa=False, soa=False), 4)
    # res_send gives up (ETIMEDOUT); TRY_AGAIN without a SERVFAIL answer ends the search
    assert [q.qname for q in as_is] == ["web.", "web."]


def test_glibc_ignores_spurious_and_mismatched_replies():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    a, aaaa = resolver.start(0)
    wrong_id = reply(a.wire, 0, ("10.9.9.9",), qid=a.qid ^ 0x5555)
    assert resolver.on_reply(a.socket, wrong_id, 1) == []
    other_question = reply(make_query(GLIBC, "evil.example", 1, a.qid), 0, ("10.6.6.6",))
    resolver.on_reply(a.socket, other_question, 2)
    resolver.on_reply(a.socket, reply(a.wire, 0, ("10.96.0.50",)), 3, src=("10.244.0.2", 53))
    assert not resolver.done  # not from the nameserver the socket is connected to
    resolver.on_reply(a.socket, reply(a.wire, 0, ("10.96.0.50",)), 4, src=("10.96.0.10", 53))
    resolver.on_reply(a.socket, reply(aaaa.wire), 5)
    assert resolver.result.addresses == ("10.96.0.50",)


def test_glibc_accepts_the_question_in_another_case():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    a, aaaa = resolver.start(0)
    upper = make_query(GLIBC, "WEB.DEFAULT.SVC.CLUSTER.LOCAL", 1, a.qid)
    resolver.on_reply(a.socket, reply(upper, 0, ("10.96.0.50",)), 1)
    resolver.on_reply(a.socket, reply(aaaa.wire), 2)
    assert resolver.result.ok


def test_musl_matches_by_id_only():
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=id_source())
    a, aaaa = resolver.start(0)
    other_question = reply(make_query(MUSL, "evil.example", 1, a.qid), 0, ("10.6.6.6",))
    resolver.on_reply(a.socket, other_question, 1)
    resolver.on_reply(a.socket, reply(aaaa.wire), 2)
    assert resolver.result.addresses == ("10.6.6.6",)


def test_musl_tcp_fallback_is_per_query_and_reads_512_bytes():
    resolver = resolver_for(MUSL, ResolvConf.for_pod("apps"), "bulk", next_id=id_source())
    a, aaaa = resolver.start(0)
    (tcp,) = resolver.on_reply(a.socket, reply(a.wire, 0, bulk(29), tc=True), 1)
    assert (tcp.transport, tcp.qtype, tcp.qid, tcp.wire) == ("tcp", "A", a.qid, a.wire)
    assert tcp.socket != a.socket and a.socket in resolver.open_sockets
    assert resolver.on_reply(a.socket, reply(aaaa.wire), 2) == []  # AAAA stays on UDP
    assert not resolver.done
    resolver.on_reply(tcp.socket, reply(a.wire, 0, bulk(40)), 3)
    # 40 compressed A records make 685 bytes; musl's getaddrinfo buffer holds 512: 29 of them
    assert resolver.result.ok and len(resolver.result.addresses) == 29
    assert resolver.result.queries == 3


def test_glibc_single_qtype_searches():
    srv = (
        b"\xc0\x0c"
        + struct.pack("!HHIH", 33, 1, 30, 6 + len(WEB))
        + struct.pack("!HHH", 0, 100, 80)
        + WEB
    )

    def answer(query: Query) -> bytes:
        if query.qname == "_http._tcp.web.default.svc.cluster.local.":
            return reply(query.wire, 0, extra_answers=srv, extra_count=1)
        return reply(query.wire, 3)

    resolver = resolver_for(
        GLIBC, ResolvConf.for_pod("default"), "_http._tcp.web", "SRV", next_id=id_source()
    )
    result = run(resolver, answer)
    assert [q.qtype for q in resolver.sent] == ["SRV"]
    assert resolver.sent[0].wire[2:4] == b"\x01\x00"
    assert result.ok and [r.data for r in result.records] == [
        "0 100 80 web.default.svc.cluster.local."
    ]
    assert result.summary() == (
        "_http._tcp.web SRV -> 0 100 80 web.default.svc.cluster.local. (1 query)"
    )


def test_numeric_and_hosts_names_send_nothing():
    hosts = parse_hosts(pod_hosts_text("10.244.1.5", "client", "default"))
    for libc in (GLIBC, MUSL):
        conf = ResolvConf.for_pod("default")
        resolver = resolver_for(libc, conf, "10.96.0.1", next_id=id_source())
        assert resolver.start(0) == [] and resolver.result.addresses == ("10.96.0.1",)
        resolver = resolver_for(libc, conf, "client", next_id=id_source(), hosts=hosts)
        assert resolver.start(0) == []
        assert resolver.result.summary() == "client -> 10.244.1.5 (from /etc/hosts)"
        resolver = resolver_for(libc, conf, "localhost", next_id=id_source(), hosts=hosts)
        resolver.start(0)
        assert resolver.result.addresses == ("127.0.0.1", "::1")


def test_summary_line():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    result = run(resolver, lambda q: reply(q.wire, 0, ("10.96.0.50",)))
    assert result.summary() == "web -> 10.96.0.50 (2 queries)"
    resolver = resolver_for(
        MUSL, ResolvConf.for_pod("default"), "nosuch.a.b.c.d.e", next_id=id_source()
    )
    result = run(resolver, lambda q: reply(q.wire, 3))
    assert result.summary() == "nosuch.a.b.c.d.e -> EAI_NONAME (2 queries)"


def test_reply_parsing_round_trip():
    query = make_query(GLIBC, "web.default.svc.cluster.local", 1, 9)
    message = parse_message(reply(query, 0, ("10.96.0.50",)))
    assert message.qr and message.aa and not message.ra and message.rcode == 0
    assert message.questions == (("web.default.svc.cluster.local.", 1, 1),)
    assert [str(r) for r in message.answers] == [
        "web.default.svc.cluster.local. 30 IN A 10.96.0.50"
    ]


def test_musl_ignores_refused_and_times_out():
    """res_msend keeps only NOERROR and NXDOMAIN: a REFUSED is never an answer, so the candidate
    ends at the 5 s timeout with EAI_AGAIN (not EAI_FAIL), after one resend at 2.5 s."""
    resolver = resolver_for(MUSL, ResolvConf.for_pod("default"), "web", next_id=id_source())
    result = run(resolver, lambda q: reply(q.wire, 5, aa=False))
    assert (result.ok, result.error, result.queries) == (False, "EAI_AGAIN", 4)
    assert result.elapsed_ns == 5 * NS_PER_SECOND


def test_glibc_formerr_ends_the_search_then_tries_as_is():
    def answer(query: Query) -> bytes:
        if query.qname == "web.default.svc.cluster.local.":
            return reply(query.wire, 1, aa=False)
        return reply(query.wire, 3)

    resolver = resolver_for(GLIBC, ResolvConf.for_pod("default"), "web", next_id=id_source())
    result = run(resolver, answer)
    assert result.candidates == ("web.default.svc.cluster.local.", "web.")
    assert (result.h_errno, result.error, result.queries) == ("HOST_NOT_FOUND", "EAI_NONAME", 4)


def test_glibc_tcp_reset_reconnects_once():
    resolver = resolver_for(GLIBC, ResolvConf.for_pod("apps"), "bulk", next_id=id_source())
    a, aaaa = resolver.start(0)
    tcp = resolver.on_reply(a.socket, reply(a.wire, 0, bulk(29), tc=True), 1)
    again = resolver.on_error(tcp[0].socket, 2, "ECONNRESET")
    assert [(q.transport, q.qid) for q in again] == [("tcp", a.qid), ("tcp", aaaa.qid)]
    assert again[0].socket != tcp[0].socket
    as_is = resolver.on_error(again[0].socket, 3, "ECONNRESET")
    # send_vc gave up: res_send fails (ECONNRESET), TRY_AGAIN without SERVFAIL ends the search
    # and the as-is name is tried last
    assert [(q.transport, q.qname, q.qtype) for q in as_is] == [
        ("udp", "bulk.", "A"),
        ("udp", "bulk.", "AAAA"),
    ]


def test_pod_resolver_reads_the_kubelet_files():
    class Pod:  # the PodSpec fields the resolver reads
        name, namespace, ip, resolver = "db-0", "default", "10.244.2.10", "musl"
        hostname, subdomain = "db-0", "db"

    resolver = pod_resolver(Pod(), "db-0.db.default.svc.cluster.local", next_id=id_source())
    assert resolver.libc == MUSL
    assert resolver.start(0) == []  # its own FQDN is in /etc/hosts
    assert resolver.result.addresses == ("10.244.2.10",)
    resolver = pod_resolver(Pod(), "web", next_id=id_source(), dns_service_ip="10.96.0.10")
    assert [q.qname for q in resolver.start(0)] == ["web.default.svc.cluster.local."] * 2
