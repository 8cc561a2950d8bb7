"""The flow cache: what the datapath did for one packet, replayed for the packets after it.

The unit is a *segment*: what one event does in one namespace for one packet, which is where
the datapath's decisions are made. A segment starts when a socket of the namespace sends a
UDP datagram or an ICMP echo request (`Stack.send_ip`) or when a frame arrives on a veth
(`Veth.deliver`), and runs until the packet leaves on a wire (the event that delivers it at the
far end is scheduled) or reaches a socket. A segment may make one new packet of the flow: the
echo reply the stack answers an echo request with (`Journal.packet`, replayed as the same call
at the same place, so the reply gets the same packet id). In between, every device of the
namespace decides (bridge FDB, route, neighbour, VXLAN or IPIP tunnel, netfilter) and the capture
points see the frames.

The first packet of a key takes the slow path, with the namespace watched: the frames its
capture points saw (with their notes), the events it scheduled, the socket it reached, the IP
IDs it drew, the FDB entries it refreshed. The key is the frame itself with what changes from
packet to packet left out: the IP IDs and header checksums, and the UDP checksum of a tunnel
(VXLAN) that covers an inner header, and of an ICMP echo what changes from ping to ping (its
checksum, sequence number and the time ping writes at the start of its data); the rest of the
payload is part of the key. For a send, the key is the datagram's addresses, ports, payload
(an echo's as in a frame), DF, TOS and TTL. A later packet with the same key is replayed: its
frames are the recorded ones with its own IP IDs (carried from its input, or drawn from the
namespace's generator in the same order), its echo's words (the input echo's at the same
places: a forwarded echo, or the reply made of a request) and their checksums redone (or
carried with the header or echo they belong to, when the recording carried it unchanged), seen
by the same capture points with the same notes, then the same event is scheduled at the same
delay (so the interleaving with other flows is the same) or the same socket gets the datagram
(a ping socket the echo reply).

A replay does as little as it can: the input's changing words are read with one unpack; a
frame that is part of the input (a tunnel's inner frame) is a slice of it, a frame with one
IPv4 header (routed, or sent by a socket) one pack, a tunnel packet around a frame made before
it one pack; and the frames a run of capture points sees go to the capture layer at once
(`Hops`, kpkt/capture/tap.py: their records' fixed bytes made ahead for the flow's label).
At a flow's first replay a recording is compiled into a function that does just that, for
that flow, straight through, with its constants bound (`_body`). A segment hands its packet to
the next namespace at once when the event that delivers it would be the next to run anyway
(`Scheduler.hand_over`: a frame's arrival is all its event does; a send is the last thing its
sender does before what it promised, its next send, `Scheduler.hand_over_sent`), and a
recording there is replayed in the same function: a recording is compiled with the recordings
its packet goes on to, as one chain (`_chained`), each hand-over checked inline as the cache
would check it.

A recording is replayed only while it is exact: in the generation of the forwarding state it
was recorded in (kpkt/engine/generation.py: every change to an FDB, neighbour, route or
connection table, every socket opened or closed and every step's start makes a new one), and
before its expiry, the first moment a timer would change an entry the namespace holds (an FDB
entry ageing out, a REACHABLE neighbour going STALE). Anything uncertain takes the slow path and
is not recorded: a recording that changed that state, dropped the packet, noted a decision
without a frame, sent another packet than an echo reply, drew another kind of random value,
made a frame of another packet than its input's or the one it made, queued a packet for
ARP or crossed into another namespace; a namespace with a qdisc (netem), a NetworkPolicy, a
tc program, a socket-level load balancer, a device of a kind this module does not know or a
port of anything but a Linux bridge, or a UDP socket of another kind (an overlay router and
its own tunnel); crafted packets, a run with corrupted frames, IP options, anything but UDP or
an ICMP echo inside (ICMP errors quote a packet), an echo reply whose words but the changing ones
are all zeros (its checksum is then not their sum's complement).
"""

from __future__ import annotations

import functools
import operator
import struct

from kpkt.capture.tap import SENT, Hops, Tap
from kpkt.compiled import Names
from kpkt.engine import generation
from kpkt.net.bridge import Bridge
from kpkt.net.device import Loopback, Veth
from kpkt.net.ipip import IpipTunnel
from kpkt.net.neighbor import Nud
from kpkt.net.sockets import UdpSocket
from kpkt.net.stack import Stack
from kpkt.net.vxlan import Vxlan
from kpkt.observe import Decision, Why
from kpkt.wire.ethernet import ETH_LEN
from kpkt.wire.icmp import ECHO_REPLY, ECHO_REQUEST, ICMP_CHECKSUM_AT, ICMP_LEN
from kpkt.wire.ipv4 import IP_MIN_LEN, PROTO_ICMP, PROTO_IPIP, PROTO_UDP
from kpkt.wire.udp import UDP_LEN

# the device kinds whose decisions read only the state kpkt/engine/generation.py counts
_KNOWN_DEVICES = (Veth, Bridge, Vxlan, IpipTunnel, Loopback)
FLOW_CACHE_DEFAULT = True  # whether runs use the cache unless told (`--no-flow-cache`)
_MAX_PATHS = 4096  # keys kept per entry point; more and the oldest half is forgotten
_MAX_CHAIN = 8  # recordings one compiled chain replays, at most
_INPUT = object()  # a note that is the one the packet was sent with
# the kinds of a Path's actions
_SEEN, _HOPS, _PUSH, _DELIVER, _PACKET = "seen", "hops", "push", "deliver", "packet"
_ETH_IP = b"\x08\x00"
_IP_UDP = IP_MIN_LEN + UDP_LEN  # an IPv4 header without options, then UDP's
_VXLAN_INNER = 8 + 8  # from the UDP header to the inner Ethernet header: UDP, VXLAN
_ECHO_SEQ = 6  # where an ICMP echo message's sequence number is (after type, code, sum, id)
_TIMEVAL = 16  # the struct timeval iputils ping writes at the start of its data when it fits


def _layout(data: bytes, at: int, tunnels: frozenset[int], ips: list, sums: list) -> bool:
    """Find the IPv4 headers (their offsets into `ips`) and the tunnel UDP checksums (their
    offsets, with their IP header's, into `sums`) of the IPv4 packet at `data[at:]`; False
    when it is not one the cache handles: IPv4 without options, through IPIP and VXLAN (a UDP
    port in `tunnels`), carrying UDP or an ICMP echo request or reply (`_echo_at`) that ends
    the frame."""
    while True:
        if len(data) < at + 28 or data[at] != 0x45:
            return False
        ips.append(at)
        proto = data[at + 9]
        if proto == PROTO_IPIP:
            at += 20
            continue
        if proto == PROTO_ICMP:  # an ICMP error quotes a packet: not one the cache handles
            end = at + (data[at + 2] << 8 | data[at + 3])
            return end == len(data) and _is_echo(data[at + 20 :])
        if proto != PROTO_UDP:
            return False
        if (data[at + 22] << 8 | data[at + 23]) not in tunnels:
            return True
        inner = at + 20 + _VXLAN_INNER
        if data[inner + 12 : inner + 14] != _ETH_IP:
            return False
        sums.append((at + 26, at))
        at = inner + 14


