"""An output folder read back as plain data for the report: the capture points of manifest.json,
and every step's hops with the frame's time, one-line summary, decoded fields and the decision
the device took there (the comment all.pcapng carries for that frame).

The n-th packet block of an interface name in all.pcapng is frame n of that capture point's pcap
(a pod created again on another node has a second interface block of the same name), so a hop
(capture point, frame index) finds its comment there and its bytes in the pcap. Frames
with the same bytes are decoded once and shared by their hops.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

from kpkt.capture.diff import dissect, show_value
from kpkt.capture.reader import HEADER_LEN, MAGICS
from kpkt.capture.summary import owner_names, summarize
from kpkt.capture.tap import comment_notes
from kpkt.errors import KpktError
from kpkt.html_report import MAX_HOPS
from kpkt.wire.ethernet import mac_bytes

IDB_TYPE, EPB_TYPE = 0x00000001, 0x00000006
SHB_MAGIC = 0x1A2B3C4D
IF_NAME, OPT_COMMENT = 2, 1


@dataclass(frozen=True)
class Port:
    """A capture point: an interface in one namespace, as manifest.json lists it."""

    name: str  # owner/interface
    file: str
    owner: str
    interface: str
    kind: str
    mac: str | None
    ips: tuple[str, ...]
    node: str | None
    peer: str | None  # owner/interface of the other end of a veth or wire
    packets: int
    link_type: int  # of its pcap: 1 Ethernet, 101 raw IP (a tunnel without a link layer)


@dataclass(frozen=True)
class Hop:
    port: int  # index into Run.ports
    frame_number: int  # in the port's pcap, from 1 (Wireshark's frame.number)
    direction: str  # in / out
    packet: int
    t_ns: int
    frame: int  # index into Run.frames
    decision: str
    previous: int = -1  # the hop of the step the frame came from to get here; -1: it starts here


@dataclass(frozen=True)
class Drop:
    t_ns: int
    where: str
    reason: str
    detail: str
    packet: int


@dataclass(frozen=True)
class Step:
    index: int
    text: str
    result: str
    outcome: str
    hops: list[Hop]
    drops: list[Drop]
    hops_not_shown: int  # recorded by the run (or left out of the manifest) but not in `hops`


@dataclass(frozen=True)
class Frame:
    """A frame's bytes decoded: the one-line summary and every field (`IP.ttl`: `63`)."""

    summary: str
    fields: list[tuple[str, str]]


@dataclass
class Run:
    topology: str
    seed: int
    version: str
    ports: list[Port]
    steps: list[Step]
    frames: list[Frame] = field(default_factory=list)

    def needed_ports(self) -> set[str]:
        """The capture points the steps' hops and drops name: the picture must draw them."""
        names = {self.ports[hop.port].name for step in self.steps for hop in step.hops}
        return names | {drop.where for step in self.steps for drop in step.drops}

    def to_json(self) -> dict:
        """The data the page embeds: lists of values, in a fixed order, no file-system paths."""
        return {
            "topology": self.topology,
            "seed": self.seed,
            "version": self.version,
            "maxHops": MAX_HOPS,
            "ports": [
                {
                    "name": p.name,
                    "file": p.file,
                    "kind": p.kind,
                    "mac": p.mac,
                    "ips": list(p.ips),
                    "node": p.node,
                    "packets": p.packets,
                }
                for p in self.ports
            ],
            "steps": [
                {
                    "index": s.index,
                    "text": s.text,
                    "result": s.result,
                    "outcome": s.outcome,
                    "hopsNotShown": s.hops_not_shown,
                    "hops": [
                        [
                            h.port,
                            h.frame_number,
                            h.direction,
                            h.packet,
                            h.t_ns,
                            h.frame,
                            h.decision,
                            h.previous,
                        ]
                        for h in s.hops
                    ],
                    "drops": [[d.t_ns, d.where, d.reason, d.detail, d.packet] for d in s.drops],
                }
                for s in self.steps
            ],
            "frames": [[f.summary, [list(pair) for pair in f.fields]] for f in self.frames],
        }


def read_run(folder: Path, manifest: dict | None = None) -> Run:
    """The run in `folder` (written by `kpkt run`); a KpktError names what is missing or broken.
    The steps' hops are kept in order up to MAX_HOPS in all; only their frames are read.
    `manifest`: the document of the folder's manifest.json, its hops cut or not, instead of
    the file (as the run that wrote the folder has it)."""
    folder = Path(folder)
    if manifest is None:
        manifest = _manifest(folder)
    try:
        return _read(folder, manifest)
    except (KeyError, TypeError, AttributeError) as error:
        raise KpktError(
            f"{folder / 'manifest.json'}: not a manifest kpkt wrote (at {error!r}); "
            "run kpkt run again"
        ) from None


