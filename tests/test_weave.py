"""Weave Net (`cluster.cni: weave`), one test per wire fact of cni-others.md §2 that kpkt
implements. No capture of Weave exists: each test names its section and whether the fact is
source-backed (weave's code, docs, or the tkng write-up's real `ip`/tcpdump output) or an
inference of the reference."""

from __future__ import annotations

import json
import textwrap
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from scapy.layers import inet
from scapy.packet import Raw

from kpkt import runner
from kpkt.build import build
from kpkt.capture.pcap import read_pcap
from kpkt.capture.summary import summarize
from kpkt.cni.weave import short_ids
from kpkt.errors import TopologyError
from kpkt.report import open_hint
from kpkt.spec import CreateStep
from kpkt.topology.load import load_topology_text
from kpkt.trace import trace
from kpkt.wire.arp import ARP_REPLY, ARP_REQUEST, arp_fields
from kpkt.wire.ethernet import BROADCAST, ETH_DST, ETH_LEN, ETH_TYPE, ETH_TYPE_IP
from kpkt.wire.ipv4 import DF, FLAGS, IP_DST, IP_SRC, PROTO, PROTO_UDP, TTL
from kpkt.wire.sleeve import sleeve_frame, sleeve_frames
from kpkt.wire.udp import PORTS, UDP_LEN
from kpkt.wire.vxlan import VNI, VXLAN_LEN

from conftest import ROOT, tshark_count, tshark_read

IP = ETH_LEN  # where the outer IPv4 header starts
UDP = ETH_LEN + 20  # where the outer UDP header starts (no options)
PAYLOAD = UDP + UDP_LEN


def cluster(mode: str, traffic: str) -> str:
    """Three nodes (so that floods are seen to reach every node), weave's default range."""
    return textwrap.dedent(
        f"""\
        apiVersion: kpkt/v1
        kind: Topology
        metadata: {{name: weave-{mode}}}
        cluster:
          cni: weave
          weave: {{mode: {mode}}}
        nodes:
          - {{name: node1, pods: [{{name: pod-a}}, {{name: pod-b}}]}}
          - {{name: node2, pods: [{{name: pod-c}}]}}
          - {{name: node3, pods: [{{name: pod-e}}]}}
        traffic:
        """
    ) + textwrap.indent(textwrap.dedent(traffic), "  ")


CROSS = "- udp: {from: pod-a, to: pod-c, dport: 8080, payload: cross}\n"
SAME = "- udp: {from: pod-a, to: pod-b, dport: 8080, payload: same}\n"


def run(tmp_path: Path, mode: str, traffic: str) -> Path:
    folder = tmp_path / "out"
    runner.run(load_topology_text(cluster(mode, traffic), "t.yaml"), folder=folder)
    return folder


def frames(folder: Path, owner: str, device: str) -> list[bytes]:
    return [frame for _, frame in read_pcap(folder / f"{owner}__{device}.pcap")]


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


def arps(frame_list: list[bytes], op: int) -> list[tuple]:
    return [arp_fields(f) for f in frame_list if f[ETH_TYPE] == b"\x08\x06" and f[21] == op]


def udp_to(frame_list: list[bytes], port: int) -> list[bytes]:
    return [
        f
        for f in frame_list
        if f[ETH_TYPE] == ETH_TYPE_IP
        and f[IP + PROTO] == PROTO_UDP
        and PORTS.unpack_from(f, UDP)[1] == port
    ]


@pytest.fixture(scope="module")
def fastdp(tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("fastdp"), "fastdp", CROSS)


@pytest.fixture(scope="module")
def sleeve(tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("sleeve"), "sleeve", CROSS)


# --- §2.1 devices and addresses -------------------------------------------------------------


