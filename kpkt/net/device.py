"""Network devices that carry frames: the base class, veth pairs and the loopback.

A device's `xmit` is what its namespace's stack (or a bridge) calls to send a frame out of it;
`deliver` is what the far side calls when a frame arrives. Both tell the device's observer of
the frame first (kpkt/observe.py), so a capture observing it shows exactly what crossed the
interface, in order.
"""

from __future__ import annotations

from kpkt.observe import IN, OUT, UNOBSERVED, Decision, Tag, Why

# how long a frame takes across a veth pair or a wire, in virtual nanoseconds
VETH_DELAY_NS = 1_000
WIRE_DELAY_NS = 5_000
LOOPBACK_DELAY_NS = 1_000


class NetDevice:
    """An interface in a network namespace."""

    kind = "device"
    link_layer = True  # frames carry an Ethernet header; False: a tunnel that sends raw IP
    proxy_arp = False  # sysctl net.ipv4.conf.<dev>.proxy_arp
    # the device's egress goes through `xmit` (then `transmit`), so a netem qdisc
    # (kpkt/net/netem.py) there sees every frame it sends
    takes_qdisc = False
    qdisc = None

    def __init__(self, stack, name: str, mac: bytes, mtu: int) -> None:
        self.stack = stack  # the owning namespace's IPv4 stack
        self.network = stack.network
        self.sched = stack.sched
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.where = f"{stack.owner}/{name}"  # how drops and hop tables name the interface
        self.observer = UNOBSERVED  # told of every frame: kpkt/observe.py
        self.master = None  # the bridge this device is a port of, if any
        # a pod's host-side veth in a cluster with NetworkPolicies: (NodePolicy, the pod's
        # address), the pod's workload endpoint: its egress judged on what it receives, its
        # ingress on what it sends
        self.guard = None
        # a tc ingress program: `program(frame, dev, tag)` takes every frame arriving on the
        # device after its capture point saw it (tcpdump runs before tc), instead of the stack
        self.tc_ingress = None
        # a tc egress program: takes every frame sent out of the device, after its capture
        # point saw it, instead of the wire
        self.tc_egress = None
        stack.devices.append(self)

    def xmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        """Send a frame out of the device: through its qdisc, if it has one, to `transmit`."""
        if self.qdisc is not None:
            self.qdisc.enqueue(frame, tag, note)
        else:
            self.transmit(frame, tag, note)

    def transmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        """The frame leaves the qdisc for the driver."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"


class Veth(NetDevice):
    """One end of a veth pair (or of a point-to-point wire): what goes in one end comes out of
    the other after `delay_ns`. Without carrier (`carrier` False: the link is down) nothing
    is sent and what was on the wire is lost; a `qdisc` (kpkt/net/netem.py) gets every frame
    to send first and transmits what it keeps."""

    kind = "veth"
    takes_qdisc = True

    def __init__(
        self, stack, name: str, mac: bytes, mtu: int, delay_ns: int = VETH_DELAY_NS
    ) -> None:
        super().__init__(stack, name, mac, mtu)
        self.peer: Veth | None = None
        self.delay_ns = delay_ns
        self.carrier = True

    def guard_with(self, policy, pod_ip: bytes) -> None:
        """Make this the workload endpoint of the pod at `pod_ip`, judged by `policy` (a
        NodePolicy): frames to the pod before they are sent (what `tcpdump -i` on the veth sees
        is after it), packets from it where the node's netfilter first sees them."""
        self.guard = (policy, pod_ip)

    @staticmethod
    def pair(a: Veth, b: Veth) -> None:
        a.peer, b.peer = b, a

    def _admitted(self, frame: bytes, tag: Tag) -> bool:
        """Whether the pod's ingress policy (if any) lets the frame through to the pod."""
        if self.guard is None:
            return True
        policy, pod_ip = self.guard
        return policy.ingress(frame, tag, self.where, pod_ip)

    def set_carrier(self, up: bool) -> None:
        """The link goes down or comes up: both ends of it lose or regain carrier."""
        self.carrier = up
        if self.peer is not None:
            self.peer.carrier = up

    def xmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        if self.guard is not None and not self._admitted(frame, tag):
            return
        if self.qdisc is not None:
            self.qdisc.enqueue(frame, tag, note)
        else:
            self.transmit(frame, tag, note)

    def transmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        """The frame leaves the qdisc for the driver: captured, then onto the wire."""
        if not self.carrier:
            self.stack.drop(Decision(Why.NO_CARRIER, self.name), tag, self.where)
            return
        self.observer.seen(frame, OUT, tag, note)
        if self.tc_egress is not None:
            self.tc_egress(frame, self, tag)
            return
        if self.peer is None:
            self.stack.drop(Decision(Why.LINK_DOWN, self.name), tag, self.where)
            return
        self.network.in_flight += 1
        self.sched.after(self.delay_ns, self.peer.deliver, frame, tag)

    @staticmethod
    def transmit_each(ports: list[NetDevice], frame: bytes, tag: Tag, note: Decision | str) -> bool:
        """Send `frame` out of each of `ports` in turn (a bridge's flood), as `port.xmit(frame,
        tag, note)` for each would, when every port is a veth that would only capture the frame
        and put it on its wire: no policy, qdisc or tc program, carrier and a peer, a capture
        point (kpkt/capture/tap.py) for its observer, of one kind for all, and one delay for
        all. Their capture points see it at once (`Tap.seen_each`) and one event delivers it at
        each far end in turn. False, having done nothing, when a port is not such a veth.

        The same run, exactly: `xmit` for each would schedule one delivery per port, back to
        back, at one time and with consecutive sequence numbers, and events run in (time,
        sequence) order. An event at that time scheduled before them runs before all of them;
        one that any of them schedules gets a later sequence number and runs after all of them;
        so nothing runs between them, and one event doing their work in turn does the same work
        in the same order."""
        first = ports[0] if ports else None
        if type(first) is not Veth:
            return False
        delay, kind = first.delay_ns, type(first.observer)
        if not hasattr(kind, "seen_each"):
            return False
        for port in ports:
            if (
                type(port) is not Veth
                or port.guard is not None
                or port.qdisc is not None
                or port.tc_egress is not None
                or not port.carrier
                or port.peer is None
                or port.delay_ns != delay
                or type(port.observer) is not kind
            ):
                return False
        kind.seen_each([port.observer for port in ports], frame, OUT, tag, note)
        first.network.in_flight += len(ports)
        first.sched.after(delay, _arrive_each, [port.peer for port in ports], frame, tag)
        return True

    def redirect_peer(self, frame: bytes, tag: Tag) -> None:
        """bpf_redirect_peer(): the frame enters the peer's namespace as if it had crossed the
        pair, without passing this end's egress (its capture point sees nothing); the pod's
        ingress policy still judges it."""
        if not self._admitted(frame, tag):
            return
        self.network.in_flight += 1
        self.sched.after(self.delay_ns, self.peer.deliver, frame, tag)

    def deliver(self, frame: bytes, tag: Tag) -> None:
        self.network.in_flight -= 1
        if not self.carrier:
            self.stack.drop(Decision(Why.CARRIER_LOST, self.name), tag, self.where)
            return
        self.observer.seen(frame, IN, tag)
        if self.tc_ingress is not None:
            self.tc_ingress(frame, self, tag)
        elif self.master is not None:
            self.master.ingress(frame, self, tag)
        else:
            self.stack.receive(frame, self, tag)


