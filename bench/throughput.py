"""Throughput of kpkt against two baselines on the same frames, in one run.

The workload: the reference 2-node flannel cluster, one `udp` step of N datagrams from a pod on
node1 to a pod on node2; every datagram is recorded at each of its 10 capture points (pod eth0,
veth, cni0, flannel.1, eth0 on node1; eth0, flannel.1, cni0, veth, pod eth0 on node2).

  (a) naive: what a user writes with Scapy alone: build each hop's frame with Scapy and write it
      with Scapy's PcapWriter (measured on a sample; it is slow);
  (b) floor: writing the same number of already-built records to pcap files (the I/O floor),
      and the same with all.pcapng beside them (the floor for the output kpkt writes).

Each measurement runs in its own process, so peak RSS is that process's own. Usage:

    python bench/throughput.py                 # 20,000 and 200,000 datagrams
    python bench/throughput.py --sizes 20000   # a quicker look
    python bench/throughput.py --cni calico-ipip  # kpkt on the same cluster with Calico IPIP

With `--cni calico-ipip` kpkt runs the same cluster on Calico in IPIP mode, where a datagram has
8 capture points (pod eth0, cali veth, tunl0, eth0 on node1; eth0, tunl0, cali veth, pod eth0
on node2); the baselines stay flannel's 10 frames, compared per hop-record.

kpkt runs twice, with its flow cache (kpkt/flowcache.py, the default) and without it
(`--no-flow-cache`: every datagram through the whole datapath).

kpkt and the two floors run in turn, round after round; each ratio is the median of the
ratios within a round, so a drift of this noisy machine's speed does not tilt it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOPS_PER_DATAGRAM = 10
CLUSTERS = {
    "flannel": "",
    "calico-ipip": "cluster: {{cni: calico, underlay: {{gateway: 192.168.50.254}}}}\n",
}
TOPOLOGY = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {{name: bench}}
{cluster}nodes:
  - name: node1
    pods: [{{name: client}}, {{name: idle}}]
  - name: node2
    pods: [{{name: server}}, {{name: idle2}}]
traffic:
  - udp: {{from: client, to: server, sport: 40000, dport: 5000, payload: "bench-payload",
          count: {count}, interval: 10us}}
"""


def child_kpkt(count: int, workdir: Path, cni: str = "flannel", flow_cache: bool = False) -> dict:
    from kpkt import runner
    from kpkt.topology.load import load_topology_text

    text = TOPOLOGY.format(cluster=CLUSTERS[cni].format(), count=count)
    topology = load_topology_text(text, "bench.yaml")
    start = time.perf_counter()
    # the datapath alone, without the HTML report
    result = runner.run(topology, folder=workdir / "out", report=False, flow_cache=flow_cache)
    seconds = time.perf_counter() - start
    records = sum(tap.count for tap in result.network.journal.taps)
    return {"records": records, "seconds": seconds}


