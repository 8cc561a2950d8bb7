"""Fault and lifecycle steps tell a device's observer what happened to its interface as data
(a `Decision`), with no capture layer: the text is the capture layer's (test_decisions.py)."""

from __future__ import annotations

from handmade import Network, why

from kpkt.apps.faults import FaultApp
from kpkt.apps.lifecycle import LifecycleApp
from kpkt.net.device import Veth
from kpkt.net.sockets import UdpSocket
from kpkt.net.stack import Stack
from kpkt.observe import Decision, Why
from kpkt.spec import HostRef, Impairment, ImpairStep, LinkStep, RestartStep

POD = HostRef("pod", "pod-a", "default")


class Events:
    """A device's observer that keeps the events it is told of."""

    def __init__(self) -> None:
        self.events: list[Decision] = []

    def seen(self, frame, direction, tag, decision="") -> None:
        pass

    def remark(self, event: Decision) -> None:
        self.events.append(event)


def veth_pair():
    """A pod's eth0 and its host-side veth, each with an observer that keeps events."""
    network = Network()
    pod = Stack(network, "pod-a.default", forwarding=False, node="node1")
    node = Stack(network, "node1", forwarding=True, node="node1")
    eth0, host = Veth(pod, "eth0", bytes(6), 1450), Veth(node, "veth1", bytes(6), 1450)
    eth0.peer, host.peer = host, eth0
    eth0.observer, host.observer = Events(), Events()
    return pod, eth0, host


def test_a_link_step_tells_both_ends_of_the_link():
    pod, eth0, host = veth_pair()
    app = FaultApp(LinkStep("link", POD, "eth0", up=False), pod)
    app.start(3)
    assert not eth0.carrier and not host.carrier
    for end in (eth0, host):
        assert [why(event) for event in end.observer.events] == [
            (Why.LINK_SET, False, "pod-a.default/eth0")
        ]
    assert app.result() == "pod-a.default/eth0: link down"


def test_an_impair_step_tells_its_device_the_impairment_and_its_removal():
    pod, eth0, host = veth_pair()
    loss = Impairment(loss=0.25)
    FaultApp(ImpairStep("impair", POD, "eth0", loss), pod).start(1)
    FaultApp(ImpairStep("impair", POD, "eth0", None), pod).start(2)
    assert [why(event) for event in eth0.observer.events] == [
        (Why.NETEM_SET, loss),
        (Why.NETEM_SET, None),
    ]
    assert host.observer.events == []


def test_a_restart_tells_the_pods_interfaces_how_many_sockets_closed():
    pod, eth0, host = veth_pair()
    UdpSocket(pod, 5000, lambda *args: None)
    app = LifecycleApp(RestartStep("restart", POD, "web"), pod, cluster=None)
    app.start(1)
    events = [why(event) for event in eth0.observer.events]
    assert events == [(Why.RESTARTED, "pod-a.default", "web", 1)]
    assert host.observer.events == [], "the node's end is not the pod's"
    assert app.result() == "pod-a.default: container web restarted: 1 socket(s) closed"
