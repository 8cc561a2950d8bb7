"""ARP as `net/ipv4/arp.c` and `net/core/neighbour.c` do it, for one namespace's stack.

Answers requests for any local address (arp_ignore 0) and, on a device with proxy_arp, for any
address the namespace routes out of another device; learns the requester passively (a new
entry is STALE; a known entry with the same MAC keeps its state), takes replies only for entries
it asked about (arp_accept 0), queues packets while a neighbour is INCOMPLETE, and runs the
retransmit and DELAY/PROBE timers on the virtual clock.
"""

from __future__ import annotations

from kpkt.engine import generation
from kpkt.net.neighbor import (
    DELAY_FIRST_PROBE_NS,
    MCAST_SOLICIT,
    RETRANS_TIME_NS,
    UCAST_SOLICIT,
    UNRES_QLEN,
    Neighbor,
    NeighborTable,
    Nud,
)
from kpkt.observe import Decision, Tag, Why
from kpkt.wire import icmp
from kpkt.wire.arp import ARP_REPLY, ARP_REQUEST, arp_fields, arp_frame
from kpkt.wire.ethernet import BROADCAST, ZERO_MAC
from kpkt.wire.ipv4 import IP_SRC

_ANY = b"\x00\x00\x00\x00"  # the sender address of a DAD probe
# the states as module names: an Enum member read as a class attribute costs a lookup
_INCOMPLETE, _REACHABLE, _STALE = Nud.INCOMPLETE, Nud.REACHABLE, Nud.STALE
_DELAY, _PROBE, _FAILED, _PERMANENT = Nud.DELAY, Nud.PROBE, Nud.FAILED, Nud.PERMANENT


def _reflected(sha: bytes, spa: bytes, dev) -> bool:
    """Our own request, reflected by a hairpin port; or a DAD probe."""
    return sha == dev.mac or spa == _ANY


def _nothing_to_learn(op: int, ours: bool, spa: bytes, dev, table: NeighborTable) -> bool:
    """A broadcast for another host, from one we do not know (and do not answer by proxy)."""
    return op == ARP_REQUEST and not ours and spa not in table.entries and not dev.proxy_arp


def _known_sender(entry: Neighbor, sha: bytes) -> bool:
    """A request from a sender whose entry has its MAC and is resolved (or being checked):
    the entry keeps its state (neigh_update() with the same lladdr)."""
    return entry.mac == sha and entry.state is not _INCOMPLETE and entry.state is not _FAILED