def test_devices_and_mtu_source_backed() -> None:
    """§2.1 (source: net/bridge.go, net/veth.go, fastdp.go; tkng `ip link`): the `weave`
    bridge, the vethwe-bridge/vethwe-datapath pair, the vxlan-6784 vport, MTU 1376; the pod
    veths hairpin, vethwe-bridge not."""
    network, _ = build(load_topology_text(cluster("fastdp", SAME), "t.yaml"))
    devices = {d.name: d for d in network.stacks["node1"].devices}
    assert {"weave", "vethwe-bridge", "vethwe-datapath", "vxlan-6784"} <= set(devices)
    assert {d.mtu for name, d in devices.items() if name not in ("lo", "eth0")} == {1376}
    assert [d.mtu for d in network.stacks["pod-a.default"].devices if d.name == "eth0"] == [1376]
    bridge = devices["weave"]
    assert "vethwe-bridge" not in bridge.hairpin_ports
    assert {p.name for p in bridge.ports} - bridge.hairpin_ports == {"vethwe-bridge"}


def test_every_pod_has_the_whole_range_source_backed() -> None:
    """§2.1/§2.2 (source: ipam/http.go, plugin/net/cni.go; tkng `ip route`): the default range
    10.32.0.0/12; the pod's address with the whole prefix, the range on-link, `default via` the
    node's bridge address; the node routes the range into `weave`."""
    topology = load_topology_text(cluster("fastdp", SAME), "t.yaml")
    assert str(topology.cluster.pod_cidr) == "10.32.0.0/12"
    network, _ = build(topology)
    pod = network.stacks["pod-a.default"]
    routes = [str(r) for r in pod.routes.routes()]
    assert any(r.startswith("10.32.0.0/12 dev eth0 scope link") for r in routes), routes
    node1 = topology.nodes[0]
    assert f"default via {node1.pod_cidr[1]} dev eth0" in routes
    node_routes = [str(r) for r in network.stacks["node1"].routes.routes()]
    assert f"10.32.0.0/12 dev weave scope link src {node1.pod_cidr[1]}" in node_routes


def test_the_run_tells_how_to_open_fastdp_in_wireshark(tmp_path: Path) -> None:
    """README: fastdp's VXLAN is on 6784, the hint `kpkt run` prints says so."""
    result = runner.run(load_topology_text(cluster("fastdp", CROSS), "t.yaml"), folder=tmp_path)
    assert "wireshark -d udp.port==6784,vxlan " in open_hint(result)


def test_weave_mode_is_checked() -> None:
    text = cluster("fastdp", SAME).replace("mode: fastdp", "mode: slevee")
    with pytest.raises(TopologyError, match="cluster.weave.mode"):
        load_topology_text(text, "t.yaml")


# weave's IPAM hands pods addresses from chunks of the whole range, owned per peer, and ignores
# spec.podCIDR (§2.1: ipam/allocator.go): a real cluster's pods are outside their node's podCIDR
REAL_ADDRESSES = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: weave-ipam}
cluster: {cni: weave}
nodes:
  - {name: node1, podCIDR: 10.32.4.0/24, pods: [{name: pod-a, ip: 10.32.0.2}, {name: pod-b}]}
  - {name: node2, pods: [{name: pod-c, ip: 10.44.0.1}]}
traffic:
  - udp: {from: pod-a, to: pod-c, dport: 8080, payload: cross}
  - udp: {from: pod-c, to: pod-b, dport: 8080, payload: back}
