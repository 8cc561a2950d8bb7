"""The README's table of what differs on the wire between the datapaths kpkt models.

The tutorial cluster (kpkt/examples/two-node.yaml, with a default route on its nodes) is run
once per datapath with only `cluster.cni` and that CNI's settings changed, and its first two
steps (a datagram from pod-a to pod-b on the same node, one from pod-a to pod-c on the other
node) are read back from the captures. `python tests/cni_table.py` prints the table;
tests/test_cni_table.py holds the README to it, so the table is what kpkt does.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from kpkt.runner import run
from kpkt.topology.load import load_topology_text

GATEWAY = "192.168.50.254"
EXAMPLE = Path(__file__).resolve().parent.parent / "kpkt" / "examples" / "two-node.yaml"

# (the column's name, what replaces the example's `cluster.cni` and adds its settings)
DATAPATHS: list[tuple[str, dict]] = [
    ("flannel VXLAN", {"cni": "flannel"}),
    ("flannel host-gw", {"cni": "flannel", "flannel": {"backend": "host-gw"}}),
    (
        "Calico IPIP",
        {"cni": "calico", "calico": {"ipipMode": "Always", "vxlanMode": "Never", "blockSize": 24}},
    ),
    (
        "Calico VXLAN",
        {"cni": "calico", "calico": {"ipipMode": "Never", "vxlanMode": "Always", "blockSize": 24}},
    ),
]

ROWS = (
    "pod's default gateway (its first ARP)",
    "who answers that ARP, with which MAC",
    "same node: node1 interfaces crossed",
    "same node: TTL at pod-b",
    "cross node: between the nodes",
    "cross node: outer DF / UDP checksum",
    "cross node: TTL at pod-c",
    "pod MTU (from the SYN's MSS + 40)",
)


def topology_for(settings: dict):
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc = copy.deepcopy(doc)
    # the nodes get a default route (Calico's proxy ARP answers for 169.254.1.1 only when the
    # node has a route to it, calico#3270); the same for every column
    doc["cluster"].setdefault("underlay", {})["gateway"] = GATEWAY
    doc["cluster"]["cni"] = settings["cni"]
    for key, value in settings.items():
        if key != "cni":
            doc["cluster"][key] = value
    return load_topology_text(yaml.safe_dump(doc, sort_keys=False), EXAMPLE.name)


def column(settings: dict) -> list[str]:
    """The facts of one datapath, in the order of ROWS."""
    topology = topology_for(settings)
    with tempfile.TemporaryDirectory(prefix="kpkt-cni-table-") as scratch:
        folder = Path(scratch) / "run"
        run(topology, folder=folder, report=False)
        return _facts(folder)


def _facts(folder: Path) -> list[str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    captures = {f"{c['owner']}/{c['interface']}": c for c in manifest["captures"]}
    owners_of_mac = {}
    for name, capture in captures.items():
        if capture["mac"]:
            owners_of_mac.setdefault(capture["mac"], []).append(name)

    def frames(point: str):
        return rdpcap(str(folder / captures[point]["file"]))

    pod_a = frames("pod-a.default/eth0")
    pod_b_ip = _udp(pod_a)[IP].dst
    who_has = next(p for p in pod_a if ARP in p and p[ARP].op == 1 and p[ARP].pdst != pod_b_ip)
    is_at = next(
        p for p in pod_a if ARP in p and p[ARP].op == 2 and p[ARP].psrc == who_has[ARP].pdst
    )
    mac = is_at[ARP].hwsrc
    host_side = captures["pod-a.default/eth0"]["peer"]
    if host_side and captures[f"{host_side['owner']}/{host_side['interface']}"]["mac"] == mac:
        answer = f"pod-a's host-side veth, {mac}"
    else:
        answer = f"{', '.join(owners_of_mac.get(mac, ['?']))}, {mac}"

    same_path = _node1_path(manifest["steps"][0], pod_a, captures)
    ttl_b = _udp(frames("pod-b.default/eth0"))[IP].ttl
    ttl_c = _udp(frames("pod-c.default/eth0"))[IP].ttl
    between, outer = _between_nodes(frames("node1/eth0"))
    mss = next(
        dict(p["TCP"].options).get("MSS")
        for p in pod_a
        if p.haslayer("TCP") and p["TCP"].flags == "S"
    )
    return [
        who_has[ARP].pdst,
        answer,
        " → ".join(same_path),
        str(ttl_b),
        between,
        outer,
        str(ttl_c),
        str(mss + 40),
    ]


def _udp(packets):
    return next(p for p in packets if UDP in p and p[UDP].dport == 8080)


def _node1_path(step: dict, pod_a, captures: dict) -> list[str]:
    """The node1 interfaces the step's datagram crossed, in order."""
    index = next(i for i, p in enumerate(pod_a) if UDP in p and p[UDP].dport == 8080)
    packet = next(
        h["packet"]
        for h in step["hops"]
        if h["capture"] == "pod-a.default/eth0" and h["index"] == index
    )
    path: list[str] = []
    for hop in step["hops"]:
        name = hop["capture"]
        mine = hop["packet"] == packet and name.startswith("node1/") and name[6:] not in path
        if mine and (captures[name]["kind"] != "bridge" or hop["direction"] == "in"):
            path.append(name[6:])
    return path


def _innermost_udp(packet) -> int | None:
    """The destination port of the innermost UDP header of `packet`, if any."""
    port, layer = None, packet
    while layer:
        if isinstance(layer, UDP):
            port = layer.dport
        layer = layer.payload
    return port


def _between_nodes(node1_eth0) -> tuple[str, str]:
    """How the cross-node datagram looked on node1's eth0, and its outer DF and UDP checksum."""
    for p in node1_eth0:
        if IP not in p or _innermost_udp(p) != 8080:
            continue
        outer = p[IP]
        df = f"DF {int(bool(outer.flags.DF))}"
        if outer.proto == 4:
            return "IPIP (IP protocol 4)", f"{df} / -"
        if p[UDP].dport == 8080:
            return "plain IP, routed via the other node", "-"
        vni = p[VXLAN].vni
        checksum = "0" if p[UDP].chksum == 0 else "set"
        return f"VXLAN UDP {p[UDP].dport}, VNI {vni}", f"{df} / {checksum}"
    return "?", "?"


def table() -> str:
    columns = [column(settings) for _, settings in DATAPATHS]
    head = "| | " + " | ".join(name for name, _ in DATAPATHS) + " |"
    rule = "| --- |" + " --- |" * len(DATAPATHS)
    lines = [head, rule]
    for row, title in enumerate(ROWS):
        lines.append(f"| {title} | " + " | ".join(c[row] for c in columns) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
