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
own FIN, three segments to close as in the reference), and so is data that comes in one segment
with a FIN, unless it is more than one full frame (`tcp_data_queue()` calls `tcp_fin()` before
`tcp_ack_snd_check()` decides, so an ACK sent then covers the FIN); while the process holds its
socket (`lock_sock()`, see `hold`) what arrives waits in the socket's backlog, where a segment
that continues the one before it is merged into it (`tcp_add_backlog()`), so the response and
FIN of a same-node server reach TCP as one segment and the client's own FIN acknowledges both
(issue 11's description of kernel captures; no same-node TCP reference capture exists); the
last ACK sent by the full socket when the peer's FIN comes with the ACK of ours (the
reference), else by the TIME_WAIT socket that the closed socket became in FIN_WAIT_2
(`tcp_v4_timewait_ack()`: IP ID 0); a reset (RST|ACK, window 0, ID 0) for a SYN to a closed
port; SYN retransmission 1 s apart four times (tcp_syn_linear_timeouts), then doubling, six in
all (tcp_syn_retries).

Loss recovery (what a `link` or `impair` step makes necessary): every segment that takes
sequence space (data, FIN, the SYN-ACK) waits in the retransmission queue until acknowledged;
the retransmission timer starts at 1 s (TCP_TIMEOUT_INIT) and then follows the RTT as RFC 6298
computes it with Linux's 200 ms floor on the variance term (RTO = SRTT + max(200 ms,
4 RTTVAR)), sampled from segments sent once (Karn); each timeout retransmits the oldest segment
and doubles the timer (up to 120 s, 15 times: tcp_retries2; the SYN-ACK 5 times:
tcp_synack_retries). Three duplicate ACKs retransmit the oldest segment at once (fast
retransmit, tcp_reordering 3); until everything sent before the loss is acknowledged, each
partial ACK retransmits the next one (NewReno). A receiver keeps segments that arrive out of
order and answers each with an immediate duplicate ACK carrying SACK blocks, answers a segment
it already has with an ACK carrying a D-SACK block, and acknowledges a filled hole at once, a
FIN that waited behind it included (`tcp_ofo_queue()` calls `tcp_fin()`). The TIME_WAIT
socket stays 60 s and acknowledges a retransmitted FIN again.
Not modelled: the sender's use of SACK blocks, RACK and tail loss probes (Linux since 4.18
may retransmit earlier than three duplicate ACKs), delayed ACKs of data, congestion control,
window updates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kpkt.observe import Decision, Resend, Tag, Why
from kpkt.wire.icmp import describe_in
from kpkt.wire.ipv4 import PROTO_TCP, ipv4_packet
from kpkt.wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    mss_of,
    sack_option,
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
RTO_INIT_NS = SECOND  # TCP_TIMEOUT_INIT
RTO_MIN_NS = 200_000_000  # TCP_RTO_MIN
RTO_MAX_NS = 120 * SECOND  # TCP_RTO_MAX
RETRIES = 15  # tcp_retries2
SYNACK_RETRIES = 5  # tcp_synack_retries
DUPACK_THRESHOLD = 3  # tcp_reordering
TIMEWAIT_NS = 60 * SECOND  # TCP_TIMEWAIT_LEN
MAX_SACK_BLOCKS = 3  # with timestamps, three blocks fit in the 40 bytes of options
MIN_RCVMSS = 536  # TCP_MIN_RCVMSS: tcp_initialize_rcv_mss()'s first guess of the peer's MSS


@dataclass(slots=True)
class Sent:
    """A segment in the retransmission queue."""

    seq: int
    flags: int
    payload: bytes
    sent_ns: int
    retransmitted: bool = False

    @property
    def end(self) -> int:
        return (self.seq + len(self.payload) + (1 if self.flags & (SYN | FIN) else 0)) % 2**32


def _before(a: int, b: int) -> bool:
    """`a` comes before `b` in sequence space (before() in the kernel)."""
    return a != b and (b - a) % 2**32 < 2**31