"""


def test_pods_outside_their_nodes_podcidr_inside_the_range_load_and_talk(tmp_path: Path) -> None:
    """A pod's address need only be inside the allocation range; a node without podCIDR gets
    one (its bridge address) and pods without an address are still given one from it."""
    topology = load_topology_text(REAL_ADDRESSES, "t.yaml")
    pods = {pod.name: pod for node in topology.nodes for pod in node.pods}
    assert str(pods["pod-a"].ip) == "10.32.0.2" and str(pods["pod-c"].ip) == "10.44.0.1"
    assert str(pods["pod-b"].ip) == "10.32.4.2"
    node2 = topology.nodes[1]
    assert node2.pod_cidr.subnet_of(topology.cluster.pod_cidr)
    result = runner.run(topology, folder=tmp_path / "out")
    assert [log.outcome for log in result.network.journal.steps] == ["delivered", "delivered"]


@pytest.mark.parametrize(
    ("ip", "problem"),
    [
        ("10.48.0.1", "10.48.0.1 is outside cluster.podCIDR 10.32.0.0/12"),
        ("10.32.4.1", "10.32.4.1 is node1's bridge address"),
    ],
)
def test_a_pod_outside_the_range_or_on_a_bridge_address_is_refused(ip: str, problem: str) -> None:
    text = REAL_ADDRESSES.replace("ip: 10.44.0.1", f"ip: {ip}")
    with pytest.raises(TopologyError, match=rf"nodes\[1\]\.pods\[0\]\.ip: {problem}"):
        load_topology_text(text, "t.yaml")


def test_a_created_pod_may_not_take_an_address_another_nodes_pod_holds() -> None:
    text = REAL_ADDRESSES + "  - create: {pod: {name: z, ip: 10.44.0.1}, node: node1}\n"
    with pytest.raises(TopologyError, match=r"create\.pod\.ip: 10\.44\.0\.1 is in use on node2"):
        load_topology_text(text, "t.yaml")
    load_topology_text(text.replace("ip: 10.44.0.1}, node", "ip: 10.44.0.9}, node"), "t.yaml")


def test_a_created_pod_is_not_given_an_address_another_nodes_pod_holds() -> None:
    """node2's pod holds 10.32.4.3, next in node1's podCIDR after pod-b's 10.32.4.2."""
    text = REAL_ADDRESSES.replace("ip: 10.44.0.1", "ip: 10.32.4.3")
    text += "  - create: {pod: {name: z}, node: node1}\n"
    step = next(s for s in load_topology_text(text, "t.yaml").steps if isinstance(s, CreateStep))
    assert str(step.pod.ip) == "10.32.4.4"


# --- §2.2 to §2.4: one flat L2 segment ----------------------------------------------------


def test_pod_arps_the_remote_pod_directly_source_backed(fastdp: Path) -> None:
    """§2.2/§2.4 row 1 (source: tkng `ip route get`, `ip neigh`): pod-a asks for pod-c's own
    address, never for a gateway; pod-c answers with its own MAC; no node ARPs for a pod."""
    sent = frames(fastdp, "pod-a.default", "eth0")  # sent, and the bridge's hairpin copy
    requests = arps(sent, ARP_REQUEST)
    assert {IPv4Address(tpa) for *_, tpa in requests} == {IPv4Address("10.32.2.2")}
    topology = load_topology_text(cluster("fastdp", CROSS), "t.yaml")
    pod_c_mac = bytes.fromhex(topology.nodes[1].pods[0].mac.replace(":", ""))
    assert [sha for _, sha, *_ in arps(sent, ARP_REPLY)] == [pod_c_mac]
    for node in topology.nodes:
        bridge_mac = bytes.fromhex(node.cni0_mac.replace(":", ""))
        own = [
            a for a in arps(frames(fastdp, node.name, "weave"), ARP_REQUEST) if a[1] == bridge_mac
        ]
        assert own == [], f"{node.name} sent an ARP request of its own"


def test_the_arp_request_is_flooded_to_every_node_source_backed(fastdp: Path) -> None:
    """§2.2/§2.4 row 1c (source: network_router.go relayBroadcast, fastdp.go): the request
    reaches every other node's pods, node3's too, one VXLAN copy per peer."""
    assert len(udp_to(frames(fastdp, "node1", "eth0"), 6784)) >= 3  # request x2, data
    for pod in ("pod-c.default", "pod-e.default"):
        got = arps(frames(fastdp, pod, "eth0"), ARP_REQUEST)
        assert [IPv4Address(tpa) for *_, tpa in got] == [IPv4Address("10.32.2.2")], pod


