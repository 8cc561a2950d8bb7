"""A Linux bridge (cni0, or the underlay switch): FDB learning, forwarding, flooding with
hairpin, and local delivery to the bridge device.

Per `br_handle_frame_finish`: the source MAC is learned on the ingress port; a broadcast or
multicast frame is flooded to every port (newest first; the ingress port only when it is in
hairpin mode) and also passed up to the bridge device; known unicast goes to its one port, or up
when it is a local MAC; unknown unicast is flooded and not passed up (the bridge device is not
promiscuous).
"""

from __future__ import annotations

from kpkt.capture.tap import IN, OUT, Tag
from kpkt.net.device import NetDevice
from kpkt.net.fdb import Fdb
from kpkt.net.frame import is_multicast, mac_str


class Bridge(NetDevice):
    """The bridge device itself (cni0): its tap sees frames passed up and frames the node's
    stack sends through the bridge."""

    kind = "bridge"

    def __init__(self, stack, name: str, mac: bytes, mtu: int, tap, hairpin: bool) -> None:
        super().__init__(stack, name, mac, mtu, tap)
        self.ports: list[NetDevice] = []  # newest first, the order floods go out in
        self.hairpin_ports: set[str] = set()
        self.hairpin_default = hairpin
        self.fdb = Fdb()
        self.fdb.add_local(mac, None)

    def add_port(self, port: NetDevice) -> None:
        port.master = self
        self.ports.insert(0, port)
        if self.hairpin_default:
            self.hairpin_ports.add(port.name)
        self.fdb.add_local(port.mac, port)

    # --- frames arriving on a port ------------------------------------------------------------

    def ingress(self, frame: bytes, port: NetDevice, tag: Tag) -> None:
        now = self.sched.now
        src, dst = frame[6:12], frame[0:6]
        if not src[0] & 1 and self.fdb.learn(src, port, now):
            self.stack.journal.annotate(tag, f"fdb learn {mac_str(src)} on {port.name}")
        if is_multicast(dst):
            # br_pass_frame_up() reuses the ingress timestamp, so cni0's capture shows the frame
            # before the flooded copies; the node's stack handles it after the flood
            self.tap.record(frame, IN, tag, "broadcast: also passed up to the bridge")
            self._flood(frame, port, tag)
            self.stack.receive(frame, self, tag)
            return
        entry = self.fdb.lookup(dst, now)
        if entry is None:
            self._flood(frame, port, tag)
        elif entry.local:
            self.pass_up(frame, tag, entry.note)
        elif entry.port is port and port.name not in self.hairpin_ports:
            self.stack.drop(
                "same-port",
                f"{self.name}: {mac_str(dst)} is behind {port.name}",
                tag,
                where=self.tap.name,
            )
        else:
            entry.port.xmit(frame, tag, entry.note)

    def pass_up(self, frame: bytes, tag: Tag, note: str) -> None:
        self.tap.record(frame, IN, tag, note)
        self.stack.receive(frame, self, tag)

    def _flood(self, frame: bytes, ingress: NetDevice | None, tag: Tag) -> None:
        targets = [p for p in self.ports if p is not ingress or p.name in self.hairpin_ports]
        reason = "broadcast" if is_multicast(frame[0:6]) else f"fdb miss for {mac_str(frame[0:6])}"
        note = f"{reason}: flooded to {len(targets)} port(s)"
        if ingress is not None and ingress in targets:
            note += " (hairpin)"
        for port in targets:
            port.xmit(frame, tag, note)

    # --- frames the node's stack sends through the bridge device -------------------------------

    def xmit(self, frame: bytes, tag: Tag, note: str = "") -> None:
        self.tap.record(frame, OUT, tag, note)
        dst = frame[0:6]
        entry = None if is_multicast(dst) else self.fdb.lookup(dst, self.sched.now)
        if entry is None or entry.local:
            self._flood(frame, None, tag)
        else:
            entry.port.xmit(frame, tag, entry.note)