def _echo_at(data: bytes, ips: list) -> int | None:
    """Where the ICMP echo message of a packet `_layout` found is (it ends the frame), if it
    carries one."""
    return ips[-1] + IP_MIN_LEN if data[ips[-1] + 9] == PROTO_ICMP else None


def _echo_words(length: int) -> list[int]:
    """The offsets in an ICMP echo message of `length` bytes of what changes from packet to
    packet of a ping: the checksum, the sequence number, and the time ping writes at the start
    of its data when it fits (kpkt/net/icmp.py `ping_payload`)."""
    end = ICMP_LEN + _TIMEVAL if length >= ICMP_LEN + _TIMEVAL else ICMP_LEN
    return [ICMP_CHECKSUM_AT, *range(_ECHO_SEQ, end, 2)]


def echo_key(message: bytes) -> bytes:
    """An ICMP echo message without what changes from packet to packet of a ping."""
    return (
        message[:ICMP_CHECKSUM_AT]
        + message[4:_ECHO_SEQ]
        + message[_echo_words(len(message))[-1] + 2 :]
    )


def _is_echo(message: bytes) -> bool:
    """Whether an ICMP message is an echo request or reply (not an error, which quotes)."""
    return len(message) >= ICMP_LEN and message[0] in (ECHO_REQUEST, ECHO_REPLY) and not message[1]


@functools.lru_cache(maxsize=256)
def _kept(ips: tuple, sums: tuple, echo: int | None, length: int) -> operator.itemgetter:
    """The slices of a frame of this layout (as `_layout` and `_echo_at` find it, its length
    `length`) that its key keeps, taken by one call: all but the words that change from packet
    to packet. Made once per layout: a large cluster's pings all have a few layouts, and each
    comes once."""
    ranges = [(at + 4, at + 6) for at in ips] + [(at + 10, at + 12) for at in ips]
    if echo is not None:
        ranges += [(echo + at, echo + at + 2) for at in _echo_words(length - echo)]
    kept, start = [], 0
    for begin, end in sorted(ranges + [(at, at + 2) for at, _ in sums]):
        kept.append(slice(start, begin))
        start = end
    kept.append(slice(start, None))
    return operator.itemgetter(*kept)  # at least three slices: it returns a tuple


def frame_key(frame: bytes, tunnels: frozenset[int]) -> bytes | None:
    """The frame without what changes from packet to packet of a flow (IP IDs and checksums,
    tunnel UDP checksums, and a ping's `_echo_words`); None when the cache does not handle
    it."""
    if frame[12:14] != _ETH_IP:
        return None
    ips: list[int] = []
    sums: list[tuple[int, int]] = []
    if not _layout(frame, 14, tunnels, ips, sums):
        return None
    echo = _echo_at(frame, ips)
    if len(ips) == 1 and echo is None:  # the common case, without the general loop
        return frame[:18] + frame[20:24] + frame[26:]
    return b"".join(_kept(tuple(ips), tuple(sums), echo, len(frame))(frame))


class _Template:
    """A frame a recorded segment produced, made again for another packet of its key: its IP
    IDs set from their sources and its checksums redone as the slow path's builders make them
    (header checksums as `checksum()` computes them, tunnel UDP checksums as `l4_checksum`).

    A checksum is the ones' complement sum of 16-bit words, so the sum of a header's (or a
    datagram's) words that stay the same is added up once, here; for a packet only the words
    that change (IDs, and the checksums of the headers a tunnel datagram carries) are added."""

    __slots__ = ("data", "fields")

    def __init__(self, data: bytes, fields: list) -> None:
        self.data = data
        # in the order they are computed: (offset, source of an ID's value or None, the sum of
        # the words that stay the same, the fields whose values add to it, UDP or not)
        self.fields = fields

    @classmethod
    def of(cls, data: bytes, ips: list, sums: list, sources) -> _Template | None:
        """The template of `data`, whose IP headers are at `ips` and tunnel UDP checksums at
        `sums` ((offset, its IP header's offset), innermost first), with the packet's changing
        words found in `sources` (a `_Sources`). None when a word that changes comes from no
        known source or is not aligned with the words of its checksum."""
        fields: list[tuple] = []
        position: dict[int, int] = {}  # offset -> index in fields

        def add(at: int, source: int | None, base: int = 0, adds=(), udp: bool = False) -> None:
            position[at] = len(fields)
            fields.append((at, source, base, adds, udp))

        echo = _echo_at(data, ips)
        words = [] if echo is None else [echo + at for at in _echo_words(len(data) - echo)]
        zeroed = bytearray(data)
        for at in [ip + 4 for ip in ips] + [ip + 10 for ip in ips] + [at for at, _ in sums] + words:
            zeroed[at] = zeroed[at + 1] = 0
        computed = []
        for ip in ips:
            carried = sources.headers.get(data[ip : ip + 20])
            if carried is not None:  # the input's header, as it was: its ID and checksum
                add(ip + 4, carried[0])
                add(ip + 10, carried[1])
                continue
            source = sources.ids.get(data[ip + 4] << 8 | data[ip + 5])
            if source is None:
                return None
            add(ip + 4, source)
            computed.append(ip)
        for ip in computed:
            add(ip + 10, None, _sum(zeroed[ip : ip + 20]), (position[ip + 4],))
        if echo is not None and not _echo_fields(data, echo, zeroed, sources, add, position):
            return None
        for at, ip in sums:
            udp, end = ip + 20, ip + (data[ip + 2] << 8 | data[ip + 3])
            carried = sources.datagrams.get(data[udp:end])
            if carried is not None:  # the input's tunnel datagram, as it was
                add(at, carried)
                continue
            if not data[at] and not data[at + 1]:
                continue  # sent without a checksum: it stays 0
            inside = [(where, index) for where, index in position.items() if udp <= where < end]
            if any((where - udp) & 1 for where, _ in inside):
                return None
            pseudo = data[ip + 12 : ip + 20] + bytes((0, PROTO_UDP)) + (end - udp).to_bytes(2)
            adds = tuple(index for _, index in inside)
            add(at, None, _sum(pseudo + zeroed[udp:end]), adds, True)
        return cls(data, fields)

    def make(self, values, frames: list) -> bytes:
        """The frame for a packet whose changing words are `values`; `frames`: the input
        frame, then the frames made before this one."""
        data = bytearray(self.data)
        made = []
        for at, source, base, adds, udp in self.fields:
            if source is not None:
                value = values[source]
            else:
                for index in adds:
                    base += made[index]
                # checksum(): the complement of the sum folded to 1..0xFFFF (never 0: the data
                # is not all zeros); l4_checksum sends a UDP result of 0 as 0xFFFF
                value = ~(base % 0xFFFF or 0xFFFF) & 0xFFFF
                if udp and not value:
                    value = 0xFFFF
            made.append(value)
            data[at] = value >> 8
            data[at + 1] = value & 0xFF
        return bytes(data)