class Arp:
    """The neighbour subsystem of one stack: a table per device and the state machine."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.tables: dict[object, NeighborTable] = {}

    def table(self, dev) -> NeighborTable:
        table = self.tables.get(dev)
        if table is None:
            reachable = self.stack.ids.reachable_time_ns()
            table = self.tables[dev] = NeighborTable(reachable, dev.mac)
        return table

    # --- sending IP packets to a next hop -----------------------------------------------------

    def output(self, dev, next_hop: bytes, packet: bytes, tag: Tag, note: Decision | str) -> None:
        """Send `packet` out of `dev` to `next_hop`, resolving its MAC first if need be."""
        stack = self.stack
        now = stack.sched.now
        table = self.tables.get(dev) or self.table(dev)
        entry = table.entries.get(next_hop)
        if entry is not None:
            # the common case first: resolved (identity tests are cheapest); REACHABLE's decay
            # is NeighborTable.get's rule, inlined: this is the path of every packet
            state = entry.state
            if (
                state is _PERMANENT
                or (state is _REACHABLE and now - entry.updated_ns <= table.reachable_ns)
                or state is _DELAY
                or state is _PROBE
            ):
                dev.xmit(entry.header + packet, tag, note)
                return
            entry = table.get(next_hop, now)  # a REACHABLE entry past reachable_time: STALE
        if entry is None or entry.state is _FAILED:
            entry = table.set(next_hop, None, _INCOMPLETE, now)
            entry.queue.append((packet, tag, note))
            stack.note_pending(+1)
            self._solicit(dev, entry, packet[IP_SRC], tag)
            self._arm(dev, entry, RETRANS_TIME_NS)
            return
        state = entry.state
        if state is _INCOMPLETE:
            if len(entry.queue) >= UNRES_QLEN:
                _, old_tag, _ = entry.queue.pop(0)
                stack.note_pending(-1)
                stack.drop(Decision(Why.ARP_QUEUE_FULL, dev.name, next_hop), old_tag)
            entry.queue.append((packet, tag, note))
            stack.note_pending(+1)
            return
        if state is _STALE:
            generation.changed()
            entry.state = _DELAY
            entry.timer_gen += 1
            self._arm(dev, entry, DELAY_FIRST_PROBE_NS)
        dev.xmit(entry.header + packet, tag, note)

    def _solicit(self, dev, entry: Neighbor, packet_src: bytes, tag: Tag) -> None:
        """An ARP request for `entry`: broadcast while INCOMPLETE, unicast to the cached MAC
        while PROBE. The sender address is the packet's source when it is ours (arp_announce 0),
        else the device's address."""
        stack = self.stack
        spa = packet_src if packet_src in stack.local_ips else stack.primary_ip(dev, entry.ip)
        entry.probes += 1
        unicast = entry.state is _PROBE
        frame = arp_frame(
            ARP_REQUEST, entry.mac if unicast else BROADCAST, dev.mac, spa, ZERO_MAC, entry.ip
        )
        why = Why.ARP_PROBE if unicast else Why.ARP_WHO_HAS
        dev.xmit(frame, stack.observer.packet(tag), Decision(why, entry.ip, entry.probes))
        entry.spa = spa

    def _arm(self, dev, entry: Neighbor, delay_ns: int) -> None:
        self.stack.sched.after(delay_ns, self._timer, dev, entry, entry.timer_gen)

    def _timer(self, dev, entry: Neighbor, gen: int) -> None:
        if entry.timer_gen != gen:
            return
        generation.changed()  # the entry's state and probes move on
        tag = self.stack.observer.new_flow(self.stack.current_step())
        if entry.state is _DELAY:
            entry.state, entry.probes = _PROBE, 0
        if (
            entry.state is _INCOMPLETE
            and entry.probes < MCAST_SOLICIT
            or (entry.state is _PROBE and entry.probes < UCAST_SOLICIT)
        ):
            self._solicit(dev, entry, entry.spa, tag)
            self._arm(dev, entry, RETRANS_TIME_NS)
        elif entry.state in (_INCOMPLETE, _PROBE):
            self._fail(dev, entry)

    def _fail(self, dev, entry: Neighbor) -> None:
        """No answer: the entry fails and every queued packet is dropped with an ICMP host
        unreachable to its sender (to this namespace itself, over lo, for its own packets)."""
        generation.changed()
        entry.state = _FAILED
        entry.timer_gen += 1
        queued, entry.queue = entry.queue, []
        stack = self.stack
        for packet, tag, _ in queued:
            stack.note_pending(-1)
            stack.drop(Decision(Why.ARP_UNRESOLVED, dev.name, entry.ip), tag)
            stack.icmp_error(packet, icmp.DEST_UNREACH, icmp.HOST_UNREACH, tag)

    def _flush(self, dev, entry: Neighbor) -> None:
        queued, entry.queue = entry.queue, []
        resolved = Decision(Why.ARP_RESOLVED, entry.ip)
        for packet, tag, note in queued:
            self.stack.note_pending(-1)
            decision = Decision(Why.THEN, note, resolved) if note else resolved
            self.output(dev, entry.ip, packet, tag, decision)

    def forget(self) -> None:
        """The namespace is deleted: its neighbour entries go, with their timers and the
        packets waiting in their queues."""
        for table in self.tables.values():
            for entry in table.entries.values():
                entry.timer_gen += 1
                self.stack.note_pending(-len(entry.queue))
                entry.queue = []
        self.tables.clear()

    def announce(self, dev, tha: bytes, by: str) -> None:
        """A gratuitous ARP for the device's address (`arp_notify`, or a CNI's arping): a
        broadcast request whose sender and target are that address; `tha` is all zeros from
        the kernel (inetdev_send_gratuitous_arp), all ones from arping."""
        stack = self.stack
        ip = stack.primary_ip(dev)
        frame = arp_frame(ARP_REQUEST, BROADCAST, dev.mac, ip, tha, ip)
        tag = stack.observer.packet(stack.observer.new_flow(stack.current_step()))
        dev.xmit(frame, tag, Decision(Why.GRATUITOUS_ARP, ip, by))

    # --- ARP frames received -------------------------------------------------------------------

    def receive(self, frame: bytes, dev, tag: Tag) -> None:
        op, sha, spa, _tha, tpa = arp_fields(frame)
        if _reflected(sha, spa, dev):
            return
        stack = self.stack
        table = self.tables.get(dev) or self.table(dev)
        ours = tpa in stack.local_ips
        if _nothing_to_learn(op, ours, spa, dev, table):
            return
        now = stack.sched.now
        entry = table.get(spa, now)
        proxied = op == ARP_REQUEST and not ours and dev.proxy_arp and self._proxies(dev, tpa)
        if entry is not None and entry.state is _PERMANENT:
            learned = None  # neigh_update() never touches a PERMANENT entry from the wire
        elif op == ARP_REPLY:
            learned = _REACHABLE if entry is not None else None  # arp_accept 0
        elif entry is None or not _known_sender(entry, sha):
            # a request: the requester is learned STALE, but only when the request is for us
            # (or one we answer by proxy) or the entry exists; a known MAC keeps its state
            learned = _STALE if (ours or proxied or entry is not None) else None
        else:
            learned = None
        if learned is not None:
            self._update(dev, table, spa, sha, learned, entry)
        if op == ARP_REQUEST and (ours or proxied):
            why = Why.ARP_REPLY if ours else Why.ARP_PROXY_REPLY
            reply = arp_frame(ARP_REPLY, sha, dev.mac, tpa, sha, spa)
            dev.xmit(reply, stack.observer.packet(tag), Decision(why, tpa, dev.mac))

    def _proxies(self, dev, tpa: bytes) -> bool:
        """Proxy ARP (`arp_fwd_proxy`, with proxy_delay 0: answered at once): the namespace
        forwards and routes `tpa` as unicast out of another device than the one asked on."""
        stack = self.stack
        if not stack.forwarding:
            return False
        route = stack.routes.lookup(tpa)
        return route is not None and not route.blackhole and route.dev is not dev

    def _update(
        self, dev, table: NeighborTable, ip: bytes, mac: bytes, state: Nud, entry: Neighbor | None
    ) -> Neighbor:
        queued = entry.queue if entry is not None else []
        entry = table.set(ip, mac, state, self.stack.sched.now)
        entry.queue = queued
        if queued:
            self._flush(dev, entry)
        return entry


