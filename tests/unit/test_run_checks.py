"""The assertion helpers over a run's output folder (kpkt/run_checks.py), read from the committed
masquerade golden: pod-c pings node1 (delivered), sends a datagram to node1's closed port 9
(refused, a port-unreachable drop at node1), and pod-a pings the laptop (delivered)."""

from __future__ import annotations

import pytest

from kpkt.run_checks import RunFolder

from conftest import ROOT

FOLDER = ROOT / "tests" / "golden" / "masquerade" / "expected"


@pytest.fixture(scope="module")
def run() -> RunFolder:
    return RunFolder(FOLDER)


def test_packets_are_scapy_packets_by_capture_point(run: RunFolder) -> None:
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import ARP, Ether

    packets = run.packets("node1/eth0")
    assert len(packets) == run.manifest["captures"][0]["packets"] > 0
    assert all(Ether in packet for packet in packets)
    assert any(ARP in packet for packet in packets)
    echo = [p for p in packets if ICMP in p and p[ICMP].type == 8 and p[IP].dst == "192.168.50.1"]
    assert echo and echo[0].time > 0


def test_a_pod_is_named_with_or_without_its_namespace(run: RunFolder) -> None:
    assert len(run.packets("pod-a/eth0")) == len(run.packets("pod-a.default/eth0")) > 0


def test_an_unknown_capture_point_lists_the_known_ones(run: RunFolder) -> None:
    with pytest.raises(KeyError, match=r"no capture point 'pod-z/eth0'; the run has laptop/eth0"):
        run.packets("pod-z/eth0")


def test_saw_filters_by_function_or_expression(run: RunFolder) -> None:
    from scapy.layers.inet import UDP

    by_function = run.saw("node1/eth0", lambda p: UDP in p and p[UDP].dport == 9)
    by_expression = run.saw("node1/eth0", "UDP.dport == 9")
    assert len(by_function) == len(by_expression) == 1
    assert bytes(by_function[0]) == bytes(by_expression[0])
    assert not run.saw("node1/eth0", "UDP.dport == 53")


def test_assert_saw_returns_the_frames_or_fails_listing_the_point(run: RunFolder) -> None:
    assert len(run.assert_saw("node1/eth0", "ICMP.type == 3")) == 1
    run.assert_saw("node1/eth0", "ARP", count=4)
    with pytest.raises(AssertionError) as failed:
        run.assert_saw("node1/eth0", "UDP.dport == 53")
    lines = str(failed.value).splitlines()
    assert lines[0] == "node1/eth0: expected a frame matching 'UDP.dport == 53', found 0"
    assert lines[1] == "node1/eth0 captured 10 frames:"
    assert "node2/eth0 > node1/eth0 | 192.168.50.2 > 192.168.50.1" in lines[6]
    with pytest.raises(
        AssertionError, match="expected 2 frames matching 'ICMP.type == 3', found 1"
    ):
        run.assert_saw("node1/eth0", "ICMP.type == 3", count=2)


def test_assert_outcome_allows_the_words_given(run: RunFolder) -> None:
    assert run.assert_outcome(0, "delivered") == "delivered"
    assert run.assert_outcome(1, "delivered", "refused") == "refused"
    with pytest.raises(AssertionError) as failed:
        run.assert_outcome(1, "delivered")
    lines = str(failed.value).splitlines()
    assert lines[0] == (
        "step 1 (udp: {from: pod-c, to: node1, dport: 9, listen: false, payload: discard}): "
        "outcome 'refused', allowed delivered"
    )
    assert lines[1].startswith("  result: sent 1, received 0")
    assert lines[2] == (
        "  drop at node1 (step 1, t=55000 ns): port-unreachable: nothing listens on udp port 9"
    )


def test_assert_outcome_refuses_words_that_are_no_outcome(run: RunFolder) -> None:
    with pytest.raises(ValueError, match="'allowed'"):
        run.assert_outcome(0, "allowed")
    with pytest.raises(ValueError, match="none given"):
        run.assert_outcome(0)
    with pytest.raises(IndexError, match="step 3: the run has steps 0..2"):
        run.assert_outcome(3, "delivered")


def test_assert_drops_allows_only_the_reasons_given(run: RunFolder) -> None:
    run.assert_drops("port-unreachable")
    run.assert_drops("port-unreachable", "no-route")
    with pytest.raises(AssertionError) as failed:
        run.assert_drops()
    assert str(failed.value).splitlines() == [
        "expected no drops at all; 1 other drops:",
        "  drop at node1 (step 1, t=55000 ns): port-unreachable: nothing listens on udp port 9",
    ]
    with pytest.raises(AssertionError, match="expected no drops but no-route; 1 other drops"):
        run.assert_drops("no-route")


def test_a_raw_ip_capture_is_read_as_ip_and_matched_by_its_fields() -> None:
    # tunl0 has no link layer: its frames are IP packets, in Scapy and in match expressions
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    calico = RunFolder(ROOT / "tests" / "golden" / "calico-reference" / "expected")
    packets = calico.packets("kcal-node1/tunl0")
    assert packets and all(IP in p and Ether not in p for p in packets)
    (datagram,) = calico.assert_saw("kcal-node1/tunl0", "UDP.dport == 5000 and IP.ttl == 63")
    assert datagram[UDP].sport == 40000
    with pytest.raises(AssertionError, match=r"raw ip \| 10\.245\.1\.2 > 10\.245\.2\.2 ttl 63"):
        calico.assert_saw("kcal-node1/tunl0", "IP.ttl == 64")