def _echo_fields(data: bytes, echo: int, zeroed: bytearray, sources, add, position) -> bool:
    """Add to a template the fields of the ICMP echo message at `data[echo:]` (its other
    words `zeroed`): its sequence number and ping's time are the input echo's words at the
    same places (a forwarded echo, or the reply `Stack._icmp_receive` makes of a request), its
    checksum the input's when the message is the input's as it was, else redone as
    `icmp.echo` makes it. False when a word comes from no known source."""
    message = data[echo:]
    if sources.message is None or len(message) != len(sources.message):
        return False
    varying = []
    for at, source in sources.echo.items():
        if at == ICMP_CHECKSUM_AT:
            continue
        if message[at : at + 2] != sources.message[at : at + 2]:
            return False
        add(echo + at, source)
        varying.append(position[echo + at])
    if message == sources.message:
        add(echo + ICMP_CHECKSUM_AT, sources.echo[ICMP_CHECKSUM_AT])
        return True
    if not any(zeroed[echo:]):
        return False  # checksum() of a message of zeros is 0xFFFF, not the sum's complement
    add(echo + ICMP_CHECKSUM_AT, None, _sum(zeroed[echo:]), tuple(varying))
    return True


class _Slice:
    """A frame that is a part of the input frame as it came (a tunnel packet's inner frame)."""

    __slots__ = ("data", "start", "end")

    def __init__(self, data: bytes, start: int) -> None:
        self.data = data
        self.start = start
        self.end = start + len(data)

    @classmethod
    def of(cls, template: _Template, frame: bytes | None, fields: list[int]) -> _Slice | None:
        """`template`'s frame as a part of `frame`, if it is one for every packet: its words
        that change are the input's own words (at `fields`) at the same places."""
        data = template.data
        start = -1 if frame is None else frame.find(data)
        if start < 0:
            return None
        inside = {at - start for at in fields if start <= at < start + len(data)}
        if inside != {at for at, *_ in template.fields}:
            return None
        for at, source, *_ in template.fields:
            if source is None or source >= len(fields) or fields[source] != start + at:
                return None
        return cls(data, start)

    def make(self, values, frames: list) -> bytes:
        return frames[0][self.start : self.end]

    def expression(self, bind, made: list[str]) -> str:
        """`make` as an expression of a compiled segment (`_body`)."""
        return f"frame[{self.start}:{self.end}]"


class _OneHeader:
    """A frame with one IPv4 header whose ID comes from a source and whose checksum is redone
    (a routed frame, a frame a socket sent): one pack. When what follows the header holds words
    that change (a ping's), it is the end of the input as it came (`start`), as for `_Slice`;
    an echo made anew of the input's (the reply to a request) has its type and code and its
    checksum before that end, the checksum summed as `_Template.make` does (`echo`: the sum of
    the words that stay the same, and the range of `values` that add to it)."""

    __slots__ = ("data", "source", "base", "layout", "before", "between", "after", "start", "echo")

    def __init__(self, template: _Template, end: int, start: int | None, echo) -> None:
        """The template's bytes up to `end` made, then the input's from `start`."""
        data = template.data
        (at, self.source, *_), (_, _, self.base, *_), *_ = template.fields
        self.data = data
        self.start, self.echo = start, echo
        self.layout = struct.Struct(f">{at}sH4sH{end - at - 8}s" + ("H" if echo else ""))
        self.before, self.between, self.after = data[:at], data[at + 2 : at + 6], data[at + 8 : end]

    @classmethod
    def of(cls, template: _Template, data: bytes | None, fields: list[int]) -> _OneHeader | None:
        """`template`'s frame as one header made and, when words after it change, the end of
        the input `data` (a frame, or the message a socket sent) whose words at `fields` they
        are, at the same places, after an echo's type, code and checksum made anew."""
        if len(template.fields) < 2:
            return None
        (at, source, *_), (checksum, computed, _, adds, _), *rest = template.fields
        if source is None or computed is not None or checksum != at + 6 or adds != (0,):
            return None
        if not rest:
            return cls(template, len(template.data), None, None)
        head, echo = at + 16, None  # where the input's part starts: the header's end
        if rest[-1][1] is None:  # a checksum made anew: an echo's, over the input's words
            (where, _, base, adds, udp), rest = rest[-1], rest[:-1]
            first = rest[0][1] if rest else None
            if udp or where != head + ICMP_CHECKSUM_AT or first is None:
                return None
            if adds != tuple(range(2, 2 + len(rest))):
                return None
            if [f[1] for f in rest] != list(range(first, first + len(rest))):
                return None
            head, echo = where + 2, (base, first, first + len(rest))
        tail = template.data[head:]
        start = -1 if data is None else len(data) - len(tail)
        if start < 0 or data[start:] != tail:
            return None
        moved = start - head  # from the template's offsets to the input's
        if {field - moved for field in fields if field >= start} != {f[0] for f in rest}:
            return None
        for where, source, *_ in rest:
            if source is None or source >= len(fields) or fields[source] != where + moved:
                return None
        return cls(template, head - (2 if echo else 0), start, echo)

    def make(self, values, frames: list) -> bytes:
        value = values[self.source]
        # as _Template.make: the complement of the sum folded to 1..0xFFFF
        checksum = 0xFFFF - ((self.base + value) % 0xFFFF or 0xFFFF)
        if self.start is None:
            return self.layout.pack(self.before, value, self.between, checksum, self.after)
        if self.echo is None:
            made = self.layout.pack(self.before, value, self.between, checksum, self.after)
            return made + frames[0][self.start :]
        base, first, last = self.echo
        echo = 0xFFFF - ((base + sum(values[first:last])) % 0xFFFF or 0xFFFF)
        made = self.layout.pack(self.before, value, self.between, checksum, self.after, echo)
        return made + frames[0][self.start :]

    def expression(self, bind, made: list[str]) -> str:
        """`make` as an expression of a compiled segment (`_body`), its constants bound."""
        pack = bind(self.layout.pack, "pack")
        pieces = (self.before, self.between, self.after)
        before, between, after = (bind(piece, "b") for piece in pieces)
        value = f"(x := v[{self.source}])"
        checksum = f"0xFFFF - (({self.base} + x) % 0xFFFF or 0xFFFF)"
        fields = f"{before}, {value}, {between}, {checksum}, {after}"
        if self.start is None:
            return f"{pack}({fields})"
        if self.echo is not None:
            base, first, last = self.echo
            fields += f", 0xFFFF - (({base} + sum(v[{first}:{last}])) % 0xFFFF or 0xFFFF)"
        return f"{pack}({fields}) + {made[0]}[{self.start}:]"


