"""The byte builders in kpkt.wire and kpkt.net.icmp, held equal to Scapy's builds."""

from __future__ import annotations

import functools
import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from kpkt.net.icmp import ping_payload
from kpkt.wire import icmp
from kpkt.wire.arp import ARP_REPLY, ARP_REQUEST, arp_fields, arp_frame
from kpkt.wire.ethernet import (
    BROADCAST,
    ETH_P_IP,
    ZERO_MAC,
    eth_header,
    is_multicast,
    mac_bytes,
    mac_str,
)
from kpkt.wire.ipv4 import (
    IP_DST,
    IP_HEADER_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    PROTO_UDP,
    TTL,
    checksum,
    decrement_ttl,
    ip_df,
    ipv4_packet,
    l4_checksum,
    with_ip_id,
)
from kpkt.wire.tcp import (
    DEFAULT_MSS,
    mss_of,
    options_of,
    syn_options,
    timestamp_options,
    ts_val_of,
)
from kpkt.wire.udp import PORTS, udp_segment

SETTINGS = settings(max_examples=150, deadline=None, database=None, derandomize=True)

addrs = st.binary(min_size=4, max_size=4)
macs = st.binary(min_size=6, max_size=6)
u8 = st.integers(min_value=0, max_value=0xFF)
u16 = st.integers(min_value=0, max_value=0xFFFF)
payloads = st.binary(max_size=300)


def dotted(addr: bytes) -> str:
    return str(IPv4Address(addr))


def colon(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def header_is_valid(packet: bytes) -> bool:
    """The one's-complement sum of a header with a correct checksum is 0xffff."""
    return checksum(packet[: IP_HEADER_LEN[packet[0]]]) == 0


def scapy_ip(src, dst, proto, ident, ttl, df, tos, payload) -> bytes:
    return bytes(
        IP(
            src=dotted(src),
            dst=dotted(dst),
            proto=proto,
            id=ident,
            ttl=ttl,
            flags="DF" if df else 0,
            tos=tos,
        )
        / Raw(payload)
    )


# --- helpers ----------------------------------------------------------------------------------


def test_mac_round_trip_and_multicast():
    assert mac_bytes("0a:58:0A:f4:01:02") == bytes.fromhex("0a580af40102")
    assert mac_str(bytes.fromhex("0a580af40102")) == "0a:58:0a:f4:01:02"
    assert is_multicast(BROADCAST)
    assert is_multicast(mac_bytes("01:00:5e:00:00:01"))
    assert is_multicast(mac_bytes("33:33:00:00:00:01"))
    assert not is_multicast(mac_bytes("0a:58:0a:f4:01:02"))
    assert not is_multicast(mac_bytes("02:00:00:00:00:01"))


# --- checksum ---------------------------------------------------------------------------------


def test_checksum_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2, so the checksum is 0x220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_odd_length_pads_with_zero():
    assert checksum(b"\x01") == 0xFEFF
    assert checksum(b"\x01") == checksum(b"\x01\x00")
    assert checksum(b"\xab\xcd\xef") == checksum(b"\xab\xcd\xef\x00")
    assert checksum(b"") == 0xFFFF


@SETTINGS
@given(st.binary(max_size=1501))
def test_checksum_matches_scapy(data):
    assert checksum(data) == scapy_checksum(data)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff", b"\xff\xff" * 7, b"\x00\x01\xff\xfe", b"\x80\x00\x7f\xff", bytes(20), b"\x00"],
)
def test_checksum_of_a_sum_that_folds_to_ffff_or_zero_matches_scapy(data):
    # words summing to a multiple of 0xffff: the ones' complement sum is 0xffff (checksum 0),
    # except for all-zero data (sum 0, checksum 0xffff)
    assert checksum(data) == scapy_checksum(data)


# --- IPv4 -------------------------------------------------------------------------------------


@SETTINGS
@given(addrs, addrs, u8, u16, st.integers(1, 255), st.booleans(), u8, payloads)
def test_ipv4_packet_matches_scapy(src, dst, proto, ident, ttl, df, tos, payload):
    ours = ipv4_packet(src, dst, proto, payload, ident=ident, ttl=ttl, df=df, tos=tos)
    assert ours == scapy_ip(src, dst, proto, ident, ttl, df, tos, payload)
    assert header_is_valid(ours)
    assert (ours[IP_SRC], ours[IP_DST], ours[PROTO], ours[TTL], ip_df(ours)) == (
        src,
        dst,
        proto,
        ttl,
        df,
    )
    assert IP_HEADER_LEN[ours[0]] == 20


