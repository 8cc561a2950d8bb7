"""`kpkt trace`: the path of one traffic step's packets, hop by hop, with what changed at each.

The topology runs up to and including the step (earlier steps set up ARP and FDB state, as they
would on a real node); every frame of the step is kept. Each packet's first hop shows the whole
frame; later hops show only what changed there: MACs, TTL, addresses and ports (NAT), VXLAN
and IPIP encapsulation. The trace ends with what the application saw and every drop with its reason.
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

import click

from kpkt.capture.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW
from kpkt.capture.summary import summarize
from kpkt.capture.tap import Hop, StepLog
from kpkt.errors import KpktError
from kpkt.report import mac_names
from kpkt.runner import run
from kpkt.spec import Topology
from kpkt.wire.ethernet import ETH_LEN, ETH_TYPE, ETH_TYPE_IP
from kpkt.wire.ipv4 import (
    IP_DST,
    IP_HEADER_LEN,
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_IPIP,
    PROTO_TCP,
    PROTO_UDP,
    TTL,
)
from kpkt.wire.udp import PORTS, UDP_LEN
from kpkt.wire.vxlan import VXLAN_LEN

MAX_TRACE_ROWS = 5_000


@dataclasses.dataclass
class Traced:
    """One step run with every frame kept: its log, and each kept hop with what changed."""

    number: int  # 1-based
    text: str
    log: StepLog
    changes: list[str]  # per row of log.rows: the whole frame at a packet's first hop, else
    # what changed since its previous hop


def run_step(topology: Topology, number: int) -> Traced:
    """Run the topology up to step `number` (1-based), keeping every frame of that step."""
    if not 1 <= number <= len(topology.steps):
        raise KpktError(
            f"{topology.source}: there is no step {number}; the traffic has steps 1 to "
            f"{len(topology.steps)}"
        )
    network = run(topology, steps=number, keep_rows={number - 1: MAX_TRACE_ROWS}).network
    journal = network.journal
    log = journal.steps[number - 1]
    names = mac_names(journal.taps)
    ports = network.vxlan_ports()
    previous: dict[int, Fields] = {}
    changes = []
    for hop in log.rows:
        link_type = hop.tap.link_type
        fields = _fields(hop.frame, names, ports, link_type)
        before = previous.get(hop.pid)
        previous[hop.pid] = fields
        changes.append(
            summarize(hop.frame, names, ports, link_type)
            if before is None
            else _changes(before, fields)
        )
    return Traced(number, topology.steps[number - 1].text, log, changes)


def trace(topology: Topology, number: int, colour: bool = False) -> list[str]:
    """The trace of step `number` (1-based) as printable lines."""
    return trace_lines(run_step(topology, number), colour)


def trace_lines(traced: Traced, colour: bool = False) -> list[str]:
    log = traced.log
    style = _Style(colour)
    lines = [style.title(f"step {traced.number}: {traced.text}")]
    width = max([len(h.tap.name) for h in log.rows] + [13])
    lines.append(f"  {'t (us)':>10}  {'capture point':<{width}}  dir  pkt  what changed")
    for hop, change in zip(log.rows, traced.changes, strict=True):
        t_us = (hop.t_ns - log.start_ns) / 1000
        lines.append(
            f"  {t_us:>10.1f}  {style.place(f'{hop.tap.name:<{width}}')}  {hop.direction:<3}  "
            f"{hop.pid:>3}  {style.change(change)}{_note(hop)}"
        )
    if log.hop_count > len(log.rows):
        lines.append(f"  ... {log.hop_count - len(log.rows)} more frames (see the pcaps)")
    for drop in log.drops:
        lines.append(style.drop(f"  dropped at {drop.where}: {drop.reason}: {drop.detail}"))
    lines.append(f"  result: {log.result}" + ("" if log.drops else " (delivered, no drops)"))
    return lines


Fields = dict[str, str]


def _fields(
    frame: bytes,
    names: dict[bytes, str],
    vxlan_ports: frozenset[int],
    link_type: int = LINKTYPE_ETHERNET,
) -> Fields:
    """The fields a hop can change, as text: MACs (or `link`: raw IP on a tunnel), and for IPv4
    the addresses, TTL, ports and (for a VXLAN or IPIP packet) the outer header, with the inner
    packet's fields under `inner`."""
    if link_type == LINKTYPE_RAW:
        fields, ip = {"link": "raw ip"}, frame
    else:
        fields = {"eth": summarize(frame, names, vxlan_ports).split(" | ")[0]}
        if frame[ETH_TYPE] != ETH_TYPE_IP or len(frame) < ETH_LEN + IP_MIN_LEN:
            fields["frame"] = summarize(frame, names, vxlan_ports)
            return fields
        ip = frame[ETH_LEN:]
    ihl = IP_HEADER_LEN[ip[0]]
    fields["src"], fields["dst"] = str(IPv4Address(ip[IP_SRC])), str(IPv4Address(ip[IP_DST]))
    fields["ttl"] = str(ip[TTL])
    inner = None
    if ip[PROTO] == PROTO_IPIP and len(ip) >= ihl + IP_MIN_LEN:
        inner = _fields(ip[ihl:], names, vxlan_ports, LINKTYPE_RAW)
    elif ip[PROTO] in (PROTO_UDP, PROTO_TCP) and len(ip) >= ihl + PORTS.size:
        sport, dport = PORTS.unpack_from(ip, ihl)
        fields["src"] += f":{sport}"
        fields["dst"] += f":{dport}"
        inner_at = ihl + UDP_LEN + VXLAN_LEN
        if ip[PROTO] == PROTO_UDP and dport in vxlan_ports and len(ip) >= inner_at + ETH_LEN:
            inner = _fields(ip[inner_at:], names, vxlan_ports)
    if inner is not None:
        fields.update({f"inner {k}": v for k, v in inner.items()})
    return fields


def _changes(before: Fields, after: Fields) -> str:
    encapsulated = any(k.startswith("inner") for k in after)
    was_encapsulated = any(k.startswith("inner") for k in before)
    if encapsulated and not was_encapsulated:
        tunnel = "vxlan" if "inner eth" in after else "ipip"
        return (
            f"{tunnel} encap: outer {after['src']} > {after['dst']} ttl {after['ttl']}, "
            f"outer eth {after['eth']}"
        )
    if was_encapsulated and not encapsulated:
        if "link" in after:
            return "ipip decap: raw ip"
        return f"vxlan decap: inner eth {after['eth']}"
    changed = [
        f"{key} {before[key]} -> {after[key]}"
        for key in after
        if key in before and before[key] != after[key]
    ]
    if "link" in after and "eth" in before:
        changed.insert(0, "into the tunnel: raw ip")
    elif "eth" in after and "link" in before:
        changed.insert(0, f"out of the tunnel: eth {after['eth']}")
    return "; ".join(changed) if changed else "(unchanged)"


def _note(hop: Hop) -> str:
    return f"   # {hop.note}" if hop.note else ""


@dataclasses.dataclass(frozen=True)
class _Style:
    colour: bool

    def _paint(self, text: str, **style) -> str:
        return click.style(text, **style) if self.colour else text

    def title(self, text: str) -> str:
        return self._paint(text, bold=True)

    def place(self, text: str) -> str:
        return self._paint(text, fg="cyan")

    def change(self, text: str) -> str:
        return self._paint(text, fg="yellow") if text != "(unchanged)" else text

    def drop(self, text: str) -> str:
        return self._paint(text, fg="red", bold=True)