class _Encap:
    """A tunnel packet around a frame made before it (IPIP, or VXLAN with or without a UDP
    checksum): the outer IPv4 header's ID comes from a source and its checksum is redone, the
    tunnel's UDP checksum summed over the inner frame as it was made; one pack.

    Exact by construction: the inner part of `_Template.of`'s template decides each word as
    the inner frame's template does (the same bytes, the same sources), so the inner part is
    that frame, and the checksums are ones' complement sums of the same words."""

    __slots__ = ("data", "source", "base", "inner", "skip", "udp", "layout", "pieces")

    def __init__(self, template: _Template, inner: int, skip: int, at: int, udp: int | None):
        """The outer IPv4 header at `at`, its UDP checksum at `udp` (None: IPIP), then the
        inner frame, `frames[inner][skip:]`."""
        data = template.data
        self.data = data
        self.source = template.fields[0][1]
        self.inner, self.skip = inner, skip
        head = at + 20 + (_VXLAN_INNER if udp is not None else 0)  # where the inner frame starts
        self.base = _sum(data[at : at + 4] + data[at + 6 : at + 10] + data[at + 12 : at + 20])
        self.udp = None
        if udp is not None and (data[udp] or data[udp + 1]):  # sent with a checksum
            end = at + (data[at + 2] << 8 | data[at + 3])
            pseudo = data[at + 12 : at + 20] + bytes((0, PROTO_UDP)) + (end - at - 20).to_bytes(2)
            self.udp = _sum(pseudo + data[at + 20 : udp] + data[udp + 2 : head])
        tail = len(data) - head
        if self.udp is None:
            self.layout = struct.Struct(f">{at + 4}sH4sH{head - at - 12}s{tail}s")
            self.pieces = (data[: at + 4], data[at + 6 : at + 10], data[at + 12 : head])
        else:
            self.layout = struct.Struct(f">{at + 4}sH4sH{udp - at - 12}sH{head - udp - 2}s{tail}s")
            self.pieces = (
                data[: at + 4], data[at + 6 : at + 10], data[at + 12 : udp], data[udp + 2 : head]
            )  # fmt: skip

    @classmethod
    def of(cls, template: _Template, frames: list, raws: list, ips: list, sums: list):
        """`template` as a tunnel packet around one of `frames` (made before it), if it is one:
        its outer header's ID from a source and checksum redone, then the inner frame (after
        the outer UDP and VXLAN headers, for VXLAN) read from the same place as that frame (an
        Ethernet frame for VXLAN; for IPIP, a raw frame or an Ethernet frame's IPv4 packet)."""
        data, fields = template.data, template.fields
        at = ips[0]
        if len(ips) < 2 or fields[0][0] != at + 4 or fields[0][1] is None:
            return None
        checksum = next((f for f in fields if f[0] == at + 10), None)
        if checksum is None or checksum[1] is not None or checksum[3] != (0,):
            return None  # the outer header carried from the input, not made
        udp = None
        if data[at + 9] == PROTO_UDP:  # VXLAN: the inner Ethernet frame after UDP and VXLAN
            udp = at + 26
            head = at + 20 + _VXLAN_INNER
            outer = [f for f in fields if f[0] == udp]
            if (udp, at) not in sums or (outer and outer[0][1] is not None):
                return None  # the input's own datagram, carried
        else:
            head = at + 20
        for inner in range(len(frames) - 1, -1, -1):
            made = frames[inner]
            skip = 0 if raws[inner] or udp is not None else ETH_LEN
            if udp is not None and raws[inner] or made is None:
                continue
            if len(made) - skip == len(data) - head and made[skip:] == data[head:]:
                return cls(template, inner, skip, at, udp)
        return None

    def make(self, values, frames: list) -> bytes:
        inner = frames[self.inner][self.skip :]
        value = values[self.source]
        checksum = 0xFFFF - ((self.base + value) % 0xFFFF or 0xFFFF)
        if self.udp is None:
            before, between, after = self.pieces
            return self.layout.pack(before, value, between, checksum, after, inner)
        # the UDP checksum: as _Template.make, over the inner frame's words as made
        total = self.udp + int.from_bytes(inner + b"\x00" * (len(inner) & 1), "big")
        udp = 0xFFFF - (total % 0xFFFF or 0xFFFF) or 0xFFFF
        before, between, middle, after = self.pieces
        return self.layout.pack(before, value, between, checksum, middle, udp, after, inner)

    def expression(self, bind, made: list[str]) -> str:
        """`make` as an expression of a compiled segment (`_body`), its constants bound."""
        pack, pieces = bind(self.layout.pack, "pack"), [bind(p, "b") for p in self.pieces]
        inner = f"{made[self.inner]}[{self.skip}:]"
        value = f"(x := v[{self.source}])"
        checksum = f"0xFFFF - (({self.base} + x) % 0xFFFF or 0xFFFF)"
        if self.udp is None:
            before, between, after = pieces
            return f"{pack}({before}, {value}, {between}, {checksum}, {after}, {inner})"
        before, between, middle, after = pieces
        inner_length = len(self.data) - sum(map(len, self.pieces)) - 6  # as recorded
        pad = b"\x00" * (inner_length & 1)
        words = f"int.from_bytes((y := {inner}) + {pad!r}, 'big')"
        udp = f"0xFFFF - (({self.udp} + {words}) % 0xFFFF or 0xFFFF) or 0xFFFF"
        return f"{pack}({before}, {value}, {between}, {checksum}, {middle}, {udp}, {after}, y)"


def _sum(data: bytes) -> int:
    """The ones' complement sum of `data`'s 16-bit words, modulo 0xFFFF (as `checksum()`)."""
    return int.from_bytes(data + b"\x00" * (len(data) & 1), "big") % 0xFFFF


class Path:
    """A recorded segment, replayable while `generation` is current and before `expiry`."""

    __slots__ = (
        "generation",
        "expiry",
        "reader",
        "draws",
        "templates",
        "in_flight",
        "refreshed",
        "actions",
        "onward",
        "chains",
    )

    def __init__(self, **fields) -> None:
        # the function that replays it for each flow's label, made at the flow's first
        # replay (`_chained`)
        self.chains: dict[str, object] = {}
        for name, value in fields.items():
            setattr(self, name, value)


class _Recorder:
    """What the slow path did in one namespace for one segment (see `FlowCache._record`)."""

    def __init__(self, stack, tag, note) -> None:
        self.stack = stack
        self.tag = tag
        self.note = note
        # ("seen", observer, raw, frame, direction, note, tag), ("push", delay, fn, args),
        # ("deliver", fn, args), ("draw",), ("packet", tag, new tag): in the order they happened
        self.events: list = []
        self.draws: list[int] = []
        self.fit = True  # nothing uncertain happened
        self.paused = False  # inside a socket's callback: the application's doing, not ours
        self.sequence = stack.sched.sequence
        self.hops = 0  # frames seen by capture points
        self.callbacks = [0, 0]  # what the callbacks did: frames on links, hops logged

    def unfit(self, *_args) -> None:
        if not self.paused:
            self.fit = False

    def pushes(self) -> None:
        """The events the segment scheduled since the last look, in order."""
        sched = self.stack.sched
        for t_ns, fn, args in sched.scheduled_since(self.sequence):
            self.events.append(("push", t_ns - sched.now, fn, args))
        self.sequence = sched.sequence


class _Watched:
    """A device's observer while a segment is recorded: tells the recorder, then the observer."""

    __slots__ = ("recorder", "observer", "raw")

    def __init__(self, recorder: _Recorder, dev) -> None:
        self.recorder = recorder
        self.observer = dev.observer
        self.raw = not dev.link_layer  # its frames start with the IPv4 header

    def seen(self, frame, direction, tag, note="") -> None:
        recorder = self.recorder
        if not recorder.paused:
            recorder.pushes()
            recorder.events.append(("seen", self.observer, self.raw, frame, direction, note, tag))
            if type(self.observer) is Tap:
                recorder.hops += 1
        self.observer.seen(frame, direction, tag, note)

    def remark(self, event) -> None:
        self.recorder.unfit()
        self.observer.remark(event)