def test_the_arp_reply_goes_only_to_the_asking_node_source_backed(fastdp: Path) -> None:
    """§2.4 row 2 (source: network_router.go relay): known unicast goes to the one peer owning
    the MAC: node3 sees the request but neither the reply nor the data."""
    node3 = frames(fastdp, "node3", "eth0")
    assert len(udp_to(node3, 6784)) == 1  # the flooded request only
    assert arps(frames(fastdp, "pod-e.default", "eth0"), ARP_REPLY) == []


def test_ttl_64_and_the_frame_unmodified_end_to_end_source_backed(fastdp: Path) -> None:
    """§2.2/§2.4 row 3 (source: tkng ODP flows; no routing between pods): the frame pod-a sends
    is the frame inside VXLAN and the frame pod-c receives, byte for byte, TTL 64."""
    sent = [f for f in frames(fastdp, "pod-a.default", "eth0") if f[ETH_TYPE] == ETH_TYPE_IP]
    received = [f for f in frames(fastdp, "pod-c.default", "eth0") if f[ETH_TYPE] == ETH_TYPE_IP]
    assert sent == received and sent[0][IP + TTL] == 64
    tunnelled = [f[PAYLOAD + VXLAN_LEN :] for f in udp_to(frames(fastdp, "node1", "eth0"), 6784)]
    assert sent[0] in tunnelled


def test_same_node_traffic_stays_on_the_bridge_but_its_arp_crosses_inference(
    tmp_path: Path,
) -> None:
    """§2.3 (bridge semantics, source-backed; the ARP leaving the node is the reference's
    "Consequence (inference)"): the data goes pod-a -> pod-b with TTL 64 and never reaches
    eth0; the ARP request is flooded over VXLAN to both other nodes; the reply stays local."""
    folder = run(tmp_path, "fastdp", SAME)
    received = [f for f in frames(folder, "pod-b.default", "eth0") if f[ETH_TYPE] == ETH_TYPE_IP]
    assert [f[IP + TTL] for f in received] == [64]
    on_wire = udp_to(frames(folder, "node1", "eth0"), 6784)
    inner = [f[PAYLOAD + VXLAN_LEN :] for f in on_wire]
    assert [f[ETH_DST] for f in inner] == [BROADCAST, BROADCAST]
    assert {f[IP:][IP_DST] for f in on_wire} == {ip("192.168.50.2"), ip("192.168.50.3")}


# --- §2.5 fastdp outer header -------------------------------------------------------------


def test_fastdp_outer_header_source_backed(fastdp: Path) -> None:
    """§2.5 (source: fastdp.go Forward: SetTtl(64), SetDf(true), SetCsum(false); port 6783 + 1):
    UDP 6784, DF 1, UDP checksum 0, TTL 64, UDP length = inner frame + 16."""
    packets = udp_to(frames(fastdp, "node1", "eth0"), 6784)
    assert packets
    for packet in packets:
        assert packet[IP + FLAGS] & DF and packet[IP + TTL] == 64
        assert packet[UDP + 6 : UDP + 8] == b"\x00\x00"
        udp_length = int.from_bytes(packet[UDP + 4 : UDP + 6], "big")
        assert udp_length == UDP_LEN + VXLAN_LEN + len(packet[PAYLOAD + VXLAN_LEN :])
        assert packet[PAYLOAD] == 0x08


def test_fastdp_vni_is_the_peers_short_ids_source_backed(fastdp: Path) -> None:
    """§2.5 (source: fastdp.go tunnelIDFor/extractPeers, relayBroadcast): VNI = destination
    short ID << 12 | source short ID; each broadcast copy carries its own destination."""
    topology = load_topology_text(cluster("fastdp", CROSS), "t.yaml")
    ids = short_ids(topology.seed, topology.nodes)
    node_ip = {node.name: node.ip.packed for node in topology.nodes}
    by_ip = {v: k for k, v in node_ip.items()}
    for node in ("node1", "node2"):
        for packet in udp_to(frames(fastdp, node, "eth0"), 6784):
            src, dst = by_ip[packet[IP:][IP_SRC]], by_ip[packet[IP:][IP_DST]]
            vni = int.from_bytes(packet[PAYLOAD:][VNI], "big")
            assert vni == ids[dst] << 12 | ids[src], (src, dst, hex(vni))
    assert len(set(ids.values())) == 3