def _scapy_hops():
    """The 10 frames one datagram is at its 10 capture points, as Scapy layer stacks."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import Raw

    pod_a, cni1, vtep1 = "02:00:00:00:01:02", "02:00:00:00:01:01", "02:00:00:00:01:00"
    pod_b, cni2, vtep2 = "02:00:00:00:02:02", "02:00:00:00:02:01", "02:00:00:00:02:00"
    eth1, eth2 = "02:00:00:00:00:01", "02:00:00:00:00:02"

    def inner(src, dst, ttl, ident):
        return (
            Ether(src=src, dst=dst)
            / IP(src="10.244.1.2", dst="10.244.2.2", ttl=ttl, id=ident, flags="DF")
            / UDP(sport=40000, dport=5000)
            / Raw(b"bench-payload")
        )

    def outer(ident):
        return (
            Ether(src=eth1, dst=eth2)
            / IP(src="192.168.50.1", dst="192.168.50.2", id=ident, flags=0, ttl=64)
            / UDP(sport=50066, dport=8472)
            / VXLAN(vni=1, flags=0x08)
            / inner(vtep1, vtep2, 63, ident)
        )

    def hops(ident):
        first = inner(pod_a, cni1, 64, ident)
        return [
            first,
            first,
            first,
            inner(vtep1, vtep2, 63, ident),
            outer(ident),
            outer(ident),
            inner(vtep1, vtep2, 63, ident),
            inner(cni2, pod_b, 62, ident),
            inner(cni2, pod_b, 62, ident),
            inner(cni2, pod_b, 62, ident),
        ]

    return hops


def child_naive(count: int, workdir: Path) -> dict:
    from scapy.utils import PcapWriter

    hops = _scapy_hops()
    writers = [
        PcapWriter(str(workdir / f"hop{i}.pcap"), linktype=1, nano=True, sync=False)
        for i in range(HOPS_PER_DATAGRAM)
    ]
    start = time.perf_counter()
    for n in range(count):
        for writer, frame in zip(writers, hops(n & 0xFFFF), strict=True):
            frame.time = n * 10e-6
            writer.write(frame)
    for writer in writers:
        writer.close()
    return {"records": count * HOPS_PER_DATAGRAM, "seconds": time.perf_counter() - start}


def child_floor(count: int, workdir: Path, pcapng: bool = False) -> dict:
    """Write `count` x 10 ready-made records: to the 10 pcaps, and with `pcapng` also to one
    all.pcapng with kpkt's options (direction, packet id, no comment) -- what kpkt writes."""
    frames = [bytes(f) for f in _scapy_hops()(1)]
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
    record = struct.Struct("<IIII")
    block = struct.Struct("<IIIIIII")
    tail = struct.Struct("<HHIHHQII")
    start = time.perf_counter()
    files = [open(workdir / f"hop{i}.pcap", "wb") for i in range(HOPS_PER_DATAGRAM)]  # noqa: SIM115
    allng = open(workdir / "all.pcapng", "wb")  # noqa: SIM115
    for out in files:
        out.write(header)
    for n in range(count):
        t_ns = n * 10_000
        for i, (out, frame) in enumerate(zip(files, frames, strict=True)):
            length = len(frame)
            out.write(record.pack(t_ns // 1_000_000_000, t_ns % 1_000_000_000, length, length))
            out.write(frame)
            if pcapng:
                pad = -length % 4
                total = 56 + length + pad
                allng.write(block.pack(6, total, i, t_ns >> 32, t_ns & 0xFFFFFFFF, length, length))
                allng.write(frame + b"\x00" * pad)
                allng.write(tail.pack(2, 4, 1, 5, 8, n, 0, total))
    for out in [*files, allng]:
        out.close()
    return {"records": count * HOPS_PER_DATAGRAM, "seconds": time.perf_counter() - start}


def child_floor_both(count: int, workdir: Path) -> dict:
    return child_floor(count, workdir, pcapng=True)


def child_kpkt_calico_ipip(count: int, workdir: Path) -> dict:
    return child_kpkt(count, workdir, "calico-ipip")


def child_kpkt_cached(count: int, workdir: Path) -> dict:
    return child_kpkt(count, workdir, flow_cache=True)


def child_kpkt_calico_ipip_cached(count: int, workdir: Path) -> dict:
    return child_kpkt(count, workdir, "calico-ipip", flow_cache=True)


CHILDREN = {
    "kpkt": child_kpkt,
    "kpkt-calico-ipip": child_kpkt_calico_ipip,
    "kpkt+cache": child_kpkt_cached,
    "kpkt-calico-ipip+cache": child_kpkt_calico_ipip_cached,
    "naive": child_naive,
    "floor": child_floor,
    "floor+pcapng": child_floor_both,
}


def measure(kind: str, count: int) -> dict:
    """Run one measurement in a fresh process; add its peak RSS (MiB) to what it reports."""
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, str(count), workdir],
            stdout=subprocess.PIPE,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"{kind} {count}: the child failed")
    figures = json.loads(out)
    figures["rss_mib"] = usage.ru_maxrss / 1024
    figures["rate"] = figures["records"] / figures["seconds"]
    return figures


