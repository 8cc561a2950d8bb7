"""The bridge driven on its own, with no capture layer: a recorder observes it, and its
decisions are checked as data (kpkt/observe.py), not as text."""

from __future__ import annotations

from kpkt.engine.scheduler import Scheduler
from kpkt.net.bridge import Bridge
from kpkt.net.drops import REASON_OF
from kpkt.observe import IN, OUT, Decision, Why
from kpkt.wire.ethernet import BROADCAST, ETH_P_IP, eth_header

MAC_BR = bytes.fromhex("0a580af40101")
MAC_A = bytes.fromhex("0a580af40102")
MAC_B = bytes.fromhex("0a580af40103")
MAC_C = bytes.fromhex("0a580af40104")
TAG = object()  # the bridge passes a frame's tag along without looking into it


class Recorder:
    """An observer that keeps what it is told: (where, direction, decision) per frame, and
    the decisions about a frame already seen."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, str, object]] = []
        self.decisions: list[Decision] = []

    def at(self, where: str) -> Observer:
        return Observer(self, where)

    def decided(self, tag, decision: Decision) -> None:
        self.decisions.append(decision)


class Observer:
    def __init__(self, recorder: Recorder, where: str) -> None:
        self.recorder, self.where = recorder, where

    def seen(self, frame: bytes, direction: str, tag, decision="") -> None:
        self.recorder.frames.append((self.where, direction, decision))


class Stack:
    """What a bridge needs of its namespace: the clock, and where frames passed up and drops
    go."""

    def __init__(self, recorder: Recorder) -> None:
        self.owner = "node1"
        self.sched = Scheduler()
        self.network = None
        self.devices: list = []
        self.observer = recorder
        self.received: list[bytes] = []
        self.drops: list[tuple[str, str]] = []

    def receive(self, frame: bytes, dev, tag, nat_note=None) -> None:
        self.received.append(frame)

    def drop(self, decision: Decision, tag, where: str | None = None) -> None:
        self.drops.append((REASON_OF[decision.why], where))


class Port:
    """A bridge port that keeps what the bridge sends out of it."""

    def __init__(self, name: str, mac: bytes) -> None:
        self.name, self.mac, self.master = name, mac, None
        self.sent: list[tuple[bytes, object]] = []

    def xmit(self, frame: bytes, tag, note="") -> None:
        self.sent.append((frame, note))


def frame(dst: bytes, src: bytes) -> bytes:
    return eth_header(dst, src, ETH_P_IP) + bytes(28)


def bridge(hairpin: bool = False) -> tuple[Bridge, Recorder, Stack, Port, Port]:
    recorder = Recorder()
    stack = Stack(recorder)
    cni0 = Bridge(stack, "cni0", MAC_BR, 1450, hairpin)
    cni0.observer = recorder.at("cni0")
    a, b = Port("veth-a", MAC_C), Port("veth-b", bytes.fromhex("0a580af40105"))
    cni0.add_port(a)
    cni0.add_port(b)
    return cni0, recorder, stack, a, b


def why(decision) -> tuple:
    return (decision.why, *decision.args)


def test_a_device_nobody_observes_runs_without_an_observer():
    stack = Stack(Recorder())
    cni0 = Bridge(stack, "cni0", MAC_BR, 1450, False)
    cni0.ingress(frame(MAC_BR, MAC_A), Port("veth-a", MAC_C), TAG)
    assert len(stack.received) == 1
    assert cni0.where == "node1/cni0"


def test_learning_then_forwarding_to_the_learned_port():
    cni0, recorder, stack, a, b = bridge()
    cni0.ingress(frame(MAC_B, MAC_A), a, TAG)  # B unknown: flooded to the other port
    assert [why(d) for d in recorder.decisions] == [(Why.FDB_LEARN, MAC_A, "veth-a")]
    assert [why(note) for _, note in b.sent] == [(Why.FLOODED, MAC_B, 1, False)]
    assert a.sent == []
    cni0.ingress(frame(MAC_A, MAC_B), b, TAG)  # A is known behind veth-a: one port
    assert [why(d) for d in recorder.decisions][1:] == [(Why.FDB_LEARN, MAC_B, "veth-b")]
    assert [why(note) for _, note in a.sent] == [(Why.FDB_PORT, MAC_A, "veth-a")]
    cni0.ingress(frame(MAC_A, MAC_B), b, TAG)  # nothing new learned the second time
    assert len(recorder.decisions) == 2
    assert stack.received == [] and stack.drops == []


def test_a_frame_for_the_bridge_is_passed_up():
    cni0, recorder, stack, a, _ = bridge()
    cni0.ingress(frame(MAC_BR, MAC_A), a, TAG)
    assert [(w, d, why(n)) for w, d, n in recorder.frames] == [
        ("cni0", IN, (Why.FDB_LOCAL, MAC_BR))
    ]
    assert len(stack.received) == 1


def test_a_broadcast_is_flooded_and_passed_up():
    cni0, recorder, stack, a, b = bridge()
    cni0.ingress(frame(BROADCAST, MAC_A), a, TAG)
    assert [(w, d, why(n)) for w, d, n in recorder.frames] == [("cni0", IN, (Why.PASSED_UP,))]
    assert [why(note) for _, note in b.sent] == [(Why.FLOODED, BROADCAST, 1, False)]
    assert a.sent == [] and len(stack.received) == 1


def test_hairpin_sends_back_out_of_the_ingress_port():
    cni0, _, stack, a, _ = bridge(hairpin=True)
    cni0.ingress(frame(MAC_B, MAC_A), a, TAG)
    cni0.ingress(frame(MAC_A, MAC_B), a, TAG)  # B is learned behind veth-a too: A and B share it
    assert [why(note) for _, note in a.sent] == [
        (Why.FLOODED, MAC_B, 2, True),
        (Why.FDB_PORT, MAC_A, "veth-a"),
    ]
    assert stack.drops == []


def test_a_frame_for_the_port_it_came_from_is_dropped_without_hairpin():
    cni0, _, stack, a, b = bridge()
    cni0.ingress(frame(MAC_B, MAC_A), a, TAG)
    cni0.ingress(frame(MAC_A, MAC_B), a, TAG)  # B now behind veth-a too
    assert stack.drops == [("same-port", "node1/cni0")]
    assert len(b.sent) == 1  # only the first flood


def test_what_the_node_sends_through_the_bridge():
    cni0, recorder, _, a, _ = bridge()
    cni0.ingress(frame(MAC_BR, MAC_A), a, TAG)
    cni0.xmit(frame(MAC_A, MAC_BR), TAG, "from the stack")
    assert recorder.frames[-1] == ("cni0", OUT, "from the stack")
    assert [why(note) for _, note in a.sent] == [(Why.FDB_PORT, MAC_A, "veth-a")]