class _CountedIds:
    """A namespace's generator while a segment is recorded: IP IDs are noted, any other draw
    makes the segment unfit."""

    def __init__(self, recorder: _Recorder, ids) -> None:
        self._recorder = recorder
        self._ids = ids

    def ip_id(self) -> int:
        value = self._ids.ip_id()
        if not self._recorder.paused:
            self._recorder.draws.append(value)
            self._recorder.events.append(("draw",))
        return value

    def __getattr__(self, name: str):
        self._recorder.unfit()
        return getattr(self._ids, name)


class _Callback:
    """A socket's `on_datagram` while a segment is recorded: the call is the segment's end;
    what the application does in it is not the segment's."""

    def __init__(self, recorder: _Recorder, fn) -> None:
        self.recorder = recorder
        self.fn = fn

    def __call__(self, *args) -> None:
        recorder = self.recorder
        if recorder.paused:
            self.fn(*args)
            return
        recorder.pushes()
        recorder.events.append(("deliver", self.fn, args))
        network = recorder.stack.network
        in_flight, hops = network.in_flight, args[-1].log.hop_count
        recorder.paused = True
        try:
            self.fn(*args)
        finally:
            recorder.paused = False
            recorder.callbacks[0] += network.in_flight - in_flight
            recorder.callbacks[1] += args[-1].log.hop_count - hops
            recorder.sequence = recorder.stack.sched.sequence  # its events are its own


class _NewPacket:
    """`Journal.packet` while a segment is recorded: a new packet of the flow (the echo reply
    `Stack._icmp_receive` sends) is noted with its tag, in the order of the segment's events."""

    def __init__(self, recorder: _Recorder, method) -> None:
        self.recorder = recorder
        self.method = method

    def __call__(self, tag):
        recorder = self.recorder
        new = self.method(tag)
        if not recorder.paused:
            recorder.pushes()
            recorder.events.append(("packet", tag, new))
        return new


class _Unfit:
    """A journal method while a segment is recorded: a decision without a frame, a drop or a
    new flow make the segment unfit."""

    def __init__(self, recorder: _Recorder, method) -> None:
        self.recorder = recorder
        self.method = method

    def __call__(self, *args):
        self.recorder.unfit()
        return self.method(*args)


_JOURNAL_METHODS = ("decided", "dropped", "new_flow")


class FlowCache:
    """The flow cache of one network; `install` puts it in front of the slow path."""

    def __init__(self, network) -> None:
        self.network = network
        self.recording = False
        self.hits = 0  # segments replayed
        self.misses = 0  # segments that took the slow path
        self._fit: dict[object, tuple[int, bool]] = {}  # stack -> (generation, fit to record)
        self._opening: dict[str, list[int]] = {}  # a flow's label -> its first two packets' ids

    def opens(self, tag) -> bool:
        """Whether packet `tag` is one of the first two IPv4 packets of its flow (asked of
        those only): then it takes the slow path where it arrives, unkeyed
        (`_Arrivals.deliver`). Most flows of a large cluster are a request and its answer (a
        ping from each pod), whose keys would come once; a key costs about what a hop of the
        slow path does."""
        opening = self._opening.get(tag.label)
        if opening is None:  # a flow forgotten (`_keep`) opens again: two more unkeyed
            _keep(self._opening, tag.label, [tag.pid])
            return True
        if tag.pid in opening:
            return True
        if len(opening) < 2:
            opening.append(tag.pid)
            return True
        return False

    def install(self) -> None:
        """Route every namespace's sends and every veth's arrivals through the cache."""
        self.network.flow_cache = self
        # the VXLAN ports, once: devices are made before the run (a port added later would only
        # make keys more specific: fewer replays, never a wrong one)
        self.tunnels = self.network.vxlan_ports()
        for stack in self.network.stacks.values():
            if type(stack) is not Stack:
                continue
            stack.send_ip = self._sender(stack)
            for dev in stack.devices:
                if type(dev) is Veth:
                    dev.deliver = _Arrivals(self, dev).deliver

    # --- the two entry points -------------------------------------------------------------------

    def _sender(self, stack):
        paths: dict[tuple, Path] = {}
        slow = Stack.send_ip.__get__(stack)
        sched = stack.sched

        def send_ip(src, dst, proto, payload, tag, *, df=True, tos=0, ttl=64, note=""):
            # what the sender promised to do after this send (`Scheduler.promise`) is this
            # send's own: a send made inside it finds none; it is given back when the send
            # is done, unless a hand-over took it up (`Scheduler.hand_over_sent`)
            promised, sched.promised = sched.promised, None
            try:
                if proto == PROTO_UDP:
                    key, sent = (src, dst, payload, df, tos, ttl, not note), None
                elif proto == PROTO_ICMP and _is_echo(payload):  # a ping socket's echo request
                    key = (src, dst, proto, echo_key(payload), df, tos, ttl, not note)
                    sent = payload
                else:
                    key = None
                if key is None or self.stands_aside(tag):
                    slow(src, dst, proto, payload, tag, df=df, tos=tos, ttl=ttl, note=note)
                    return
                path = paths.get(key)
                if _current(path, sched.now):
                    self.hits += 1
                    chain = path.chains.get(tag.label) or self._compile(
                        path, stack, tag.label, True
                    )
                    chain(sent, tag, note, promised)
                    return
                self.misses += 1
                if _first_sight(paths, key):
                    slow(src, dst, proto, payload, tag, df=df, tos=tos, ttl=ttl, note=note)
                    return

                def run() -> None:
                    slow(src, dst, proto, payload, tag, df=df, tos=tos, ttl=ttl, note=note)

                self._record(stack, paths, key, run, None, tag, note, sent)
            finally:
                if sched.promised is None:
                    sched.promised = promised

        return send_ip

    def stands_aside(self, tag) -> bool:
        """Whether packet `tag` takes the slow path unrecorded: a crafted packet, a run whose
        netem corrupts frames, or one arriving while a segment is recorded."""
        return tag.checked or self.network.corrupting or self.recording

    # --- replay ---------------------------------------------------------------------------------

    def _compile(self, path: Path, stack, label: str, sent: bool):
        """The function that replays `path` in `stack` for the flow of `label` (a send's, or
        an arrival's), and the recordings its packet goes on to (`_chained`), compiled at the
        flow's first replay and kept."""
        chain = path.chains[label] = _chained(path, stack, self, label, sent)
        return chain

    def _resume(self, head: Path | None, expected: Path | None, arrivals, frame, tag, key) -> None:
        """Where a chain (`_chained`) hands its packet to a namespace it has not compiled (or
        not as it is now): the packet goes on there through the cache. A recording found there
        that the chain did not expect (made, or made again, since the chain was compiled) has
        the chain of `head` compiled again at its next replay, with it."""
        path = arrivals.current(key, tag)
        if path is None:
            arrivals.keyed(frame, tag, key)  # the slow path, recorded if it can be
            return
        if head is not None and path is not expected:
            head.chains.clear()
        self.hits += 1
        stack = arrivals.stack
        (path.chains.get(tag.label) or self._compile(path, stack, tag.label, False))(frame, tag)

    # --- recording ------------------------------------------------------------------------------

    def _record(
        self, stack, paths: dict, key, run, frame: bytes | None, tag, note, sent=None
    ) -> None:
        """Run the slow path (`run`) with `stack` watched; keep what it did under `key` in
        `paths` if it can be replayed exactly (`sent`: the ICMP echo message a send sent,
        whose changing words the reader reads): for a key seen before (`_first_sight`)."""
        if not self._fit_to_record(stack):
            run()
            return
        network, journal = self.network, self.network.journal
        recorder = _Recorder(stack, tag, note)
        before = generation.current()
        fdb = [
            (dev.fdb, mac, entry, entry.updated_ns)
            for dev in stack.devices
            if type(dev) is Bridge
            for mac, entry in dev.fdb.entries.items()
            if not entry.local
        ]
        in_flight, pending, hops = network.in_flight, network.pending, tag.log.hop_count
        devices = list(stack.devices)
        sockets = [(s, "on_datagram", s.on_datagram) for s in stack.udp_sockets.values()]
        sockets += [(s, "on_icmp", s.on_icmp) for s in stack.ping_sockets.values()]
        ids = stack.ids
        self.recording = True
        try:
            for dev in devices:
                dev.observer = _Watched(recorder, dev)
            for name in _JOURNAL_METHODS:
                setattr(journal, name, _Unfit(recorder, getattr(journal, name)))
            journal.packet = _NewPacket(recorder, journal.packet)
            for socket, name, fn in sockets:
                setattr(socket, name, _Callback(recorder, fn))
            stack.ids = _CountedIds(recorder, ids)
            run()
            recorder.pushes()
        finally:
            self.recording = False
            stack.ids = ids
            for socket, name, fn in sockets:
                setattr(socket, name, fn)
            for name in (*_JOURNAL_METHODS, "packet"):
                delattr(journal, name)
            for dev in devices:
                dev.observer = dev.observer.observer
        moved, logged = recorder.callbacks
        if (
            not recorder.fit
            or generation.current() != before
            or network.pending != pending
            or tag.log.hop_count - logged - hops != recorder.hops  # no other namespace's
        ):
            return
        refreshed = [
            entry
            for table, mac, entry, updated in fdb
            if table.entries.get(mac) is entry and entry.updated_ns != updated
        ]
        path = _path(recorder, frame, self.tunnels, sent)
        if path is None:
            return
        path.generation = before
        path.expiry = _expiry(stack)
        path.in_flight = network.in_flight - in_flight - moved
        path.refreshed = refreshed
        _keep(paths, key, path)

    def _fit_to_record(self, stack) -> bool:
        """Whether the namespace's segments can be recorded: only devices of known kinds, no
        qdisc, policy, tc program, socket load balancer or socket of another kind (decided again in
        each generation)."""
        known = self._fit.get(stack)
        now = generation.current()
        if known is not None and known[0] == now:
            return known[1]
        netfilter = stack.netfilter
        fit = stack.socket_lb is None and (netfilter is None or netfilter.policy is None)
        fit = fit and all(_known(dev) for dev in stack.devices)
        # a socket of another kind (an overlay's own tunnel) is a datapath of its own
        fit = fit and all(type(socket) is UdpSocket for socket in stack.udp_sockets.values())
        self._fit[stack] = (now, fit)
        return fit


