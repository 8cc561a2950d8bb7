"""kpkt/crafted/expression.py: a `scapy:` expression is built from its syntax tree, never run;
anything but layers, literals, keyword arguments and `/` is refused. And the `packet:` step
that uses it, as a topology file gives it."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Packet, Raw

from kpkt.crafted.expression import ExpressionError, layers, parse
from kpkt.errors import TopologyError
from kpkt.spec import PacketStep
from kpkt.topology.load import load_topology_text

HEAD = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: crafted}
nodes:
  - {name: node1, pods: [{name: pod-a}, {name: pod-b}]}
traffic:
"""


def test_a_plain_expression_builds_the_packet_scapy_would() -> None:
    text = "IP(dst='10.1.2.10', ttl=1)/UDP(dport=53)/DNS(rd=1, qd=DNSQR(qname='web'))"
    expected = IP(dst="10.1.2.10", ttl=1) / UDP(dport=53) / DNS(rd=1, qd=DNSQR(qname="web"))
    assert bytes(parse(text)) == bytes(expected)
    odd = parse(
        "IP(dst='10.0.0.1', flags='MF', frag=3)/TCP(flags='FSRPAU', options=[('MSS', 1460)])/b'x'"
    )
    assert odd[TCP].flags == "FSRPAU" and odd[IP].frag == 3 and odd[Raw].load == b"x"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("__import__('os')", "'__import__' is not a Scapy layer"),
        ("__import__('os').system('touch pwned')", "calling attribute access is not allowed"),
        ("IP().__class__", "attribute access is not allowed"),
        ("IP()/UDP().__class__.__bases__", "attribute access is not allowed"),
        ("open('/etc/passwd')", "'open' is not a Scapy layer"),
        ("eval('1')", "'eval' is not a Scapy layer"),
        ("IP(dst=[x for x in 'ab'])", "a comprehension is not allowed"),
        ("IP(dst=(lambda: '1.2.3.4')())", "calling a lambda is not allowed"),
        ("(lambda: IP())()", "calling a lambda is not allowed"),
        ("import os", "not a Python expression"),
        ("IP(**{'dst': '1.2.3.4'})", "**-unpacking is not allowed"),
        ("IP(*['1.2.3.4'])", "unpacking is not allowed"),
        ("IP(ttl=2*3)", "the operator Mult is not allowed"),
        ("IP(dst=f'{1}')", "an f-string is not allowed"),
        ("IP()[0]", "indexing is not allowed"),
        ("IP(ttl=(x := 3))", "an assignment is not allowed"),
        ("IP(dst=os)", "the name 'os' is not allowed"),
        ("IP", "the name 'IP' is not allowed"),
        ("Packet()", "'Packet' is not a Scapy layer"),
        ("IP(dst='web')", "write an IPv4 address"),
        ("IP(dst='10.0.0.0/30')", "write an IPv4 address"),
        ("IP(nope=1)", "IP has no field 'nope'"),
        ("UDP(dport=[53, 54])", "describes 2 packets"),
        ("'text'", "not a packet"),
        ("IP(", "not a Python expression"),
        ("x" * 5000, "at most 4096"),
        ("(" * 200 + ")" * 200, "not a packet"),
        ("IP(ttl=-(-3))", "a UnaryOp expression is not allowed"),
    ],
)
def test_anything_but_layers_literals_keywords_and_slash_is_refused(text, problem) -> None:
    with pytest.raises(ExpressionError, match=problem.replace("(", r"\(").replace("*", r"\*")):
        parse(text)


def test_the_layers_are_scapy_packet_classes_and_nothing_else() -> None:
    known = layers()
    assert {"Ether", "ARP", "IP", "ICMP", "UDP", "TCP", "DNS", "DNSQR", "Raw"} <= known.keys()
    assert all(isinstance(value, type) and issubclass(value, Packet) for value in known.values())
    assert "Packet" not in known and not any(name.startswith("_") for name in known)


# -- fuzzing: whatever the text, the answer is a packet or an ExpressionError, never code run --

DANGEROUS = ["__import__", "open", "exec", "eval", "os", "getattr", "globals", "print", "pwn"]
LITERALS = st.one_of(
    st.integers(-(2**40), 2**40).map(repr),
    st.text(max_size=8).map(repr),
    st.binary(max_size=8).map(repr),
    st.sampled_from(["True", "False", "None", "1.5", "'10.1.2.3'"]),
)


