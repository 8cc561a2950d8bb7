"""The match expressions of kpkt's test helpers (kpkt/packet_match.py): fields as `kpkt diff`
names them, compared as Scapy shows them, parsed and never run as Python."""

from __future__ import annotations

import pytest

from kpkt.packet_match import Match

# fields as kpkt.capture.diff.dissect gives them: a VXLAN datagram with a UDP one inside
FRAME = {
    "frame.len": 111,
    "IP.ttl": 64,
    "IP.dst": "192.168.50.2",
    "UDP.dport": 8472,
    "VXLAN.vni": 1,
    "inner.IP.ttl": 63,
    "inner.UDP.dport": 5000,
    "inner.Raw.load": b"kref-udp",
}


@pytest.mark.parametrize(
    "text",
    [
        "UDP",
        "inner.UDP",
        "udp.dport == 8472",
        "UDP.dport == 0x2118",
        "IP.dst == 192.168.50.2",
        "inner.UDP.dport == 5000 and inner.IP.ttl < 64",
        "frame.len >= 111 and IP.ttl > 63 and IP.ttl <= 64",
        "inner.Raw.load == kref-udp",
        "inner.Raw.load == 'kref-udp'",
        'IP.dst != "10.0.0.1"',
        "not ARP",
        "not not UDP",
        "not TCP.dport == 80",
    ],
)
def test_a_frame_matches(text: str) -> None:
    assert Match(text)(FRAME), text


@pytest.mark.parametrize(
    "text",
    [
        "ARP",
        "ICMP",
        "UDP.dport == 53",
        "UDP.dport != 8472",
        "IP.ttl < 64",
        "inner.IP.ttl >= 64",
        "IP.dst == 192.168.50.3",
        "UDP and TCP",
        "TCP.dport == 80",  # a field the frame lacks: false
        "not UDP",
    ],
)
def test_a_frame_does_not_match(text: str) -> None:
    assert not Match(text)(FRAME), text


def test_flags_compare_by_name_or_number() -> None:
    from scapy.layers.inet import IP, TCP

    from kpkt.capture.diff import dissect
    from kpkt.wire.ethernet import ETH_P_IP, eth_header

    frame = eth_header(b"\x02" * 6, b"\x04" * 6, ETH_P_IP) + bytes(IP(flags="DF") / TCP(flags="SA"))
    fields = dissect(frame)
    assert Match("IP.flags == DF and TCP.flags == SA and TCP.flags == 0x12")(fields)
    assert not Match("TCP.flags == S")(fields)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("UDP.dprt == 53", "UDP has no field 'dprt' (its fields: chksum, dport, len, sport)"),
        ("Udpp", "'Udpp' is not a Scapy layer"),
        ("UDP.dport ==", "UDP.dport ==: a value is missing"),
        ("UDP.dport == == 5", "a value is missing"),
        ("UDP == 5", "compare a field (Layer.field), not a layer"),
        ("UDP or TCP", "'or' after UDP: clauses join with 'and'"),
        ("UDP and", "a field or layer name is missing at the end"),
        ("IP.dst < ten", "< compares numbers"),
        ("__import__('os').system('true')", "is not a field (Layer.field) or a layer name"),
        ("IP.__class__", "IP has no field '__class__'"),
        ("[x for x in ()]", "is not a field"),
        ("lambda: 1", "is not a field"),
    ],
)
def test_a_bad_expression_is_an_error_naming_it(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        Match(text)
    assert str(raised.value).startswith(f"match expression {text!r}: ")
    assert problem in str(raised.value)