def test_ipv4_packet_defaults_are_ttl_64_df_tos_0():
    packet = ipv4_packet(b"\x0a\xf4\x01\x02", b"\x0a\xf4\x02\x02", PROTO_UDP, b"x", ident=7)
    assert packet[8] == 64
    assert packet[6:8] == b"\x40\x00"
    assert packet[1] == 0
    assert packet[2:4] == b"\x00\x15"


@SETTINGS
@given(addrs, addrs, u16, st.integers(2, 255), st.booleans(), u8, u8, payloads)
def test_decrement_ttl_matches_scapy_rebuild(src, dst, ident, ttl, df, tos, proto, payload):
    packet = ipv4_packet(src, dst, proto, payload, ident=ident, ttl=ttl, df=df, tos=tos)
    lowered = decrement_ttl(packet)
    assert lowered == scapy_ip(src, dst, proto, ident, ttl - 1, df, tos, payload)
    assert lowered[TTL] == ttl - 1
    assert header_is_valid(lowered)
    assert lowered[20:] == payload


@functools.cache
def _ident_by_checksum() -> dict[bytes, int]:
    """For a fixed TTL 64 UDP header, the IP ID that gives each header checksum."""
    src, dst = IPv4Address("10.244.1.2").packed, IPv4Address("10.244.2.2").packed
    found: dict[bytes, int] = {}
    for ident in range(0x10000):
        packet = ipv4_packet(src, dst, PROTO_UDP, b"hello", ident=ident, ttl=64)
        found.setdefault(packet[10:12], ident)
    return found


def _packet_with_checksum(value: int) -> tuple[bytes, int]:
    ident = _ident_by_checksum()[value.to_bytes(2, "big")]
    src, dst = IPv4Address("10.244.1.2").packed, IPv4Address("10.244.2.2").packed
    packet = ipv4_packet(src, dst, PROTO_UDP, b"hello", ident=ident, ttl=64)
    assert packet[10:12] == value.to_bytes(2, "big")
    return packet, ident


def test_decrement_ttl_when_new_checksum_folds_to_zero():
    # An old checksum of 0xfeff plus 0x0100 is 0xffff. A full recompute (Scapy, and Linux's
    # ip_decrease_ttl(), whose `check + (check >= 0xFFFF)` turns it into 0x0000) writes 0x0000.
    packet, ident = _packet_with_checksum(0xFEFF)
    lowered = decrement_ttl(packet)
    expected = scapy_ip(packet[12:16], packet[16:20], PROTO_UDP, ident, 63, True, 0, b"hello")
    assert expected[10:12] == b"\x00\x00"
    assert lowered == expected


@pytest.mark.parametrize("old", [0xFF00, 0xFF01, 0xFFFE, 0x0000, 0xFEFE])
def test_decrement_ttl_carry_cases_match_scapy(old):
    packet, ident = _packet_with_checksum(old)
    lowered = decrement_ttl(packet)
    assert lowered == scapy_ip(
        packet[12:16], packet[16:20], PROTO_UDP, ident, 63, True, 0, b"hello"
    )
    assert header_is_valid(lowered)


@SETTINGS
@given(addrs, addrs, u16, u16, st.integers(1, 255), st.booleans(), payloads)
def test_with_ip_id_matches_scapy(src, dst, ident, new_ident, ttl, df, payload):
    packet = ipv4_packet(src, dst, PROTO_ICMP, payload, ident=ident, ttl=ttl, df=df)
    changed = with_ip_id(packet, new_ident)
    assert changed == scapy_ip(src, dst, PROTO_ICMP, new_ident, ttl, df, 0, payload)
    assert changed[4:6] == new_ident.to_bytes(2, "big")
    assert header_is_valid(changed)


# --- UDP --------------------------------------------------------------------------------------


@SETTINGS
@given(addrs, addrs, u16, u16, u16, payloads)
def test_udp_segment_matches_scapy(src, dst, sport, dport, ident, payload):
    segment = udp_segment(src, dst, sport, dport, payload)
    ours = ipv4_packet(src, dst, PROTO_UDP, segment, ident=ident)
    theirs = bytes(
        IP(src=dotted(src), dst=dotted(dst), id=ident, flags="DF")
        / UDP(sport=sport, dport=dport)
        / Raw(payload)
    )
    assert ours == theirs
    assert PORTS.unpack_from(segment) == (sport, dport)
    assert segment[4:6] == (8 + len(payload)).to_bytes(2, "big")
    assert segment[6:8] != b"\x00\x00"  # UDP checksum 0 means "none"; never sent as 0