def _layer_calls(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    name = st.sampled_from(["IP", "UDP", "TCP", "Raw", "DNS", "DNSQR", "ICMP", "Ether", *DANGEROUS])
    field = st.sampled_from(["dst", "ttl", "dport", "flags", "load", "qd", "x", "__class__"])
    keyword = st.tuples(field, children).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.tuples(name, st.lists(keyword, max_size=3)).map(
        lambda call: f"{call[0]}({', '.join(call[1])})"
    )


EXPRESSIONS = st.recursive(
    LITERALS | st.sampled_from(DANGEROUS),
    lambda children: st.one_of(
        _layer_calls(children),
        st.tuples(children, children).map(lambda pair: f"{pair[0]}/{pair[1]}"),
        st.tuples(children, st.sampled_from(["__class__", "system", "real"])).map(
            lambda pair: f"{pair[0]}.{pair[1]}"
        ),
        children.map(lambda inner: f"[{inner} for _ in 'ab']"),
        children.map(lambda inner: f"(lambda: {inner})()"),
        st.tuples(children, st.sampled_from(["*", "+", "**", "%", "@"]), children).map("".join),
        children.map(lambda inner: f"[{inner}]"),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_fuzzed_expressions_give_a_packet_or_an_expression_error(text) -> None:
    try:
        packet = parse(text)
    except ExpressionError:
        return
    assert isinstance(packet, Packet)
    for word in ("lambda", " for ", "__", "**", "exec(", "eval(", "open(", "getattr("):
        assert word not in text  # an expression with code in it never builds


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_packet_or_an_expression_error(text) -> None:
    with contextlib.suppress(ExpressionError):
        assert isinstance(parse(text), Packet)


# -- the packet step in a topology file --


def test_a_packet_step_is_loaded_with_its_bytes_and_what_to_fill_in() -> None:
    topology = load_topology_text(
        HEAD
        + "  - packet: {from: pod-a, scapy: \"IP(dst='10.244.1.3')/UDP(dport=53)\", count: 2}\n"
        + "  - packet: {from: pod-a, frameHex: 'ffffffffffff020000000001 88b5 00'}\n",
        "t.yaml",
    )
    first, second = topology.steps
    assert isinstance(first, PacketStep) and first.count == 2 and not first.frame
    assert first.fill == {"src", "id", "chksum", "l4-chksum"}
    assert first.data == bytes(IP(src="0.0.0.0", dst="10.244.1.3") / UDP(dport=53))
    assert second.frame and second.data == bytes.fromhex("ffffffffffff02000000000188b500")
    assert second.fill == frozenset()


@pytest.mark.parametrize(
    "body, problem",
    [
        ("{from: pod-a, scapy: \"__import__('os')\"}", "traffic[0].packet.scapy: '__import__'"),
        ("{from: pod-a}", "traffic[0].packet.scapy: give one of scapy, packetHex or frameHex"),
        (
            "{from: pod-a, packetHex: '45', frameHex: '45'}",
            "traffic[0].packet.frameHex: give one of scapy, packetHex or frameHex, not packetHex",
        ),
        ("{from: pod-a, packetHex: 'zz'}", "traffic[0].packet.packetHex: 'zz' is not hex"),
        ("{from: pod-a, packetHex: '4500'}", "packetHex: 2 bytes: an IPv4 packet has 20 to"),
        ("{from: pod-a, scapy: 'UDP()'}", "packet.scapy: a packet starting with UDP"),
        ("{from: pod-a, scapy: 'IP(ttl=300)'}", "packet.scapy: the packet does not build"),
        ("{from: pod-z, scapy: 'IP()'}", "traffic[0].packet.from: no pod"),
        ("{from: pod-a, scapy: 'IP()', port: 1}", "traffic[0].packet.port: unknown key"),
    ],
)
def test_a_bad_packet_step_is_a_load_error_with_its_yaml_path(body, problem) -> None:
    with pytest.raises(TopologyError) as raised:
        load_topology_text(HEAD + f"  - packet: {body}\n", "t.yaml")
    assert any(problem in line for line in raised.value.problems), raised.value.problems


def test_kpkt_run_refuses_code_in_a_topology_with_exit_2_and_runs_none(tmp_path) -> None:
    topology = tmp_path / "t.yaml"
    marker = tmp_path / "pwned"
    topology.write_text(HEAD + f"  - packet: {{from: pod-a, scapy: \"open('{marker}', 'w')\"}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "kpkt", "run", str(topology), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {topology}: traffic[0].packet.scapy: 'open' is not")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "out").exists()
