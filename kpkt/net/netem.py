"""netem, the queueing discipline `tc qdisc replace dev <if> root netem ...` puts on an
interface's egress: it loses, duplicates, corrupts, delays (with jitter) and reorders frames.

Every choice comes from a generator derived from the topology's seed and the interface, so a
run repeats to the byte. The order of the choices is `netem_enqueue()`'s: duplicate, loss,
corrupt, then the delay (uniform in delay ± jitter, netem's distribution without a table) or,
with the reorder probability, no delay at all (the frame goes to the head of the queue; tc sets
gap 1). Frames leave in the order of their send times (netem's tfifo), so jitter reorders too.
A frame netem drops never reaches the interface's capture (tcpdump sees frames as the driver
gets them); a delayed one is captured when it leaves.

kpkt's simplifications: a duplicate goes through netem again at once, after the original (the
kernel enqueues the copy at the root qdisc); corruption flips one bit of the IPv4 packet (the
kernel's offset may also fall in the Ethernet header) and leaves ARP frames alone; no rate,
no correlation, no loss models other than random loss.
"""

from __future__ import annotations

from kpkt.engine.ids import derived_random
from kpkt.observe import Decision, Tag, Why
from kpkt.wire.ethernet import ETH_LEN, ETH_TYPE, ETH_TYPE_IP


class Netem:
    """The netem qdisc of one device: `enqueue` takes the frames the device would send, and
    hands the ones that survive to `dev.transmit` when their time comes. `impairment` is what
    netem is set to, a plain value with `loss`, `delay_ns`, `jitter_ns`, `duplicate`, `reorder`
    and `corrupt` (the application hands over its step's)."""

    def __init__(self, dev, impairment, seed: int) -> None:
        self.dev = dev
        self.impairment = impairment
        self.rng = derived_random(seed, f"netem/{dev.where}")

    def enqueue(self, frame: bytes, tag: Tag, note="", duplicate: bool = True) -> None:
        imp, rng, dev = self.impairment, self.rng, self.dev
        count = 1
        if duplicate and imp.duplicate and rng.random() < imp.duplicate:
            count += 1
        if imp.loss and rng.random() < imp.loss:
            count -= 1
        if count == 0:
            dev.stack.drop(Decision(Why.NETEM_LOSS, dev.name, imp.loss), tag, dev.where)
            return
        original = frame
        if imp.corrupt and rng.random() < imp.corrupt and frame[ETH_TYPE] == ETH_TYPE_IP:
            at = ETH_LEN + rng.randrange(len(frame) - ETH_LEN)
            flipped = frame[at] ^ (1 << rng.randrange(8))
            frame = frame[:at] + bytes((flipped,)) + frame[at + 1 :]
            dev.network.corrupting = True
            text = f"netem: corrupted byte {at}"
            note = Decision(Why.THEN, note, text) if note else text
        delay = 0
        if imp.delay_ns and not (imp.reorder and rng.random() < imp.reorder):
            jitter = imp.jitter_ns
            delay = imp.delay_ns + (rng.randrange(2 * jitter) - jitter if jitter else 0)
            delay = max(delay, 0)
        if delay:
            dev.network.in_flight += 1
            dev.sched.after(delay, self._dequeue, frame, tag, note)
        else:
            dev.transmit(frame, tag, note)
        if count > 1:
            self.enqueue(original, tag, "netem: duplicate", duplicate=False)

    def _dequeue(self, frame: bytes, tag: Tag, note) -> None:
        self.dev.network.in_flight -= 1
        self.dev.transmit(frame, tag, note)