def _made(templates: list, bind, made: list[str]) -> list[str]:
    """The lines of a compiled segment that make `templates`' frames, each named in `made`
    (which holds the names of the frames before them) as it is made."""
    lines = []
    for template in templates:
        name = f"f{len(made)}"
        if type(template) in (_Slice, _OneHeader, _Encap):
            lines.append(f"    {name} = {template.expression(bind, made)}")
        else:
            lines.append(f"    {name} = {bind(template, 't')}.make(v, [{', '.join(made)}])")
        made.append(name)
    return lines


def _body(path: Path, names: Names, stack, label: str) -> tuple[list[str], list[str]]:
    """The lines that replay `path` in `stack`, with `frame` (the input frame; for a send, the
    echo message sent, or None), `tag` and `note` in hand, and the names of the frames they
    make, by index. The same operations `Path`'s fields describe, with their constants bound
    in `names`, without looking them up: a replay runs straight through what the path does;
    its capture points' records for the flow of `label` too (`Hops.lines`)."""
    bind = names.bind
    lines = []
    made = ["frame"]  # the frames so far, by index
    # the packet's changing words: the input's, then the IDs drawn (always drawn, as the slow
    # path draws them), read only if a frame is made from them
    values, read = [], any(type(template) is not _Slice for template in path.templates)
    if path.reader is not None and read:
        values.append(f"*{bind(path.reader.unpack_from, 'unpack')}(frame)")
    if path.draws:
        lines.append(f"    draw = {bind(stack.ids, 'ids')}.ip_id")
        values += ["draw()"] * path.draws
    if values or read:
        lines.append(f"    v = ({''.join(value + ', ' for value in values)})")
    lines += _made(path.templates, bind, made)
    frames = f"[{', '.join(made)}]"
    if path.in_flight:
        lines.append(f"    network.in_flight += {path.in_flight}")
    if path.refreshed:
        lines.append("    now = sched.now")
        lines += [f"    {bind(entry, 'e')}.updated_ns = now" for entry in path.refreshed]
    for kind, a, b, c, d in path.actions:
        if kind is _HOPS:  # `a` the hops, `b` made per label, `c` the frames' lengths
            hops = b.get(label)
            if hops is None:
                hops = b[label] = Hops(a, c, label)
            if hops.blocks is None:  # a tap not declared yet: hop by hop, for this flow
                lines.append(f"    {bind(hops.seen, 'seen')}({frames}, tag, note)")
                continue
            lines += [
                "    log = tag.log",
                "    count = log.hop_count",
                f"    if {hops.hop_by_hop(bind)}:",
                f"        {bind(hops.each, 'each')}({frames}, tag, note)",
                "    else:",
                *hops.lines(bind, made, "        "),
            ]
        elif kind is _SEEN:
            said = "note" if d is _INPUT else bind(d, "note")
            lines.append(f"    {bind(a.seen, 'seen')}({made[b]}, {bind(c, 'way')}, tag, {said})")
        elif kind is _PUSH:
            keyed, key = bind(b.keyed, "keyed"), bind(d, "key")
            lines.append(f"    sched.after({a}, {keyed}, {made[c]}, tag, {key})")
        elif kind is _PACKET:  # a new packet of the flow: the tag from here on is its
            lines.append("    tag = network.journal.packet(tag)")
        else:  # a socket gets the datagram (or a ping socket the packet): a frame's end
            fn, args = bind(a, "deliver"), bind(b, "args")
            lines.append(f"    {fn}(*{args}, {made[c]}[{d}:], tag)")
    return lines, made