def ignored_where(frame: bytes):
    """For an ARP frame that reaches many devices (a flood's copies): a function telling, for
    a device, whether its namespace's `Arp.receive` would leave the frame alone, the frame
    read once. Left alone: our own request reflected by a hairpin port, a DAD probe, and a
    request for another host, not answered by proxy, from a sender the namespace does not
    know or whose entry keeps its state (a flooded request reaches every pod of a node: most
    of them know the node's gateway, its sender); never a reply (`receive` looks its sender
    up). The function changes nothing but what `receive` changes first, which it does too, in
    the same order: the device's table made if it has none (a draw of the namespace's
    generator), the sender's REACHABLE entry gone STALE if its time has passed (read by
    `NeighborTable.get`)."""
    op, sha, spa, _tha, tpa = arp_fields(frame)
    if spa == _ANY:
        return _always
    if op != ARP_REQUEST:
        return lambda dev: sha == dev.mac

    def ignores(dev) -> bool:
        if sha == dev.mac:
            return True
        arp = dev.stack.arp
        table = arp.tables.get(dev) or arp.table(dev)
        stack = arp.stack
        if tpa in stack.local_ips or dev.proxy_arp:
            return False
        if spa not in table.entries:
            return True
        entry = table.get(spa, stack.sched.now)
        return entry.state is _PERMANENT or _known_sender(entry, sha)

    return ignores


def _always(dev) -> bool:
    return True
