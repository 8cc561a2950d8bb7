"""Connection tracking with NAT, for one node's namespace, as netfilter does it.

The first packet of a connection decides everything. In PREROUTING (or OUTPUT, for the node's
own packets) it meets the nat rules registered with the namespace's netfilter
(kpkt/net/netfilter.py), which may DNAT it to a service endpoint; in POSTROUTING (or when it is
delivered locally) the connection is confirmed and may be masqueraded, as the nat POSTROUTING
rules say. The connection then knows the reply it expects, and every later packet of either
direction is translated from that entry:

    original (s:sp -> d:dp)    PREROUTING dst -> d':dp' (DNAT)   POSTROUTING src -> s':sp' (SNAT)
    reply (d':dp' -> s':sp')   PREROUTING dst -> s:sp (un-SNAT)  POSTROUTING src -> d:dp (un-DNAT)

Local delivery (INPUT) does the POSTROUTING kind of translation, as the kernel's LOCAL_IN hook.
ICMP errors that quote a packet of a translated connection (RELATED) are translated as
`nf_nat_icmp_reply_translation()` does: the quoted packet back to what its sender sent, the outer
header to match the connection.

Each table maps a flow key (the protocol and a slice of the packet's own bytes) to what to do,
so a packet of a known connection costs one dict lookup per hook. What each translation did is
a decision (kpkt/observe.py), made once per connection and direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from kpkt.engine import generation
from kpkt.net.kubeproxy import Removed
from kpkt.net.nat import Flow, FlowKey, flow_key, flow_of, key_of, rewrite
from kpkt.observe import Decision, Why
from kpkt.wire import icmp
from kpkt.wire.icmp import ICMP_LEN
from kpkt.wire.ipv4 import IP_HEADER_LEN, PROTO, PROTO_ICMP, PROTO_UDP

# which of a connection's four flow keys a table entry is
ORIGINAL_IN, ORIGINAL_OUT, REPLY_IN, REPLY_OUT = range(4)


@dataclass(slots=True)
class Conn:
    original: Flow  # the first packet as it arrived (or was sent)
    dnat: tuple[bytes, int] | None = None  # the destination kube-proxy translated it to
    snat: tuple[bytes, int] | None = None  # the source it left with, when masqueraded
    masquerade_mark: bool = False  # KUBE-MARK-MASQ
    dnat_decision: Decision | str = ""
    snat_decision: Decision | str = ""

    def reply(self) -> Flow:
        """The reply it expects: from the (translated) destination to the (translated) source."""
        proto, src, sport, dst, dport = self.original
        dst, dport = self.dnat or (dst, dport)
        src, sport = self.snat or (src, sport)
        if proto == PROTO_ICMP:
            return proto, dst, sport, src, sport
        return proto, dst, dport, src, sport


class Entry(NamedTuple):
    """One flow key of a connection: the address (and port) a packet with that key gets, on
    the side the hook rewrites, or None when it passes unchanged (a tuple: a connection
    makes four, made in a third of a frozen dataclass's time)."""

    conn: Conn
    kind: int
    rewrite_to: tuple[bytes, int] | None
    decision: Decision | str


class Conntrack:
    def __init__(self, stack, rules) -> None:
        self.stack = stack
        self.rules = rules  # the namespace's Netfilter: the nat rules a new connection meets
        self.incoming: dict[FlowKey, Entry] = {}  # PREROUTING and OUTPUT: destination rewrites
        self.outgoing: dict[FlowKey, Entry] = {}  # POSTROUTING and INPUT: source rewrites
        self.unconfirmed: dict[FlowKey, Conn] = {}  # seen in PREROUTING, not yet confirmed
        self.translating = False  # any connection translated: replies need PREROUTING
        # whether PREROUTING has anything to do: DNAT rules, or translations to undo
        self.active = False

    def endpoints_removed(self, removed: set[Removed]) -> None:
        """kube-proxy removed endpoints from service ports: it deletes the UDP connections
        DNATed from such a port to such an endpoint (`conntrack -D -p udp --orig-dst <vip>
        --dst-nat <endpoint>`: a UDP flow would stay stuck on it)."""
        generation.changed()
        for table in (self.incoming, self.outgoing):
            for key, entry in list(table.items()):
                proto, _, _, dst, dport = entry.conn.original
                dnat = entry.conn.dnat
                if proto == PROTO_UDP and dnat and (proto, dst, dport, dnat[0]) in removed:
                    del table[key]

    def _translates(self) -> None:
        self.translating = self.active = True

    # --- PREROUTING and OUTPUT ----------------------------------------------------------------

    def prerouting(self, packet: bytes) -> tuple[bytes, Decision | str]:
        """Destination NAT for a packet arriving (or sent by the node itself, in OUTPUT): a new
        connection meets the nat rules, a known one is translated from its entry."""
        key = flow_key(packet)
        if key is None:
            return self._related(packet, self.incoming)
        entry = self.incoming.get(key)
        if entry is None:
            entry = self._new(packet, key)
        if entry.rewrite_to is None:
            return packet, ""
        return rewrite(packet, dst=entry.rewrite_to), entry.decision

    def _new(self, packet: bytes, key: FlowKey) -> Entry:
        generation.changed()
        flow = flow_of(packet)
        conn = Conn(flow)
        proto, src, _, dst, dport = flow
        dnat = self.rules.dnat(proto, src, dst, dport, self.stack.ids.pick)
        if dnat is not None:
            conn.dnat = (dnat.address, dnat.port)
            conn.masquerade_mark = dnat.masquerade
            conn.dnat_decision = dnat.decision
            self._translates()
        entry = Entry(conn, ORIGINAL_IN, conn.dnat, conn.dnat_decision)
        self.incoming[key] = entry
        self.unconfirmed[key_of(_translated(flow, dst=conn.dnat))] = conn
        return entry

    def translated_reply(self, packet: bytes) -> bool:
        """Whether `packet` is a reply of a connection this node translated: only the stack's
        hooks can undo its NAT."""
        if not self.translating:
            return False
        key = flow_key(packet)
        entry = None if key is None else self.incoming.get(key)
        return (
            entry is not None
            and entry.kind == REPLY_IN
            and (entry.conn.dnat is not None or entry.conn.snat is not None)
        )

    # --- POSTROUTING and INPUT ----------------------------------------------------------------

    def postrouting(self, packet: bytes, dev) -> tuple[bytes, Decision | str]:
        """Source NAT for a packet leaving through `dev`: a new connection is confirmed (and
        masqueraded if the nat rules say so)."""
        key = flow_key(packet)
        if key is None:
            return self._related(packet, self.outgoing) if self.translating else (packet, "")
        entry = self.outgoing.get(key)
        if entry is None:
            entry = self._confirm(packet, key, dev)
        if entry.rewrite_to is None:
            return packet, ""
        return rewrite(packet, src=entry.rewrite_to), entry.decision

    def local_in(self, packet: bytes) -> tuple[bytes, Decision | str]:
        """The INPUT hook: replies to the node's own connections get their un-DNAT."""
        return self.postrouting(packet, None)

    def _confirm(self, packet: bytes, key: FlowKey, dev) -> Entry:
        generation.changed()
        conn = self.unconfirmed.pop(key, None)
        if conn is None:  # not seen in PREROUTING: the node's own, or from before services
            flow = flow_of(packet)
            conn = Conn(flow)
            self.incoming.setdefault(key, Entry(conn, ORIGINAL_IN, None, ""))
        if dev is not None:
            # the nat rules see the addresses the packet has now (after DNAT)
            _, src, _, dst, _ = _translated(conn.original, dst=conn.dnat)
            by = self.rules.masquerader(conn.masquerade_mark, src, dst)
            if by is not None:
                self._masquerade(conn, dev, by)
        self._index(conn, key)
        return self.outgoing[key]

    def _masquerade(self, conn: Conn, dev, by: str) -> None:
        proto, src, sport, _, _ = conn.original
        dst = (conn.dnat or conn.original[3:5])[0]
        ids = self.stack.ids
        port = ids.ping_id() if proto == PROTO_ICMP else ids.masquerade_port(sport)
        address = self.stack.primary_ip(dev, dst)
        conn.snat = (address, port)
        conn.snat_decision = Decision(Why.MASQUERADE, by, src, sport, address, port)
        self._translates()

    def _index(self, conn: Conn, out_key: FlowKey) -> None:
        """Enter the connection's other keys: its original packets leaving, its replies
        arriving and leaving."""
        proto, src, sport, dst, dport = conn.original
        self.outgoing[out_key] = Entry(conn, ORIGINAL_OUT, conn.snat, conn.snat_decision)
        reply = conn.reply()
        reply_in = key_of(reply)
        undo_snat = (src, sport) if conn.snat else None
        decision = Decision(Why.UNDO_SNAT, src, sport) if conn.snat else ""
        self.incoming[reply_in] = Entry(conn, REPLY_IN, undo_snat, decision)
        reply_out = key_of(_translated(reply, dst=undo_snat))
        undo_dnat = (dst, dport) if conn.dnat else None
        decision = Decision(Why.UNDO_DNAT, dst, dport) if conn.dnat else ""
        self.outgoing[reply_out] = Entry(conn, REPLY_OUT, undo_dnat, decision)

    # --- ICMP errors about a tracked connection (RELATED) -------------------------------------

    def _related(self, packet: bytes, table: dict[FlowKey, Entry]) -> tuple[bytes, Decision | str]:
        ihl = IP_HEADER_LEN[packet[0]]
        if packet[PROTO] != PROTO_ICMP or packet[ihl] not in icmp.ERROR_TYPES:
            return packet, ""
        quoted = packet[ihl + ICMP_LEN :]
        inner = flow_of(quoted)
        if inner is None:
            return packet, ""
        proto, qsrc, qsport, qdst, qdport = inner
        if proto == PROTO_ICMP:
            qdport = qsport
        entry = table.get(key_of((proto, qdst, qdport, qsrc, qsport)))
        if entry is None:
            return packet, ""
        fix = _error_fix(entry)
        if fix is None:
            return packet, ""
        inner_side, outer_side, (address, port) = fix
        quoted = rewrite(quoted, **{inner_side: (address, port)}, partial=True)
        outer = rewrite(packet[: ihl + ICMP_LEN] + quoted, **{outer_side: (address, None)})
        return outer, Decision(Why.RELATED, outer_side == "dst", address)


def _error_fix(entry: Entry) -> tuple[str, str, tuple[bytes, int]] | None:
    """For an ICMP error whose quoted packet, inverted, has `entry`'s key: which side of the
    quoted packet and of the outer header to set, and to what."""
    conn = entry.conn
    proto, src, sport, dst, dport = conn.original
    if entry.kind == REPLY_IN and conn.snat:  # an error about our packet, coming back
        return "src", "dst", (src, sport)
    if entry.kind == REPLY_OUT and conn.dnat:  # ... going on to the client
        return "dst", "src", (dst, dport)
    if entry.kind == ORIGINAL_IN and conn.dnat:  # an error about a reply, coming back
        return "src", "dst", conn.dnat
    if entry.kind == ORIGINAL_OUT and conn.snat:  # ... going on to the server
        return "dst", "src", conn.snat
    return None


def _translated(flow: Flow, *, dst: tuple[bytes, int] | None) -> Flow:
    if dst is None:
        return flow
    proto, src, sport, _, _ = flow
    return proto, src, sport, dst[0], sport if proto == PROTO_ICMP else dst[1]