def test_fastdp_reads_clean_in_tshark_with_the_readme_hint(fastdp: Path, tshark: str) -> None:
    """§2.5: with `-d udp.port==6784,vxlan` and checksum validation on, no warnings; the outer
    UDP checksum shows as not present."""
    assert_clean_in_tshark(fastdp, tshark)
    out = tshark_read(
        tshark, fastdp / "node1__eth0.pcap", "-Y", "vxlan", "-T", "fields", "-e", "arp.opcode"
    )
    assert "1" in out.split()


# --- §2.6 sleeve --------------------------------------------------------------------------


def test_sleeve_ports_and_framing_source_backed(sleeve: Path) -> None:
    """§2.6 (source: sleeve.go, frame_crypto.go NonEncryptor, router-encapsulation.md): UDP
    6783 -> 6783; the payload is the sender's peer name, then per frame the source and
    destination peer names, the length and the frame, unmodified (TTL 64 inside)."""
    topology = load_topology_text(cluster("sleeve", CROSS), "t.yaml")
    name = {node.name: bytes.fromhex(node.cni0_mac.replace(":", "")) for node in topology.nodes}
    packets = [f for f in frames(sleeve, "node1", "eth0") if f[ETH_TYPE] == ETH_TYPE_IP]
    out = [p for p in packets if p[IP:][IP_SRC] == topology.nodes[0].ip.packed]
    sleeve_out = udp_to(out, 6783)
    assert sleeve_out and all(PORTS.unpack_from(p, UDP) == (6783, 6783) for p in sleeve_out)
    sent = [f for f in frames(sleeve, "pod-a.default", "eth0") if f[ETH_TYPE] == ETH_TYPE_IP]
    carried = []
    for packet in sleeve_out:
        sender, records = sleeve_frames(packet[PAYLOAD:])
        assert sender == name["node1"]
        for src, dst, frame in records:
            assert src == name["node1"] and dst in (name["node2"], name["node3"])
            carried.append(frame)
    assert sent[0] in carried and sent[0][IP + TTL] == 64
    received = [f for f in frames(sleeve, "pod-c.default", "eth0") if f[ETH_TYPE] == ETH_TYPE_IP]
    assert received == sent


def test_sleeve_df_path_and_normal_path_source_backed(sleeve: Path) -> None:
    """§2.6 (source: sleeve.go Process, udpSenderDF): a DF IPv4 frame goes with outer DF 1 and
    UDP checksum 0; ARP with outer DF 0 and a computed checksum."""
    for packet in udp_to(frames(sleeve, "node1", "eth0"), 6783):
        _, records = sleeve_frames(packet[PAYLOAD:])
        inner = records[0][2]
        checksum = packet[UDP + 6 : UDP + 8]
        if inner[ETH_TYPE] == ETH_TYPE_IP:
            assert packet[IP + FLAGS] & DF and checksum == b"\x00\x00"
        else:
            assert not packet[IP + FLAGS] & DF and checksum != b"\x00\x00"


def test_sleeve_batches_frames_of_one_instant_source_backed(tmp_path: Path) -> None:
    """§2.6 (source: sleeve.go, frames appended up to the PMTU, 100 per flush): three datagrams
    pod-a sends at once cross in one sleeve datagram."""
    traffic = CROSS + "- udp: {from: pod-a, to: pod-c, dport: 8080, count: 3, interval: 0}\n"
    folder = run(tmp_path, "sleeve", traffic)
    counts = [
        len(sleeve_frames(p[PAYLOAD:])[1]) for p in udp_to(frames(folder, "node1", "eth0"), 6783)
    ]
    assert 3 in counts, counts


