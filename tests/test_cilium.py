"""Cilium in tunnel mode (kpkt/cni/cilium.py) against tests/reference/cni-others.md §1, one test
per wire fact kpkt implements. No capture of Cilium exists: each test's name ends in `_source`
when the reference backs the fact with Cilium's (or the kernel's) source code, docs or a tcpdump
quoted in an issue, and in `_inference` when the reference marks it as worked out, not observed;
its docstring names the section."""

from __future__ import annotations

import json
import textwrap
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from kpkt import runner
from kpkt.build import build
from kpkt.capture.pcap import read_pcap
from kpkt.cni.cilium import REMOTE_NODE_ID, Identities, identities, identity_labels, label_set
from kpkt.observe import Tag
from kpkt.spec import PodSpec, Topology
from kpkt.topology.load import load_topology_text
from kpkt.wire.arp import ARP_REQUEST, arp_frame
from kpkt.wire.ethernet import BROADCAST, mac_bytes

from conftest import ROOT, tshark_read

CLUSTER = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {{name: cilium}}
cluster:
  cni: cilium
  podCIDR: 10.1.0.0/16
  cilium: {{{options}}}
nodes:
  - name: node1
    podCIDR: 10.1.1.0/24
    pods:
      - {{name: pod-a, ip: 10.1.1.5, labels: {{app: client}}}}
      - {{name: pod-b, ip: 10.1.1.6, labels: {{app: web}}}}
      - {{name: pod-e, ip: 10.1.1.7, labels: {{app: web}}}}
  - name: node2
    podCIDR: 10.1.2.0/24
    pods:
      - {{name: pod-c, ip: 10.1.2.10, labels: {{app: web}}}}
      - {{name: pod-d, ip: 10.1.2.11}}
{services}traffic:
{traffic}"""
SAME_NODE = "  - udp: {from: pod-a, to: pod-b, dport: 8080, payload: same}\n"
CROSS_NODE = "  - ping: {from: pod-a, to: pod-c}\n"
FROM_NODE = "  - ping: {from: node1, to: pod-c}\n"
WEB = """\
services:
  - {name: web, clusterIP: 10.96.0.80, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""
TO_SERVICE = "  - tcp: {from: pod-d, to: 'web:80', payload: hello}\n"


def topology(traffic: str, options: str = "", services: str = "") -> Topology:
    text = CLUSTER.format(options=options, services=services, traffic=traffic)
    return load_topology_text(textwrap.dedent(text), "cilium.yaml")


class Run:
    """One run's captures, by `owner/interface`, as scapy packets."""

    def __init__(self, topo: Topology, folder: Path) -> None:
        runner.run(topo, folder=folder, report=False)
        self.folder = folder
        self.topo = topo
        self.pods = {pod.name: pod for pod in topo.pods()}

    def path(self, where: str) -> Path:
        owner, interface = where.split("/")
        if owner in self.pods:
            owner = self.pods[owner].owner
        return self.folder / f"{owner}__{interface}.pcap"

    def frames(self, where: str) -> list[Ether]:
        path = self.path(where)
        return [Ether(frame) for _, frame in read_pcap(path)] if path.exists() else []

    def lxc(self, pod: str) -> str:
        """`node/lxc…` of a pod."""
        spec = self.pods[pod]
        return f"{spec.node}/{spec.host_veth}"

    def mac(self, pod: str) -> str:
        return self.pods[pod].mac

    def lxc_mac(self, pod: str) -> str:
        return self.pods[pod].host_veth_mac


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Run:
    topo = topology(SAME_NODE + CROSS_NODE + FROM_NODE)
    return Run(topo, tmp_path_factory.mktemp("legacy") / "out")


@pytest.fixture(scope="module")
def bpf(tmp_path_factory) -> Run:
    options = "kubeProxyReplacement: true, hostRouting: bpf"
    topo = topology(SAME_NODE + CROSS_NODE, options)
    return Run(topo, tmp_path_factory.mktemp("bpf") / "out")


def ips(frames: list[Ether]) -> list[IP]:
    return [frame[IP] for frame in frames if IP in frame and VXLAN not in frame]


def tunnelled(frames: list[Ether]) -> list[Ether]:
    return [frame for frame in frames if VXLAN in frame]


# --- §1.1 devices, addresses, MACs -----------------------------------------------------------


def test_s1_1_lxc_host_veths_with_own_mac_and_no_address_source() -> None:
    """§1.1: the host side is `lxc` + 12 hex digits (Endpoint2IfName), its own MAC, no IP."""
    topo = topology(SAME_NODE)
    network, _ = build(topo)
    node = network.stacks["node1"]
    for pod in topo.nodes[0].pods:
        assert pod.host_veth.startswith("lxc") and len(pod.host_veth) == 15
        int(pod.host_veth[3:], 16)
        lxc = next(dev for dev in node.devices if dev.name == pod.host_veth)
        assert lxc.mac.hex(":") == pod.host_veth_mac != pod.mac
        assert not [ip for dev, ip, _ in node.addresses if dev is lxc]


def test_s1_1_pod_address_is_a_32_with_default_via_cilium_host_source() -> None:
    """§1.1: pod eth0 /32, `<router> dev eth0 scope link`, `default via <router> dev eth0`;
    the router address is cilium_host's, a /32; cilium_net has none."""
    network, _ = build(topology(SAME_NODE))
    pod = network.stacks["pod-a.default"]
    assert [(dev.name, IPv4Address(ip), plen) for dev, ip, plen in pod.addresses[1:]] == [
        ("eth0", IPv4Address("10.1.1.5"), 32)
    ]
    assert [str(route) for route in pod.routes.routes()] == [
        "10.1.1.1 dev eth0 scope link",
        "default via 10.1.1.1 dev eth0 mtu 1450",
    ]
    node = network.stacks["node1"]
    named = {dev.name: dev for dev in node.devices}
    assert {"cilium_host", "cilium_net", "cilium_vxlan"} <= set(named)
    addresses = {dev.name: (IPv4Address(ip), plen) for dev, ip, plen in node.addresses}
    assert addresses["cilium_host"] == (IPv4Address("10.1.1.1"), 32)
    assert "cilium_net" not in addresses and "cilium_vxlan" not in addresses
    assert node.vxlan_ports == {8472: named["cilium_vxlan"]}


def test_s1_1_identities_per_label_set_in_the_allocation_range_source() -> None:
    """§1.1: one identity per label set (the namespace counts), 256-65535 (idpool); kpkt draws
    them from the seed, so a run is reproducible and another seed draws others."""
    topo = topology(SAME_NODE)
    pods = list(topo.pods())
    ids = identities(topo.seed, pods)
    assert ids["pod-b.default"] == ids["pod-e.default"] == ids["pod-c.default"]
    assert len({ids["pod-a.default"], ids["pod-b.default"], ids["pod-d.default"]}) == 3
    assert all(256 <= number <= 65535 for number in ids.values())
    assert identities(topo.seed, pods) == ids
    assert identities(topo.seed + 1, pods) != ids


def test_s1_1_labels_controllers_stamp_on_pods_are_not_part_of_the_identity_source() -> None:
    """§1.1: Cilium's default label filter (pkg/labelsfilter) leaves out pod-template-hash,
    controller-revision-hash, statefulset.kubernetes.io/pod-name, the kubernetes.io keys, ...:
    two replicas of one Deployment from two ReplicaSets share an identity."""
    stamped = (
        ("app", "web"),
        ("app.kubernetes.io/name", "web"),
        ("apps.kubernetes.io/pod-index", "0"),
        ("controller-revision-hash", "web-5b8f7c9d4"),
        ("pod-template-hash", "7c5d9f8b6"),
        ("statefulset.kubernetes.io/pod-name", "web-0"),
    )
    pod = PodSpec("web-0", "default", "node1", IPv4Address("10.1.1.5"), "", "", "", stamped)
    assert label_set(pod) == (
        ("app", "web"),
        ("app.kubernetes.io/name", "web"),
        ("k8s:io.kubernetes.pod.namespace", "default"),
    )
    bare = PodSpec(
        "job-x", "default", "node1", IPv4Address("10.1.1.6"), "", "", "", (("a-hash", "1"),)
    )
    assert ("a-hash", "1") in label_set(bare)
    bare = PodSpec("job-x", "default", "node1", IPv4Address("10.1.1.6"), "", "", "", stamped[4:5])
    assert label_set(bare) == (("k8s:io.kubernetes.pod.namespace", "default"), ("name", "job-x"))


def test_s1_1_link_mtu_1500_route_mtu_1450_mss_1410_source(tmp_path) -> None:
    """§1.1 MTUs (pkg/mtu): lxc, pod eth0 and cilium_vxlan have the device MTU (1500), only the
    pod's default route has 1450 (TunnelOverhead 50), so TCP announces MSS 1410 (#28707)."""
    run = Run(topology("  - tcp: {from: pod-a, to: '10.1.2.10:8080', payload: hi}\n"), tmp_path)
    network, _ = build(run.topo)
    node, pod = network.stacks["node1"], network.stacks["pod-a.default"]
    mtus = {dev.name: dev.mtu for dev in node.devices}
    assert mtus[run.pods["pod-a"].host_veth] == mtus["cilium_vxlan"] == 1500
    assert [dev.mtu for dev in pod.devices if dev.name == "eth0"] == [1500]
    syns = [f for f in run.frames("pod-a/eth0") if IP in f and f[IP].proto == 6]
    options = [dict(f["TCP"].options) for f in syns if f["TCP"].flags.S]
    assert options and {o["MSS"] for o in options} == {1410}
    replies = [f for f in run.frames("pod-c/eth0") if IP in f and f[IP].src == "10.1.2.10"]
    assert dict(replies[0]["TCP"].options)["MSS"] == 1410


# --- §1.3 same node ----------------------------------------------------------------------------


def test_s1_3_gateway_arp_answered_by_bpf_with_the_lxc_mac_source(legacy: Run) -> None:
    """§1.3 rows 1-2: who-has <router> from the pod; the reply (42 bytes, from the lxc's MAC,
    sha = lxc MAC, spa = router) leaves the lxc as TX and is all the pod ever sees."""
    lxc = legacy.frames(legacy.lxc("pod-a"))
    arps = [frame for frame in lxc if ARP in frame]
    request, reply = arps[0], arps[1]
    assert (
        request[ARP].op == 1
        and request[ARP].pdst == "10.1.1.1"
        and request.dst == "ff:ff:ff:ff:ff:ff"
    )
    assert reply[ARP].op == 2 and len(bytes(reply)) == 42
    assert (reply.src, reply.dst) == (legacy.lxc_mac("pod-a"), legacy.mac("pod-a"))
    assert (reply[ARP].hwsrc, reply[ARP].psrc) == (legacy.lxc_mac("pod-a"), "10.1.1.1")
    assert (reply[ARP].hwdst, reply[ARP].pdst) == (legacy.mac("pod-a"), "10.1.1.5")


def test_s1_3_node_never_arps_for_a_pod_source(legacy: Run) -> None:
    """§1.3/§1.4: BPF writes the pod's MAC from the endpoint map: no ARP request for a pod
    address anywhere, and a pod's ARP is seen only on its own eth0 and lxc."""
    pods = {str(pod.ip): pod for pod in legacy.topo.pods()}
    requests = 0
    for capture in legacy.folder.glob("*.pcap"):
        for _, data in read_pcap(capture):
            frame = Ether(data)
            if ARP not in frame or frame[ARP].op != 1:
                continue
            requests += 1
            assert frame[ARP].pdst not in pods, capture.name
            pod = pods.get(frame[ARP].psrc)
            if pod is not None:
                own = {f"{pod.owner}__eth0.pcap", f"{pod.node}__{pod.host_veth}.pcap"}
                assert capture.name in own
    assert requests


def test_s1_7_arp_for_the_pods_own_address_is_not_answered_inference() -> None:
    """§1.7: an ARP request for the pod's own address goes to the stack of the lxc, which has
    no address: nothing answers; any other target is answered with the lxc's MAC (§1.3)."""
    topo = topology(SAME_NODE)
    network, _ = build(topo)
    spec = next(pod for pod in topo.pods() if pod.name == "pod-a")
    lxc = next(dev for dev in network.stacks["node1"].devices if dev.name == spec.host_veth)
    sent: list[bytes] = []
    lxc.xmit = lambda frame, tag, note="": sent.append(frame)
    lxc.stack.observer.packet = lambda tag: tag
    mine = spec.ip.packed
    tag = Tag(0, 0, 0, None, "test")
    for target in (mine, IPv4Address("10.1.1.99").packed):
        request = arp_frame(ARP_REQUEST, BROADCAST, mac_bytes(spec.mac), mine, b"\0" * 6, target)
        lxc.tc_ingress(request, lxc, tag)
    assert len(sent) == 1
    reply = Ether(sent[0])
    assert reply[ARP].op == 2 and reply[ARP].psrc == "10.1.1.99"
    assert reply[ARP].hwsrc == reply.src == spec.host_veth_mac


def test_s1_3_same_node_ttl_63_macs_lxc_to_pod_id_unchanged_source(legacy: Run) -> None:
    """§1.3 row 4: ipv4_l3 then redirect: TTL 64 -> 63, checksum redone, IP ID unchanged,
    MAC(lxcB) -> MAC(podB); legacy host routing shows it as TX on lxcB."""
    sent = ips(legacy.frames("pod-a/eth0"))[0]
    at_lxc = [f for f in legacy.frames(legacy.lxc("pod-b")) if IP in f][0]
    got = at_lxc[IP]
    assert (sent.ttl, got.ttl) == (64, 63) and got.id == sent.id
    assert (at_lxc.src, at_lxc.dst) == (legacy.lxc_mac("pod-b"), legacy.mac("pod-b"))
    rebuilt = IP(bytes(got))
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == got.chksum
    at_pod = ips(legacy.frames("pod-b/eth0"))[0]
    assert bytes(at_pod) == bytes(got)


def test_s1_3_same_node_path_touches_no_host_device_source(legacy: Run) -> None:
    """§1.3: cilium_host, cilium_net, cilium_vxlan and eth0 see nothing of a same-node
    packet (step 1 is the only traffic before step 2's first frame)."""
    first = ips(legacy.frames("pod-a/eth0"))[0]
    for device in ("cilium_host", "cilium_net", "cilium_vxlan", "eth0"):
        for frame in legacy.frames(f"node1/{device}"):
            assert not (IP in frame and frame[IP].id == first.id and frame[IP].dst == "10.1.1.6")


def test_s1_2_bpf_host_routing_skips_the_destination_lxc_inference(bpf: Run) -> None:
    """§1.2/§1.3 row 4': with BPF host routing redirect_peer puts the packet straight into the
    pod: the destination lxc captures nothing (tcpdump semantics: inference), the pod gets it
    with TTL 63 and MACs lxc -> pod; the sender's lxc still shows RX."""
    assert [f for f in bpf.frames(bpf.lxc("pod-b")) if IP in f] == []
    got = [f for f in bpf.frames("pod-b/eth0") if IP in f][0]
    assert got[IP].ttl == 63 and (got.src, got.dst) == (bpf.lxc_mac("pod-b"), bpf.mac("pod-b"))
    assert [f for f in bpf.frames(bpf.lxc("pod-a")) if IP in f]
    lxc_c = bpf.frames(bpf.lxc("pod-c"))
    assert [f for f in lxc_c if IP in f and f[IP].dst == "10.1.2.10"] == []
    assert [f for f in lxc_c if IP in f and f[IP].src == "10.1.2.10"], "the reply's RX"


# --- §1.4 cross node, §1.5 outer header ----------------------------------------------------------


def test_s1_4_inner_frame_is_the_pods_own_ttl_64_source(legacy: Run) -> None:
    """§1.4 row b: no ipv4_l3 on the tunnel path: inner MAC(podA) -> MAC(lxcA), TTL 64."""
    request = tunnelled(legacy.frames("node1/eth0"))[0]
    inner = request[VXLAN].payload
    assert (inner.src, inner.dst) == (legacy.mac("pod-a"), legacy.lxc_mac("pod-a"))
    assert inner[IP].ttl == 64 and inner[IP].dst == "10.1.2.10"
    vxlan_tx = [f for f in legacy.frames("node1/cilium_vxlan") if IP in f][0]
    assert bytes(vxlan_tx) == bytes(inner)


def test_s1_4_delivered_with_ttl_63_macs_lxc_to_pod_source(legacy: Run) -> None:
    """§1.4 row e: node2 delivers out of lxcC with TTL 63 (once across nodes)."""
    at_lxc = [f for f in legacy.frames(legacy.lxc("pod-c")) if IP in f][0]
    assert at_lxc[IP].ttl == 63
    assert (at_lxc.src, at_lxc.dst) == (legacy.lxc_mac("pod-c"), legacy.mac("pod-c"))
    reply = [f for f in legacy.frames("pod-a/eth0") if IP in f and f[IP].src == "10.1.2.10"][0]
    assert reply[IP].ttl == 63


def test_s1_5_vni_is_the_senders_identity_each_way_source(legacy: Run) -> None:
    """§1.5 VNI: the source endpoint's identity; the reply carries podC's, not podA's."""
    ids = identities(legacy.topo.seed, list(legacy.topo.pods()))
    pings = [f for f in tunnelled(legacy.frames("node1/eth0")) if f[VXLAN].payload[IP].proto == 1]
    by_src = {f[VXLAN].payload[IP].src: f[VXLAN].vni for f in pings}
    assert by_src["10.1.1.5"] == ids["pod-a.default"]
    assert by_src["10.1.2.10"] == ids["pod-c.default"] != ids["pod-a.default"]


CLIENTS_ONLY = """\
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web-from-clients, namespace: default}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Ingress]
      ingress:
        - from: [{podSelector: {matchLabels: {app: client}}}]
"""


def test_s1_1_a_label_step_gives_the_pod_its_new_label_sets_identity_inference(tmp_path) -> None:
    """§1.1 extended (not in the reference): a label change re-resolves the endpoint's
    identity, from Cilium's Documentation/policy/lifecycle.rst ("a transition into the
    waiting-for-identity state indicates that the endpoint changed its identity") and commit
    ed4e6505, where `kubectl label pods foo app=nothing` changes the IDENTITY column of
    `cilium-dbg endpoint list`. Inference: the endpoint's next packets carry the new identity
    at once (the real switch waits for the endpoint's regeneration), and the old identity stays
    allocated for the run (the identity GC runs minutes later). pod-d pings pod-b across the
    tunnel while its labels change. Its VNI is its own set's identity, then pod-a's (the set
    it now shares), then one newly drawn for a set nobody had, then its first again; and
    pod-b's ingress policy (from app=client only) lets through exactly the pings that carry
    pod-a's identity."""
    ping = "  - ping: {from: pod-d, to: pod-b}\n"
    traffic = (
        ping
        + "  - label: {pod: pod-d, set: {app: client}}\n"
        + ping
        + "  - label: {pod: pod-d, set: {app: batch}}\n"
        + ping
        + "  - label: {pod: pod-d, remove: [app]}\n"
        + ping
    )
    topo = topology(traffic, services=CLIENTS_ONLY)
    run = Run(topo, tmp_path / "out")
    manifest = json.loads((run.folder / "manifest.json").read_text())
    outcomes = [step["outcome"] for step in manifest["steps"]]
    assert outcomes == [
        "dropped",
        "applied",
        "delivered",
        "applied",
        "dropped",
        "applied",
        "dropped",
    ]
    requests = [
        f[VXLAN]
        for f in tunnelled(run.frames("node2/eth0"))
        if f[VXLAN].payload[IP].src == "10.1.2.11" and f[VXLAN].payload[IP].proto == 1
    ]
    vnis = [vxlan.vni for vxlan in requests]
    assert len(vnis) == 4, vnis
    pods = list(topo.pods())
    ids = identities(topo.seed, pods)
    drawn = Identities(topo.seed)
    drawn.allocate(pods)
    batch = drawn.of(identity_labels("default", "pod-d", [("app", "batch")]))
    assert vnis == [ids["pod-d.default"], ids["pod-a.default"], batch, ids["pod-d.default"]]
    assert batch not in ids.values() and 256 <= batch <= 65535
    assert ids["pod-d.default"] != ids["pod-a.default"]


def test_s1_5_host_traffic_carries_remote_node_identity_6_source(legacy: Run) -> None:
    """§1.5 VNI: HOST_ID becomes 6 in the tunnel key (encap.h)."""
    from_host = [
        f for f in tunnelled(legacy.frames("node1/eth0")) if f[VXLAN].payload[IP].src == "10.1.1.1"
    ]
    assert from_host and {f[VXLAN].vni for f in from_host} == {REMOTE_NODE_ID}


def test_s1_5_outer_header_fields_source(legacy: Run) -> None:
    """§1.5: UDP 8472, checksum 0 (BPF_F_ZERO_CSUM_TX), DF 0, TTL 64, TOS 0, flags 0x08, node
    addresses, outer frame = inner + 50 bytes, source port in 32768-60999."""
    for frame in tunnelled(legacy.frames("node1/eth0")):
        outer, udp = frame[IP], frame[UDP]
        assert (udp.dport, udp.chksum) == (8472, 0)
        assert (outer.flags.DF, outer.ttl, outer.tos) == (0, 64, 0)
        assert frame[VXLAN].flags == 0x08 and 32768 <= udp.sport <= 60999
        assert {outer.src, outer.dst} == {"192.168.50.1", "192.168.50.2"}
        assert len(bytes(frame)) == len(bytes(frame[VXLAN].payload)) + 50


def test_s1_4_no_arp_crosses_the_tunnel_source(legacy: Run) -> None:
    """§1.4: no ARP is ever tunnelled."""
    assert all(ARP not in f[VXLAN].payload for f in tunnelled(legacy.frames("node1/eth0")))


def test_s1_5_tshark_reads_zero_checksums_as_not_present(legacy: Run, tshark: str) -> None:
    """§1.5 with checksum validation on: the outer UDP checksum is Not present (3), the outer
    and inner IP and the inner ICMP checksums Good (1)."""
    out = tshark_read(
        tshark,
        legacy.path("node1/eth0"),
        "-Y",
        "vxlan",
        "-T",
        "fields",
        "-e",
        "udp.checksum.status",
        "-e",
        "ip.checksum.status",
        "-e",
        "icmp.checksum.status",
    )
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows and all(row == ["3", "1,1", "1"] for row in rows), rows


# --- §1.6 services -------------------------------------------------------------------------------


def test_s1_6_socket_lb_client_eth0_shows_the_backend_inference(tmp_path) -> None:
    """§1.6 with kubeProxyReplacement: true: socket LB rewrites at connect, so the client's
    own eth0 never carries the service address, and nothing is DNATed on the way."""
    run = Run(topology(TO_SERVICE, "kubeProxyReplacement: true", WEB), tmp_path / "out")
    sent = ips(run.frames("pod-d/eth0"))
    backends = {"10.1.1.6", "10.1.1.7", "10.1.2.10"}
    assert sent and {packet.dst for packet in sent if packet.src == "10.1.2.11"} <= backends
    assert all(packet.src != "10.96.0.80" for packet in ips(run.frames("pod-d/eth0")))
    manifest = (run.folder / "manifest.json").read_text()
    assert '"outcome": "delivered"' in manifest


def test_s1_6_kube_proxy_client_eth0_shows_the_service_inference(tmp_path) -> None:
    """§1.6 with kubeProxyReplacement: false: kube-proxy DNATs in the node's stack, so the
    client's eth0 shows the service address both ways and the tunnel the endpoint's."""
    run = Run(topology(TO_SERVICE, "", WEB), tmp_path / "out")
    seen = ips(run.frames("pod-d/eth0"))
    assert {p.dst for p in seen if p.src == "10.1.2.11"} == {"10.96.0.80"}
    assert {p.src for p in seen if p.dst == "10.1.2.11"} == {"10.96.0.80"}
    manifest = (run.folder / "manifest.json").read_text()
    assert '"outcome": "delivered"' in manifest


def test_s1_6_socket_lb_answers_are_shown_from_the_service_inference(tmp_path) -> None:
    """§1.6 with kubeProxyReplacement: true: a pod's DNS query leaves its eth0 for the CoreDNS
    pod's own address and the answer comes back from it on the wire, while the socket is told
    it came from the kube-dns service (recvmsg's reverse translation)."""
    query = bytes(DNS(id=0x1234, rd=1, qd=DNSQR(qname="kubernetes.default.svc.cluster.local")))
    step = f"  - udp: {{from: pod-d, to: 'kube-dns.kube-system:53', payloadHex: {query.hex()}}}\n"
    text = CLUSTER.format(options="kubeProxyReplacement: true", services="", traffic=step)
    text = text.replace(
        "  podCIDR: 10.1.0.0/16\n", "  podCIDR: 10.1.0.0/16\n  dns: {node: node1}\n"
    )
    run = Run(load_topology_text(text, "dns.yaml"), tmp_path / "out")
    coredns = str(run.topo.cluster.dns.pod_ips[0])
    sent = ips(run.frames("pod-d/eth0"))
    assert {p.dst for p in sent if p.src == "10.1.2.11"} == {coredns}
    assert {p.src for p in sent if p.dst == "10.1.2.11"} == {coredns}
    manifest = (run.folder / "manifest.json").read_text()
    assert "answers: 1 from 10.96.0.10:53" in manifest


def test_network_policies_judge_the_same_under_cilium(tmp_path) -> None:
    """Not a §1 fact (Cilium enforces policy in BPF: egress in from-container, ingress before
    delivery): the netpol example's probes get the same verdicts as under flannel, the egress
    drop at the client's lxc."""
    text = (ROOT / "topologies" / "netpol.yaml").read_text()
    assert "  cni: flannel\n" in text
    topo = load_topology_text(text.replace("  cni: flannel\n", "  cni: cilium\n"), "np.yaml")
    run = Run(topo, tmp_path / "out")
    manifest = json.loads((run.folder / "manifest.json").read_text())
    outcomes = [step["outcome"] for step in manifest["steps"]]
    assert outcomes == ["delivered", "dropped", "dropped"]
    (egress,) = manifest["steps"][1]["dropPlaces"]
    assert egress["reason"] == "policy-denied" and "/lxc" in egress["where"]
