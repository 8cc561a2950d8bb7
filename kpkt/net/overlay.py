"""An L2 overlay router: one flat Ethernet segment across hosts, made of a switch per host that
is a port of the host's bridge (through a veth pair) and reaches every other host's switch over
a tunnel, either a VXLAN vport (kernel datapath) or sleeve (userspace UDP framing).

The switch learns local MACs from the frames it is given and remote MACs, with the peer that
sent them, from the frames it receives; a broadcast, multicast or unknown-unicast frame goes to
every peer (one copy each), known unicast only to the peer owning the destination MAC. Frames
are carried unmodified: no MAC rewrite, no TTL decrement, ARP and all.

Peers are named by 6-byte MAC-shaped names and, for VXLAN, 12-bit short IDs: the VNI is
`destination short ID << 12 | source short ID`, so each copy of a broadcast carries its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpkt.net.device import NetDevice
from kpkt.net.vxlan import FlowPorts
from kpkt.observe import IN, OUT, Decision, Tag, Why
from kpkt.wire.ethernet import (
    ETH_DST,
    ETH_LEN,
    ETH_SRC,
    ETH_TYPE,
    ETH_TYPE_IP,
    is_multicast,
)
from kpkt.wire.ipv4 import DF, FLAGS
from kpkt.wire.sleeve import MAX_FRAMES, NAME_LEN, SLEEVE_PORT, sleeve_frame, sleeve_frames
from kpkt.wire.vxlan import VNI, VXLAN_FLAGS, VXLAN_LEN, vxlan_header

SHORT_ID_BITS = 12
SHORT_ID_MASK = (1 << SHORT_ID_BITS) - 1
TUNNEL_TTL = 64


@dataclass(frozen=True, slots=True)
class Peer:
    name: bytes  # 6 bytes, MAC-shaped
    short_id: int  # 12 bits
    ip: bytes  # the host's underlay address


def tunnel_vni(src: Peer, dst: Peer) -> int:
    return dst.short_id << SHORT_ID_BITS | src.short_id


class OverlaySwitch:
    """The host's switch: its one local port (a veth whose peer is a port of the host's
    bridge), the other peers, the MAC -> peer table and the tunnel to the peers."""

    def __init__(self, stack, local: Peer) -> None:
        self.stack = stack
        self.local = local
        self.port: NetDevice | None = None
        self.peers: list[Peer] = []
        self.macs: dict[bytes, Peer | None] = {}  # MAC -> the peer behind it (None: local)
        self.tunnel = None  # a VxlanVport or a Sleeve

    def attach(self, port: NetDevice) -> None:
        port.master = self
        self.port = port

    def add_peer(self, peer: Peer) -> None:
        self.peers.append(peer)

    def ingress(self, frame: bytes, port: NetDevice, tag: Tag) -> None:
        """A frame from the local bridge: to the peer owning its destination, or to all."""
        src, dst = frame[ETH_SRC], frame[ETH_DST]
        if not is_multicast(src):
            self.macs[src] = None
        owner = False if is_multicast(dst) else self.macs.get(dst, False)
        if owner is None:
            return  # a local MAC: the bridge switched it already
        if owner is False:
            note = Decision(Why.OVERLAY_FLOOD, dst, len(self.peers))
            for peer in self.peers:
                self.tunnel.send(frame, peer, tag, note)
            return
        self.tunnel.send(frame, owner, tag, Decision(Why.OVERLAY_PEER, dst, owner.name))

    def inject(self, frame: bytes, peer: Peer, tag: Tag) -> None:
        """A frame a peer sent: learn its source behind that peer, hand it to the bridge."""
        src = frame[ETH_SRC]
        if not is_multicast(src):
            self.macs[src] = peer
        self.port.xmit(frame, tag, Decision(Why.OVERLAY_INJECT, peer.name))


class VxlanVport(NetDevice):
    """The VXLAN vport of a kernel datapath (a vxlan netdev in collect_md mode): the tunnel key
    the router sets gives VNI, TTL 64, DF 1 and no UDP checksum; the source port is the
    kernel's flow hash."""

    kind = "vxlan"

    def __init__(self, stack, name: str, mtu: int, switch: OverlaySwitch, port: int, hash_key):
        super().__init__(stack, name, b"\x00" * 6, mtu)
        self.switch = switch
        self.port = port
        self._ports = FlowPorts(hash_key)
        self._by_id: dict[int, Peer] = {}
        switch.tunnel = self
        stack.vxlan_ports[port] = self

    def send(self, frame: bytes, peer: Peer, tag: Tag, note: Decision) -> None:
        self._by_id[peer.short_id] = peer
        self.observer.seen(frame, OUT, tag, note)
        vni = tunnel_vni(self.switch.local, peer)
        self.stack.send_udp(
            self.switch.local.ip,
            peer.ip,
            self._ports.port(frame),
            self.port,
            vxlan_header(vni) + frame,
            tag,
            df=True,
            ttl=TUNNEL_TTL,
            checksum=False,
            note=Decision(Why.FASTDP_ENCAP, vni, peer.ip),
        )

    def decap(self, payload: bytes, tag: Tag) -> None:
        if len(payload) < VXLAN_LEN + ETH_LEN or not payload[0] & VXLAN_FLAGS:
            self.stack.drop(Decision(Why.VXLAN_MALFORMED), tag, self.where)
            return
        vni = int.from_bytes(payload[VNI], "big")
        dst_id, src_id = vni >> SHORT_ID_BITS, vni & SHORT_ID_MASK
        peer = next((p for p in self.switch.peers if p.short_id == src_id), None)
        if dst_id != self.switch.local.short_id or peer is None:
            mine = f"peer {self.switch.local.short_id:#05x} of {len(self.switch.peers) + 1}"
            self.stack.drop(Decision(Why.VNI_MISMATCH, f"{vni:#08x}", mine), tag, self.where)
            return
        inner = payload[VXLAN_LEN:]
        self.observer.seen(inner, IN, tag, Decision(Why.FASTDP_DECAP, vni))
        self.switch.inject(inner, peer, tag)


