"""The IPv4 stack of one network namespace: receive, local delivery, forwarding, output.

It follows the kernel's order: frames for another MAC are dropped (PACKET_OTHERHOST); ARP goes
to `Arp`; IPv4 for a local address is delivered (ICMP echo is answered, UDP goes to a socket or
gets a port unreachable); anything else is forwarded when forwarding is on: route lookup
(ICMP net unreachable), TTL check (ICMP time exceeded), TTL decrement, MTU check (ICMP
fragmentation needed), then out through the neighbour layer. ICMP errors take their source
address from the route back to the sender, TOS 0xc0, DF 0, as `icmp_send()` does. On a node,
the namespace's netfilter (kpkt/net/netfilter.py) runs at each of its hooks.

What the stack decides is told to the network's observer (kpkt/observe.py): a packet dropped, an
ICMP error not sent; what it decided about a frame it sends travels with the frame.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from kpkt.net import drops, sanity
from kpkt.net.arp import Arp, ignored_where
from kpkt.net.icmp import TOS_INTERNETCONTROL, RateLimit
from kpkt.net.route import Route, RouteTable
from kpkt.net.tcp_demux import TcpDemux
from kpkt.observe import Decision, Tag, Why, then
from kpkt.wire import icmp
from kpkt.wire.ethernet import (
    ETH_DST,
    ETH_LEN,
    ETH_P_IP,
    ETH_TYPE,
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    ZERO_MAC,
    eth_header,
)
from kpkt.wire.icmp import ICMP_HEAD, ICMP_LEN
from kpkt.wire.ipv4 import (
    DF,
    FLAGS,
    IP_DST,
    IP_HEADER_LEN,
    IP_MIN_LEN,
    IP_SRC,
    PROTO,
    PROTO_ICMP,
    PROTO_IPIP,
    PROTO_TCP,
    PROTO_UDP,
    TOS,
    TTL,
    checksum_error,
    decrement_ttl,
    ipv4_packet,
)
from kpkt.wire.udp import PORTS, UDP_LEN, udp_segment

LOOPBACK = IPv4Network("127.0.0.0/8")  # the loopback's network, its `local` route


class Stack:
    """One namespace: its devices, addresses, routes, neighbours and sockets."""

    def __init__(self, network, owner: str, *, forwarding: bool, node: str | None) -> None:
        self.network = network
        self.sched = network.sched
        self.observer = network.journal  # tags, decisions and drops: kpkt/observe.py
        self.ids = network.ids_for(owner)
        self.owner = owner
        self.node = node
        self.forwarding = forwarding
        # sysctl arp_notify: a gratuitous ARP when a device comes up (the bridge CNI plugin's)
        self.arp_notify = False
        self.devices: list = []
        self.addresses: list[tuple[object, bytes, int]] = []  # (device, ip, prefix length)
        self.local_ips: set[bytes] = set()
        self.routes = RouteTable()
        self.arp = Arp(self)
        self.loopback = None
        self.local_route: Route | None = None
        # the open sockets (kpkt/net/sockets.py) by what finds them
        self.udp_sockets: dict[int, object] = {}  # port -> the socket its datagrams go to
        self.udp_errors: dict[int, object] = {}  # port -> the socket its ICMP errors go to
        self.ping_sockets: dict[int, object] = {}  # echo id -> PingSocket
        self.vxlan_ports: dict[int, object] = {}  # UDP port -> the VXLAN device listening
        self.ipip_tunnel = None  # the IPIP tunnel that receives IP protocol 4, if any
        self.tcp = TcpDemux(self)
        self.netfilter = None  # a Netfilter on nodes: kube-proxy's and the CNI's rules
        self._forwarded: dict[tuple[str, int], Decision] = {}  # (route, ttl) -> its decision
        self.socket_lb = None  # a SocketLb (kpkt/net/socket_lb.py) when services are its
        self.icmp_limit = RateLimit(self.sched)

    # --- configuration (what the CNI plugins and their daemons set up) -------------------------

    def add_address(self, dev, ip: bytes, prefixlen: int) -> None:
        self.addresses.append((dev, ip, prefixlen))
        self.local_ips.add(ip)

    def remove_device(self, dev) -> None:
        """`ip link del`: the device goes, and with it its bridge port (br_del_if() flushes the
        FDB entries behind it), the routes through it and its neighbour entries."""
        if dev.master is not None:
            dev.master.remove_port(dev)
        self.devices.remove(dev)
        self.routes.remove_through(dev)
        self.arp.tables.pop(dev, None)

    def set_loopback(self, lo) -> None:
        self.loopback = lo
        self.local_route = Route(LOOPBACK, lo)

    def add_route(self, route: Route) -> None:
        self.routes.add(route)

    def primary_ip(self, dev, toward: bytes | None = None) -> bytes:
        """inet_select_addr(): the device's address on the subnet of `toward` if it has one,
        else its first address, else the namespace's first address."""
        mine = [(ip, plen) for d, ip, plen in self.addresses if d is dev]
        if toward is not None:
            target = int.from_bytes(toward, "big")
            for ip, plen in mine:
                mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
                if int.from_bytes(ip, "big") & mask == target & mask:
                    return ip
        if mine:
            return mine[0][0]
        return next(ip for d, ip, _ in self.addresses if d is not self.loopback)

    # --- bookkeeping shared with the network --------------------------------------------------

    def drop(self, decision: Decision, tag: Tag, where: str | None = None) -> None:
        """The packet of `tag` goes no further, for `decision`: at `where` (a device), else in
        this namespace."""
        self.observer.dropped(where or self.owner, drops.REASON_OF[decision.why], decision, tag)

    def note_pending(self, delta: int) -> None:
        self.network.pending += delta

    def current_step(self) -> int:
        return self.network.current_step

    # --- receive ------------------------------------------------------------------------------

    def receive(self, frame: bytes, dev, tag: Tag, nat: Decision | str | None = None) -> None:
        """A frame arriving on `dev`: ARP to the neighbour layer, IPv4 to `receive_ip`. `nat`
        (what PREROUTING decided) is not None when the bridge already ran PREROUTING on it
        (br_netfilter), so it does not run again here."""
        if self._other_host(frame, dev):
            return  # PACKET_OTHERHOST: a flooded copy for another host, ignored silently
        ethertype = frame[ETH_TYPE]
        if ethertype == ETH_TYPE_ARP:
            if tag.checked and not sanity.arp(frame):
                self.drop(
                    Decision(Why.MALFORMED, f"arp: {len(frame)} bytes, short of a message"), tag
                )
                return
            self.arp.receive(frame, dev, tag)
            return
        if ethertype == ETH_TYPE_IP:
            self.receive_ip(frame[ETH_LEN:], dev, tag, nat)

    @staticmethod
    def ignoring(frame: bytes):
        """For kpkt's own `frame` (not a crafted one) reaching many devices (a flood's copies,
        kpkt/net/device.py): a function telling, for a device, whether its namespace's
        `receive` would leave the frame alone (a copy for another host, or ARP the namespace
        neither answers nor learns from: `arp.ignored_where`, which makes the device's
        neighbour table if it has none, as `receive` would), the frame read once; None when
        no namespace would."""
        arp = ignored_where(frame) if frame[ETH_TYPE] == ETH_TYPE_ARP else None
        if frame[ETH_DST][0] & 1:  # a broadcast or multicast: for every host
            return arp
        return lambda dev: dev.stack._other_host(frame, dev) or (arp is not None and arp(dev))

    def _other_host(self, frame: bytes, dev) -> bool:
        dst = frame[ETH_DST]
        return dst != dev.mac and not dst[0] & 1 and dev is not self.loopback

    def receive_ip(self, packet: bytes, dev, tag: Tag, nat: Decision | str | None = None) -> None:
        """An IPv4 packet arriving on `dev` (from an Ethernet frame, or out of a tunnel):
        PREROUTING, then local delivery (through INPUT) or forwarding."""
        if tag.checked:  # a crafted packet: the kernel's header checks
            packet = sanity.ipv4(self, packet, tag)
            if packet is None:
                return
        if self.network.corrupting and nat is None and self.bad_checksum(packet, tag):
            return
        netfilter = self.netfilter
        original = packet
        if nat is None:
            nat = ""
            if netfilter is not None and netfilter.conntrack.active and dev is not self.loopback:
                packet, nat = netfilter.prerouting(packet)
        dst = packet[IP_DST]
        if dst in self.local_ips or dst[0] == 127 or dst == b"\xff\xff\xff\xff":
            if tag.checked and (fragment := sanity.fragment(packet)):
                self.drop(fragment, tag)
                return
            if netfilter is not None and dev is not self.loopback:
                if dev.guard is not None and not self._workload_chains(
                    original, packet, dev, None, tag
                ):
                    return
                packet, reject = netfilter.input(packet)
                if reject is not None:
                    self._reject(packet, reject, tag)
                    return
            self._deliver(packet, tag)
        elif self.forwarding:
            self._forward(packet, tag, nat, dev, original)
        else:
            self.drop(Decision(Why.NOT_FOR_US, dst, self.owner), tag)

    @staticmethod
    def _workload_chains(original: bytes, packet: bytes, dev, out, tag: Tag) -> bool:
        """The policy dataplane's workload chains for routed pod veths, first in filter FORWARD
        (and, through cali-INPUT, in INPUT for the node's own addresses: `out` None):
        cali-from-wl-dispatch, the egress policy of the pod behind the veth `dev` the packet
        came in on, then cali-to-wl-dispatch, the ingress policy of the pod behind the veth
        `out` it is routed to. On the packet after PREROUTING's DNAT (`original`: before it).
        Whether it goes on. A pod on a bridge is judged by br_netfilter, one under a BPF
        program (tc ingress) by the program."""
        if dev.guard is not None and dev.tc_ingress is None:
            policy, _ = dev.guard
            if not policy.egress(original, packet, tag, dev.where):
                return False
        if out is not None and out.guard is not None:
            policy, _ = out.guard
            return policy.ingress_packet(packet, tag, out.where)
        return True

    def _reject(self, packet: bytes, reject: Decision, tag: Tag) -> None:
        """A filter hook's REJECT: dropped, with an ICMP port unreachable (iptables'
        default) to the sender."""
        self.drop(reject, tag)
        self.icmp_error(packet, icmp.DEST_UNREACH, icmp.PORT_UNREACH, tag)

    def _forward(self, packet: bytes, tag: Tag, nat: Decision | str, dev, original: bytes) -> None:
        """ip_forward(), from `dev`; `original` is the packet before PREROUTING's DNAT."""
        dst = packet[IP_DST]
        route = self.routes.lookup(dst)
        if route is None:
            self.drop(Decision(Why.NO_ROUTE, dst), tag)
            self.icmp_error(packet, icmp.DEST_UNREACH, icmp.NET_UNREACH, tag)
            return
        if route.blackhole:
            self.drop(Decision(Why.BLACKHOLE, route), tag)
            return
        if packet[TTL] <= 1:
            self.drop(Decision(Why.TTL_EXCEEDED, packet[TTL], dst), tag)
            self.icmp_error(packet, icmp.TIME_EXCEEDED, 0, tag)
            return
        if len(packet) > route.dev.mtu:
            # ip_forward() checks the MTU before the TTL decrement, so the error quotes the
            # packet as it arrived; fragmenting a DF-clear packet is not modelled
            mtu = route.dev.mtu
            self.drop(Decision(Why.MTU_EXCEEDED, len(packet), mtu, route.dev.name), tag)
            if packet[FLAGS] & DF:
                self.icmp_error(packet, icmp.DEST_UNREACH, icmp.FRAG_NEEDED, tag, mtu=mtu)
            return
        packet = decrement_ttl(packet)
        out = route.dev
        if (dev.guard is not None or out.guard is not None) and not self._workload_chains(
            original, packet, dev, out, tag
        ):
            return
        netfilter = self.netfilter
        if netfilter is not None and netfilter.rejecting:
            reject = netfilter.forward(packet)
            if reject is not None:  # after the TTL decrement: the error quotes TTL 63
                self._reject(packet, reject, tag)
                return
        key = (route.text, packet[TTL])
        forwarded = self._forwarded.get(key)
        if forwarded is None:
            forwarded = self._forwarded[key] = Decision(Why.FORWARD, route, packet[TTL])
        self._route_out(packet, route, tag, then(nat, forwarded) if nat else forwarded)

    def bad_checksum(self, packet: bytes, tag: Tag, *, local: bool = False) -> bool:
        """Drop `packet` if a checksum the receiver checks is wrong (ip_rcv's header check;
        `local`: the transport's, on delivery)."""
        error = checksum_error(packet, local)
        if error is not None:
            self.drop(Decision(Why.CORRUPTED, error), tag)
        return error is not None

    def _deliver(self, packet: bytes, tag: Tag) -> None:
        if self.network.corrupting and self.bad_checksum(packet, tag, local=True):
            return
        proto = packet[PROTO]
        ihl = IP_HEADER_LEN[packet[0]]
        if proto == PROTO_UDP:
            sport, dport = PORTS.unpack_from(packet, ihl)
            vxlan = self.vxlan_ports.get(dport)
            if vxlan is not None:
                vxlan.decap(packet[ihl + UDP_LEN :], tag)
                return
            socket = self.udp_sockets.get(dport)
            if socket is not None:
                src = packet[IP_SRC]
                if self.socket_lb is not None:
                    src, sport = self.socket_lb.received(PROTO_UDP, src, sport, dport)
                socket.on_datagram(src, sport, packet[IP_DST], packet[ihl + UDP_LEN :], tag)
                return
            self.drop(Decision(Why.NO_UDP_LISTENER, dport), tag)
            self.icmp_error(packet, icmp.DEST_UNREACH, icmp.PORT_UNREACH, tag)
        elif proto == PROTO_ICMP:
            self._icmp_receive(packet, ihl, tag)
        elif proto == PROTO_TCP:
            self.tcp.receive(packet, ihl, tag)
        elif proto == PROTO_IPIP and self.ipip_tunnel is not None:
            self.ipip_tunnel.decap(packet, ihl, tag)

    def _icmp_receive(self, packet: bytes, ihl: int, tag: Tag) -> None:
        icmp_type = packet[ihl]
        if icmp_type == icmp.ECHO_REQUEST:
            _, _, _, ident, seq = ICMP_HEAD.unpack_from(packet, ihl)
            reply = icmp.echo(icmp.ECHO_REPLY, ident, seq, packet[ihl + ICMP_LEN :])
            self.send_ip(
                packet[IP_DST],
                packet[IP_SRC],
                PROTO_ICMP,
                reply,
                self.observer.packet(tag),
                df=False,
                tos=packet[TOS],
                note=_ECHO_REPLY,
            )
        elif icmp_type == icmp.ECHO_REPLY:
            socket = self.ping_sockets.get(ICMP_HEAD.unpack_from(packet, ihl)[3])
            if socket is not None:
                socket.on_icmp(packet, tag)
        elif icmp_type in icmp.ERROR_TYPES:
            self._icmp_error_receive(packet, ihl, tag)

    def _icmp_error_receive(self, packet: bytes, ihl: int, tag: Tag) -> None:
        """Hand an ICMP error to the socket whose packet it quotes."""
        quoted = packet[ihl + ICMP_LEN :]
        if len(quoted) < IP_MIN_LEN + 8:  # the quoted header and 8 bytes of its payload
            return
        qihl = IP_HEADER_LEN[quoted[0]]
        if quoted[PROTO] == PROTO_UDP:
            socket = self.udp_errors.get(PORTS.unpack_from(quoted, qihl)[0])
            handler = socket.on_error if socket is not None else None
        elif quoted[PROTO] == PROTO_ICMP:
            socket = self.ping_sockets.get(ICMP_HEAD.unpack_from(quoted, qihl)[3])
            handler = socket.on_icmp if socket is not None else None
        elif quoted[PROTO] == PROTO_TCP:
            sport, dport = PORTS.unpack_from(quoted, qihl)
            conn = self.tcp.conns.get((sport, quoted[IP_DST], dport))
            handler = conn.icmp_error if conn is not None else None
        else:
            handler = None
        if handler is not None:
            handler(packet, tag)

    # --- send ---------------------------------------------------------------------------------

    def send_udp(
        self,
        src: bytes | None,
        dst: bytes,
        sport: int,
        dport: int,
        payload: bytes,
        tag: Tag,
        *,
        df: bool = True,
        ttl: int = 64,
        checksum: bool = True,
        note: Decision | str = "",
    ) -> None:
        """Send a datagram from a socket of this namespace (`src` None: chosen by the route;
        `checksum` False: the UDP checksum left 0)."""
        route, src = self._source_route(src, dst, tag)
        if route is not None:
            segment = udp_segment(src, dst, sport, dport, payload, checksum)
            self._emit(route, src, dst, PROTO_UDP, segment, tag, df, 0, ttl, note)

    def send_ip(
        self,
        src: bytes | None,
        dst: bytes,
        proto: int,
        payload: bytes,
        tag: Tag,
        *,
        df: bool = True,
        tos: int = 0,
        ttl: int = 64,
        note: Decision | str = "",
    ) -> None:
        """Send an IPv4 packet around `payload`, a complete transport-layer message."""
        route, src = self._source_route(src, dst, tag)
        if route is not None:
            self._emit(route, src, dst, proto, payload, tag, df, tos, ttl, note)

    def _emit(self, route, src, dst, proto, payload, tag, df, tos, ttl, note) -> None:
        packet = ipv4_packet(
            src, dst, proto, payload, ident=self.ids.ip_id(), df=df, tos=tos, ttl=ttl
        )
        self._output(packet, route, tag, note)

    def send_ip_packet(self, packet: bytes, tag: Tag, note: Decision | str = "") -> None:
        """Send a complete IPv4 packet this namespace built (its source already chosen)."""
        route = self.route_for(packet[IP_DST])
        if route is None:
            self.drop(Decision(Why.NO_ROUTE, packet[IP_DST]), tag)
            return
        self._output(packet, route, tag, note)

    def _output(self, packet: bytes, route: Route, tag: Tag, note: Decision | str) -> None:
        """The OUTPUT hook for a packet of our own, when there are services: kube-proxy may
        DNAT it (and then the route is looked up again, as `ip_route_me_harder()` does) or
        reject it."""
        netfilter = self.netfilter
        if (
            netfilter is not None
            and netfilter.services is not None
            and route is not self.local_route
        ):
            dst = packet[IP_DST]
            packet, nat, reject = netfilter.output(packet)
            if reject is not None:
                self._reject(packet, reject, tag)
                return
            note = then(note, nat)
            if packet[IP_DST] != dst:
                route = self.route_for(packet[IP_DST])
                if route is None:
                    self.drop(Decision(Why.NO_ROUTE, packet[IP_DST]), tag)
                    return
        self._route_out(packet, route, tag, note)

    def route_for(self, dst: bytes) -> Route | None:
        """The output route: local addresses and 127/8 go over lo, the rest by the table."""
        if dst in self.local_ips or dst[0] == 127:
            return self.local_route
        return self.routes.lookup(dst)

    def source_address(self, dst: bytes) -> bytes | None:
        """The source address a socket would use toward `dst` (None: no route)."""
        route = self.route_for(dst)
        return None if route is None else self.pick_source(route, dst)

    def _source_route(self, src: bytes | None, dst: bytes, tag: Tag):
        route = self.route_for(dst)
        if route is None:
            self.drop(Decision(Why.UNREACHABLE, dst), tag)
            return None, None
        if src is None:
            src = self.pick_source(route, dst)
        return route, src

    def pick_source(self, route: Route, dst: bytes) -> bytes:
        """The source for a packet to `dst`: the destination itself over lo (a local address
        talks to itself), else the route's preferred source, else the device's address."""
        if route is self.local_route:
            return dst
        return route.src or self.primary_ip(route.dev, route.via or dst)

    def _route_out(self, packet: bytes, route: Route, tag: Tag, note: Decision | str) -> None:
        dev = route.dev
        if dev is None:
            self.drop(Decision(Why.BLACKHOLE, route), tag)
            return
        if dev is self.loopback:
            dev.xmit(eth_header(ZERO_MAC, ZERO_MAC, ETH_P_IP) + packet, tag, note)
            return
        if self.netfilter is not None:
            packet, nat = self.netfilter.postrouting(packet, dev)
            if nat:
                note = then(note, nat)
        if dev.link_layer:
            self.arp.output(dev, route.via or packet[IP_DST], packet, tag, note)
        else:  # a tunnel: no neighbour to resolve, the next hop is the remote end
            dev.output(packet, route.via or packet[IP_DST], tag, note)

    def icmp_error(self, packet: bytes, icmp_type: int, code: int, tag: Tag, mtu: int = 0) -> None:
        """icmp_send(): never about an ICMP error or a broadcast; from the packet's destination
        when that is ours, else from the address the route back to the sender would use."""
        ihl = IP_HEADER_LEN[packet[0]]
        if packet[PROTO] == PROTO_ICMP and packet[ihl] in icmp.ERROR_TYPES:
            return
        src, dst = packet[IP_SRC], packet[IP_DST]
        if dst[3] == 255 or dst[0] >= 224:
            return
        route = self.route_for(src)
        if route is None:
            return
        if route is not self.local_route and not self.icmp_limit.allow(icmp_type, src):
            self.observer.decided(tag, Decision(Why.ICMP_RATE_LIMITED, icmp_type, code))
            return
        reply_src = dst if dst in self.local_ips else self.pick_source(route, src)
        message = icmp.error(icmp_type, code, packet, mtu)
        tos = (packet[TOS] & 0x1E) | TOS_INTERNETCONTROL
        self.send_ip(
            reply_src,
            src,
            PROTO_ICMP,
            message,
            self.observer.packet(tag),
            df=False,
            tos=tos,
            note=Decision(Why.ICMP_ERROR, icmp_type, code, src),
        )


_ECHO_REPLY = Decision(Why.ECHO_REPLY)
