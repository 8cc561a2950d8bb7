"""Every example topology: it runs, its captures open cleanly in tshark with checksum validation
on, and two runs give byte-identical output folders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import kpkt

from kpkt import __version__, runner
from kpkt.cni.cilium import REMOTE_NODE_ID, identities
from kpkt.topology.load import load_topology

from conftest import EXAMPLES, ROOT, tshark_count, tshark_read

# any frame tshark flags: malformed, a bad checksum, or an expert warning or error
DAMAGE = (
    "_ws.malformed || _ws.expert.severity >= 6291456 || "
    # a checksum status of 1 is Good: 0 is Bad and 2 Unverified (validation was not on); a UDP
    # checksum may also be 3, Not present: 0 on IPv4 means none (RFC 768), as tunnels with
    # udpcsum off send it (Cilium's VXLAN); 4 is Illegal. `!=` is true when any field of a
    # frame differs, `==` when any field is equal.
    "ip.checksum.status != 1 || udp.checksum.status == 0 || udp.checksum.status == 2 || "
    "udp.checksum.status == 4 || icmp.checksum.status != 1 || "
    "tcp.checksum.status != 1"
)
# one interface's view of a TCP conversation must look sane to Wireshark's analysis (in
# all.pcapng the same segment at every hop would read as retransmissions, so not there)
PROBLEMS = f"{DAMAGE} || tcp.analysis.flags"
# in a golden with faults, TCP at its worst: a segment missing (lost before this capture), seen
# again (lost after it), a D-SACK, a reset are what loss and restarts look like to Wireshark's
# sequence analysis and reassembly; every frame must still be whole and its checksums good
FAULT_DAMAGE = (
    "((_ws.malformed || _ws.expert.severity >= 6291456) && !(_ws.malformed.reassembly || "
    "tcp.analysis.lost_segment || tcp.options.sack.dsack || tcp.connection.rst)) || "
    "ip.checksum.status != 1 || udp.checksum.status != 1 || icmp.checksum.status != 1 || "
    "tcp.checksum.status != 1"
)
FAULT_STEP = re.compile(r"^\s*- (link|impair|restart|delete|label):", re.MULTILINE)


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.stem)
def example(request, tmp_path_factory) -> tuple[Path, Path]:
    topology = load_topology(request.param)
    folder = tmp_path_factory.mktemp(request.param.stem) / "out"
    runner.run(topology, folder=folder)
    return request.param, folder


def test_every_capture_is_clean_in_tshark(example, tshark: str) -> None:
    _, folder = example
    captures = sorted(folder.glob("*.pcap"))
    assert captures
    for capture in captures:
        frames, flagged = tshark_count(tshark, capture, PROBLEMS)
        if flagged:  # only then a second pass, to show them
            shown = tshark_read(tshark, capture, "-Y", PROBLEMS)
            pytest.fail(f"{capture.name}: tshark flags {flagged} frames:\n{shown}")
        packets = _manifest_packets(folder, capture.name)
        assert frames == packets, f"{capture.name}: tshark read {frames}, manifest says {packets}"


def weave(path: Path) -> bool:
    return load_topology(path).cluster.cni == "weave"


def host_gw(path: Path) -> bool:
    """Whether the example's pods cross nodes unencapsulated (flannel's host-gw backend)."""
    return load_topology(path).cluster.cni_options.get("backend") == "host-gw"


def calico_tunnel(path: Path) -> str | None:
    """The tunnel device of a Calico example (`tunl0` or `vxlan.calico`); None for flannel."""
    cluster = load_topology(path).cluster
    if cluster.cni != "calico":
        return None
    return "tunl0" if cluster.cni_options["ipipMode"] != "Never" else "vxlan.calico"


def node_names(folder: Path) -> list[str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return [c["owner"] for c in manifest["captures"] if c["kind"] == "underlay" and c["node"]]


def test_calico_tunnels_decode_without_hints(example, tshark: str) -> None:
    """IPIP needs no decode hint (tunl0 is raw IP, the underlay carries IP protocol 4 with the
    inner header right after the outer), VXLAN on 4789 is Wireshark's default port."""
    path, folder = example
    tunnel = calico_tunnel(path)
    if tunnel is None:
        return
    node = node_names(folder)[0]
    eth0, device = folder / f"{node}__eth0.pcap", folder / f"{node}__{tunnel}.pcap"
    bare = [tshark, "-r"]
    if tunnel == "tunl0":
        read = ["-n", "-T", "fields", "-e", "frame.encap_type", "-e", "ip.version"]
        raw = subprocess.run([*bare, str(device), *read], capture_output=True, text=True).stdout
        assert raw and set(raw.splitlines()) == {"7\t4"}, "tunl0 frames are raw IPv4"
        outer = ["-n", "-Y", "ip.proto == 4", "-T", "fields", "-e", "ip.proto"]
        rows = subprocess.run([*bare, str(eth0), *outer], capture_output=True, text=True).stdout
        assert rows and all(row.startswith("4,") for row in rows.splitlines())
        return
    fields = ["-n", "-Y", "vxlan", "-T", "fields", "-e", "vxlan.vni", "-e", "vxlan.flags"]
    out = subprocess.run([*bare, str(eth0), *fields], capture_output=True, text=True).stdout
    assert out, f"no VXLAN packet on {node}'s eth0 (port 4789, no decode hint)"
    assert set(out.split()[0::2]) == {"4096"} and set(out.split()[1::2]) == {"0x0800"}


