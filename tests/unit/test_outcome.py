"""The outcome word of a step and its judgement against `expect:`."""

from __future__ import annotations

from kpkt.outcome import classify
from kpkt.spec import Expectation


def test_what_arrived_decides_first() -> None:
    assert classify(3, 3, ["port unreachable"], ["no-route"]) == "delivered"
    assert classify(3, 1, [], ["ttl-exceeded"]) == "partial"


def test_when_nothing_arrived_the_strongest_signal_wins() -> None:
    assert classify(1, 0, ["net unreachable"], ["port-unreachable"]) == "refused"
    assert classify(1, 0, [], ["ttl-exceeded", "neighbour-unresolved"]) == "unreachable"
    assert classify(1, 0, ["connection reset"], []) == "refused"
    assert classify(1, 0, ["host unreachable"], []) == "unreachable"
    assert classify(1, 0, [], ["mtu-exceeded"]) == "dropped"
    assert classify(1, 0, [], ["mtu-exceeded"], "not-found") == "not-found"
    assert classify(1, 0, ["connection timed out"], []) == "timeout"


def test_drops_of_flooded_copies_say_nothing() -> None:
    assert classify(1, 0, [], ["otherhost", "same-port"]) == "timeout"


def test_an_expectation_holds_its_outcome_and_its_drop() -> None:
    both = Expectation("dropped", "ttl-exceeded")
    assert both.met("dropped", ["ttl-exceeded"])
    assert not both.met("dropped", ["mtu-exceeded"])
    assert not both.met("refused", ["ttl-exceeded"])
    assert Expectation(drop="no-route").met("unreachable", ["otherhost", "no-route"])
    assert Expectation(outcome="delivered").met("delivered", [])
    assert both.text() == "dropped, drop ttl-exceeded"
    assert Expectation(drop="no-route").as_data() == {"drop": "no-route"}
