"""A VXLAN device with static FDB entries and no learning (`ip link add type vxlan nolearning`),
as CNI plugins create it (its VNI and UDP port are theirs).

Sending: the inner frame's destination MAC is looked up in the device's FDB (one static entry per
remote VTEP, no default entry, so nothing is ever flooded); the frame gets outer Ethernet/IPv4/
UDP/VXLAN headers and goes out through the node's stack on the underlay. The outer header is what
Linux builds: flags 0x08, DF 0, TTL 64, TOS 0, source port from a hash of the inner flow
(symmetric, except for TCP) folded into 32768-60999, and a complete UDP checksum (udpcsum is
on by default).
Receiving: the node's stack hands UDP to the device's port to `decap`, which checks the VNI and
delivers the inner frame on the device.
"""

from __future__ import annotations

import hashlib

from kpkt.engine.ids import LOCAL_PORT_MAX, LOCAL_PORT_MIN
from kpkt.net.device import NetDevice
from kpkt.observe import IN, OUT, Decision, Tag, Why
from kpkt.wire.ethernet import ETH_ADDRS, ETH_DST, ETH_LEN, ETH_TYPE, ETH_TYPE_IP
from kpkt.wire.ipv4 import (
    IP_ADDRS,
    IP_ADDRS_PORTS,
    IP_DST,
    IP_HEADER_LEN,
    IP_SRC,
    PROTO,
    PROTO_TCP,
    PROTO_UDP,
    VERSION_IHL_NO_OPTIONS,
)
from kpkt.wire.udp import DPORT_AT, PORTS
from kpkt.wire.vxlan import VNI, VXLAN_FLAGS, VXLAN_LEN, vxlan_header

_PORT_SPAN = LOCAL_PORT_MAX - LOCAL_PORT_MIN + 1
_PORTED = (PROTO_UDP, PROTO_TCP)
# IPv4 fields of an inner frame, counted from the start of the frame
_INNER_PROTO = ETH_LEN + PROTO
_INNER_ADDRS_PORTS = slice(ETH_LEN + IP_ADDRS_PORTS.start, ETH_LEN + IP_ADDRS_PORTS.stop)


class Vxlan(NetDevice):
    kind = "vxlan"
    takes_qdisc = True

    def __init__(
        self,
        stack,
        name: str,
        mac: bytes,
        mtu: int,
        *,
        vni: int,
        port: int,
        local_ip: bytes,
        hash_key: bytes,
    ) -> None:
        super().__init__(stack, name, mac, mtu)
        self.vni = vni
        self.port = port
        self.local_ip = local_ip
        self.fdb: dict[bytes, bytes] = {}  # remote VTEP MAC -> remote node IP
        self.header = vxlan_header(vni)
        self._ports = FlowPorts(hash_key)
        self._encap: dict[bytes, Decision] = {}  # remote VTEP -> the decision to send to it
        self._decap = Decision(Why.VXLAN_DECAP, vni)

    def add_fdb(self, mac: bytes, remote_ip: bytes) -> None:
        self.fdb[mac] = remote_ip

    def transmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        self.observer.seen(frame, OUT, tag, note)
        remote = self.fdb.get(frame[ETH_DST])
        if remote is None:
            decision = Decision(Why.NO_VXLAN_FDB, self.name, frame[ETH_DST])
            self.stack.drop(decision, tag, self.where)
            return
        encap = self._encap.get(remote)
        if encap is None:
            encap = self._encap[remote] = Decision(Why.VXLAN_ENCAP, self.vni, remote)
        self.stack.send_udp(
            self.local_ip,
            remote,
            self.source_port(frame),
            self.port,
            self.header + frame,
            tag,
            df=False,
            note=encap,
        )

    def decap(self, payload: bytes, tag: Tag) -> None:
        """The UDP payload of a packet to our port: check the header, deliver the inner frame."""
        if len(payload) < VXLAN_LEN + ETH_LEN or not payload[0] & VXLAN_FLAGS:
            self.stack.drop(_MALFORMED, tag, self.where)
            return
        vni = int.from_bytes(payload[VNI], "big")
        if vni != self.vni:
            self.stack.drop(Decision(Why.VNI_MISMATCH, vni, self.vni), tag, self.where)
            return
        inner = payload[VXLAN_LEN:]
        self.observer.seen(inner, IN, tag, self._decap)
        self.stack.receive(inner, self, tag)

    def source_port(self, frame: bytes) -> int:
        return self._ports.port(frame)


