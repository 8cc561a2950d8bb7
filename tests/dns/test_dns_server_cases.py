"""Every server case of the DNS conformance file (tests/dns/cases.yaml, explained in
tests/dns/dns.md) asked of CoreDNS as kpkt models it, over the cluster that file defines
(tests/dns/cluster.yaml). Replies are decoded with dnspython and compared as the file says:
rcode, flags, the sections (addresses in any order, everything else in the order listed),
counts, and an SOA serial that is the same in every reply."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
import yaml

from kpkt.dns.coredns import ClusterDns, Forward
from kpkt.dns.profile import PROFILES
from kpkt.dns.upstream import UpstreamDns
from kpkt.topology.load import load_topology

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.yaml"
CASES = yaml.safe_load(CASES_FILE.read_text())["cases"]
QUERY_ID = 0x4B52
SERIAL_PLACEHOLDER = "<SERIAL>"
ADDRESS_TYPES = ("A", "AAAA")


@pytest.fixture(scope="module")
def topology():
    return load_topology(HERE / "cluster.yaml")


@pytest.fixture(scope="module")
def upstream(topology):
    return UpstreamDns.from_spec(topology.cluster.dns.upstream)


def test_the_cluster_is_the_cases_cluster(topology):
    cluster = yaml.safe_load(CASES_FILE.read_text())["cluster"]
    services = {service.key: service for service in topology.services}
    for wanted in cluster["services"]:
        service = services[f"{wanted['ns']}/{wanted['name']}"]
        assert service.type == wanted["type"]
        if wanted.get("cluster_ip") not in (None, "None"):
            assert str(service.cluster_ip) == wanted["cluster_ip"]
        endpoints = wanted.get("endpoints")
        if isinstance(endpoints, list):
            got = {(str(e.ip), e.ready, e.hostname) for e in service.endpoints}
            assert got == {(e["ip"], e["ready"], e.get("hostname")) for e in endpoints}
    bulk = services["apps/bulk"]
    assert [str(e.ip) for e in bulk.endpoints] == [f"10.244.3.{i}" for i in range(1, 41)]
    assert topology.cluster.dns.service_ip.exploded == cluster["dns"]["cluster_ip"]
    pods = {(pod.namespace, pod.name): str(pod.ip) for pod in topology.pods()}
    for pod in cluster["pods"]:
        if pod.get("hostNetwork"):
            continue  # kpkt has no host-network pods (see cluster.yaml)
        assert pods[(pod["ns"], pod["name"])] == pod["ip"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case, topology, upstream):
    profile = PROFILES[case["profile"]] if "profile" in case else None
    server = ClusterDns.from_topology(topology, profile=profile, strict=True)
    query = _wire(case) if "wire" in case else _query(case)
    transport = case.get("query", {}).get("transport", "udp")
    reply, forwarded = exchange(server, upstream, query, transport)
    expect = case["expect"]
    if expect.get("response") == "none":
        assert reply is None
        return
    assert reply is not None, "no reply"
    assert reply[:2] == query[:2], "the ID is echoed"
    if expect.get("source") == "upstream":
        assert forwarded, "the answer comes from the upstream server"
    if set(expect) <= {"source", "note"}:
        return
    _check_header(case, query, reply)
    if "counts" in expect:
        return  # a header-only reply: nothing more to read
    message = dns.message.from_wire(reply, one_rr_per_rrset=True)
    _check_sections(expect, message, server.view.serial)
    if expect.get("question_echoed"):
        size = _question_length(query)
        assert reply[12 : 12 + size] == query[12 : 12 + size]


def exchange(server, upstream, query, transport="udp", now_ns=0):
    """The reply to `query` (None: none), and whether the upstream server was asked."""
    outcome = server.handle(query, transport, now_ns=now_ns)
    forwarded = False
    while isinstance(outcome, Forward):
        forwarded = True
        assert outcome.server == upstream.ip
        outcome = outcome.relay(upstream.handle(outcome.query, outcome.transport), now_ns)
    return outcome, forwarded


# ---------------------------------------------------------------- building queries


def _query(case) -> bytes:
    q = case["query"]
    edns = q.get("edns")
    message = dns.message.make_query(
        q["name"],
        dns.rdatatype.from_text(str(q["type"])),
        dns.rdataclass.from_text(q.get("class", "IN")),
        use_edns=edns["version"] if edns else False,
        payload=edns.get("udp_size", 1232) if edns else 1232,
    )
    message.id = QUERY_ID
    message.flags = dns.flags.RD
    return message.to_wire()


def _wire(case) -> bytes:
    """The malformed or odd messages the edge cases describe in words."""
    web = dns.message.make_query("web.default.svc.cluster.local.", "A")
    web.id = QUERY_ID
    web.flags = dns.flags.RD
    valid = web.to_wire()
    header = struct.pack("!HHHHHH", QUERY_ID, 0x0100, 0, 0, 0, 0)
    return {
        "edge-qdcount-0": header,
        "edge-opcode-not-query": valid[:2]
        + struct.pack("!H", 0x0100 | dns.opcode.STATUS << 11)
        + valid[4:],
        "edge-qr-bit-set": valid[:2] + struct.pack("!H", 0x8100) + valid[4:],
        "edge-cut-in-qname": header[:4] + struct.pack("!HHHH", 1, 0, 0, 0) + b"\x03we",
        "edge-header-only-qdcount-1": header[:4] + struct.pack("!HHHH", 1, 0, 0, 0),
    }[case["id"]]


def _question_length(query: bytes) -> int:
    pos = 12
    while query[pos]:
        pos += query[pos] + 1
    return pos + 1 + 4 - 12  # the name, its root byte, type and class


# ---------------------------------------------------------------- checking replies


def _check_header(case, query: bytes, reply: bytes) -> None:
    expect = case["expect"]
    ident, bits, qd, an, ns, ar = struct.unpack("!HHHHHH", reply[:12])
    query_bits = struct.unpack("!H", query[2:4])[0]
    assert bits & 0x8000, "QR"
    flags = expect.get("flags", {})
    for name, bit in (("aa", 0x0400), ("tc", 0x0200), ("ra", 0x0080)):
        if name in flags:
            assert bool(bits & bit) == flags[name], name
    assert bits & 0x0100 == query_bits & 0x0100, "RD echoed"
    opcode = (bits >> 11) & 0xF
    if expect.get("opcode") == "echoed":
        assert opcode == (query_bits >> 11) & 0xF
    else:
        assert opcode == 0
    if "rcode" in expect:
        rcode = dns.rcode.from_text(expect["rcode"])
        assert bits & 0xF == rcode & 0xF, "rcode"
    if "counts" in expect:
        counts = expect["counts"]
        assert (qd, an, ns, ar) == (counts["qd"], counts["an"], counts["ns"], counts["ar"])
        assert len(reply) == 12


def _check_sections(expect, message: dns.message.Message, serial: int) -> None:
    if "rcode" in expect:
        assert dns.rcode.to_text(message.rcode()) == expect["rcode"]
    sections = {
        "answer": message.answer,
        "authority": message.authority,
        "additional": message.additional,
    }
    for section, rrsets in sections.items():
        if section not in expect:
            continue
        wanted = [line for line in expect[section] if not line.startswith("OPT")]
        got = [_render(rrset) for rrset in rrsets]
        assert _canonical(got) == _canonical([_parse(line, serial) for line in wanted]), section
    opts = [line for line in expect.get("additional", []) if line.startswith("OPT")]
    if opts:
        _check_opt(opts[0], message)
    elif "additional" in expect:
        assert message.opt is None
    if "answer_count" in expect:
        assert len(message.answer) == expect["answer_count"]
        rendered = [_render(rrset) for rrset in message.answer]
        assert len(set(rendered)) == len(rendered), "distinct"
        bulk = {f"10.244.3.{i}" for i in range(1, 41)}
        for owner, ttl, _, rtype, data in rendered:
            assert (owner, ttl, rtype) == ("bulk.apps.svc.cluster.local.", 30, "A")
            assert data in bulk
    for rrsets in sections.values():
        for rrset in rrsets:
            if rrset.rdtype == dns.rdatatype.SOA and rrset[0].mname.labels[:2] == (b"ns", b"dns"):
                assert rrset[0].serial == serial, "one serial in every reply"


def _check_opt(line: str, message: dns.message.Message) -> None:
    fields = dict(re.findall(r"(\w+)=(\d+)", line))
    assert message.opt is not None, "an OPT record"
    if "udp_size" in fields:
        assert message.payload == int(fields["udp_size"])
    if "version" in fields:
        assert message.edns == int(fields["version"])
    if "ext_rcode" in fields:
        assert message.rcode() >> 4 == int(fields["ext_rcode"])


def _render(rrset) -> tuple:
    rdata = rrset[0]
    return (
        rrset.name.to_text(),
        rrset.ttl,
        dns.rdataclass.to_text(rrset.rdclass),
        dns.rdatatype.to_text(rrset.rdtype),
        rdata.to_text(),
    )


def _parse(line: str, serial: int) -> tuple:
    owner, ttl, klass, rtype, data = line.split(None, 4)
    data = data.replace(SERIAL_PLACEHOLDER, str(serial))
    rdata = dns.rdata.from_text(klass, rtype, data, origin=dns.name.root, relativize=False)
    name = dns.name.from_text(owner)
    return (name.to_text(), int(ttl), klass, rtype, rdata.to_text())


def _canonical(records: list[tuple]) -> list[tuple]:
    """Addresses next to each other in any order (loadbalance shuffles them), the rest as is."""
    out: list[tuple] = []
    run: list[tuple] = []
    for record in records:
        if record[3] in ADDRESS_TYPES:
            run.append(record)
            continue
        out += sorted(run)
        run = []
        out.append(record)
    return out + sorted(run)