def _read(folder: Path, manifest: dict) -> Run:
    ports = [_port(entry) for entry in manifest["captures"]]
    by_name = {port.name: number for number, port in enumerate(ports)}
    names = owner_names((mac_bytes(p.mac), p.name) for p in ports if p.mac and p.kind != "loopback")
    kept, budget = [], MAX_HOPS
    for entry in manifest["steps"]:
        kept.append(entry["hops"][:budget])
        budget -= len(kept[-1])
    wanted: dict[str, set[int]] = {}
    for entry, hops in zip(manifest["steps"], kept, strict=True):
        for hop in hops:
            if hop["capture"] not in by_name:
                raise KpktError(
                    f"{folder / 'manifest.json'}: step {entry['index']} has a hop at "
                    f"{hop['capture']!r}, which is not among its captures; run kpkt run again"
                )
            wanted.setdefault(hop["capture"], set()).add(hop["index"])
    records = {
        name: read_records(folder / ports[by_name[name]].file, indexes)
        for name, indexes in wanted.items()
    }
    decisions = read_decisions(folder / "all.pcapng", wanted)
    run = Run(manifest["topology"], manifest["seed"], manifest["version"], ports, [])
    decoded: dict[tuple[int, bytes], int] = {}

    def frame_id(link_type: int, data: bytes) -> int:
        key = (link_type, data)
        if key not in decoded:
            decoded[key] = len(run.frames)
            dissected = dissect(data, link_type)
            fields = [(name, show_value(value)) for name, value in dissected.items()]
            run.frames.append(Frame(summarize(data, names, link_type=link_type), fields))
        return decoded[key]

    drops: dict[int, list[Drop]] = {}
    for d in manifest["drops"]:
        drops.setdefault(d["step"], []).append(
            Drop(d["tNs"], d["where"], d["reason"], d["detail"], d["packet"])
        )
    for entry, listed in zip(manifest["steps"], kept, strict=True):
        hops = []
        for hop in listed:
            capture, index = hop["capture"], hop["index"]
            t_ns, data = records[capture][index]
            hops.append(
                Hop(
                    by_name[capture],
                    index + 1,
                    hop["direction"],
                    hop["packet"],
                    t_ns,
                    frame_id(ports[by_name[capture]].link_type, data),
                    comment_notes(decisions[capture, index]),
                )
            )
        run.steps.append(
            Step(
                entry["index"],
                entry["text"],
                entry["result"],
                entry.get("outcome", ""),
                _linked(hops, ports),
                drops.get(entry["index"], []),
                entry["frames"] - len(hops),
            )
        )
    return run


BRIDGE_PORTS = frozenset({"veth", "switch-port"})  # the kinds of port a bridge forwards between


def _linked(hops: list[Hop], ports: list[Port]) -> list[Hop]:
    """Each hop with the earlier hop of the same packet it came from (`_came_from`)."""
    linked: list[Hop] = []
    by_packet: dict[int, list[int]] = {}
    for number, hop in enumerate(hops):
        earlier = by_packet.setdefault(hop.packet, [])
        linked.append(replace(hop, previous=_came_from(hop, earlier, hops, ports)))
        earlier.append(number)
    return linked