def _payload_with_zero_udp_checksum(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """A payload whose UDP checksum computes to 0 (so it must be sent as 0xffff)."""
    body = b"kpkt" + b"\x00\x00"
    segment = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    # adding the one's complement of the sum as the last word makes the sum 0xffff
    return b"kpkt" + l4_checksum(src, dst, 0x11, segment).to_bytes(2, "big")


def test_udp_checksum_zero_is_sent_as_ffff_like_scapy():
    src, dst = IPv4Address("10.244.1.2").packed, IPv4Address("10.244.2.2").packed
    payload = _payload_with_zero_udp_checksum(src, dst, 40000, 5000)
    segment = udp_segment(src, dst, 40000, 5000, payload)
    assert segment[6:8] == b"\xff\xff"
    theirs = bytes(IP(src="10.244.1.2", dst="10.244.2.2") / UDP(sport=40000, dport=5000) / payload)
    assert theirs[26:28] == b"\xff\xff"
    assert segment == theirs[20:]
    # with the checksum field included the sum is still valid
    pseudo = src + dst + b"\x00\x11" + len(segment).to_bytes(2, "big")
    assert checksum(pseudo + segment) == 0


def test_l4_checksum_zero_stays_zero_for_tcp():
    src, dst = IPv4Address("10.0.0.1").packed, IPv4Address("10.0.0.2").packed
    body = struct.pack("!HHIIBBHHH", 1234, 80, 0, 0, 0x50, 0x02, 0, 0, 0) + b"\x00\x00"
    word = l4_checksum(src, dst, 6, body)
    zero = body[:-2] + word.to_bytes(2, "big")
    assert l4_checksum(src, dst, 6, zero) == 0


# --- ARP --------------------------------------------------------------------------------------


@SETTINGS
@given(st.sampled_from([ARP_REQUEST, ARP_REPLY]), macs, macs, addrs, macs, addrs)
def test_arp_frame_matches_scapy(op, eth_dst, sha, spa, tha, tpa):
    ours = arp_frame(op, eth_dst, sha, spa, tha, tpa)
    theirs = bytes(
        Ether(dst=colon(eth_dst), src=colon(sha), type=0x0806)
        / ARP(op=op, hwsrc=colon(sha), psrc=dotted(spa), hwdst=colon(tha), pdst=dotted(tpa))
    )
    assert len(ours) == 42
    assert ours == theirs
    assert arp_fields(ours) == (op, sha, spa, tha, tpa)


def test_arp_request_as_linux_sends_it():
    sha = mac_bytes("0a:58:0a:f4:01:02")
    frame = arp_frame(
        ARP_REQUEST, BROADCAST, sha, IPv4Address("10.244.1.2").packed, ZERO_MAC,
        IPv4Address("10.244.1.1").packed,
    )  # fmt: skip
    assert frame.hex() == (
        "ffffffffffff" "0a580af40102" "0806"
        "0001" "0800" "06" "04" "0001"
        "0a580af40102" "0af40102" "000000000000" "0af40101"
    )  # fmt: skip


def test_eth_header():
    header = eth_header(BROADCAST, mac_bytes("0a:58:0a:f4:01:02"), ETH_P_IP)
    assert header == bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src="0a:58:0a:f4:01:02", type=0x800))


# --- ICMP -------------------------------------------------------------------------------------


@SETTINGS
@given(st.sampled_from([icmp.ECHO_REQUEST, icmp.ECHO_REPLY]), u16, u16, payloads)
def test_icmp_echo_matches_scapy(icmp_type, ident, seq, data):
    ours = icmp.echo(icmp_type, ident, seq, data)
    assert ours == bytes(ICMP(type=icmp_type, id=ident, seq=seq) / Raw(data))
    assert checksum(ours) == 0


