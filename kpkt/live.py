"""A live network for Python callers: built from a topology and paused at time 0, it runs only
when told to. `send` hands a crafted packet to a host's stack (a step of its own, as a
`packet:` step would be), `advance` moves the virtual clock, `settle` runs until nothing is on
a link or waiting for ARP; captures, steps and drops can be read at any time.

The captures are written into a scratch folder, removed by `close` (or the `with` block).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from kpkt import results
from kpkt.apps.packet import PacketApp
from kpkt.build import build
from kpkt.capture.pcap import read_pcap
from kpkt.crafted.packet import crafted
from kpkt.errors import KpktError
from kpkt.network import finish_step
from kpkt.spec import NS_PER_SECOND, HostRef, PacketStep, Topology

MAX_SETTLE_EVENTS = 10_000_000


class LiveNetwork(results.RunView):
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.network, _ = build(topology)  # the topology's own steps are not run
        self._scratch = tempfile.TemporaryDirectory(prefix="kpkt-live-")
        self.network.journal.open(Path(self._scratch.name))
        self._steps: list[PacketStep] = []
        self._open: list[tuple[Any, Any]] = []  # (app, log) of the steps not finished yet
        self._hosts = _hosts(topology)

    def __enter__(self) -> LiveNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch folder of the captures."""
        self._scratch.cleanup()

    @property
    def now(self) -> float:
        """The virtual clock, in seconds."""
        return self.network.sched.now / NS_PER_SECOND

    def send(self, host: str, packet: Any, *, count: int = 1, interval: float = 0.001) -> int:
        """Send `packet` from `host` (a pod by name or `namespace/name`, a node, an external
        host) now, `count` times `interval` seconds apart: a Scapy packet starting with IP
        (sent as a raw IP socket sends it: route, ARP, source address and IP ID filled in when
        unset) or Ether (a whole frame onto the host's eth0), or bytes (an IPv4 packet, sent as
        given). Returns the index of the step it makes; nothing runs until `advance` or
        `settle`."""
        ref = self._host(host)
        if not 1 <= count <= 1_000_000:
            raise KpktError(f"count {count}: send 1 to 1000000 packets")
        try:
            made = crafted(packet)
        except ValueError as error:
            raise KpktError(str(error)) from None
        step = PacketStep(
            f"packet: {{from: {host}, packet: {_summary(packet)}}}",
            ref,
            made.data,
            made.frame,
            made.fill,
            count,
            round(interval * NS_PER_SECOND),
        )
        network = self.network
        app = PacketApp(step, network.stacks[ref.owner])
        log = network.journal.new_step()
        index = len(self._steps)
        self._steps.append(step)
        self._open.append((app, log))
        network.current_step = index
        app.start(index)  # the first packet goes now; the others are scheduled
        network.current_step = -1
        return index

    def advance(self, seconds: float) -> None:
        """Run the network until the clock has moved `seconds` on."""
        sched = self.network.sched
        until = sched.now + round(seconds * NS_PER_SECOND)
        sched.run_until(until)
        sched.now = max(sched.now, until)
        self._finish()

    def settle(self) -> None:
        """Run until every step sent all it sends and no frame is on a link or waiting for
        ARP (kernel timers stay scheduled, as between the steps of a run)."""
        sched = self.network.sched
        for _ in range(MAX_SETTLE_EVENTS):
            if not self._busy() or not sched.step():
                break
        self._finish()

    def _busy(self) -> bool:
        network = self.network
        return bool(
            network.in_flight or network.pending or any(not app.done() for app, _ in self._open)
        )

    def _finish(self) -> None:
        if not self._busy():
            for app, log in self._open:
                finish_step(log, app, self.network.sched.now)
            self._open.clear()

    def frames(self, point: str) -> list[tuple[int, bytes]]:
        """A capture point's records so far, as (t_ns, frame)."""
        name = results.capture_point(self.points, point)
        tap = next(tap for tap in self.network.journal.taps if tap.name == name)
        if not tap.count:
            return []
        tap.writer.flush()
        return read_pcap(Path(self._scratch.name) / tap.filename)

    @property
    def steps(self) -> list[results.Step]:
        """The packets sent, one step each (outcome "" while a step is not finished)."""
        return results.steps(self._steps, self.network.journal)

    def _host(self, name: str) -> HostRef:
        ref = self._hosts.get(name)
        if ref is None:
            raise KpktError(
                f"no pod, node or external host named {name!r}: {', '.join(self._hosts)}"
            )
        return ref


def _hosts(topology: Topology) -> dict[str, HostRef]:
    """The names `send` knows: pods by `namespace/name` and, when unique, by name; nodes and
    externals by name."""
    hosts: dict[str, HostRef] = {}
    pods = topology.pods()
    for pod in pods:
        ref = HostRef("pod", pod.name, pod.namespace)
        hosts[f"{pod.namespace}/{pod.name}"] = ref
        if sum(other.name == pod.name for other in pods) == 1:
            hosts[pod.name] = ref
    for node in topology.nodes:
        hosts[node.name] = HostRef("node", node.name)
    for external in topology.externals:
        hosts[external.name] = HostRef("external", external.name)
    return hosts


def _summary(packet: Any) -> str:
    return f"{len(packet)} bytes" if isinstance(packet, bytes | bytearray) else packet.summary()