def test_vxlan_is_decoded_on_8472(example, tshark: str) -> None:
    path, folder = example
    if calico_tunnel(path) is not None:
        return  # Calico's: test_calico_tunnels_decode_without_hints
    eth0 = folder / "node1__eth0.pcap"
    out = tshark_read(
        tshark, eth0, "-Y", "vxlan", "-T", "fields", "-e", "vxlan.vni", "-e", "vxlan.flags"
    ).split()
    if host_gw(path):
        assert out == [] and list(folder.glob("*__flannel.1.pcap")) == [], "host-gw: no tunnel"
        return
    assert out, "no VXLAN packet on node1's eth0"
    if weave(path):  # fastdp on 6784: the VNI is made of the two peers' short IDs
        assert "1" not in set(out[0::2]) and set(out[1::2]) == {"0x0800"}
        return
    assert set(out[0::2]) <= vnis(path) and set(out[1::2]) == {"0x0800"}


def vnis(path: Path) -> set[str]:
    """The VNIs the example's tunnel may carry: flannel's one; Cilium's security identities of
    the pods, and 6 for the nodes' own traffic (cni-others.md §1.5)."""
    topology = load_topology(path)
    if topology.cluster.cni != "cilium":
        return {str(topology.cluster.vni)}
    ids = identities(topology.seed, list(topology.pods()))
    return {str(number) for number in ids.values()} | {str(REMOTE_NODE_ID)}