@SETTINGS
@given(
    st.sampled_from(
        [
            (icmp.DEST_UNREACH, icmp.NET_UNREACH),
            (icmp.DEST_UNREACH, icmp.HOST_UNREACH),
            (icmp.DEST_UNREACH, icmp.PORT_UNREACH),
            (icmp.TIME_EXCEEDED, 0),
        ]
    ),
    st.integers(min_value=28, max_value=1500),
    st.randoms(use_true_random=False),
)
def test_icmp_error_matches_scapy(kind, length, rnd):
    icmp_type, code = kind
    quoted = ipv4_packet(
        b"\x0a\xf4\x01\x02", b"\x0a\xf4\x02\x02", PROTO_UDP, rnd.randbytes(length - 20), ident=1
    )
    ours = icmp.error(icmp_type, code, quoted)
    kept = quoted[: 576 - 20 - 8]
    assert len(ours) == 8 + min(length, 548)
    assert ours[8:] == kept
    assert ours[4:8] == b"\x00\x00\x00\x00"
    assert ours == bytes(ICMP(type=icmp_type, code=code) / Raw(kept))
    assert checksum(ours) == 0


def test_icmp_error_whole_ip_packet_is_at_most_576_bytes():
    big = ipv4_packet(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", PROTO_UDP, bytes(1480), ident=9)
    message = icmp.error(icmp.DEST_UNREACH, icmp.PORT_UNREACH, big)
    assert 20 + len(message) == 576
    small = big[:100]
    assert icmp.error(icmp.DEST_UNREACH, icmp.PORT_UNREACH, small)[8:] == small


def test_icmp_frag_needed_carries_next_hop_mtu_like_scapy():
    quoted = ipv4_packet(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", PROTO_UDP, bytes(1480), ident=3)
    ours = icmp.error(icmp.DEST_UNREACH, icmp.FRAG_NEEDED, quoted, mtu=1450)
    assert ours[4:8] == b"\x00\x00\x05\xaa"
    theirs = bytes(ICMP(type=3, code=4, nexthopmtu=1450) / Raw(quoted[:548]))
    assert ours == theirs


def test_ping_payload_layout_56():
    t_ns = 5_123_456_789_012
    data = ping_payload(t_ns, 56)
    assert len(data) == 56
    assert struct.unpack("<qq", data[:16]) == (5_123, 456_789)
    assert data[16] == 0x10
    assert data[55] == 0x37
    assert data[16:] == bytes(range(16, 56))


def test_ping_payload_usec_truncates():
    data = ping_payload(1_999_999_999, 16)
    assert data == struct.pack("<qq", 1, 999_999)


@pytest.mark.parametrize("size", [0, 1, 8, 15])
def test_ping_payload_short_is_just_the_pattern(size):
    assert ping_payload(123_456_789_000, size) == bytes(range(size))


def test_ping_payload_pattern_wraps_at_256():
    data = ping_payload(0, 300)
    assert data[:16] == bytes(16)
    assert data[255] == 0xFF
    assert data[256] == 0x00
    assert data[299] == 299 & 0xFF


def test_describe():
    assert icmp.describe(8, 0) == "echo request"
    assert icmp.describe(0, 0) == "echo reply"
    assert icmp.describe(3, 4) == "fragmentation needed"
    assert icmp.describe(11, 0) == "time exceeded in transit"
    assert icmp.describe(5, 1) == "type 5 code 1"


@SETTINGS
@given(st.integers(1, 0xFFFF), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), u8)
def test_tcp_options_match_scapy_and_read_back(mss, ts_val, ts_ecr, wscale):
    syn = syn_options(mss, ts_val, ts_ecr, wscale)
    theirs = TCP(
        options=[
            ("MSS", mss),
            ("SAckOK", b""),
            ("Timestamp", (ts_val, ts_ecr)),
            ("NOP", None),
            ("WScale", wscale),
        ]
    )
    assert syn == bytes(theirs)[20:]
    later = timestamp_options(ts_val, ts_ecr)
    assert (
        later
        == bytes(TCP(options=[("NOP", None), ("NOP", None), ("Timestamp", (ts_val, ts_ecr))]))[20:]
    )
    assert (mss_of(syn), ts_val_of(syn, -1), ts_val_of(later, -1)) == (mss, ts_val, ts_val)
    assert [kind for kind, _ in options_of(syn)] == [2, 4, 8, 3]


def test_tcp_options_defaults_when_absent_or_malformed():
    assert mss_of(b"") == DEFAULT_MSS == 536
    assert ts_val_of(b"\x01\x01\x00\x08\x0a", 7) == 7  # an end-of-list before the timestamp
    assert list(options_of(b"\x02\x01\x05\xb4")) == []  # a length under 2 ends the list
