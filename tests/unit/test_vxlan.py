"""A VXLAN device driven on its own, with no capture layer: encapsulation through the node's
stack, decapsulation of what arrives on its port, and its drops, as bytes and decisions."""

from __future__ import annotations

from handmade import MAC_PEER, Seen, ip, namespace, to, udp_packet, why

from kpkt.net.vxlan import Vxlan
from kpkt.observe import IN, OUT, Why
from kpkt.wire.ethernet import ETH_LEN, ETH_P_IP, eth_header
from kpkt.wire.ipv4 import (
    DF,
    FLAGS,
    IP_DST,
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_UDP,
    TTL,
    ipv4_packet,
)
from kpkt.wire.udp import PORTS, UDP_LEN, udp_segment
from kpkt.wire.vxlan import vxlan_header

TAG = "tag"
PEER_VTEP = bytes.fromhex("0e0000000002")
PORT = 8472


def flannel(vni: int = 1):
    """node1 with flannel.1 (VNI 1, port 8472) and an FDB entry for node2's VTEP."""
    stack, recorder, eth0, cni0 = namespace()
    vtep = Vxlan(
        stack,
        "flannel.1",
        bytes.fromhex("0e0000000001"),
        1450,
        vni=vni,
        port=PORT,
        local_ip=ip("192.168.50.1"),
        hash_key=bytes(16),
    )
    vtep.observer = Seen()
    vtep.add_fdb(PEER_VTEP, ip("192.168.50.2"))
    stack.vxlan_ports[PORT] = vtep
    return stack, recorder, eth0, cni0, vtep


def test_a_frame_is_encapsulated_to_the_remote_vtep():
    stack, recorder, eth0, _, vtep = flannel()
    inner = eth_header(PEER_VTEP, vtep.mac, ETH_P_IP) + udp_packet("10.244.1.5", "10.244.2.5")
    vtep.xmit(inner, TAG, "forward")
    assert vtep.observer.frames == [(inner, OUT, "forward")]
    ((frame, decision),) = eth0.sent
    outer = frame[ETH_LEN:]
    assert why(decision) == (Why.VXLAN_ENCAP, 1, ip("192.168.50.2"))
    assert outer[IP_SRC] == ip("192.168.50.1") and outer[IP_DST] == ip("192.168.50.2")
    assert outer[PROTO] == PROTO_UDP and outer[TTL] == 64 and not outer[FLAGS] & DF
    sport, dport = PORTS.unpack_from(outer, IP_MIN_LEN)
    assert dport == PORT and sport == vtep.source_port(inner)
    assert outer[IP_MIN_LEN + UDP_LEN :] == vxlan_header(1) + inner
    assert recorder.drops == []


def test_the_encapsulation_decision_is_made_once_per_remote():
    stack, _, eth0, _, vtep = flannel()
    inner = eth_header(PEER_VTEP, vtep.mac, ETH_P_IP) + udp_packet("10.244.1.5", "10.244.2.5")
    vtep.xmit(inner, TAG)
    vtep.xmit(inner, TAG)
    (_, first), (_, second) = eth0.sent
    assert first is second


def test_no_fdb_entry_drops_at_the_device():
    stack, recorder, eth0, _, vtep = flannel()
    unknown = bytes.fromhex("0e00000000ff")
    vtep.xmit(eth_header(unknown, vtep.mac, ETH_P_IP) + bytes(28), TAG)
    assert [(w, r, why(d)) for w, r, d in recorder.drops] == [
        ("node1/flannel.1", "no-fdb-and-no-flood", (Why.NO_VXLAN_FDB, "flannel.1", unknown))
    ]
    assert eth0.sent == []


def vxlan_packet(inner: bytes, vni: int = 1) -> bytes:
    """A VXLAN packet from node2 to node1 carrying `inner`."""
    src, dst = ip("192.168.50.2"), ip("192.168.50.1")
    segment = udp_segment(src, dst, 50000, PORT, vxlan_header(vni) + inner)
    return ipv4_packet(src, dst, PROTO_UDP, segment, ident=3, df=False)


def test_a_packet_to_the_port_is_decapsulated_and_the_inner_frame_routed():
    stack, recorder, eth0, cni0, vtep = flannel()
    inner = eth_header(vtep.mac, PEER_VTEP, ETH_P_IP) + udp_packet("10.244.2.5", "10.244.1.5")
    stack.receive(to(eth0, vxlan_packet(inner)), eth0, TAG)
    ((frame, direction, decision),) = vtep.observer.frames
    assert frame == inner and direction == IN and why(decision) == (Why.VXLAN_DECAP, 1)
    ((out, forward),) = cni0.sent
    assert out[:ETH_LEN] == eth_header(MAC_PEER, cni0.mac, ETH_P_IP)
    assert out[ETH_LEN:] == udp_packet("10.244.2.5", "10.244.1.5", ttl=63)
    assert forward.why is Why.FORWARD and recorder.drops == []


def test_another_vni_or_a_short_packet_is_dropped():
    stack, recorder, eth0, cni0, vtep = flannel()
    inner = eth_header(vtep.mac, PEER_VTEP, ETH_P_IP) + udp_packet("10.244.2.5", "10.244.1.5")
    stack.receive(to(eth0, vxlan_packet(inner, vni=2)), eth0, TAG)
    stack.receive(to(eth0, vxlan_packet(b"")), eth0, TAG)
    assert [(w, r, why(d)) for w, r, d in recorder.drops] == [
        ("node1/flannel.1", "vni-mismatch", (Why.VNI_MISMATCH, 2, 1)),
        ("node1/flannel.1", "malformed", (Why.VXLAN_MALFORMED,)),
    ]
    assert vtep.observer.frames == [] and cni0.sent == []