def _chained(head: Path, stack, cache: FlowCache, label: str, sent: bool):
    """The function that replays `head` in `stack` for the flow of `label` and hands its
    packet on as the slow path would, but at once when the event that delivers it at the far
    end would be the next to run anyway (`Scheduler.hand_over`); where a recording there is
    current now, its replay follows in the same function, and so on along the packet's way.
    Each hand-over checks what of `_Arrivals.current` a chain can change: the recording there
    is before its expiry; if not, the packet goes on through the cache (`FlowCache._resume`),
    as it does where the chain ends. The rest holds along the chain once it held where the
    chain began: the cache stands aside for a packet (`FlowCache.stands_aside`) for the whole
    way or not at all (its tag's `checked`, and a new packet's made of it, the run's
    corruption and the cache's recording do not change inside a replay); the recordings were
    all current when the chain was compiled, so of one generation, the first's, and a replay
    changes no state that makes a new one (`_current`); and a recording no longer kept for its
    key (forgotten, or recorded again since) is as exact as it was while it is current.
    An arrival's is `chain(frame, tag)`. A send's (`sent`) is `chain(frame, tag, note,
    promised)`, `frame` the echo message sent or None, `promised` what the sender promised to
    do after the send: its packet is handed over only then (`Scheduler.hand_over_sent`)."""
    names = Names(sched=stack.sched, network=cache.network, cache=cache)
    bind = names.bind
    if sent:
        lines = ["def chain(frame, tag, note, promised):"]
        hand_over = "sched.hand_over_sent(promised, "
    else:
        lines = ["def chain(frame, tag):", "    note = ''"]
        hand_over = "sched.hand_over("
    path, joined, head_name = head, {head}, bind(head, "head")
    while True:
        body, made = _body(path, names, stack, label)
        lines += body
        if path.onward is None:
            break
        delay, arrivals, index, key = path.onward
        held, key_name = bind(arrivals, "arrivals"), bind(key, "key")
        keyed = bind(arrivals.keyed, "keyed")  # one bound method, not one made a packet
        lines += [
            f"    frame = {made[index]}",
            f"    if not {hand_over}{delay}):",
            f"        sched.after({delay}, {keyed}, frame, tag, {key_name})",
            "        return",
        ]
        hand_over = "sched.hand_over("
        after = arrivals.paths.get(key)
        if after in joined or len(joined) == _MAX_CHAIN:  # a loop, or long enough
            lines.append(f"    cache._resume(None, None, {held}, frame, tag, {key_name})")
            break
        if not _current(after, stack.sched.now):  # none yet: compiled again once there is
            lines.append(f"    cache._resume({head_name}, None, {held}, frame, tag, {key_name})")
            break
        name = bind(after, "path")
        lines += [
            f"    if sched.now >= {name}.expiry:",
            f"        return cache._resume({head_name}, {name}, {held}, frame, tag, {key_name})",
            "    cache.hits += 1",
            "    note = ''",
        ]
        path, stack = after, arrivals.stack
        joined.add(path)
    return names.function(lines)


class _Arrivals:
    """A veth's arrivals through the cache: `deliver` is the veth's (a frame from its peer),
    `keyed` the same with the frame's key known (a replayed segment's frame, to the next)."""

    __slots__ = ("cache", "stack", "paths", "slow", "tunnels")

    def __init__(self, cache: FlowCache, dev) -> None:
        self.cache = cache
        self.stack = dev.stack
        self.paths: dict[bytes, Path] = {}
        self.slow = Veth.deliver.__get__(dev)
        self.tunnels = cache.tunnels

    def deliver(self, frame: bytes, tag) -> None:
        if frame[12:14] != _ETH_IP or self.cache.opens(tag):
            self.slow(frame, tag)  # not IPv4 (no key), or the start of its flow
            return
        key = frame_key(frame, self.tunnels)  # `keyed` asks whether the cache stands aside
        if key is None:
            self.slow(frame, tag)
            return
        self.keyed(frame, tag, key)

    def keyed(self, frame: bytes, tag, key: bytes) -> None:
        cache, stack, slow = self.cache, self.stack, self.slow
        if cache.stands_aside(tag):
            slow(frame, tag)
            return
        path = self.paths.get(key)
        if _current(path, stack.sched.now):
            cache.hits += 1
            chain = path.chains.get(tag.label) or cache._compile(path, stack, tag.label, False)
            chain(frame, tag)
            return
        cache.misses += 1
        if _first_sight(self.paths, key):
            slow(frame, tag)
            return
        cache._record(stack, self.paths, key, lambda: slow(frame, tag), frame, tag, "")

    def current(self, key: bytes, tag) -> Path | None:
        """The recording to replay for a frame of `key` now, if there is one."""
        path = self.paths.get(key)
        if _current(path, self.stack.sched.now) and not self.cache.stands_aside(tag):
            return path
        return None


def _current(path: Path | None, now: int) -> bool:
    """Whether `path` may be replayed at `now`: in the generation it was recorded in, before
    its expiry (the invalidation rule)."""
    return path is not None and path.generation == generation._generation and now < path.expiry


def _first_sight(paths: dict, key) -> bool:
    """Whether `key` comes for the first time at the entry point of `paths`; then it is noted
    (None), not recorded: recording costs more than the slow path, and most keys of a large
    cluster come once (a ping from each pod)."""
    if key in paths:
        return False
    _keep(paths, key, None)
    return True


