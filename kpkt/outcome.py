"""How a traffic step ended, as one word, and whether that is what the step expected.

The word comes from what the step's application saw (datagrams received, echo replies, the
answer read, the resolver's result), the ICMP errors its socket got and the drops the journal
recorded for the step. Only when nothing the step wanted arrived do errors and drops decide
the word, strongest first: refused, unreachable, not-found, dropped, and timeout when nothing
at all explains the silence.
"""

from __future__ import annotations

from collections.abc import Iterable

DELIVERED = "delivered"
PARTIAL = "partial"
REFUSED = "refused"
UNREACHABLE = "unreachable"
NOT_FOUND = "not-found"
DROPPED = "dropped"
TIMEOUT = "timeout"
APPLIED = "applied"

OUTCOMES: dict[str, str] = {
    DELIVERED: "everything the step wanted arrived: every datagram (udp), a reply to every echo "
    "request (ping), the whole response before a normal close (tcp), an answer (dns), every "
    "packet without a drop on its way (packet)",
    PARTIAL: "some but not all datagrams arrived or echo requests were answered",
    REFUSED: "the destination refused: ICMP port unreachable (no socket, or kube-proxy's "
    "REJECT of a service without endpoints) or a TCP reset",
    UNREACHABLE: "no way to the destination: no route, ARP unanswered, ICMP net or host "
    "unreachable",
    NOT_FOUND: "dns: the server answered that the name or record does not exist",
    DROPPED: "nothing arrived and the network dropped the step's packets (TTL exceeded, MTU, "
    "VXLAN, link down...)",
    TIMEOUT: "nothing arrived and no drop explains it: no answer in time",
    APPLIED: "a fault or lifecycle step (link, impair, restart, delete, label) took effect; it "
    "sends nothing itself",
}

# the outcomes each kind of step can end with
KIND_OUTCOMES: dict[str, tuple[str, ...]] = {
    "udp": (DELIVERED, PARTIAL, REFUSED, UNREACHABLE, DROPPED, TIMEOUT),
    "ping": (DELIVERED, PARTIAL, REFUSED, UNREACHABLE, DROPPED, TIMEOUT),
    "tcp": (DELIVERED, REFUSED, UNREACHABLE, DROPPED, TIMEOUT),
    "dns": (DELIVERED, REFUSED, UNREACHABLE, NOT_FOUND, DROPPED, TIMEOUT),
    "packet": (DELIVERED, PARTIAL, REFUSED, UNREACHABLE, DROPPED),
    "link": (APPLIED,),
    "impair": (APPLIED,),
    "restart": (APPLIED,),
    "delete": (APPLIED,),
    "create": (APPLIED,),
    "label": (APPLIED,),
    "probe": (DELIVERED, REFUSED, UNREACHABLE, DROPPED, TIMEOUT),
}

# what a drop reason says about the step; a flooded copy's drop says nothing
_DROP_SIGNALS = {
    "port-unreachable": REFUSED,
    "service-no-endpoints": REFUSED,
    "no-route": UNREACHABLE,
    "neighbour-unresolved": UNREACHABLE,
    "otherhost": None,
    "same-port": None,
}
# what an ICMP error or a TCP ending says
_ERROR_SIGNALS = {
    "port unreachable": REFUSED,
    "connection reset": REFUSED,
    "net unreachable": UNREACHABLE,
    "host unreachable": UNREACHABLE,
}
_PRECEDENCE = (REFUSED, UNREACHABLE, NOT_FOUND, DROPPED)


def classify(
    wanted: int, got: int, errors: Iterable[str], reasons: Iterable[str], failure: str = ""
) -> str:
    """The outcome of a step that wanted `wanted` things and got `got`, its socket's errors
    (ICMP descriptions, a TCP ending), its drop reasons and an application's own failure word
    (NOT_FOUND, TIMEOUT)."""
    if wanted and got >= wanted:
        return DELIVERED
    if got:
        return PARTIAL
    signals = {_ERROR_SIGNALS.get(error) for error in errors}
    signals |= {_DROP_SIGNALS.get(reason, DROPPED) for reason in reasons}
    if failure:
        signals.add(failure)
    return next((word for word in _PRECEDENCE if word in signals), TIMEOUT)


def step_kind(step) -> str:
    """udp, ping, tcp, dns, packet or a fault or lifecycle step: the key the step was written
    under."""
    return step.text.split(":", 1)[0]


def step_outcome(step, log) -> dict:
    """A finished step's result as data (manifest.json and `kpkt run --json`): its kind, what
    it sent and received, its outcome, its drops by reason and by place, and its expectation
    with whether it was met."""
    by_reason: dict[str, int] = {}
    by_place: dict[tuple[str, str], int] = {}
    for drop in log.drops:
        by_reason[drop.reason] = by_reason.get(drop.reason, 0) + 1
        by_place[drop.where, drop.reason] = by_place.get((drop.where, drop.reason), 0) + 1
    data = {
        "kind": step_kind(step),
        "sent": log.sent,
        "received": log.received,
        "outcome": log.outcome,
        "dropsByReason": by_reason,
        "dropPlaces": [
            {"where": where, "reason": reason, "count": count}
            for (where, reason), count in by_place.items()
        ],
    }
    data |= log.probe  # a probe's verdict, where it was dropped and the policies involved
    if step.expect is not None:
        data["expect"] = step.expect.as_data()
        data["met"] = step.expect.met(log.outcome, by_reason)
    return data
