"""`link` and `impair` steps: faults applied to an interface at a moment of the run, as
`ip link set ... down|up` (carrier, both ends of the link) and `tc qdisc replace|del ... netem`
would. The step sends nothing and is done at once; what the fault does shows in the steps that
follow. The interface's capture notes the event on its next frame."""

from __future__ import annotations

from kpkt.apps.base import EventApp
from kpkt.net.netem import Netem
from kpkt.spec import Impairment, ImpairStep, LinkStep


class FaultApp(EventApp):
    def __init__(self, step: LinkStep | ImpairStep, stack) -> None:
        super().__init__(step, stack)
        self.device = next(dev for dev in stack.devices if dev.name == step.interface)
        self.what = ""

    def _send(self) -> None:
        step, dev = self.step, self.device
        if isinstance(step, LinkStep):
            dev.set_carrier(step.up)
            self.what = f"link {'up' if step.up else 'down'}"
            for end in (dev, dev.peer):
                if end is not None:
                    end.observer.remark(f"{self.what} ({dev.where})")
            return
        if step.impairment is None:
            dev.qdisc = None
            self.what = "netem removed"
        else:
            dev.qdisc = Netem(dev, step.impairment, dev.network.seed)
            self.what = f"netem {describe(step.impairment)}"
        dev.observer.remark(self.what)

    def result(self) -> str:
        return f"{self.device.where}: {self.what}"


def describe(imp: Impairment) -> str:
    """The impairment as tc would print it: "loss 5% delay 2ms 1ms"."""
    parts = []
    if imp.delay_ns:
        jitter = f" {_ms(imp.jitter_ns)}" if imp.jitter_ns else ""
        parts.append(f"delay {_ms(imp.delay_ns)}{jitter}")
    for name in ("loss", "duplicate", "reorder", "corrupt"):
        value = getattr(imp, name)
        if value:
            parts.append(f"{name} {value * 100:g}%")
    return " ".join(parts)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:g}ms"
