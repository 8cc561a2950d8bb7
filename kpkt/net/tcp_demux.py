"""The TCP demultiplexer of one namespace: listeners, connections by their 4-tuple, and
resets for segments nobody expects (`tcp_v4_rcv` and `tcp_v4_send_reset`)."""

from __future__ import annotations

from kpkt.net.tcp_connection import Connection
from kpkt.observe import Decision, Resend, Tag, Why
from kpkt.wire.ipv4 import IP_DST, IP_SRC, PROTO_TCP, ipv4_packet
from kpkt.wire.tcp import ACK, FIN, RST, SYN, TCP_HEAD, TCP_HEADER_LEN, TCP_LEN, tcp_segment


class TcpDemux:
    def __init__(self, stack) -> None:
        self.stack = stack
        self.listeners: dict[int, object] = {}  # port -> its TcpListener (kpkt/net/sockets.py)
        self.conns: dict[tuple[int, bytes, int], Connection] = {}  # (lport, raddr, rport)

    def receive(self, packet: bytes, ihl: int, tag: Tag) -> None:
        sport, dport, seq, ack, offset, flags, window = TCP_HEAD.unpack_from(packet, ihl)
        data_at = ihl + TCP_HEADER_LEN[offset]
        options = packet[ihl + TCP_LEN : data_at]
        payload = packet[data_at:]
        src = packet[IP_SRC]
        conn = self.conns.get((dport, src, sport))
        if conn is not None and conn.state == "TIME_WAIT" and flags & SYN and not flags & ACK:
            self.forget(conn)  # a new connection reuses the pair (tcp_timewait_state_process)
            conn = None
        if conn is not None and conn.orphan and payload and conn.state.startswith("FIN_WAIT"):
            # data for a socket its process closed: tcp_rcv_state_process() resets (RFC 1122)
            self._reset(packet, sport, dport, seq, ack, flags, len(payload), tag)
            conn.reset_by_us()
            return
        if conn is not None:
            conn.receive(flags, seq, ack, options, payload, window)
            return
        listener = self.listeners.get(dport)
        if listener is not None and flags & SYN and not flags & ACK:
            server = listener.accept(packet[IP_DST], dport, src, sport, tag)
            self.conns[(dport, src, sport)] = server
            server.accept(seq, options)
            return
        if flags & RST:
            return
        self.stack.drop(Decision(Why.NO_TCP_LISTENER, dport), tag)
        self._reset(packet, sport, dport, seq, ack, flags, len(payload), tag)

    def _reset(self, packet, sport, dport, seq, ack, flags, length, tag) -> None:
        """tcp_v4_send_reset(): RST from the ACK's number, else RST|ACK acking the segment;
        window 0, no options, IP ID 0."""
        if flags & ACK:
            rst_seq, rst_ack, rst_flags = ack, 0, RST
        else:
            consumed = length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            rst_seq, rst_ack, rst_flags = 0, (seq + consumed) % 2**32, RST | ACK
        src, dst = packet[IP_DST], packet[IP_SRC]
        segment = tcp_segment(src, dst, dport, sport, rst_seq, rst_ack, rst_flags, 0)
        self.stack.send_ip_packet(
            ipv4_packet(src, dst, PROTO_TCP, segment, ident=0),
            self.stack.observer.packet(tag),
            Decision(Why.TCP_SEGMENT, rst_flags, rst_seq, rst_ack, 0, Resend.RESET),
        )

    def connect(self, dst: bytes, sport: int, dport: int, tag: Tag, **callbacks) -> Connection:
        """An active open from this namespace (the SYN goes out at once)."""
        if self.stack.socket_lb is not None:
            dst, dport = self.stack.socket_lb.connect(PROTO_TCP, dst, dport, sport)
        route = self.stack.route_for(dst)
        src = self.stack.pick_source(route, dst) if route is not None else b"\x00" * 4
        conn = self.socket((src, sport), (dst, dport), route, tag, **callbacks)
        conn.connect()
        return conn

    def socket(self, local, remote, route, tag: Tag, **callbacks) -> Connection:
        dev = route.dev if route is not None else None
        mtu = dev.mtu if dev is not None and dev is not self.stack.loopback else 65535
        if route is not None and route.mtu is not None:
            mtu = min(mtu, route.mtu)  # the MSS follows the route's MTU
        iss = self.stack.ids.u32()
        conn = Connection(
            self.stack,
            local,
            remote,
            "CLOSED",
            iss,
            self.stack.ids.u32(),
            self.stack.ids.ip_id(),
            min(mtu, 65535) - 40,
            tag,
            snd_nxt=iss,
            **callbacks,
        )
        self.conns[(local[1], remote[0], remote[1])] = conn
        return conn

    def forget(self, conn: Connection) -> None:
        key = (conn.local[1], conn.remote[0], conn.remote[1])
        if self.conns.get(key) is conn:
            del self.conns[key]