def test_two_runs_are_byte_identical(example, tmp_path: Path) -> None:
    path, first = example
    second = tmp_path / "again"
    runner.run(load_topology(path), folder=second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def _manifest_packets(folder: Path, file: str) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    return next(c["packets"] for c in manifest["captures"] if c["file"] == file)


def test_all_pcapng_names_interfaces_and_follows_packets_across_hops(example, tshark: str) -> None:
    path, folder = example
    allng = folder / "all.pcapng"
    # all.pcapng holds each packet once per hop, so Wireshark takes the same DNS message on the
    # next interface for a retransmission (a warning): only that warning is let through here;
    # and with Calico the node ARPs out of each cali veth with its own node address and the
    # veth's MAC (calico.md §6.3), so across interfaces Wireshark sees that address behind two
    # MACs ("duplicate use"), which each interface's own capture never shows; under Cilium
    # every pod's lxc answers ARP for its gateway with its own MAC, which Wireshark takes for a
    # duplicate address once it has seen two of them
    tunnel = calico_tunnel(path)
    allowed = "!dns.retransmission"
    if tunnel is not None or load_topology(path).cluster.cni == "cilium":
        allowed += " && !arp.duplicate-address-detected"
    flagged = tshark_read(tshark, allng, "-Y", f"({DAMAGE}) && {allowed}")
    assert flagged == "", f"all.pcapng: tshark flags frames:\n{flagged}"
    fields = ["frame.interface_name", "frame.packet_id", "frame.comment", "vxlan.vni"]
    options = ["-T", "fields", "-E", "separator=|", *(x for f in fields for x in ("-e", f))]
    rows = [line.split("|") for line in tshark_read(tshark, allng, *options).splitlines()]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(rows) == sum(c["packets"] for c in manifest["captures"])
    names = {c["owner"] + "/" + c["interface"] for c in manifest["captures"]}
    assert {row[0] for row in rows} <= names
    comments = " ".join(row[2] for row in rows)
    if tunnel is not None:  # no bridge: proxy ARP; one packet followed through the tunnel
        assert "proxy arp reply 169.254.1.1 is-at ee:ee:ee:ee:ee:ee" in comments
        first = node_names(folder)[0]
        tunnelled = [row[1] for row in rows if row[0] == f"{first}/{tunnel}"]
        assert tunnelled
        hops = [row[0] for row in rows if row[1] == tunnelled[0]]
        # out of the first node's eth0, into another node's tunnel (with CrossSubnet, the
        # first node on another subnet)
        others = [hop for hop in hops if hop.endswith(f"/{tunnel}") and hop != f"{first}/{tunnel}"]
        assert f"{first}/eth0" in hops and others
        encap = "ipip encap ->" if tunnel == "tunl0" else "vxlan encap vni 4096"
        assert encap in comments
        return
    assert "broadcast: flooded to" in comments
    if host_gw(path):  # one packet, followed across the node network unencapsulated
        routed = [row[1] for row in rows if "via 192.168.50.2 dev eth0" in row[2]]
        assert routed and not any(row[3] for row in rows)
        hops = [row[0] for row in rows if row[1] == routed[0]]
        assert "node1/eth0" in hops and "node2/eth0" in hops and "node2/cni0" in hops
        return
    if weave(path):  # one packet, followed through the vport on both nodes
        tunnelled = {row[1] for row in rows if row[3] and row[3] != "1"}
        pid = sorted(tunnelled, key=int)[0]
        hops = [row[0] for row in rows if row[1] == pid]
        assert "node1/vxlan-6784" in hops and "node1/eth0" in hops and "node2/vxlan-6784" in hops
        assert "vxlan encap vni 0x" in comments and "overlay flood" in comments
        return
    # one packet, followed through the tunnel: the same id on node1's tunnel device and eth0
    tunnelled = {row[1] for row in rows if row[3] in vnis(path)}
    assert tunnelled
    pid = sorted(tunnelled, key=int)[0]
    hops = [row[0] for row in rows if row[1] == pid]
    device = "cilium_vxlan" if load_topology(path).cluster.cni == "cilium" else "flannel.1"
    assert f"node1/{device}" in hops and "node1/eth0" in hops and f"node2/{device}" in hops
    if device == "flannel.1":
        assert "vxlan encap vni 1" in comments and "fdb learn" in comments
    else:
        assert "bpf encap: identity" in comments


# what makes a packet that packet at every hop (NAT rewrites addresses and ports, a tunnel wraps
# it): the innermost IP ID and protocol, TCP flags and numbers, ICMP type and echo sequence, ARP
IDENTITY = [
    "ip.id", "ip.proto", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "icmp.type", "icmp.seq",
    "arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
]  # fmt: skip
LABEL = re.compile(r"(?:step \d+|background) flow \d+")


def test_a_packet_id_is_one_packet_at_every_hop(example, tshark: str) -> None:
    _, folder = example
    fields = ["frame.packet_id", "frame.comment", *IDENTITY]
    options = ["-T", "fields", "-E", "separator=|", *(x for f in fields for x in ("-e", f))]
    rows = [
        line.split("|")
        for line in tshark_read(tshark, folder / "all.pcapng", *options).splitlines()
    ]
    packets: dict[str, set] = {}  # packet id -> the packets seen with it
    labels: dict[str, set] = {}  # packet id -> the step and flow its comments name
    for pid, comment, *identity in rows:
        seen = [value.split(",")[-1] for value in identity]
        if seen[IDENTITY.index("arp.opcode")]:  # an ARP in a tunnel: the IP fields are outer
            seen[IDENTITY.index("ip.id")] = seen[IDENTITY.index("ip.proto")] = ""
        packets.setdefault(pid, set()).add(tuple(seen))
        label = LABEL.match(comment)
        assert label, f"packet {pid}: comment {comment!r} names no step and flow"
        labels.setdefault(pid, set()).add(label.group())
    # each id is one packet at every hop, through NAT and the tunnel, with one step and flow
    assert {pid: seen for pid, seen in packets.items() if len(seen) > 1} == {}
    assert {pid: seen for pid, seen in labels.items() if len(seen) > 1} == {}
    # and each IP packet has an id of its own: a reply or a later segment is not the request
    ids: dict[tuple, list[str]] = {}
    for pid, (identity,) in packets.items():
        if identity[0]:
            ids.setdefault(identity, []).append(pid)
    assert {identity: pids for identity, pids in ids.items() if len(pids) > 1} == {}
    assert len(ids) >= 4


def test_every_hop_in_the_manifest_is_a_frame_of_its_capture(example) -> None:
    _, folder = example
    manifest = json.loads((folder / "manifest.json").read_text())
    counts = {c["owner"] + "/" + c["interface"]: c["packets"] for c in manifest["captures"]}
    for step in manifest["steps"]:
        assert step["hops"], step["text"]
        assert all(h["index"] < counts[h["capture"]] for h in step["hops"])


@pytest.mark.parametrize(
    "golden", sorted((ROOT / "tests" / "golden").glob("*/expected")), ids=lambda p: p.parent.name
)
def test_golden_captures_are_clean_in_tshark(golden: Path, tshark: str) -> None:
    """The drop scenarios too: ICMP errors, resets and masqueraded packets read cleanly."""
    topology = golden.parent / "topology.yaml"  # the examples' goldens have none: no faults
    faults = topology.is_file() and FAULT_STEP.search(topology.read_text())
    for capture in sorted(golden.glob("*.pcap")):
        flagged = tshark_read(tshark, capture, "-Y", FAULT_DAMAGE if faults else DAMAGE)
        assert flagged == "", f"{golden.parent.name}/{capture.name}:\n{flagged}"


# --- shipped with the package ----------------------------------------------------------------


def test_the_examples_are_shipped_and_topologies_is_their_folder() -> None:
    assert [p.stem for p in EXAMPLES] == [
        "calico-cross-subnet",
        "calico-reference",
        "calico-vxlan-reference",
        "cilium-two-node",
        "flannel-reference",
        "hostgw-reference",
        "netpol",
        "services-reference",
        "two-node-calico-vxlan",
        "two-node-calico",
        "two-node",
        "weave",
    ]
    link = ROOT / "topologies"
    assert link.is_symlink() and link.resolve() == (ROOT / "kpkt" / "examples").resolve()


def test_the_built_package_holds_every_example(tmp_path: Path) -> None:
    """What a wheel (and so a plain `pip install .`) is made of: setuptools' build of the tree."""
    lib = tmp_path / "lib"
    setup = "import setuptools; setuptools.setup()"
    options = ["--build-lib", str(lib), "--build-base", str(tmp_path / "base")]
    build = [sys.executable, "-c", setup, "-q", "build", *options]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    built = sorted(p.name for p in (lib / "kpkt" / "examples").glob("*.yaml"))
    assert built == [p.name for p in EXAMPLES]


def test_kpkt_examples_lists_them_with_their_description() -> None:
    done = kpkt("examples")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [p.stem for p in EXAMPLES]
    described = {line.split()[0]: line for line in lines}
    assert "NetworkPolicy e2e cluster" in described["netpol"]
    assert "IPIP (tunl0) between the nodes" in described["two-node-calico"]
    assert "flannel VXLAN between the nodes" in described["two-node"]
    assert "Calico ipipMode CrossSubnet over two subnets" in described["calico-cross-subnet"]


def test_kpkt_examples_copies_one_out(tmp_path: Path) -> None:
    done = kpkt("examples", "two-node", "-o", str(tmp_path / "mine.yaml"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mine.yaml").read_bytes() == (ROOT / "topologies/two-node.yaml").read_bytes()


def test_a_name_that_is_not_a_file_runs_the_shipped_example(tmp_path: Path) -> None:
    done = kpkt("run", "two-node", "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_an_unknown_name_lists_the_shipped_examples(tmp_path: Path) -> None:
    done = kpkt("validate", "three-node", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "error: three-node: no such file, and no shipped example of that name "
        "(shipped: calico-cross-subnet, calico-reference, calico-vxlan-reference, cilium-two-node, "
        "flannel-reference, hostgw-reference, netpol, services-reference, two-node-calico-vxlan, "
        "two-node-calico, two-node, weave; "
        "`kpkt examples` lists them)\n"
    )


def test_version() -> None:
    done = kpkt("--version")
    assert done.returncode == 0 and done.stdout == f"kpkt, version {__version__}\n"