def _came_from(hop: Hop, earlier: list[int], hops: list[Hop], ports: list[Port]) -> int:
    """Among the packet's `earlier` hops, the one `hop` came from:
    - received on one end of a veth or wire: sent at the other end;
    - sent out of a bridge port: received on a port of that bridge (its own too: hairpin), or
      sent into the bridge by its host (a flood goes out of every port from the one it came in
      by);
    - otherwise: the namespace's latest hop of the packet that is not one leaving by a bridge
      port (routing, encapsulation and passing up to the host happen inside a namespace);
    - failing all that, the packet's latest hop anywhere; -1 if it has none: it starts here."""
    here = ports[hop.port]
    for number in reversed(earlier):
        before = hops[number]
        there = ports[before.port]
        if hop.direction == "in" and here.peer is not None:
            if there.name == here.peer and before.direction == "out":
                return number
        elif there.owner != here.owner:
            continue
        elif hop.direction == "out" and here.kind in BRIDGE_PORTS:
            if (before.direction == "in" and there.kind in BRIDGE_PORTS) or (
                before.direction == "out" and there.kind == "bridge"
            ):
                return number
        elif not (before.direction == "out" and there.kind in BRIDGE_PORTS):
            return number
    return earlier[-1] if earlier else -1


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise KpktError(f"{folder}: not a folder; give the output folder of a kpkt run")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KpktError(
            f"{path}: not found; give the output folder of a kpkt run (it holds manifest.json)"
        ) from None
    except OSError as error:
        raise KpktError(f"{path}: cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise KpktError(f"{path}: not valid JSON ({error}); run kpkt run again") from None


def _port(entry: dict) -> Port:
    peer = entry["peer"]
    return Port(
        f"{entry['owner']}/{entry['interface']}",
        entry["file"],
        entry["owner"],
        entry["interface"],
        entry["kind"],
        entry["mac"],
        tuple(entry["ips"]),
        entry["node"],
        f"{peer['owner']}/{peer['interface']}" if peer else None,
        entry["packets"],
        entry["linkType"],
    )


def read_records(path: Path, indexes: set[int]) -> dict[int, tuple[int, bytes]]:
    """Records `indexes` (from 0) of a pcap kpkt wrote, as {index: (t_ns, frame)}: the file is
    read as far as the last of them."""
    found: dict[int, tuple[int, bytes]] = {}
    last = max(indexes)
    try:
        with open(path, "rb") as capture:
            head = capture.read(HEADER_LEN)
            if head[:4] not in MAGICS or len(head) < HEADER_LEN:
                raise KpktError(f"{path}: byte 0: not a pcap file; run kpkt run again")
            order, unit = MAGICS[head[:4]]
            record = struct.Struct(order + "IIII")
            offset = HEADER_LEN
            for index in range(last + 1):
                header = capture.read(record.size)
                if len(header) < record.size:
                    raise KpktError(
                        f"{path}: byte {offset}: ends at frame {index}, manifest.json names "
                        f"frame {last + 1}; the folder is not one run's output: run kpkt run again"
                    )
                seconds, fraction, caplen, _ = record.unpack(header)
                if index in indexes:
                    frame = capture.read(caplen)
                    if len(frame) < caplen:
                        raise KpktError(f"{path}: byte {offset}: record {index + 1} is cut short")
                    found[index] = (seconds * 1_000_000_000 + fraction * unit, frame)
                else:
                    capture.seek(caplen, 1)
                offset += record.size + caplen
    except OSError as error:
        raise KpktError(f"{path}: cannot be read ({error.strerror}); run kpkt run again") from None
    return found


def read_decisions(path: Path, wanted: dict[str, set[int]]) -> dict[tuple[str, int], str]:
    """The comments of packets `wanted` ({interface name: indexes}) in all.pcapng (the
    little-endian pcapng kpkt writes), as {(interface name, index): comment}: the file is read
    until all are found; a KpktError names the byte where it stops making sense."""
    found: dict[tuple[str, int], str] = {}
    missing = sum(len(indexes) for indexes in wanted.values())
    interfaces: list[str] = []  # the name of each interface block
    counts: dict[str, int] = {}  # packets so far by interface name
    offset = 0
    try:
        with open(path, "rb") as blocks:
            head = blocks.read(12)
            if len(head) < 12 or struct.unpack_from("<I", head, 8)[0] != SHB_MAGIC:
                raise KpktError(f"{path}: byte 0: not a little-endian pcapng file written by kpkt")
            blocks.seek(0)
            while missing:
                header = blocks.read(8)
                if len(header) < 8:
                    raise KpktError(
                        f"{path}: byte {offset}: ends before the packets manifest.json names: "
                        "the file is truncated; run kpkt run again"
                    )
                kind, length = struct.unpack("<II", header)
                body = blocks.read(length - 8)
                if length < 12 or length % 4 or len(body) < length - 8:
                    raise KpktError(
                        f"{path}: byte {offset}: a block of length {length} is cut short or "
                        "broken: the file is truncated; run kpkt run again"
                    )
                if kind == IDB_TYPE:
                    interfaces.append(_options(body[8:-4]).get(IF_NAME, b"").decode())
                elif kind == EPB_TYPE:
                    interface, caplen = (
                        struct.unpack_from("<I", body)[0],
                        struct.unpack_from("<I", body, 12)[0],
                    )
                    if interface >= len(interfaces):
                        raise KpktError(f"{path}: byte {offset}: a packet on no declared interface")
                    name = interfaces[interface]
                    index = counts[name] = counts.get(name, -1) + 1
                    if index in wanted.get(name, ()):
                        options = _options(body[20 + caplen + (-caplen % 4) : -4])
                        found[name, index] = options.get(OPT_COMMENT, b"").decode(
                            "utf-8", "replace"
                        )
                        missing -= 1
                offset += length
    except OSError as error:
        raise KpktError(f"{path}: cannot be read ({error.strerror}); run kpkt run again") from None
    return found


def _options(data: bytes) -> dict[int, bytes]:
    """A block's options as {code: value} (the first of a code), up to the end-of-options."""
    found: dict[int, bytes] = {}
    at = 0
    while at + 4 <= len(data):
        code, length = struct.unpack_from("<HH", data, at)
        if code == 0:
            break
        found.setdefault(code, data[at + 4 : at + 4 + length])
        at += 4 + length + (-length % 4)
    return found