def _continues(tail: list, flags: int, seq: int, options: bytes) -> bool:
    """The backlog's last segment `tail` can take this one (`tcp_add_backlog()`'s test)."""
    t_flags, t_seq, _, t_options, t_payload, *_ = tail
    end = (t_seq + len(t_payload) + (1 if t_flags & FIN else 0)) % 2**32
    return (
        end == seq
        and not (t_flags | flags) & (SYN | RST)
        and bool(t_flags & flags & ACK)
        and t_options == options
    )


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
    # loss recovery: the retransmission queue, the timer and the RTT estimate (RFC 6298)
    snd_una: int = 0
    queue: list[Sent] = field(default_factory=list)
    rto_ns: int = RTO_INIT_NS
    srtt_ns: int = 0
    rttvar_ns: int = 0
    backoff: int = 0
    timer_gen: int = 0
    dupacks: int = 0
    recover: int | None = None  # snd_nxt when a loss was found, until it is acknowledged
    syn_sent_ns: int = 0
    ofo: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # seq -> (payload, flags)
    orphan: bool = False  # the application's process is gone: the kernel finishes alone
    held: bool = False  # the process holds the socket (`hold`): segments wait in `backlog`
    # [flags, seq, ack, options, payload, window, the largest segment merged into it]
    backlog: list[list] = field(default_factory=list)
    rcv_mss: int = MIN_RCVMSS  # the largest segment received (tcp_measure_rcv_mss())

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
        why: Resend | None = None,
        again: Sent | None = None,
        sack: list[tuple[int, int]] | None = None,
    ) -> None:
        """Send a segment: a new one from snd_nxt, or `again` retransmitted."""
        stack = self.stack
        if with_syn_options:
            options = syn_options(self.mss, self._ts_val(), self.ts_recent, WSCALE)
            window = initial_window(self.mss if flags == SYN else self.mss - TS_ROOM)
        else:
            options = timestamp_options(self._ts_val(), self.ts_recent)
            if sack:
                options += sack_option(sack[:MAX_SACK_BLOCKS])
            window = self.window
        src, sport = self.local
        dst, dport = self.remote
        seq = self.snd_nxt if again is None else again.seq
        ack = self.rcv_nxt if flags & ACK else 0
        if flags & ACK:
            self.acked = ack
        segment = tcp_segment(src, dst, sport, dport, seq, ack, flags, window, options, payload)
        if ident is None:
            ident, self.ip_id = self.ip_id, (self.ip_id + 1) & 0xFFFF
        packet = ipv4_packet(src, dst, PROTO_TCP, segment, ident=ident)
        self.sent.append(flags)
        if again is None:
            self.snd_nxt = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) % 2**32
            if (payload or flags & (SYN | FIN)) and flags != SYN:  # the SYN has its own timer
                self.queue.append(Sent(seq, flags, payload, stack.sched.now))
                if len(self.queue) == 1:
                    self._arm_rto()
        note = Decision(Why.TCP_SEGMENT, flags, seq, ack, len(payload), why)
        stack.send_ip_packet(packet, stack.observer.packet(self.tag), note)

    def connect(self) -> None:
        self.state = "SYN_SENT"
        self.syn_sent_ns = self.stack.sched.now
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
        self._send(SYN, with_syn_options=True, why=Resend.SYN_TIMER)
        self._arm_syn_timer()

    # --- loss recovery ---------------------------------------------------------------------------

    def _arm_rto(self) -> None:
        self.timer_gen += 1
        timeout = min(self.rto_ns << self.backoff, RTO_MAX_NS)
        self.stack.sched.after(timeout, self._rto_expired, self.timer_gen)

    def _rto_expired(self, gen: int) -> None:
        if gen != self.timer_gen or not self.queue or self.state == "CLOSED":
            return
        limit = SYNACK_RETRIES if self.state == "SYN_RECV" else RETRIES
        if self.backoff >= limit:
            self._finish("connection timed out")
            return
        self.backoff += 1
        self.recover, self.dupacks = self.snd_nxt, 0  # everything sent so far may be lost
        self._retransmit(self.queue[0], Resend.RTO)
        self._arm_rto()

    def _retransmit(self, segment: Sent, why: Resend) -> None:
        segment.retransmitted = True
        syn = bool(segment.flags & SYN)
        self._send(
            segment.flags,
            segment.payload,
            with_syn_options=syn,
            ident=0 if syn else None,  # the SYN-ACK comes from the request socket again
            why=why,
            again=segment,
        )

    def _rtt_sample(self, rtt_ns: int) -> None:
        """RFC 6298's estimator; Linux keeps the variance term at least TCP_RTO_MIN."""
        if self.srtt_ns == 0:
            self.srtt_ns, self.rttvar_ns = rtt_ns, rtt_ns // 2
        else:
            self.rttvar_ns = (3 * self.rttvar_ns + abs(self.srtt_ns - rtt_ns)) // 4
            self.srtt_ns = (7 * self.srtt_ns + rtt_ns) // 8
        self.rto_ns = min(self.srtt_ns + max(RTO_MIN_NS, 4 * self.rttvar_ns), RTO_MAX_NS)
        self.backoff = 0  # RFC 6298: reset only on a valid measurement

    def _ack_received(self, ack: int, flags: int, payload: bytes) -> None:
        """What an acknowledgement number tells the sender: new data acknowledged (the queue
        shrinks, the timer restarts, a partial ACK in recovery retransmits the next segment),
        or a duplicate ACK (the third one retransmits at once)."""
        if not self.queue:
            return
        if _before(self.snd_una, ack) and not _before(self.snd_nxt, ack):
            now = self.stack.sched.now
            acked = [sent for sent in self.queue if not _before(ack, sent.end)]
            self.queue = [sent for sent in self.queue if _before(ack, sent.end)]
            self.snd_una, self.dupacks = ack, 0
            if acked and not acked[0].retransmitted:
                self._rtt_sample(now - acked[0].sent_ns)
            if self.recover is not None and not _before(ack, self.recover):
                self.recover = None
            if not self.queue:
                self.timer_gen += 1  # nothing outstanding: the timer stops
                return
            if self.recover is not None:
                self._retransmit(self.queue[0], Resend.PARTIAL_ACK)
            self._arm_rto()
        elif ack == self.snd_una and not payload and not flags & (SYN | FIN):
            self.dupacks += 1
            if self.dupacks == DUPACK_THRESHOLD and self.recover is None:
                self.recover = self.snd_nxt
                self._retransmit(self.queue[0], Resend.FAST_RETRANSMIT)
                self._arm_rto()

    def write(self, data: bytes) -> None:
        """Send `data` in segments of at most the send MSS, PSH on the last."""
        if self.orphan:
            return  # what the dead process had scheduled never happens
        chunk = self.send_mss
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            last = start + chunk >= len(data)
            self._send(ACK | (PSH if last else 0), piece)

    def abandon(self) -> None:
        """The process holding the socket exits (a container restart): the kernel closes it,
        with a FIN where the connection is open; a SYN not yet answered is given up."""
        if self.state in ("ESTABLISHED", "CLOSE_WAIT"):
            self.close()
        elif self.state in ("SYN_SENT", "SYN_RECV"):
            self._finish("closed by its process's exit")
        self.orphan = True

    def reset_by_us(self) -> None:
        """We reset the connection: the socket is gone at once, its timers with it."""
        self._finish("reset")

    def close(self) -> None:
        if self.orphan:
            return
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
        """The socket is done (a TIME_WAIT socket stays TIMEWAIT_NS to acknowledge a
        retransmitted FIN again)."""
        self.timer_gen += 1
        if self.state == "TIME_WAIT":
            self.stack.sched.after(TIMEWAIT_NS, self.stack.tcp.forget, self)
        else:
            self.state = "CLOSED"
            self.stack.tcp.forget(self)
        self.on_done(self, how)

    # --- receiving -------------------------------------------------------------------------------

    def hold(self) -> None:
        """The process holds its socket inside a call (`lock_sock()`): `tcp_v4_rcv()` puts what
        arrives in the socket's backlog until the process's `release_sock()` (`release`) hands
        it to TCP. For a same-node client, see `kpkt/apps/tcp.py`."""
        self.held = True

    def release(self) -> None:
        """`release_sock()`: TCP processes the backlog, in order."""
        self.held = False
        backlog, self.backlog = self.backlog, []
        for segment in backlog:
            self.receive(*segment)

    def _add_backlog(
        self, flags: int, seq: int, ack: int, options: bytes, payload: bytes, window: int
    ) -> None:
        """`tcp_add_backlog()`: a segment that continues the backlog's last one (its sequence
        number is where the last one ends, both have ACK, neither SYN nor RST, the same options)
        is merged into it: payloads joined, flags or-ed (a FIN included), the newer ACK and
        window kept, and the size of the largest segment in it (its gso_size). Not modelled:
        the limit on how much one merged segment holds (MAX_SKB_FRAGS)."""
        if self.backlog and _continues(self.backlog[-1], flags, seq, options):
            tail = self.backlog[-1]
            tail[0] |= flags
            tail[4] += payload
            if not _before(ack, tail[2]):
                tail[2], tail[5] = ack, window
            tail[6] = max(tail[6], len(payload))
            return
        self.backlog.append([flags, seq, ack, options, payload, window, len(payload)])

    def receive(
        self,
        flags: int,
        seq: int,
        ack: int,
        options: bytes,
        payload: bytes,
        window: int,
        largest: int | None = None,
    ) -> None:
        """A segment for this socket; `largest` is the largest segment in it when the backlog
        merged several (else its own payload)."""
        if self.held:
            self._add_backlog(flags, seq, ack, options, payload, window)
            return
        self.ts_recent = ts_val_of(options, self.ts_recent)
        state = self.state
        if state == "TIME_WAIT":
            if flags & RST:
                self.stack.tcp.forget(self)
            elif flags & FIN:  # our last ACK was lost: tcp_timewait_state_process() acks again
                self._send(ACK, ident=0, why=Resend.TIME_WAIT_AGAIN)
            return
        if flags & RST:
            self._finish("connection reset")
            return
        if state == "SYN_SENT":
            if flags & SYN and flags & ACK:
                self.rcv_nxt = (seq + 1) % 2**32
                if self.retries == 0:
                    self._rtt_sample(self.stack.sched.now - self.syn_sent_ns)
                self.snd_una = self.snd_nxt
                self._established(mss_of(options), active=True)
                self._send(ACK)
                self.on_data(self, b"")  # connected: the application may write
            return
        if state == "SYN_RECV" and flags & SYN and not flags & ACK:
            # the client's SYN again (our SYN-ACK was lost): tcp_check_req() answers at once
            if self.queue:
                self._retransmit(self.queue[0], Resend.SYN_AGAIN)
            return
        if state == "SYN_RECV" and flags & ACK and ack == self.snd_nxt:
            self.state = "ESTABLISHED"
        if flags & ACK:
            self._ack_received(ack, flags, payload)
        length = len(payload) + (1 if flags & FIN else 0)
        if length == 0:
            if state != "SYN_RECV" and flags & SYN:  # an old SYN-ACK: our ACK was lost
                self._send(ACK, why=Resend.DUPLICATE_ACK)
            elif flags & ACK and ack == self.snd_nxt:
                self._acked()
            return
        if seq != self.rcv_nxt:
            self._out_of_order(seq, flags, payload)
            return
        self._in_order(flags, payload, len(payload) if largest is None else largest)
        if flags & ACK and ack == self.snd_nxt and self.state in ("FIN_WAIT_1", "LAST_ACK"):
            self._acked()

    def _in_order(self, flags: int, payload: bytes, largest: int) -> None:
        """An in-order segment, and what waited after it: the data to the application
        (acknowledged at once, quickack: one ACK when a hole is filled), then the FIN. The FIN
        is taken before the ACK is decided (`tcp_data_queue()` calls `tcp_fin()`, then
        `tcp_ack_snd_check()` runs), so an ACK covers it, and data that came in one segment
        with the FIN is acknowledged late (`tcp_fin()` entered pingpong mode: no quickack),
        with the FIN; at once all the same when it is more than one full frame (more than
        `rcv_mss`) or fills a hole (ICSK_ACK_NOW)."""
        self.rcv_mss = max(self.rcv_mss, largest)
        fin, filled = flags & FIN, False
        self.rcv_nxt = (self.rcv_nxt + len(payload)) % 2**32
        while not fin and self.rcv_nxt in self.ofo:
            more, more_flags = self.ofo.pop(self.rcv_nxt)
            payload += more
            self.rcv_nxt = (self.rcv_nxt + len(more)) % 2**32
            fin, filled = more_flags & FIN, True
        if fin:
            self._peer_closed()  # tcp_fin(), before the ACK is decided
        at_once = filled or not fin or len(payload) > self.rcv_mss
        if payload and at_once and self.acked != self.rcv_nxt:
            self._send(ACK, sack=self._sack_blocks(), why=Resend.HOLE_FILLED if filled else None)
        if payload and not self.orphan:
            self.on_data(self, payload)
        if fin and self.state == "CLOSE_WAIT" and not self.orphan:
            self.on_fin(self)  # the application reads the end of the stream

    def _out_of_order(self, seq: int, flags: int, payload: bytes) -> None:
        """A segment after a hole is kept, and a segment we already have is dropped; either
        way an ACK goes out at once: a duplicate ACK with SACK blocks, or one with a D-SACK
        block (RFC 2883)."""
        end = (seq + len(payload) + (1 if flags & FIN else 0)) % 2**32
        if not _before(self.rcv_nxt, end):  # all of it came before: a spurious retransmission
            self._send(ACK, sack=[(seq, end), *self._sack_blocks()], why=Resend.D_SACK)
            return
        self.ofo[seq] = (payload, flags)
        self._send(ACK, sack=self._sack_blocks(newest=seq), why=Resend.OUT_OF_ORDER)

    def _sack_blocks(self, newest: int | None = None) -> list[tuple[int, int]]:
        """The out-of-order data as SACK blocks, the one holding `newest` first."""
        blocks: list[tuple[int, int]] = []
        for seq in sorted(self.ofo, key=lambda s: (s - self.rcv_nxt) % 2**32):
            payload, flags = self.ofo[seq]
            end = (seq + len(payload) + (1 if flags & FIN else 0)) % 2**32
            if blocks and blocks[-1][1] == seq:
                blocks[-1] = (blocks[-1][0], end)
            else:
                blocks.append((seq, end))
        if newest is not None:
            first = [b for b in blocks if not _before(newest, b[0]) and _before(newest, b[1])]
            blocks = first + [b for b in blocks if b not in first]
        return blocks

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
        self.snd_una = self.snd_nxt
        self._send(SYN | ACK, with_syn_options=True, ident=0)

    def _peer_closed(self) -> None:
        self.rcv_nxt = (self.rcv_nxt + 1) % 2**32
        if self.state == "ESTABLISHED":
            self.state = "CLOSE_WAIT"
            self.stack.sched.after(DELACK_NS, self._delayed_ack)
        elif self.state == "FIN_WAIT_1":  # the FIN acks ours: the full socket answers
            self.state = "TIME_WAIT"
            self._send(ACK)
            self._finish("closed")
        elif self.state == "FIN_WAIT_2":  # a TIME_WAIT socket now: no IP ID counter of its own
            self.state = "TIME_WAIT"
            self._send(ACK, ident=0, why=Resend.TIME_WAIT)
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


def initial_window(mss: int) -> int:
    """tcp_select_initial_window(): the 64 KiB window rounded down to a multiple of the MSS."""
    return 65535 // mss * mss


def scaled_window(window: int) -> int:
    """The window field once scaling is on: rounded up to 1 << WSCALE, then shifted."""
    return -(-window // (1 << WSCALE))
