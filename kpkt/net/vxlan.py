"""flannel.1: a VXLAN device (VNI 1, port 8472, nolearning) as flanneld creates it.

Sending: the inner frame's destination MAC is looked up in the device's FDB (one static entry per
remote VTEP, no default entry, so nothing is ever flooded); the frame gets outer Ethernet/IPv4/
UDP/VXLAN headers and goes out through the node's stack on the underlay. The outer header is what
Linux builds: flags 0x08, DF 0, TTL 64, TOS 0, source port from a hash of the inner flow
(symmetric, except for TCP) folded into 32768-60999, and a complete UDP checksum (udpcsum is
on by default).
Receiving: the node's stack hands UDP to port 8472 to `decap`, which checks the VNI and delivers
the inner frame on flannel.1.
"""

from __future__ import annotations

import hashlib
import struct
from ipaddress import IPv4Address

from kpkt.capture.tap import IN, OUT, Tag
from kpkt.engine.ids import LOCAL_PORT_MAX, LOCAL_PORT_MIN
from kpkt.net.device import NetDevice
from kpkt.wire.ethernet import ETH_LEN, ETH_P_IP, mac_str
from kpkt.wire.ipv4 import PROTO_TCP, PROTO_UDP

VXLAN_FLAGS = 0x08
_PORT_SPAN = LOCAL_PORT_MAX - LOCAL_PORT_MIN + 1
_PORTED = (PROTO_UDP, PROTO_TCP)


class Vxlan(NetDevice):
    kind = "vxlan"

    def __init__(
        self,
        stack,
        name: str,
        mac: bytes,
        mtu: int,
        tap,
        *,
        vni: int,
        port: int,
        local_ip: bytes,
        hash_key: bytes,
    ) -> None:
        super().__init__(stack, name, mac, mtu, tap)
        self.vni = vni
        self.port = port
        self.local_ip = local_ip
        self.fdb: dict[bytes, bytes] = {}  # remote VTEP MAC -> remote node IP
        self.header = struct.pack("!II", VXLAN_FLAGS << 24, vni << 8)
        self._hash_key = hash_key
        self._port_cache: dict[tuple[int, bytes] | bytes, int] = {}  # the inner flow -> port
        self._encap_notes: dict[bytes, str] = {}
        self.decap_note = f"vxlan decap vni {vni}"

    def add_fdb(self, mac: bytes, remote_ip: bytes) -> None:
        self.fdb[mac] = remote_ip

    def xmit(self, frame: bytes, tag: Tag, note: str = "") -> None:
        self.tap.record(frame, OUT, tag, note)
        remote = self.fdb.get(frame[0:6])
        if remote is None:
            self.stack.drop(
                "no-fdb-and-no-flood",
                f"{self.name}: no fdb entry for {mac_str(frame[0:6])}",
                tag,
                where=self.tap.name,
            )
            return
        note = self._encap_notes.get(remote)
        if note is None:
            note = self._encap_notes[remote] = (
                f"vxlan encap vni {self.vni} -> {IPv4Address(remote)}"
            )
        self.stack.send_udp(
            self.local_ip,
            remote,
            self.source_port(frame),
            self.port,
            self.header + frame,
            tag,
            df=False,
            note=note,
        )

    def decap(self, payload: bytes, tag: Tag) -> None:
        """The UDP payload of a packet to our port: check the header, deliver the inner frame."""
        if len(payload) < 8 + ETH_LEN or not payload[0] & VXLAN_FLAGS:
            self.stack.drop(
                "malformed", "vxlan: short packet or I flag clear", tag, where=self.tap.name
            )
            return
        vni = int.from_bytes(payload[4:7], "big")
        if vni != self.vni:
            self.stack.drop(
                "vni-mismatch", f"vxlan: vni {vni}, device has {self.vni}", tag, where=self.tap.name
            )
            return
        inner = payload[8:]
        self.tap.record(inner, IN, tag, self.decap_note)
        self.stack.receive(inner, self, tag)

    def source_port(self, frame: bytes) -> int:
        """udp_flow_src_port(): a hash of the inner flow, the same for both directions (for
        TCP, one per direction)."""
        if frame[14] == 0x45 and frame[12:14] == b"\x08\x00" and frame[23] in _PORTED:
            # IPv4 without options: the protocol, then addresses and ports in one slice
            raw = frame[23], frame[26:38]
        else:
            raw = _flow_key(frame)
        port = self._port_cache.get(raw)
        if port is None:
            digest = hashlib.blake2b(_flow_key(frame), digest_size=8, key=self._hash_key).digest()
            port = LOCAL_PORT_MIN + int.from_bytes(digest, "big") % _PORT_SPAN
            self._port_cache[raw] = port
        return port


def _flow_key(frame: bytes) -> bytes:
    """The flow of an inner frame as the kernel hashes it: for UDP sorted addresses, protocol
    and sorted ports (symmetric); for TCP the addresses and ports as they are (directional);
    ICMP hashes without its id, so every ping of a pair shares a port."""
    if (frame[12] << 8 | frame[13]) != ETH_P_IP:
        return frame[0:12]
    ip = frame[ETH_LEN:]
    ends = sorted((ip[12:16], ip[16:20]))
    proto = ip[9]
    ihl = (ip[0] & 0x0F) * 4
    if proto == PROTO_TCP:
        # skb->hash is the sending socket's random sk_txhash, which survives veth and NAT: one
        # port per connection and direction (services.md §3.1), modelled as a directional hash
        return ip[12:20] + bytes((proto,)) + ip[ihl : ihl + 4]
    if proto == PROTO_UDP:
        ports = sorted((ip[ihl : ihl + 2], ip[ihl + 2 : ihl + 4]))
        return ends[0] + ends[1] + bytes((proto,)) + ports[0] + ports[1]
    return ends[0] + ends[1] + bytes((proto,))  # ICMP and the rest: addresses only
