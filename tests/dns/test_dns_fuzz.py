"""Whatever arrives, CoreDNS as modelled never raises, and answers nothing or a well-formed
message (dnspython can read it, the ID is the query's, QR is set, it fits 512 bytes when the
query had no EDNS). The same goes for the upstream model and for whatever the upstream sends
back to a forwarded query."""

from __future__ import annotations

import struct
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpkt.dns import wire
from kpkt.dns.coredns import ClusterDns, Forward
from kpkt.dns.profile import PLUGIN_DEFAULTS
from kpkt.dns.upstream import UpstreamDns
from kpkt.topology.load import load_topology

CLUSTER = Path(__file__).resolve().parent / "cluster.yaml"
NAMES = [
    "web.default.svc.cluster.local.",
    "WeB.DeFaUlT.sVc.ClUsTeR.lOcAl.",
    "_http._tcp.web.default.svc.cluster.local.",
    "_https._TCP.web.default.svc.cluster.local.",
    "db.default.svc.cluster.local.",
    "db-0.db.default.svc.cluster.local.",
    "10-244-2-11.db.default.svc.cluster.local.",
    "ext.default.svc.cluster.local.",
    "ext-ip.default.svc.cluster.local.",
    "x.ext.default.svc.cluster.local.",
    "api.apps.svc.cluster.local.",
    "bulk.apps.svc.cluster.local.",
    "10-244-1-10.default.pod.cluster.local.",
    "2001-db8--1.default.pod.cluster.local.",
    "default.svc.cluster.local.",
    "svc.cluster.local.",
    "cluster.local.",
    "ns.dns.cluster.local.",
    "dns-version.cluster.local.",
    "a.b.c.web.default.svc.cluster.local.",
    "1.0.96.10.in-addr.arpa.",
    "10.2.244.10.in-addr.arpa.",
    "5.1.244.10.in-addr.arpa.",
    "in-addr.arpa.",
    "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.",
    "www.example.com.",
    "example.com.",
    "nosuch.example.net.",
    ".",
]
TYPES = [1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 41, 43, 64, 65, 251, 252, 255, 65280, 0]
CLASSES = [1, 1, 1, 3, 4, 254, 255, 0]


@pytest.fixture(scope="module")
def cluster():
    topology = load_topology(CLUSTER)
    return topology, UpstreamDns.from_spec(topology.cluster.dns.upstream)


OPTIONS = st.one_of(
    st.builds(
        dns.edns.GenericOption, st.sampled_from([3, 9, 11, 12, 65001]), st.binary(max_size=24)
    ),
    st.builds(  # a cookie: the client's 8 bytes, or those and the server's 8 to 32
        dns.edns.GenericOption,
        st.just(10),
        st.one_of(st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=40)),
    ),
)


@st.composite
def valid_queries(draw) -> bytes:
    query = dns.message.make_query(
        draw(st.sampled_from(NAMES)),
        draw(st.sampled_from(TYPES)),
        draw(st.sampled_from(CLASSES)),
        use_edns=draw(st.sampled_from([False, 0, 0, 1])),
        payload=draw(st.sampled_from([0, 512, 1232, 4096, 65535])),
        want_dnssec=draw(st.booleans()),
        options=draw(st.lists(OPTIONS, max_size=3)),
    )
    query.id = draw(st.integers(0, 0xFFFF))
    query.flags = draw(st.integers(0, 0xFFFF)) & 0x0130  # RD, AD, CD as a client may set them
    return query.to_wire()


@st.composite
def mutated_queries(draw) -> bytes:
    data = bytearray(draw(valid_queries()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        if kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "header" and len(data) >= 12:
            field = draw(st.integers(1, 5))
            data[field * 2 : field * 2 + 2] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    return bytes(data)


def _exchange(server, upstream, query: bytes, transport: str, garbage: bytes | None) -> bytes:
    outcome = server.handle(query, transport, now_ns=0)
    rounds = 0
    while isinstance(outcome, Forward):
        rounds += 1
        assert rounds < 10, "a query forwards a bounded number of times"
        reply = upstream.handle(outcome.query, outcome.transport)
        if reply is not None:
            _check(outcome.query, reply, outcome.transport)
        if garbage is not None:
            reply = outcome.id.to_bytes(2, "big") + garbage  # the right ID, anything after it
        outcome = outcome.relay(reply, 0)
    assert outcome is None or isinstance(outcome, bytes)
    return outcome


def _check(query: bytes, reply: bytes, transport: str) -> None:
    try:
        message = dns.message.from_wire(reply)
    except dns.exception.FormError:
        # CoreDNS echoes EDNS options as they came; dnspython refuses some (a cookie of the
        # wrong size). Then the query must be one dnspython refuses too, and kpkt reads both.
        assert not _readable(query), "dnspython reads the query but not the reply"
        wire.unpack(reply)
        return
    assert reply[:2] == query[:2], "the query's ID"
    assert message.flags & 0x8000, "QR"
    assert len(message.question) <= 1
    if transport == "udp" and _edns_size(query) is None:
        assert len(reply) <= 512


def _readable(data: bytes) -> bool:
    try:
        dns.message.from_wire(data)
    except Exception:
        return False
    return True


def _edns_size(query: bytes) -> int | None:
    try:
        message = dns.message.from_wire(query)
    except Exception:
        return 0  # unreadable: no promise about the size
    return message.payload if message.edns >= 0 else None


FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.binary(max_size=600), transport=st.sampled_from(["udp", "tcp"]))
def test_random_bytes(cluster, data, transport):
    _any_reply_is_well_formed(cluster, data, transport)


@FUZZ
@given(query=valid_queries(), transport=st.sampled_from(["udp", "tcp"]))
def test_valid_queries(cluster, query, transport):
    topology, upstream = cluster
    for profile in (None, PLUGIN_DEFAULTS):
        server = ClusterDns.from_topology(topology, profile=profile, strict=True)
        reply = _exchange(server, upstream, query, transport, None)
        assert reply is not None, "a well-formed query always gets an answer"
        _check(query, reply, transport)
        again = ClusterDns.from_topology(topology, profile=profile, strict=True)
        assert _exchange(again, upstream, query, transport, None) == reply, "deterministic"


@FUZZ
@given(query=mutated_queries(), transport=st.sampled_from(["udp", "tcp"]))
def test_mutated_queries(cluster, query, transport):
    _any_reply_is_well_formed(cluster, query, transport)


def _any_reply_is_well_formed(cluster, data: bytes, transport: str) -> None:
    """The cluster server and the upstream may stay silent on `data`, but whatever either
    answers passes `_check`."""
    topology, upstream = cluster
    server = ClusterDns.from_topology(topology, strict=True)
    reply = _exchange(server, upstream, data, transport, None)
    if reply is not None:
        _check(data, reply, transport)
    upstream_reply = upstream.handle(data, transport)
    if upstream_reply is not None:
        _check(data, upstream_reply, transport)


@FUZZ
@given(
    query=valid_queries(),
    garbage=st.binary(max_size=200),
    transport=st.sampled_from(["udp", "tcp"]),
)
def test_whatever_the_upstream_sends_back(cluster, query, garbage, transport):
    topology, upstream = cluster
    server = ClusterDns.from_topology(topology, strict=True)
    reply = _exchange(server, upstream, query, transport, garbage)
    if reply is not None:
        _check(query, reply, transport)