class FlowPorts:
    """udp_flow_src_port(): a tunnel's outer source port as a hash of the inner flow, the same
    for both directions (for TCP, one per direction), keyed by the seed."""

    def __init__(self, hash_key: bytes) -> None:
        self._hash_key = hash_key
        self._cache: dict[tuple[int, bytes] | bytes, int] = {}  # the inner flow -> port

    def port(self, frame: bytes) -> int:
        if (
            frame[ETH_LEN] == VERSION_IHL_NO_OPTIONS
            and frame[ETH_TYPE] == ETH_TYPE_IP
            and frame[_INNER_PROTO] in _PORTED
        ):
            # IPv4 without options: the protocol, then addresses and ports in one slice
            raw = frame[_INNER_PROTO], frame[_INNER_ADDRS_PORTS]
        else:
            raw = _flow_key(frame)
        port = self._cache.get(raw)
        if port is None:
            digest = hashlib.blake2b(_flow_key(frame), digest_size=8, key=self._hash_key).digest()
            port = LOCAL_PORT_MIN + int.from_bytes(digest, "big") % _PORT_SPAN
            self._cache[raw] = port
        return port


_MALFORMED = Decision(Why.VXLAN_MALFORMED)


def _flow_key(frame: bytes) -> bytes:
    """The flow of an inner frame as the kernel hashes it: for UDP sorted addresses, protocol
    and sorted ports (symmetric); for TCP the addresses and ports as they are (directional);
    ICMP hashes without its id, so every ping of a pair shares a port."""
    if frame[ETH_TYPE] != ETH_TYPE_IP:
        return frame[ETH_ADDRS]
    ip = frame[ETH_LEN:]
    ends = sorted((ip[IP_SRC], ip[IP_DST]))
    proto = ip[PROTO]
    ihl = IP_HEADER_LEN[ip[0]]
    if proto == PROTO_TCP:
        # skb->hash is the sending socket's random sk_txhash, which survives veth and NAT: one
        # port per connection and direction (services.md §3.1), modelled as a directional hash
        return ip[IP_ADDRS] + bytes((proto,)) + ip[ihl : ihl + PORTS.size]
    if proto == PROTO_UDP:
        ports = sorted((ip[ihl : ihl + DPORT_AT], ip[ihl + DPORT_AT : ihl + PORTS.size]))
        return ends[0] + ends[1] + bytes((proto,)) + ports[0] + ports[1]
    return ends[0] + ends[1] + bytes((proto,))  # ICMP and the rest: addresses only


class MetadataVxlan(Vxlan):
    """A VXLAN device in external mode (`ip link add type vxlan external`, collect_metadata):
    no VNI, no FDB, no neighbours. A BPF program sets the tunnel key of each packet it
    redirects here (`encap`: remote address, VNI, TTL, zero UDP checksum, DF clear) and reads
    it back from each packet received (`tc_ingress(inner, dev, tag, vni)`). The outer source
    port is the kernel's flow hash, as for any VXLAN device."""

    takes_qdisc = False  # what the BPF program redirects here (`encap`) bypasses `xmit`

    def __init__(self, stack, name: str, mac: bytes, mtu: int, *, port: int, hash_key: bytes):
        # no VNI and no FDB: a frame sent without a tunnel key (`xmit`) finds no FDB entry
        super().__init__(stack, name, mac, mtu, vni=0, port=port, local_ip=b"", hash_key=hash_key)

    def encap(self, frame: bytes, tag: Tag, remote: bytes, vni: int, note: Decision) -> None:
        """Send `frame` with the tunnel key `remote`, `vni`, TTL 64 (`IPDEFTTL`), no outer UDP
        checksum (`BPF_F_ZERO_CSUM_TX`) and DF clear; the source address is the route's."""
        self.observer.seen(frame, OUT, tag, note)
        self.stack.send_udp(
            None,
            remote,
            self.source_port(frame),
            self.port,
            vxlan_header(vni) + frame,
            tag,
            df=False,
            checksum=False,
            note=Decision(Why.VXLAN_ENCAP, vni, remote),
        )

    def decap(self, payload: bytes, tag: Tag) -> None:
        if len(payload) < VXLAN_LEN + ETH_LEN or not payload[0] & VXLAN_FLAGS:
            self.stack.drop(_MALFORMED, tag, where=self.where)
            return
        vni = int.from_bytes(payload[VNI], "big")
        inner = payload[VXLAN_LEN:]
        self.observer.seen(inner, IN, tag, Decision(Why.VXLAN_DECAP, vni))
        self.tc_ingress(inner, self, tag, vni)
