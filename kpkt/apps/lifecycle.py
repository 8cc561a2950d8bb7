"""Lifecycle steps: what happens to a pod while the cluster runs. `restart`: a container
restarts; the pause container keeps the network namespace, so the address, the MAC, the veth
and every neighbour and FDB entry stay, and only the sockets of the pod's applications close,
as the kernel closes them when their process exits (a TCP peer's next segment then draws a
reset, a datagram an ICMP port unreachable, until a later step listens again). `delete`: the
pod goes, as the cluster (its builder) carries it out: namespace, veth, endpoints. `create`: a
pod comes up on its node as the CNI plugin brings it up, and the Services whose selector picks
it gain the endpoint. `label`: a pod's or a namespace's labels change, and with them the
Services' endpoints (kube-proxy syncs its rules) and which NetworkPolicies select which pods.
Whenever the endpoints change, CoreDNS's model sees the new Services and pods too."""

from __future__ import annotations

from kpkt.apps.base import EventApp
from kpkt.net.sockets import close_all
from kpkt.observe import Decision, Why
from kpkt.spec import CreateStep, DeleteStep, LabelStep, RestartStep


class LifecycleApp(EventApp):
    def __init__(
        self, step: RestartStep | DeleteStep | CreateStep | LabelStep, stack, cluster
    ) -> None:
        super().__init__(step, stack)
        # what carries out a deletion, a creation or a label change (the builder)
        self.cluster = cluster
        self.what = ""
        self.attaching = False  # a created pod's CNI ADD has not returned yet

    def _send(self) -> None:
        step, stack = self.step, self.sender
        if isinstance(step, DeleteStep):
            self.what = "deleted: its namespace and veth are gone, and its service endpoints"
            deleted = Decision(Why.POD_DELETED, step.pod.owner)
            for dev in stack.devices:
                if dev is not stack.loopback:
                    dev.peer.observer.remark(deleted)
            self.cluster.delete_pod(stack, step.services)
            return
        if isinstance(step, CreateStep):
            pod = step.pod
            self.what = f"created on {pod.node} with {pod.ip}"
            created = Decision(Why.POD_CREATED, pod.owner, pod.node, pod.ip.packed)
            took = self.cluster.create_pod(pod, stack, created)
            self.attaching = True
            stack.sched.after(took, self._ready)
            return
        if isinstance(step, LabelStep):
            changes = [f"{key}={value}" for key, value in step.set]
            changes += [f"{key}-" for key in step.remove]
            self.what = f"labels {' '.join(changes)}"
            self.cluster.relabel(step)
            if step.pod is not None:
                self._remark(stack, Decision(Why.LABELS_SET, step.pod.owner, step.set, step.remove))
            return
        closed = close_all(stack)
        container = f"container {step.container}" if step.container else "its containers"
        self.what = f"{container} restarted: {closed} socket(s) closed"
        self._remark(stack, Decision(Why.RESTARTED, step.pod.owner, step.container, closed))

    def _ready(self) -> None:
        """The CNI plugin's ADD returned: the pod is ready, and the EndpointSlice controller
        and kube-proxy's sync make it an endpoint of the Services that select it."""
        self.cluster.sync_services(self.step.services)
        self.attaching = False

    def done(self) -> bool:
        return not self.attaching

    def _remark(self, stack, event: Decision) -> None:
        """Each interface of the pod is told of the event (noted on its next frame)."""
        for dev in stack.devices:
            if dev is not stack.loopback:
                dev.observer.remark(event)

    def result(self) -> str:
        step = self.step
        if isinstance(step, CreateStep):
            return f"{step.pod.owner}: {self.what}"
        where = step.pod.owner if step.pod else f"namespace {step.namespace}"
        return f"{where}: {self.what}"