def _arrive_each(ends: list[Veth], frame: bytes, tag: Tag) -> None:
    """The frame `Veth.transmit_each` sent arrives at each far end in turn (`deliver`). A run
    of ends that would only capture it captures it at once (`Tap.seen_each`) before the next
    end that does more: nothing happens between their captures either way. An end only
    captures kpkt's own frame when it has carrier, no tc program and no master, a capture
    point (kpkt/capture/tap.py, whose `Tap.seen_each` the datapath does not import) observes
    it as it does the first end, and its namespace leaves the frame alone (`Stack.ignoring`,
    which does what the namespace would do first). Nothing is handed over to run inside it
    (`Scheduler.holding`): it would come before the arrivals at the ends after."""
    kind = type(ends[0].observer)
    ignores = None
    if not tag.checked and hasattr(kind, "seen_each"):
        ignores = ends[0].stack.ignoring(frame)
    quiet: list[Veth] = []
    with ends[0].sched.holding():
        for end in ends:
            if (
                ignores is not None
                and end.carrier
                and end.tc_ingress is None
                and end.master is None
                and type(end.observer) is kind
                and ignores(end)
            ):
                quiet.append(end)
                continue
            if quiet:
                _captured(quiet, kind, frame, tag)
                quiet = []
            end.deliver(frame, tag)
        if quiet:
            _captured(quiet, kind, frame, tag)


def _captured(ends: list[Veth], kind: type, frame: bytes, tag: Tag) -> None:
    """What `deliver` does at each of `ends`, which only capture the frame (their capture
    points of `kind`)."""
    ends[0].network.in_flight -= len(ends)
    kind.seen_each([end.observer for end in ends], frame, IN, tag, "")


class Loopback(NetDevice):
    """`lo`: a packet sent is received back by the same namespace. Like `tcpdump -i lo`, the
    capture shows each packet once (libpcap skips the outgoing copy on loopback)."""

    kind = "loopback"

    def xmit(self, frame: bytes, tag: Tag, note: Decision | str = "") -> None:
        self.network.in_flight += 1
        self.sched.after(LOOPBACK_DELAY_NS, self._receive, frame, tag, note)

    def _receive(self, frame: bytes, tag: Tag, note: Decision | str) -> None:
        self.network.in_flight -= 1
        self.observer.seen(frame, IN, tag, note)
        self.stack.receive(frame, self, tag)
