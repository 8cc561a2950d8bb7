"""A Linux bridge (cni0, or the underlay switch): FDB learning, forwarding, flooding with
hairpin, and local delivery to the bridge device.

Per `br_handle_frame_finish`: the source MAC is learned on the ingress port; a broadcast or
multicast frame is flooded to every port (newest first; the ingress port only when it is in
hairpin mode) and also passed up to the bridge device; known unicast goes to its one port, or up
when it is a local MAC; unknown unicast is flooded and not passed up (the bridge device is not
promiscuous).

A port enslaved while its device has no carrier (a pod's veth before the pod's end is up) is
disabled: frames arriving on it are dropped before learning, and floods skip it, until
linkwatch reports the carrier (`br_port_carrier_check()`, then forwarding at once: no STP).
"""

from __future__ import annotations

from kpkt.engine import generation
from kpkt.net.device import NetDevice, Veth
from kpkt.net.fdb import Fdb
from kpkt.observe import IN, OUT, Decision, Tag, Why
from kpkt.wire.ethernet import (
    ETH_DST,
    ETH_LEN,
    ETH_SRC,
    ETH_TYPE,
    ETH_TYPE_IP,
    is_multicast,
)


class Bridge(NetDevice):
    """The bridge device itself (cni0): its observer sees frames passed up and frames the
    node's stack sends through the bridge."""

    kind = "bridge"
    takes_qdisc = True

    def __init__(self, stack, name: str, mac: bytes, mtu: int, hairpin: bool) -> None:
        super().__init__(stack, name, mac, mtu)
        self.ports: list[NetDevice] = []  # newest first, the order floods go out in
        self.hairpin_ports: set[str] = set()
        self.hairpin_default = hairpin
        self.fdb = Fdb()
        self.fdb.add_local(mac, None)
        self.disabled: set[NetDevice] = set()  # ports whose carrier the bridge has not seen
        self.netfilter = None  # a BrNetfilter when iptables sees bridged IPv4 (cni0)

    def add_port(self, port: NetDevice, hairpin: bool | None = None) -> None:
        """Make `port` a port of the bridge, in hairpin mode as the bridge's default says
        unless `hairpin` says otherwise."""
        port.master = self
        self.ports.insert(0, port)
        if self.hairpin_default if hairpin is None else hairpin:
            self.hairpin_ports.add(port.name)
        self.fdb.add_local(port.mac, port)

    def await_carrier(self, port: NetDevice) -> int:
        """The port's carrier came up after it was enslaved: disabled until linkwatch's work
        reports it, then forwarding. How long that takes (LINKWATCH_NS)."""
        generation.changed()
        self.disabled.add(port)
        self.sched.after(LINKWATCH_NS, self._enable, port)
        return LINKWATCH_NS

    def _enable(self, port: NetDevice) -> None:
        generation.changed()  # floods reach the port from now on (kpkt/flowcache.py)
        self.disabled.discard(port)

    def remove_port(self, port: NetDevice) -> None:
        """The port's device is deleted (its pod's namespace went): br_del_if() flushes the
        FDB entries behind it."""
        port.master = None
        self.ports.remove(port)
        self.hairpin_ports.discard(port.name)
        self.fdb.flush_port(port)
        self.disabled.discard(port)

    # --- frames arriving on a port ------------------------------------------------------------

    def ingress(self, frame: bytes, port: NetDevice, tag: Tag) -> None:
        if self.disabled and port in self.disabled:
            self.stack.drop(Decision(Why.PORT_DISABLED, self.name, port.name), tag, port.where)
            return
        now = self.sched.now
        src, dst = frame[ETH_SRC], frame[ETH_DST]
        if not src[0] & 1 and self.fdb.learn(src, port, now):
            self.stack.observer.decided(tag, Decision(Why.FDB_LEARN, src, port.name))
        if is_multicast(dst):
            # br_pass_frame_up() reuses the ingress timestamp, so cni0's capture shows the frame
            # before the flooded copies; the node's stack handles it after the flood
            self.observer.seen(frame, IN, tag, _PASSED_UP)
            self._flood(frame, port, tag)
            self.stack.receive(frame, self, tag)
            return
        nat = None
        if self.netfilter is not None and frame[ETH_TYPE] == ETH_TYPE_IP:
            # br_validate_ipv4(): a bad IP header checksum is dropped before the hooks
            if self.network.corrupting and self.stack.bad_checksum(frame[ETH_LEN:], tag):
                return
            hooked = self.netfilter.prerouting(frame, port, tag)
            if hooked is None:
                return
            frame, nat = hooked
        self.switch(frame, port, tag, nat)

    def switch(self, frame: bytes, port: NetDevice, tag: Tag, nat: Decision | str | None) -> None:
        """br_handle_frame_finish() after learning: to the bridge device, one port, or all.
        `nat` (what it decided) is not None when br_netfilter's PREROUTING ran on the frame."""
        dst = frame[ETH_DST]
        entry = self.fdb.lookup(dst, self.sched.now)
        if entry is None:
            self._flood(self._postrouting(frame, nat), port, tag)
            return
        decision = entry.decision
        if nat:  # what br_netfilter's PREROUTING decided comes first
            decision = Decision(Why.THEN, nat, decision)
        if entry.local:
            self.observer.seen(frame, IN, tag, decision)
            self.stack.receive(frame, self, tag, nat)
        elif entry.port is port and port.name not in self.hairpin_ports:
            self.stack.drop(Decision(Why.SAME_PORT, self.name, dst, port.name), tag, self.where)
        else:
            frame = self._postrouting(frame, nat)
            entry.port.xmit(frame, tag, decision)

    def _postrouting(self, frame: bytes, nat: Decision | str | None) -> bytes:
        return frame if nat is None else self.netfilter.postrouting(frame)

    def _flood(self, frame: bytes, ingress: NetDevice | None, tag: Tag) -> None:
        targets = self.ports.copy()  # all but the ingress port, unless it is a hairpin one
        if ingress in targets and ingress.name not in self.hairpin_ports:
            targets.remove(ingress)
        if self.disabled:
            targets = [p for p in targets if p not in self.disabled]
        hairpin = ingress is not None and ingress in targets
        note = Decision(Why.FLOODED, frame[ETH_DST], len(targets), hairpin)
        if Veth.transmit_each(targets, frame, tag, note):
            return
        for port in targets:
            port.xmit(frame, tag, note)

    # --- frames the node's stack sends through the bridge device -------------------------------

    def transmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        self.observer.seen(frame, OUT, tag, note)
        if self.netfilter is not None and self.netfilter.detours:
            detour = self.netfilter.detour(frame)
            if detour is not None:  # a bridged-DNAT frame: switched from its ingress port
                frame, port = detour
                self.switch(frame, port, tag, note)
                return
        dst = frame[ETH_DST]
        entry = None if is_multicast(dst) else self.fdb.lookup(dst, self.sched.now)
        if entry is None or entry.local:
            self._flood(frame, None, tag)
        else:
            entry.port.xmit(frame, tag, entry.decision)


_PASSED_UP = Decision(Why.PASSED_UP)
# how long after a port's carrier comes up the bridge sees it: linkwatch's work runs at once
# for a veth (an "urgent" event), so this is scheduling latency; kpkt's choice (the reference
# says only that the port comes up asynchronously, and that a pod's gratuitous ARP at start
# was lost at the bridge in every run)
LINKWATCH_NS = 100_000