def ratio(rounds: list[dict], over: str, under: str) -> float:
    """The median over rounds of `over`'s rate divided by `under`'s in the same round."""
    return statistics.median(r[over]["rate"] / r[under]["rate"] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=1_000,
        help="datagrams for the Scapy baseline (it runs at ~1,000 records/s)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; medians shown")
    parser.add_argument("--cni", choices=sorted(CLUSTERS), default="flannel", help="kpkt's CNI")
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "COUNT", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        kind, count, workdir = args.child
        print(json.dumps(CHILDREN[kind](int(count), Path(workdir))))
        return

    def median_of(runs: list[dict]) -> dict:
        return {key: statistics.median(r[key] for r in runs) for key in runs[0]}

    naive = median_of([measure("naive", args.naive_sample) for _ in range(args.repeat)])
    print(
        f"naive Scapy pipeline: {naive['rate']:>12,.0f} hop-records/s "
        f"({naive['records']:,} records in {naive['seconds']:.2f} s, median of {args.repeat})"
    )
    rss = {}
    for count in args.sizes:
        # kpkt and the floors in turn, so a drift of the machine's speed hits all three alike;
        # each ratio is taken within one round, then the median of the rounds is shown
        ours = "kpkt" if args.cni == "flannel" else f"kpkt-{args.cni}"
        rounds = [
            {
                "kpkt": measure(ours, count),
                "cached": measure(f"{ours}+cache", count),
                "floor": measure("floor", count),
                "floor+pcapng": measure("floor+pcapng", count),
            }
            for _ in range(args.repeat)
        ]
        kpkt = median_of([r["kpkt"] for r in rounds])
        cached = median_of([r["cached"] for r in rounds])
        floor = median_of([r["floor"] for r in rounds])
        both = median_of([r["floor+pcapng"] for r in rounds])

        rss[count] = kpkt["rss_mib"]
        print(
            f"\n{count:,} datagrams, kpkt on {args.cni} ({kpkt['records']:,.0f} hop-records), "
            f"medians of {args.repeat}:"
        )
        print(
            f"  kpkt            {kpkt['rate']:>12,.0f} hop-records/s  {kpkt['seconds']:7.2f} s"
            f"  peak RSS {kpkt['rss_mib']:7.1f} MiB  (--no-flow-cache)"
        )
        print(
            f"  kpkt, cached    {cached['rate']:>12,.0f} hop-records/s  {cached['seconds']:7.2f} s"
            f"  peak RSS {cached['rss_mib']:7.1f} MiB  (the flow cache, the default)"
        )
        print(f"  I/O floor       {floor['rate']:>12,.0f} hop-records/s  {floor['seconds']:7.2f} s")
        print(f"  floor + pcapng  {both['rate']:>12,.0f} hop-records/s  {both['seconds']:7.2f} s")
        print(f"  kpkt / naive    {kpkt['rate'] / naive['rate']:>12.1f} x   (target >= 100)")
        print(f"  floor / kpkt    {ratio(rounds, 'floor', 'kpkt'):>12.1f} x   (target <= 10)")
        same_output = ratio(rounds, "floor+pcapng", "kpkt")
        print(f"  floor+pcapng / kpkt {same_output:>8.1f} x   (the same output)")
        print(f"  cached / kpkt   {ratio(rounds, 'cached', 'kpkt'):>12.2f} x")
        print(f"  floor / cached  {ratio(rounds, 'floor', 'cached'):>12.1f} x   (target <= 3)")
        same_output = ratio(rounds, "floor+pcapng", "cached")
        print(f"  floor+pcapng / cached {same_output:>6.1f} x   (the same output)")
    if len(rss) > 1:
        small, large = min(rss), max(rss)
        print(
            f"\npeak RSS {large:,} / {small:,} datagrams: {rss[large] / rss[small]:.3f} "
            "(target <= 1.10)"
        )


if __name__ == "__main__":
    main()