class Sleeve:
    """The router's UDP socket on 6783: frames queued per peer and path, flushed together (up to
    MAX_FRAMES and the path MTU per datagram). An IPv4 frame with DF goes the "DF" path (outer
    DF 1, UDP checksum 0, a raw socket); anything else (ARP, IPv4 without DF) the normal socket
    (outer DF 0, the kernel's UDP checksum)."""

    def __init__(self, stack, switch: OverlaySwitch, mtu: int) -> None:
        self.stack = stack
        self.switch = switch
        self.mtu = mtu  # the underlay's: what one datagram may take
        self._queues: dict[tuple[bytes, bool], list[bytes]] = {}
        switch.tunnel = self
        stack.udp_sockets[SLEEVE_PORT] = self

    def send(self, frame: bytes, peer: Peer, tag: Tag, note: str) -> None:
        df = frame[ETH_TYPE] == ETH_TYPE_IP and bool(frame[ETH_LEN + FLAGS] & DF)
        key = (peer.name, df)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            self.stack.network.in_flight += 1
            self.stack.sched.after(0, self._flush, peer, df, tag)
        queue.append(sleeve_frame(self.switch.local.name, peer.name, frame))

    def _flush(self, peer: Peer, df: bool, tag: Tag) -> None:
        self.stack.network.in_flight -= 1
        records = self._queues.pop((peer.name, df))
        room = self.mtu - 20 - 8 - NAME_LEN  # IPv4 and UDP headers, the sender's name
        batch: list[bytes] = []
        for record in records:
            if batch and (len(batch) == MAX_FRAMES or sum(map(len, batch)) + len(record) > room):
                self._datagram(batch, peer, df, tag)
                batch = []
            batch.append(record)
        self._datagram(batch, peer, df, tag)

    def _datagram(self, batch: list[bytes], peer: Peer, df: bool, tag: Tag) -> None:
        local = self.switch.local
        self.stack.send_udp(
            local.ip,
            peer.ip,
            SLEEVE_PORT,
            SLEEVE_PORT,
            local.name + b"".join(batch),
            tag,
            df=df,
            ttl=TUNNEL_TTL,
            checksum=not df,
            note=Decision(Why.SLEEVE_SEND, len(batch), peer.ip),
        )

    def on_datagram(self, src: bytes, sport: int, dst: bytes, payload: bytes, tag: Tag) -> None:
        try:
            _, records = sleeve_frames(payload)
        except ValueError as error:
            self.stack.drop(Decision(Why.SLEEVE_MALFORMED, str(error)), tag)
            return
        by_name = {peer.name: peer for peer in self.switch.peers}
        for src_peer, dst_peer, frame in records:
            peer = by_name.get(src_peer)
            if peer is None or dst_peer != self.switch.local.name:
                self.stack.drop(Decision(Why.SLEEVE_UNKNOWN_PEER, src_peer), tag)
                continue
            self.switch.inject(frame, peer, tag)