def test_sleeve_codec_round_trip_and_truncation() -> None:
    a, b = b"\x02" * 6, b"\x04" * 6
    payload = a + sleeve_frame(a, b, b"x" * 60) + sleeve_frame(a, b, b"y" * 42)
    assert sleeve_frames(payload) == (a, [(a, b, b"x" * 60), (a, b, b"y" * 42)])
    with pytest.raises(ValueError, match="frame of 42 bytes"):
        sleeve_frames(payload[:-1])


def test_kpkt_decodes_sleeve_in_summaries_and_trace(sleeve: Path) -> None:
    """§2.6: tshark shows sleeve as raw UDP; kpkt's summaries and `trace` show the frames."""
    packet = udp_to(frames(sleeve, "node1", "eth0"), 6783)[0]
    text = summarize(packet)
    assert "UDP 6783 > 6783 sleeve from " in text and "ARP who-has 10.32.2.2" in text
    lines = trace(load_topology_text(cluster("sleeve", CROSS), "t.yaml"), 1)
    assert any("sleeve encap: outer 192.168.50.1:6783 > " in line for line in lines)
    assert any("sleeve decap: inner eth pod-a.default/eth0" in line for line in lines)


def test_sleeve_reads_clean_in_tshark_as_raw_udp(sleeve: Path, tshark: str) -> None:
    assert_clean_in_tshark(sleeve, tshark)


# damaged, or a warning; and the UDP checksum bad or not validated (0 on IPv4 is "not present")
DAMAGE = (
    "_ws.malformed || _ws.expert.severity >= 6291456 || ip.checksum.status != 1"
    " || udp.checksum.status == 0 || udp.checksum.status == 2"
)


def assert_clean_in_tshark(folder: Path, tshark: str) -> None:
    """Every frame of the run, read in one pass over all.pcapng (these runs carry UDP and ARP
    only, which no cross-interface analysis of Wireshark's flags; test_examples reads every
    interface's own capture of the weave example)."""
    frames, flagged = tshark_count(tshark, folder / "all.pcapng", DAMAGE)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert frames == sum(c["packets"] for c in manifest["captures"]) > 0
    assert flagged == 0, tshark_read(tshark, folder / "all.pcapng", "-Y", DAMAGE)


@pytest.mark.parametrize(
    ("mode", "port", "payload", "detail"),
    [
        ("fastdp", 6784, "abcdef", "vxlan: short packet or I flag clear"),
        (
            "sleeve",
            6783,
            "ba" * 6 + "0a580af40102" + "ba" * 6 + "0000",  # a frame from a peer nobody knows
            "sleeve: frame from unknown peer 0a:58:0a:f4:01:02",
        ),
    ],
)
def test_a_tunnel_datagram_weave_cannot_read_is_dropped_as_malformed(
    tmp_path: Path, mode: str, port: int, payload: str, detail: str
) -> None:
    """A UDP datagram to weave's port that is no VXLAN packet (fastdp), or a sleeve record
    from a peer the router does not know, is dropped as malformed, with what is wrong."""
    packet = inet.IP(src="192.168.50.1", dst="192.168.50.2") / inet.UDP(sport=port, dport=port)
    data = bytes(packet / Raw(bytes.fromhex(payload))).hex()
    folder = run(tmp_path, mode, f"- packet: {{from: node1, packetHex: {data}}}\n")
    drops = json.loads((folder / "manifest.json").read_text())["drops"]
    assert [(d["reason"], d["detail"]) for d in drops] == [("malformed", detail)]


def test_the_example_is_the_tutorial_cluster_with_only_the_cni_changed() -> None:
    examples = ROOT / "kpkt" / "examples"
    ours = (examples / "weave.yaml").read_text()
    theirs = (examples / "two-node.yaml").read_text()

    def keys(text: str) -> list[str]:
        lines = [line.split("#")[0].rstrip() for line in text.splitlines()]
        return [line for line in lines if line.strip() and not line.startswith(" " * 4)]

    different = set(keys(ours)) ^ set(keys(theirs))
    assert different <= {
        "  cni: weave",
        "  cni: flannel",
        "  weave: {mode: fastdp}",
        "  name: weave",
        "  name: two-node",
    }, different
