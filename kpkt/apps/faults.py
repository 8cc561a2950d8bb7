"""`link` and `impair` steps: faults applied to an interface at a moment of the run, as
`ip link set ... down|up` (carrier, both ends of the link) and `tc qdisc replace|del ... netem`
would: `link` on a veth or a wire (a pod's eth0 and its host veth, a node's eth0, a CNI's veth
pairs), `impair` also on a bridge or VXLAN device. The step sends nothing and is done at once;
what the fault does shows in the steps that follow. The interface's observer is told of the
event (a `Decision`), which its capture notes on its next frame. An interface that is gone
when the step comes (a deleted pod's host veth) changes nothing, as `ip link` finds no device."""

from __future__ import annotations

from kpkt.apps.base import EventApp
from kpkt.net.netem import Netem
from kpkt.observe import Decision, Why
from kpkt.spec import ImpairStep, LinkStep


class FaultApp(EventApp):
    def __init__(self, step: LinkStep | ImpairStep, stack) -> None:
        super().__init__(step, stack)
        self.where = f"{stack.owner}/{step.interface}"
        self.what = ""

    def _send(self) -> None:
        step = self.step
        dev = next((d for d in self.sender.devices if d.name == step.interface), None)
        if dev is None:
            self.what = f'Cannot find device "{step.interface}": nothing changed'
            return
        if isinstance(step, LinkStep):
            dev.set_carrier(step.up)
            self.what = f"link {'up' if step.up else 'down'}"
            event = Decision(Why.LINK_SET, step.up, dev.where)
            for end in (dev, dev.peer):
                if end is not None:
                    end.observer.remark(event)
            return
        if step.impairment is None:
            dev.qdisc = None
            self.what = "netem removed"
        else:
            dev.qdisc = Netem(dev, step.impairment, dev.network.seed)
            self.what = f"netem {step.impairment.text()}"
        dev.observer.remark(Decision(Why.NETEM_SET, step.impairment))

    def result(self) -> str:
        return f"{self.where}: {self.what}"
