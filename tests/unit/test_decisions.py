"""Decisions as the capture files show them (kpkt/capture/decisions.py): the text every kind of
decision renders to, which the hop tables and all.pcapng comments have always shown."""

from __future__ import annotations

from kpkt.capture.decisions import render
from kpkt.observe import Decision, Why

MAC = bytes.fromhex("0a580af40102")
IP = bytes((10, 244, 1, 1))
LEARN = "fdb learn 0a:58:0a:f4:01:02 on veth1"


def test_every_kind_of_decision_has_its_text():
    texts = {
        Why.FDB_LEARN: (
            Decision(Why.FDB_LEARN, MAC, "veth1"),
            "fdb learn 0a:58:0a:f4:01:02 on veth1",
        ),
        Why.FDB_LOCAL: (Decision(Why.FDB_LOCAL, MAC), "fdb: 0a:58:0a:f4:01:02 is local"),
        Why.FDB_PORT: (Decision(Why.FDB_PORT, MAC, "veth1"), "fdb: 0a:58:0a:f4:01:02 on veth1"),
        Why.PASSED_UP: (Decision(Why.PASSED_UP), "broadcast: also passed up to the bridge"),
        Why.FLOODED: (
            Decision(Why.FLOODED, MAC, 3, True),
            "fdb miss for 0a:58:0a:f4:01:02: flooded to 3 port(s) (hairpin)",
        ),
        Why.ARP_WHO_HAS: (Decision(Why.ARP_WHO_HAS, IP, 1), "arp who-has 10.244.1.1 (try 1)"),
        Why.ARP_PROBE: (Decision(Why.ARP_PROBE, IP, 2), "arp unicast probe 10.244.1.1 (try 2)"),
        Why.ARP_REPLY: (
            Decision(Why.ARP_REPLY, IP, MAC),
            "arp reply 10.244.1.1 is-at 0a:58:0a:f4:01:02",
        ),
        Why.ARP_PROXY_REPLY: (
            Decision(Why.ARP_PROXY_REPLY, IP, MAC),
            "proxy arp reply 10.244.1.1 is-at 0a:58:0a:f4:01:02",
        ),
        Why.ARP_RESOLVED: (Decision(Why.ARP_RESOLVED, IP), "arp resolved 10.244.1.1"),
        Why.THEN: (
            Decision(Why.THEN, "dnat to 10.244.2.5:80", Decision(Why.FDB_LOCAL, MAC)),
            "dnat to 10.244.2.5:80; fdb: 0a:58:0a:f4:01:02 is local",
        ),
    }
    assert set(texts) == set(Why), "a kind of decision without a test of its text"
    for decision, text in texts.values():
        assert render(decision) == text


def test_a_broadcast_flood_names_no_mac():
    decision = Decision(Why.FLOODED, b"\xff" * 6, 2, False)
    assert render(decision) == "broadcast: flooded to 2 port(s)"


def test_text_is_taken_as_it_is_and_a_decision_is_rendered_once():
    assert render("forward: route default") == "forward: route default"
    decision = Decision(Why.FDB_LOCAL, MAC)
    assert render(decision) is render(decision)
    assert decision.text == "fdb: 0a:58:0a:f4:01:02 is local"
