"""Crafted packets meet the kernel's rules: TTL 1, IP options across the tunnel, a bad checksum,
lying lengths, fragments, odd TCP flags, headers cut short; and what the sender fills in."""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from test_cli_outcomes import conform

import kpkt

CLUSTER = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: crafted}
cluster: {podCIDR: 10.1.0.0/16}
nodes:
  - name: node1
    podCIDR: 10.1.1.0/24
    pods: [{name: pod-a, ip: 10.1.1.5}, {name: pod-b, ip: 10.1.1.6}]
  - name: node2
    podCIDR: 10.1.2.0/24
    pods: [{name: pod-c, ip: 10.1.2.10}]
externals:
  - {name: laptop, ip: 192.168.50.100}
"""


NODE1 = "192.168.50.1"


@pytest.fixture
def net():
    with kpkt.start(kpkt.loads(CLUSTER)) as live:
        yield live


def _sent(net, host, packet):
    step = net.send(host, packet)
    net.settle()
    return net.steps[step]


def test_ttl_1_is_dropped_by_the_first_router_which_sends_time_exceeded(net) -> None:
    step = _sent(net, "pod-a", IP(dst="10.1.2.10", ttl=1) / UDP(dport=53))
    assert [(d.where, d.reason) for d in step.drops] == [("node1", "ttl-exceeded")]
    assert step.outcome == "dropped"
    errors = [p for p in net["pod-a/eth0"] if ICMP in p]
    assert len(errors) == 1
    assert (errors[0][ICMP].type, errors[0][IP].src) == (11, "10.1.1.1")  # node1's cni0
    assert not net.frames("node1/flannel.1")


def test_ttl_2_is_dropped_by_the_second_router_across_the_tunnel(net) -> None:
    step = _sent(net, "pod-a", IP(dst="10.1.2.10", ttl=2) / UDP(dport=53))
    assert [(d.where, d.reason) for d in step.drops] == [("node2", "ttl-exceeded")]
    error = next(p for p in net["pod-a/eth0"] if ICMP in p)
    assert (error[ICMP].type, error[IP].src) == (11, "10.1.2.0")  # node2's flannel.1


def test_ip_options_survive_forwarding_and_the_vxlan_tunnel(net) -> None:
    _sent(net, "pod-a", IP(dst="10.1.2.10", options=[IPOption_RR(routers=["1.2.3.4"])]) / UDP())
    sent = next(p for p in net["pod-a/eth0"] if UDP in p)
    options = bytes(sent[IP])[20 : sent[IP].ihl * 4]
    assert options[:7] == bytes(IPOption_RR(routers=["1.2.3.4"])) and len(options) == 8
    arrived = next(p for p in net["pod-c/eth0"] if UDP in p)
    tunnelled = next(p for p in net["node1/eth0"] if UDP in p and p[UDP].dport == 8472)
    inner = Ether(bytes(tunnelled[UDP].payload)[8:])
    for packet in (sent, arrived, inner):
        assert bytes(packet[IP])[20 : packet[IP].ihl * 4] == options
    assert arrived[IP].ttl == 62


def test_a_bad_header_checksum_is_dropped_silently_by_the_receiver(net) -> None:
    step = _sent(net, "laptop", IP(dst="192.168.50.1", chksum=0x1234) / UDP(dport=9))
    assert [(d.where, d.reason) for d in step.drops] == [("node1", "bad-checksum")]
    assert "0x1234" in step.drops[0].detail
    assert [p[IP].chksum for p in net["node1/eth0"] if IP in p] == [0x1234]  # no ICMP back


def test_a_bad_checksum_from_a_pod_is_dropped_by_br_netfilter_in_cni0(net) -> None:
    step = _sent(net, "pod-a", IP(dst="10.1.2.10", chksum=1) / UDP(dport=53))
    assert [(d.where, d.reason) for d in step.drops] == [("node1/cni0", "bad-checksum")]
    assert not net.frames("node1/flannel.1")


@pytest.mark.parametrize(
    "packet, detail",
    [
        (IP(dst=NODE1, len=200) / UDP(), "total length 200 > the 28 bytes received"),
        (IP(dst=NODE1, len=10) / UDP(), "total length 10 < header length 20"),
        (IP(dst=NODE1, ihl=15) / UDP(), "header length 60 > the 28 bytes received"),
        (IP(dst=NODE1, ihl=3) / UDP(), "ipv4 header with version 4, header length 12"),
        (IP(dst=NODE1, version=6) / UDP(), "ipv4 header with version 6"),
        (IP(dst=NODE1, proto=17) / Raw(b"ab"), "cut inside the udp header"),
        (IP(dst=NODE1) / TCP(dataofs=15), "tcp data offset 60 with 20 bytes"),
    ],
)
def test_a_header_that_lies_is_malformed(net, packet, detail) -> None:
    step = _sent(net, "laptop", packet.copy())
    assert [(d.where, d.reason) for d in step.drops] == [("node1", "malformed")]
    assert detail in step.drops[0].detail
    assert step.outcome == "dropped"


def test_a_frame_longer_than_its_packet_is_trimmed_to_the_total_length(net) -> None:
    padded = IP(dst="10.1.1.5", len=28) / ICMP(id=9) / Raw(b"\0" * 10)  # 10 bytes past len
    step = _sent(net, "pod-b", padded)
    assert all(d.reason != "malformed" for d in step.drops)
    reply = next(p for p in net["pod-b/eth0"] if ICMP in p and p[ICMP].type == 0)
    assert (reply[IP].len, reply[ICMP].id) == (28, 9)  # an echo of the 8 bytes of ICMP only


def test_fragments_are_forwarded_unchanged_and_dropped_at_their_destination(net) -> None:
    step = _sent(net, "pod-a", IP(dst="10.1.2.10", flags="MF") / UDP(dport=53) / Raw(b"x" * 16))
    assert [(d.where, d.reason) for d in step.drops] == [("pod-c.default", "fragment")]
    assert "reassembly is not modelled" in step.drops[0].detail
    arrived = next(p for p in net["pod-c/eth0"] if IP in p)
    assert arrived[IP].flags == "MF" and arrived[IP].ttl == 62


def test_tcp_with_odd_flags_gets_what_linux_answers(net) -> None:
    _sent(net, "pod-a", IP(dst="10.1.1.6") / TCP(dport=80, flags="FSRPAU"))
    assert not [p for p in net["pod-a/eth0"] if TCP in p and p[IP].src == "10.1.1.6"]  # RST set
    _sent(net, "pod-a", IP(dst="10.1.1.6") / TCP(sport=999, dport=80, flags="SF", seq=7))
    reset = next(p for p in net["pod-a/eth0"] if TCP in p and p[IP].src == "10.1.1.6")
    assert reset[TCP].flags == "RA" and reset[TCP].ack == 9  # SYN and FIN each take a number


def test_the_sender_fills_in_source_ip_id_and_checksums_unless_set(net) -> None:
    _sent(net, "pod-a", IP(dst="10.1.2.10") / UDP(sport=5, dport=53))
    _sent(net, "pod-a", IP(src="10.9.9.9", dst="10.1.2.10", id=77) / UDP(sport=6, dport=53))
    filled, kept = [p for p in net["pod-a/eth0"] if UDP in p]
    assert filled[IP].src == "10.1.1.5" and filled[IP].id != 1
    assert kept[IP].src == "10.9.9.9" and kept[IP].id == 77
    for packet in (filled, kept):
        rebuilt = packet.copy()
        del rebuilt[IP].chksum, rebuilt[UDP].chksum
        rebuilt = Ether(bytes(rebuilt))
        assert (rebuilt[IP].chksum, rebuilt[UDP].chksum) == (packet[IP].chksum, packet[UDP].chksum)


def test_a_frame_goes_onto_eth0_as_given_with_eth0s_mac_when_unset(net) -> None:
    _sent(net, "pod-a", Ether(dst="02:00:00:00:00:01", type=0x88B5) / b"hello")
    frame = net["pod-a/eth0"][0]
    assert frame.dst == "02:00:00:00:00:01" and frame.type == 0x88B5
    assert frame.src == str(kpkt.loads(CLUSTER).nodes[0].pods[0].mac)
    assert bytes(frame.payload) == b"hello"


def test_bytes_go_as_given(net) -> None:
    data = bytes(IP(src="10.1.1.5", dst="10.1.1.6", id=4242) / UDP(sport=1, dport=2))
    _sent(net, "pod-a", data)
    sent = next(p for p in net["pod-a/eth0"] if IP in p)
    assert bytes(sent[IP]) == data


def test_no_route_is_dropped_at_the_sender(net) -> None:
    step = _sent(net, "laptop", IP(dst="8.8.8.8") / UDP())
    assert [(d.where, d.reason) for d in step.drops] == [("laptop", "no-route")]
    assert step.outcome == "unreachable"
    assert IPv4Address("8.8.8.8")


def test_packet_steps_in_a_file_run_trace_and_validate_with_documents_that_follow_the_schemas(
    tmp_path,
) -> None:
    topology = tmp_path / "crafted.yaml"
    topology.write_text(
        CLUSTER
        + "traffic:\n"
        + "  - packet: {from: pod-a, scapy: \"IP(dst='10.1.2.10', flags='MF')/UDP()\", "
        + "expect: fragment}\n"
        + "  - packet: {from: pod-a, scapy: \"IP(dst='10.1.2.10', chksum=1)/UDP()\", "
        + "expect: {outcome: dropped, drop: bad-checksum}}\n"
        + "  - packet: {from: laptop, count: 2, packetHex: "
        + "4500001c00010000401163c0c0a83264c0a832010001000200080000}\n"
    )
    run = _kpkt("run", topology, "-o", tmp_path / "out", "--json")
    document = json.loads(run.stdout)
    conform(document, "run")
    assert [step["kind"] for step in document["steps"]] == ["packet"] * 3
    assert [step.get("met") for step in document["steps"]] == [True, True, None]
    assert document["steps"][2]["sent"] == 2 and document["exitStatus"] == 0
    conform(json.loads(_kpkt("trace", topology, "1", "--json").stdout), "trace")
    conform(json.loads(_kpkt("validate", topology, "--json").stdout), "validate")


def _kpkt(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpkt", *map(str, args)], capture_output=True, text=True, check=True
    )
