"""A bridge's flood out of plain veths: the capture points see the frame at once and one event
delivers it at every far end (`Veth.transmit_each`), where the ends whose namespaces ignore it
capture it at once too; which must be the same run, byte for byte and event for event, as one
`xmit` and one delivery per port, also when other events fall at the same instant."""

from __future__ import annotations

from pathlib import Path

from kpkt.capture.pcap import read_pcap
from kpkt.capture.tap import ALL_PCAPNG, Journal
from kpkt.engine.scheduler import Scheduler
from kpkt.net.bridge import Bridge
from kpkt.net.device import VETH_DELAY_NS, Veth
from kpkt.observe import Decision, Why
from kpkt.wire.ethernet import BROADCAST, ETH_P_ARP, eth_header

PODS = 5


class Network:
    def __init__(self) -> None:
        self.sched = Scheduler()
        self.journal = Journal(self.sched)
        self.in_flight = 0
        self.corrupting = False


class Stack:
    """A namespace that logs what reaches it. pod-3, the second the flood reaches, schedules
    an event at that instant (as an answer would be); the other pods ignore the frame."""

    def __init__(self, network: Network, owner: str, events: list) -> None:
        self.owner, self.network, self.sched = owner, network, network.sched
        self.observer = network.journal
        self.devices: list = []
        self.events = events
        self.ignored = 0  # frames given to `receive` that it ignored

    @staticmethod
    def ignoring(frame: bytes):
        return lambda dev: dev.stack.owner not in ("node1", "pod-3")

    def receive(self, frame: bytes, dev, tag, nat=None) -> None:
        if self.ignoring(frame)(dev):
            self.ignored += 1
            return
        self.events.append((self.sched.now, "received", self.owner, self.network.in_flight))
        if self.owner == "pod-3":
            self.sched.after(0, self.events.append, (self.sched.now, "answer", self.owner, 0))


def _run(folder: Path, remarked: int | None = None) -> tuple[list, int, int]:
    """A broadcast from pod-0 flooded by cni0 to the other pods, with an event scheduled
    earlier for the instant the flooded copies arrive (and an event remarked on the veths of
    pod `remarked` before, for the comments of their next frames); what happened, the events
    scheduled and the frames the pods' namespaces were given to ignore."""
    network, events = Network(), []
    journal = network.journal
    node = Stack(network, "node1", events)
    cni0 = Bridge(node, "cni0", bytes.fromhex("0a5800000001"), 1450, False)
    cni0.observer = journal.tap("node1", "cni0", "bridge", "node1", None)
    pods, stacks = [], []
    for n in range(PODS):
        pod = Stack(network, f"pod-{n}", events)
        stacks.append(pod)
        eth0 = Veth(pod, "eth0", bytes.fromhex(f"0a58000001{n:02x}"), 1450)
        host = Veth(node, f"veth{n}", bytes.fromhex(f"0a58000002{n:02x}"), 1450)
        Veth.pair(eth0, host)
        eth0.observer = journal.tap(pod.owner, "eth0", "pod-eth", "node1", None)
        host.observer = journal.tap("node1", host.name, "veth", "node1", None)
        cni0.add_port(host)
        pods.append(eth0)
    folder.mkdir()
    journal.open(folder)
    if remarked is not None:
        for tap in (pods[remarked].observer, pods[remarked].peer.observer):
            tap.remark(Decision(Why.CARRIER_LOST, tap.ifname))
    journal.background.table_rows = 0  # no hop kept for a printed table: `seen_each` at work
    tag = journal.packet(journal.new_flow(-1))
    sched = network.sched
    arrival = 2 * VETH_DELAY_NS  # pod-0's frame reaches cni0, then the flooded copies the pods
    sched.at(arrival, events.append, (arrival, "scheduled before", "-", 0))
    frame = eth_header(BROADCAST, pods[0].mac, ETH_P_ARP) + bytes(28)
    pods[0].xmit(frame, tag)
    while sched.step():
        pass
    journal.close()
    return events, sched.sequence, sum(stack.ignored for stack in stacks)


def _captures(folder: Path) -> dict[str, object]:
    files = sorted(folder.glob("*.pcap"))
    assert len(files) == 2 * PODS + 1
    captures = {file.name: read_pcap(file) for file in files}
    captures[ALL_PCAPNG] = (folder / ALL_PCAPNG).read_bytes()
    return captures


def test_a_flood_at_once_is_the_run_of_one_delivery_per_port(tmp_path, monkeypatch):
    at_once, at_once_events, at_once_ignored = _run(tmp_path / "at-once")
    monkeypatch.setattr(Veth, "transmit_each", staticmethod(lambda *args: False))
    per_port, per_port_events, per_port_ignored = _run(tmp_path / "per-port")
    assert at_once == per_port
    flooded, arrival = VETH_DELAY_NS, 2 * VETH_DELAY_NS
    assert at_once == [
        (flooded, "received", "node1", PODS - 1),  # cni0 passes it up after the flood
        (arrival, "scheduled before", "-", 0),
        (arrival, "received", "pod-3", 2),  # newest port first: pod-4 came before
        (arrival, "answer", "pod-3", 0),  # scheduled by pod-3's delivery: after all of them
    ]
    assert _captures(tmp_path / "at-once") == _captures(tmp_path / "per-port")
    assert per_port_events - at_once_events == PODS - 2  # one event for the flood, not one a port
    assert (at_once_ignored, per_port_ignored) == (0, PODS - 2)  # pod-4, pod-2 and pod-1


def test_a_flood_to_a_port_with_a_remark_pending_writes_it_as_one_delivery_per_port_would(
    tmp_path, monkeypatch
):
    at_once = _run(tmp_path / "at-once", remarked=2)
    monkeypatch.setattr(Veth, "transmit_each", staticmethod(lambda *args: False))
    assert _run(tmp_path / "per-port", remarked=2)[0] == at_once[0]
    assert _captures(tmp_path / "at-once") == _captures(tmp_path / "per-port")
    blocks = (tmp_path / "at-once" / ALL_PCAPNG).read_bytes()
    assert blocks.count(b"event at 0.000000000 s") == 2  # pod-2's eth0 and its host's veth
