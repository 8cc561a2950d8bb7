"""TCP connections as Linux sends them, enough for request/response exchanges.

What the reference capture shows (`tests/reference/services.md` §3.1) is what this builds:
SYN options MSS (interface MTU - 40), SACK permitted, timestamps, NOP, window scale 10; a SYN
window of the largest multiple of the MSS in 65535, a SYN-ACK window of the largest multiple of
MSS - 12 (the timestamp option's room); later windows that value rounded up to 1 << 10 and
shifted; NOP NOP timestamps on every later segment; a per-socket IP ID counter from a random
start (0 on the SYN-ACK, sent from the request socket, and on resets); DF on every segment;
every data segment acknowledged at once (quickack mode, as at the start of every connection);
FIN with ACK; a FIN received in ESTABLISHED acknowledged late (`tcp_fin()` enters pingpong
mode: a delayed ACK, so an application that closes within DELACK_NS acknowledges it with its
own FIN, three segments to close as in the reference); the last ACK sent by the full socket
when the peer's FIN comes with the ACK of ours (the reference), else by the TIME_WAIT socket
that the closed socket became in FIN_WAIT_2 (`tcp_v4_timewait_ack()`: IP ID 0); a reset
(RST|ACK, window 0, ID 0) for a SYN to a closed port; SYN retransmission 1 s apart four times
(tcp_syn_linear_timeouts), then doubling, six in all (tcp_syn_retries).
Not modelled: loss recovery for data (nothing on these links loses data), SACK blocks, delayed
ACKs of data, congestion control, window updates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kpkt.observe import Tag
from kpkt.wire.icmp import describe_in
from kpkt.wire.ipv4 import PROTO_TCP, ipv4_packet
from kpkt.wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    flag_text,
    mss_of,
    syn_options,
    tcp_segment,
    timestamp_options,
    ts_val_of,
)

WSCALE = 10  # what a 32 MiB tcp_rmem[2] gives, as on the reference kernel
TS_ROOM = 12  # NOP NOP TS
SECOND = 1_000_000_000
DELACK_NS = 40_000_000  # TCP_DELACK_MIN: how long the ACK of a FIN waits for the application
SYN_TIMEOUTS_NS = [SECOND] * 4 + [2 * SECOND, 4 * SECOND, 8 * SECOND]  # then give up


@dataclass(slots=True)
class Connection:
    """One end of a TCP connection: its state, sequence numbers and what it does with data."""

    stack: object
    local: tuple[bytes, int]
    remote: tuple[bytes, int]
    state: str
    iss: int
    ts_offset: int
    ip_id: int
    mss: int  # what we advertise: our interface MTU - 40
    tag: Tag
    on_data: Callable[[Connection, bytes], None] = lambda conn, data: None
    on_fin: Callable[[Connection], None] = lambda conn: None
    on_done: Callable[[Connection, str], None] = lambda conn, how: None
    snd_nxt: int = 0
    rcv_nxt: int = 0
    ts_recent: int = 0
    send_mss: int = 536
    window: int = 0  # the window field of our non-SYN segments
    retries: int = 0
    acked: int = -1  # the acknowledgement number of our newest segment
    sent: list[int] = field(default_factory=list)  # flags of every segment we sent, in order

    # --- sending ---------------------------------------------------------------------------------

    def _ts_val(self) -> int:
        return (self.ts_offset + self.stack.sched.now // 1_000_000) & 0xFFFFFFFF

    def _send(
        self,
        flags: int,
        payload: bytes = b"",
        *,
        with_syn_options: bool = False,
        ident: int | None = None,
        why: str = "",
    ) -> None:
        stack = self.stack
        if with_syn_options:
            options = syn_options(self.mss, self._ts_val(), self.ts_recent, WSCALE)
            window = initial_window(self.mss if flags == SYN else self.mss - TS_ROOM)
        else:
            options = timestamp_options(self._ts_val(), self.ts_recent)
            window = self.window
        src, sport = self.local
        dst, dport = self.remote
        seq = self.snd_nxt
        ack = self.rcv_nxt if flags & ACK else 0
        if flags & ACK:
            self.acked = ack
        segment = tcp_segment(src, dst, sport, dport, seq, ack, flags, window, options, payload)
        if ident is None:
            ident, self.ip_id = self.ip_id, (self.ip_id + 1) & 0xFFFF
        packet = ipv4_packet(src, dst, PROTO_TCP, segment, ident=ident)
        self.sent.append(flags)
        self.snd_nxt = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) % 2**32
        note = segment_note(flags, seq, ack, len(payload))
        stack.send_ip_packet(
            packet, stack.observer.packet(self.tag), f"{note} {why}" if why else note
        )

    def connect(self) -> None:
        self.state = "SYN_SENT"
        self._send(SYN, with_syn_options=True)
        self._arm_syn_timer()

    def _arm_syn_timer(self) -> None:
        attempt = self.retries
        self.stack.sched.after(SYN_TIMEOUTS_NS[attempt], self._syn_timeout, attempt)

    def _syn_timeout(self, attempt: int) -> None:
        if self.state != "SYN_SENT" or attempt != self.retries:
            return
        self.retries += 1
        if self.retries >= len(SYN_TIMEOUTS_NS):
            self._finish("connection timed out")
            return
        self.snd_nxt = self.iss
        self._send(SYN, with_syn_options=True, why="retransmitted")
        self._arm_syn_timer()

    def write(self, data: bytes) -> None:
        """Send `data` in segments of at most the send MSS, PSH on the last."""
        chunk = self.send_mss
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            last = start + chunk >= len(data)
            self._send(ACK | (PSH if last else 0), piece)

    def close(self) -> None:
        if self.state == "ESTABLISHED":
            self.state = "FIN_WAIT_1"
        elif self.state == "CLOSE_WAIT":
            self.state = "LAST_ACK"
        else:
            return
        self._send(FIN | ACK)

    def abort(self, how: str) -> None:
        """The application stops waiting for the handshake (a connect timeout): the attempt
        ends without another segment."""
        if self.state == "SYN_SENT":
            self._finish(how)

    def icmp_error(self, packet: bytes, tag: Tag) -> None:
        """tcp_v4_err(): an ICMP error while connecting ends the attempt."""
        if self.state == "SYN_SENT":
            self._finish(describe_in(packet))

    def _finish(self, how: str) -> None:
        self.state = "CLOSED"
        self.stack.tcp.forget(self)
        self.on_done(self, how)

    # --- receiving -------------------------------------------------------------------------------

    def receive(
        self, flags: int, seq: int, ack: int, options: bytes, payload: bytes, window: int
    ) -> None:
        self.ts_recent = ts_val_of(options, self.ts_recent)
        if flags & RST:
            self._finish("connection reset")
            return
        state = self.state
        if state == "SYN_SENT" and flags & SYN and flags & ACK:
            self.rcv_nxt = (seq + 1) % 2**32
            self._established(mss_of(options), active=True)
            self._send(ACK)
            self.on_data(self, b"")  # connected: the application may write
            return
        if state == "SYN_RECV" and flags & ACK:
            self.state = "ESTABLISHED"
        if payload and seq == self.rcv_nxt:
            self.rcv_nxt = (self.rcv_nxt + len(payload)) % 2**32
            self._send(ACK)  # quickack
            self.on_data(self, payload)
        if flags & FIN and seq + len(payload) == self.rcv_nxt:
            self._peer_closed()
        elif flags & ACK and ack == self.snd_nxt:
            self._acked()

    def _established(self, peer_mss: int, active: bool) -> None:
        """Both ends know each other's MSS: the window we advertise from now on is the one our
        SYN (or SYN-ACK, which left room for timestamps) offered, scaled."""
        self.state = "ESTABLISHED" if active else "SYN_RECV"
        self.send_mss = min(peer_mss, self.mss) - TS_ROOM
        self.window = scaled_window(initial_window(self.mss if active else self.mss - TS_ROOM))

    def accept(self, peer_seq: int, options: bytes) -> None:
        """A SYN arrived for our listener: answer SYN-ACK from the request socket (IP ID 0)."""
        self.ts_recent = ts_val_of(options, 0)
        self.rcv_nxt = (peer_seq + 1) % 2**32
        self._established(mss_of(options), active=False)
        self._send(SYN | ACK, with_syn_options=True, ident=0)

    def _peer_closed(self) -> None:
        self.rcv_nxt = (self.rcv_nxt + 1) % 2**32
        if self.state == "ESTABLISHED":
            self.state = "CLOSE_WAIT"
            self.stack.sched.after(DELACK_NS, self._delayed_ack)
            self.on_fin(self)  # the application reads the end of the stream
        elif self.state == "FIN_WAIT_1":  # the FIN acks ours: the full socket answers
            self.state = "TIME_WAIT"
            self._send(ACK)
            self._finish("closed")
        elif self.state == "FIN_WAIT_2":  # a TIME_WAIT socket now: no IP ID counter of its own
            self.state = "TIME_WAIT"
            self._send(ACK, ident=0, why="from the TIME_WAIT socket")
            self._finish("closed")

    def _delayed_ack(self) -> None:
        """The ACK of the peer's FIN, when the application did not close in time to carry it."""
        if self.state == "CLOSE_WAIT" and self.acked != self.rcv_nxt:
            self._send(ACK)

    def _acked(self) -> None:
        if self.state == "FIN_WAIT_1":
            # the application has closed the socket, so in FIN_WAIT_2 it becomes a TIME_WAIT
            # socket at once (tcp_rcv_state_process(), tcp_fin_timeout)
            self.state = "FIN_WAIT_2"
        elif self.state == "LAST_ACK":
            self._finish("closed")


def segment_note(flags: int, seq: int, ack: int, length: int) -> str:
    """How a segment's note states its own fields: "tcp SA seq 1 ack 2 len 0"."""
    acked = f" ack {ack}" if flags & ACK else ""
    return f"tcp {flag_text(flags)} seq {seq}{acked} len {length}"


def initial_window(mss: int) -> int:
    """tcp_select_initial_window(): the 64 KiB window rounded down to a multiple of the MSS."""
    return 65535 // mss * mss


def scaled_window(window: int) -> int:
    """The window field once scaling is on: rounded up to 1 << WSCALE, then shifted."""
    return -(-window // (1 << WSCALE))