def _keep(paths: dict, key, path) -> None:
    """`paths[key] = path`, the oldest half of `paths` forgotten when it is full (an entry
    point's recordings, or the flows' openings)."""
    if len(paths) >= _MAX_PATHS:
        for old in list(paths)[: _MAX_PATHS // 2]:
            del paths[old]
    paths[key] = path


def _known(dev) -> bool:
    """A device whose decisions read only what kpkt/engine/generation.py counts: of a known
    kind, a port of nothing or of a Linux bridge (not of an overlay router), no tc program."""
    if type(dev) not in _KNOWN_DEVICES or dev.tc_ingress is not None or dev.tc_egress is not None:
        return False
    if dev.master is not None and type(dev.master) is not Bridge:
        return False
    return dev.guard is None and (type(dev) is not Veth or dev.qdisc is None)


def _expiry(stack) -> int:
    """The first moment a timer changes an entry of the namespace's tables: an FDB entry ages
    out, a REACHABLE neighbour goes STALE. (An entry already past it was not read: reading it
    would have changed it.)"""
    now = stack.sched.now
    soonest = _NEVER
    for dev in stack.devices:
        if type(dev) is Bridge:
            ageing = dev.fdb.ageing_ns
            for entry in dev.fdb.entries.values():
                if not entry.local and now < entry.updated_ns + ageing < soonest:
                    soonest = entry.updated_ns + ageing
    for table in stack.arp.tables.values():
        for entry in table.entries.values():
            if entry.state is Nud.REACHABLE:
                stale = entry.updated_ns + table.reachable_ns + 1
                if now < stale < soonest:
                    soonest = stale
    return soonest


_NEVER = 1 << 62


def _path(recorder: _Recorder, frame: bytes | None, tunnels: frozenset[int], sent) -> Path | None:
    """What the recorded segment did, as actions to replay; None when it cannot be replayed
    exactly (an IP ID from no known source, a note that quotes the packet's own, a frame of
    another packet than the input's or the one it made, ...). `sent`: the echo message a send
    sent, as for `_record`."""
    sources = _Sources(frame, tunnels, recorder.draws, sent)
    if sources.ambiguous:
        return None  # two sources with the same ID: which one a frame carries is unclear
    values = sources.values
    templates: list[_Template] = []
    raws = [False]  # whether each frame starts with its IPv4 header: the input's does not
    index_of: dict[bytes, int] = {} if frame is None else {frame: 0}

    def index(data: bytes, raw: bool) -> int | None:
        known = index_of.get(data)
        if known is not None:
            return known
        ips: list[int] = []
        sums: list[tuple[int, int]] = []
        if not raw and data[12:14] != _ETH_IP:
            return None
        if not _layout(data, 0 if raw else 14, tunnels, ips, sums):
            return None
        template = _Template.of(data, ips, sorted(sums, reverse=True), sources)
        # (for a send, the first is the message sent: no frame holds or equals it, it is
        # shorter than the packet that carries it)
        made = [sources.input] + [template.data for template in templates]
        if template is None or template.make(values, made) != data:
            return None  # a checksum the builders would not make
        template = _fastest(template, made, raws, ips, sums, sources.fields)
        if template.make(values, made) != data:
            return None  # never: each form is the same frame made with fewer operations
        templates.append(template)
        raws.append(raw)
        index_of[data] = len(templates)
        return len(templates)

    actions: list[tuple] = []
    delivered = False
    tag = recorder.tag  # the packet the frames are of: the input's, then each new one's
    for event in recorder.events:
        kind = event[0]
        if kind == "draw":
            if delivered:
                return None
        elif kind == "packet":  # replayed as the same call: the same next packet id
            if delivered or event[1] is not tag:
                return None
            tag = event[2]
            actions.append((_PACKET, None, None, None, None))
        elif kind == "seen":
            _, observer, raw, data, direction, note, seen_as = event
            where = index(data, raw)
            if where is None or seen_as is not tag or _quotes(note, recorder.note):
                return None
            sent = note is recorder.note or (note and note == recorder.note)
            actions.append((_SEEN, observer, where, direction, _INPUT if sent else note))
        elif kind == "push":
            _, delay, fn, args = event
            arrivals = getattr(fn, "__self__", None)  # a veth's arrivals, through the cache
            if type(arrivals) is not _Arrivals or len(args) != 2 or args[1] is not tag:
                return None
            where = index(args[0], False)
            key = frame_key(args[0], tunnels)
            if where is None or key is None:
                return None
            actions.append((_PUSH, delay, arrivals, where, key))
        else:
            _, fn, args = event
            # a UDP socket's (source, source port, destination, payload, tag): the payload is
            # the end of the newest frame, past its IPv4 and UDP headers; a ping socket's
            # (packet, tag): the newest frame's IPv4 packet
            newest = actions[-1] if actions and actions[-1][0] is _SEEN else None
            ends = {5: (_IP_UDP, ETH_LEN + _IP_UDP), 2: (0, ETH_LEN)}.get(len(args))
            if ends is None or args[-1] is not tag or newest is None:
                return None
            data = frame if newest[2] == 0 else templates[newest[2] - 1].data
            offset = len(data) - len(args[-2])
            if offset not in ends or data[offset:] != args[-2]:
                return None
            delivered = True
            actions.append((_DELIVER, fn, args[:-2], newest[2], offset))
    lengths = [len(frame or b"")] + [len(template.data) for template in templates]
    onward = actions.pop()[1:] if actions and actions[-1][0] is _PUSH else None
    return Path(
        reader=sources.reader(),
        draws=len(recorder.draws),
        templates=templates,
        actions=_grouped(actions, bool(recorder.note), lengths),
        onward=onward,
    )


def _fastest(template: _Template, frames: list, raws: list, ips: list, sums: list, fields: list):
    """`template`, or what makes the same frames with fewer operations; `frames`: the input
    (a frame, or the message a socket sent) and the frames made before, as recorded, `raws`:
    which of them start with the IPv4 header."""
    return (
        _OneHeader.of(template, frames[0], fields)
        or _Slice.of(template, frames[0], fields)
        or _Encap.of(template, frames, raws, ips, sums)
        or template
    )


def _grouped(actions: list[tuple], noted: bool, lengths: list[int]) -> list[tuple]:
    """`actions` with every run of frames seen by taps as one action: the taps' `Hops`, made
    for each flow label when first replayed; a note that is the one the packet was sent with
    is `SENT` there, in at most one hop of a run (none, when the recorded packet had none)."""
    grouped: list[tuple] = []
    run: list[tuple] = []
    for action in actions:
        kind, observer, where, direction, note = action
        if kind is _SEEN and type(observer) is Tap:
            if note is _INPUT:
                note = SENT if noted else ""
            if note is SENT and any(hop[3] is SENT for hop in run):
                grouped.append((_HOPS, run, {}, lengths, None))
                run = []
            run.append((observer, where, direction, note))
            continue
        if run:
            grouped.append((_HOPS, run, {}, lengths, None))
            run = []
        grouped.append(action)
    if run:
        grouped.append((_HOPS, run, {}, lengths, None))
    return grouped


class _Sources:
    """Where the words of a replayed frame that change from packet to packet come from: the
    input's (a frame's IP IDs, IP header checksums and tunnel UDP checksums, and the
    `_echo_words` of the ICMP echo message it carries, or of the echo message a socket sent:
    at `fields`, in order) and the IP IDs the namespace draws, in that order in `values`."""

    def __init__(
        self, frame: bytes | None, tunnels: frozenset[int], draws: list[int], sent=None
    ) -> None:
        """`sent`: for a send, the ICMP echo message the socket sent (None: a UDP datagram)."""
        self.headers: dict[bytes, tuple[int, int]] = {}  # an input IP header -> its words
        self.datagrams: dict[bytes, int] = {}  # an input tunnel datagram -> its checksum's
        ids: list[int] = []  # the indexes of IP IDs
        ips: list[int] = []
        sums: list[tuple[int, int]] = []
        echo, data = (None, frame) if sent is None else (0, sent)
        if frame is not None:
            _layout(frame, 14, tunnels, ips, sums)
            echo = _echo_at(frame, ips)
        # the input's echo message (to compare with the ones made) and its words' indexes
        self.input = data  # the frame, or the message sent
        self.message = None if echo is None else data[echo:]
        words = [] if echo is None else [echo + at for at in _echo_words(len(data) - echo)]
        self.fields = sorted(
            [ip + 4 for ip in ips] + [ip + 10 for ip in ips] + [at for at, _ in sums] + words
        )
        index = {at: position for position, at in enumerate(self.fields)}
        self.echo = {at - echo: index[at] for at in words}  # offset in the message -> index
        for ip in ips:
            ids.append(index[ip + 4])
            self.headers.setdefault(frame[ip : ip + 20], (index[ip + 4], index[ip + 10]))
        for at, ip in sums:
            end = ip + (frame[ip + 2] << 8 | frame[ip + 3])
            self.datagrams.setdefault(frame[ip + 20 : end], index[at])
        self.values = [data[at] << 8 | data[at + 1] for at in self.fields] + draws
        ids += range(len(self.fields), len(self.values))
        self.ids = {self.values[index]: index for index in ids}
        self.ambiguous = len(self.ids) != len(ids)

    def reader(self) -> struct.Struct | None:
        """What reads the input's words at `fields`, in order, with one unpack."""
        if not self.fields:
            return None
        layout, at = ">", 0
        for field in self.fields:
            layout += f"{field - at}xH"
            at = field + 2
        return struct.Struct(layout)


def _quotes(note, sent) -> bool:
    """Whether `note` holds the note the packet was sent with inside another decision (it
    would differ for the next packet)."""
    if type(note) is not Decision or note.why is not Why.THEN or not sent:
        return False
    return any(arg is sent or arg == sent or _quotes(arg, sent) for arg in note.args)
