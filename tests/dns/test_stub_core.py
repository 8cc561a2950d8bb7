"""The seams between the stub resolvers and the shared DNS codec: the lenient reading both libcs
do on top of wire.py, the type names, and the core both state machines share."""

from __future__ import annotations

import struct

import pytest

from kpkt.dns import wire
from kpkt.dns.message import AAAA, SRV, A, type_name, type_number
from kpkt.dns.resolv_conf import ResolvConf
from kpkt.dns.resolver import make_query, resolver_for
from kpkt.dns.stub import GLIBC, MUSL
from kpkt.dns.stub_wire import LIBC_NAMES, name_text, parse_message

HEADER = struct.pack("!HHHHHH", 7, 0x8580, 1, 2, 0, 0)
QUESTION = b"\x03web\x00" + struct.pack("!HH", A, 1)


def a_record(owner: bytes, address: bytes) -> bytes:
    return owner + struct.pack("!HHIH", A, 1, 30, len(address)) + address


def test_type_names_round_trip():
    assert type_number("aaaa") == AAAA and type_number("TYPE65280") == 65280
    assert type_number(SRV) == SRV
    assert type_name(65) == "HTTPS" and type_name(65280) == "TYPE65280"
    with pytest.raises(ValueError, match="unknown DNS type"):
        type_number("BOGUS")


def test_libc_rules_follow_forward_pointers_that_miekg_refuses():
    # a name whose pointer points forward, to "web" at offset 4
    data = b"\x00\x00\xc0\x04\x03web\x00"
    with pytest.raises(wire.WireError, match="prior occurrence"):
        wire.read_name(data, 2)
    assert wire.read_name(data, 2, LIBC_NAMES) == ((b"web",), 4)


def test_libc_rules_stop_a_pointer_loop():
    loop = b"\xc0\x00"
    with pytest.raises(wire.WireError, match="too many compression pointers"):
        wire.read_name(loop, 0, LIBC_NAMES)


def test_libc_rules_take_names_longer_than_255_octets():
    long_name = b"".join(b"\x3f" + b"x" * 63 for _ in range(5)) + b"\x00"  # 321 octets
    with pytest.raises(wire.WireError, match="longer than 255"):
        wire.read_name(long_name, 0)
    labels, end = wire.read_name(long_name, 0, LIBC_NAMES)
    assert len(labels) == 5 and end == len(long_name)


def test_reply_keeps_the_answers_before_a_malformed_one():
    good = a_record(b"\xc0\x0c", b"\x0a\x60\x00\x32")
    cut = b"\xc0\x0c" + struct.pack("!HHIH", A, 1, 30, 4) + b"\x0a"  # RDLENGTH runs past the end
    reply = parse_message(HEADER + QUESTION + good + cut)
    assert reply is not None and reply.ancount == 2
    assert [str(record) for record in reply.answers] == ["web. 30 IN A 10.96.0.50"]
    with pytest.raises(wire.WireError):
        wire.unpack(HEADER + QUESTION + good + cut)


def test_reply_without_a_whole_question_has_no_answers():
    reply = parse_message(HEADER + b"\x03web\x00\x00")
    assert reply is not None and reply.questions == () and reply.answers == ()
    assert parse_message(HEADER[:11]) is None


def test_presentation_escapes_only_dot_and_backslash():
    assert name_text((b"a.b", b"x y", b"@\\")) == "a\\.b.x\\032y.@\\\\."
    assert name_text(()) == "."


def test_queries_are_packed_by_the_shared_codec():
    query = make_query(GLIBC, "web", A, 0x1234)
    message = wire.unpack(query)
    assert (message.id, message.rd, message.ad) == (0x1234, True, False)
    assert [(q.name, q.qtype, q.qclass) for q in message.question] == [((b"web",), A, 1)]
    assert wire.unpack(make_query(MUSL, "web.", A, 1, ad=True)).ad


def test_hosts_names_compare_with_case_in_musl_only():
    hosts = {"Web": ["10.0.0.9"]}
    conf = ResolvConf.for_pod("default")
    for libc, ok in ((GLIBC, True), (MUSL, False)):
        resolver = resolver_for(libc, conf, "web", next_id=lambda: 1, hosts=hosts)
        queries = resolver.start(0)
        assert resolver.done is ok and (queries == []) is ok, libc


@pytest.mark.parametrize(
    ("name", "as_is_first"),
    [("web", False), ("a.b.c.d.e.f", True), ("a.b.c.d.e", False), ("x.", True)],
)
def test_both_libcs_share_the_ndots_test(name, as_is_first):
    conf = ResolvConf.for_pod("default")  # ndots 5
    for libc in (GLIBC, MUSL):
        resolver = resolver_for(libc, conf, name, next_id=lambda: 1)
        assert resolver._as_is_first() is as_is_first


def test_an_unknown_libc_is_refused():
    with pytest.raises(ValueError, match="libc must be 'glibc' or 'musl'"):
        resolver_for("uclibc", ResolvConf.for_pod("default"), "web", next_id=lambda: 1)
