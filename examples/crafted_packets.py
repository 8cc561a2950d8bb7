"""Crafted packets through the two-node cluster, hop by hop: packets no YAML step can express
(TTL 1, IP options, a fragment, a bad checksum, a TCP segment with odd flags), sent from pod-a
with kpkt's Python API, and what every capture point and every drop saw of each.

    python examples/crafted_packets.py
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP, IPOption_RR
from scapy.packet import Raw

import kpkt

TOPOLOGY = Path(kpkt.__file__).parent / "examples" / "two-node.yaml"
POD_C = "10.1.2.10"  # on node2: across the VXLAN tunnel from pod-a
POD_B = "10.1.1.6"  # on node1, pod-a's neighbour on cni0

CRAFTED = {
    "TTL 1: node1 is the first router; it drops it and answers time exceeded": IP(dst=POD_C, ttl=1)
    / UDP(sport=4000, dport=53),
    "IP options (record route): forwarded and tunnelled with the options intact": IP(
        dst=POD_C, options=[IPOption_RR(routers=["1.2.3.4"])]
    )
    / UDP(sport=4000, dport=9),
    "a first fragment (MF set): forwarded as it is, dropped at pod-c (no reassembly)": IP(
        dst=POD_C, flags="MF"
    )
    / UDP(sport=4000, dport=9)
    / Raw(b"x" * 16),
    "a bad IP header checksum: cni0's br_netfilter drops it silently": IP(dst=POD_C, chksum=0x1234)
    / UDP(sport=4000, dport=9),
    "TCP with SYN and FIN to a closed port: pod-b answers with a reset": IP(dst=POD_B)
    / TCP(sport=4000, dport=81, flags="SF"),
}


def describe(frame) -> str:
    """Scapy's summary of a frame, and the TTL and header length of its innermost IP header."""
    inner = frame.getlayer(IP, nb=2) or frame.getlayer(IP)
    ip = f"  [ttl {inner.ttl}, ihl {inner.ihl}]" if inner is not None else ""
    return frame.summary() + ip


def main() -> None:
    with kpkt.start(kpkt.load(TOPOLOGY)) as net:
        for title, packet in CRAFTED.items():
            index = net.send("pod-a", packet)
            net.settle()
            step = net.steps[index]
            print(f"== {title}")
            captures = {point: net[point] for point in {hop.point for hop in step.hops}}
            for hop in step.hops:
                frame = captures[hop.point][hop.index]
                when = f"{frame.time * 1e6:7.1f} us"
                print(f"  {when}  {hop.point:26} {hop.direction:3}  {describe(frame)}")
            for drop in step.drops:
                print(f"  drop at {drop.where}: {drop.reason}: {drop.detail}")
            print(f"  outcome: {step.outcome}\n")


if __name__ == "__main__":
    main()
