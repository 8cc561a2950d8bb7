"""The cluster as an SVG picture, laid out from the capture points alone, the same every time.

Columns from left to right: the nodes in the order manifest.json first names them, then the
hosts outside the cluster. Above them, the node network: the underlay switch as a bar with a
port per host (`ul-<host>`), or a wire between two hosts. Inside a node, from the top: its
`eth0` and its CNI's devices (`cni0`, a tunnel device) joined by the node's routing, then one
row per pod: the host side of its veth pair on the bridge's bus, the veth link, and the pod's
namespace with its `eth0` (and `lo`). The pods of a node sit at the bottom of its box, so
folding them away (the page's job) moves nothing else.

Every port is a `<g class="port" data-name="owner/interface">` with its centre in `data-x`,
`data-y`; every link a `<line class="link" data-a=… data-b=…>`: the page finds them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from kpkt.html_report.model import Port

PORT_W, PORT_H, LOOP_W = 132, 30, 36
VETH_X = 60  # where the host sides of the veths start in a node
POD_X = VETH_X + PORT_W + 34  # where the pods start
POD_W = 6 + PORT_W + 4 + LOOP_W + 6
NODE_W, HOST_W, GAP = POD_X + POD_W + 10, PORT_W + 30, 24
TOP = 110  # where the host boxes start; the node network is drawn above
SWITCH_BAND = 100  # the height of one switch's band above the hosts (one per switched subnet)
STACK_STEP = 40  # eth0 and the CNI's devices one under the other
POD_H = 56  # a pod row
MAX_LABEL = 21  # characters of a port's first line
MAX_PODS = 500  # a bigger cluster shows only the pods its report's steps cross
ARROW_HEAD = (  # the head of the arrows the page draws along a step's path
    '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
    '<path d="M0,0 L8,4 L0,8 z" fill="#d9480f"/></marker></defs>'
)


@dataclass
class _Canvas:
    parts: list[str] = field(default_factory=list)
    at: dict[str, tuple[float, float]] = field(default_factory=dict)  # port name -> centre
    top: float = TOP  # where the host boxes start, below the switches' bands

    def port(self, port: Port, x: float, y: float, width: float = PORT_W) -> None:
        self.at[port.name] = (x + width / 2, y + PORT_H / 2)
        first = port.interface if width < PORT_W else _label(port)
        tip = "\n".join(
            [port.name, f"kind: {port.kind}", f"MAC: {port.mac or '-'}"]
            + [f"address: {ip}" for ip in port.ips]
            + [f"file: {port.file} ({port.packets} frames)"]
        )
        second = port.mac or ""
        self.parts.append(
            f'<g class="port kind-{port.kind}" data-name="{escape(port.name)}" '
            f'data-x="{x + width / 2:g}" data-y="{y + PORT_H / 2:g}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:g}" y="{y:g}" width="{width:g}" height="{PORT_H}" rx="4"/>'
            f'<text x="{x + 4:g}" y="{y + 12:g}">{escape(first)}</text>'
            + (f'<text class="mac" x="{x + 4:g}" y="{y + 25:g}">{second}</text>' if second else "")
            + "</g>"
        )

    def link(self, a: str, b: str, kind: str, points: list[tuple[float, float]]) -> None:
        path = " ".join(f"{x:g},{y:g}" for x, y in points)
        self.parts.append(
            f'<polyline class="link {kind}" data-a="{escape(a)}" data-b="{escape(b)}" '
            f'points="{path}"/>'
        )

    def box(self, css: str, x: float, y: float, width: float, height: float, **data) -> None:
        attributes = "".join(f' data-{key}="{escape(str(value))}"' for key, value in data.items())
        self.parts.append(
            f'<rect class="{css}" x="{x:g}" y="{y:g}" width="{width:g}" '
            f'height="{height:g}" rx="8"{attributes}/>'
        )

    def text(self, css: str, x: float, y: float, words: str) -> None:
        self.parts.append(f'<text class="{css}" x="{x:g}" y="{y:g}">{escape(words)}</text>')


def draw(ports: list[Port], needed: set[str]) -> str:
    """The SVG of the cluster whose capture points are `ports`. A cluster of more than MAX_PODS
    pods shows only the pods with a capture point in `needed` (the ones the report's steps
    cross), and says how many it leaves out."""
    switches = len({p.owner for p in ports if p.kind == "switch-port"})
    canvas = _Canvas(top=TOP + SWITCH_BAND * max(switches - 1, 0))
    hosts = _hosts(ports)
    by_owner: dict[str, list[Port]] = {}
    pods_on: dict[str, dict[str, None]] = {}  # node -> its pods, in the order ports name them
    for port in ports:
        by_owner.setdefault(port.owner, []).append(port)
        if port.node is not None and port.owner != port.node:
            pods_on.setdefault(port.node, {})[port.owner] = None
    every_pod = {pod for pods in pods_on.values() for pod in pods}
    drawn = every_pod
    if len(every_pod) > MAX_PODS:
        drawn = {p.owner for p in ports if p.owner in every_pod and p.name in needed}
    x = GAP
    height = canvas.top
    for owner, own in hosts.items():
        total = len(pods_on.get(owner, ()))
        pods = {pod: by_owner[pod] for pod in pods_on.get(owner, ()) if pod in drawn}
        if total or any(p.kind == "bridge" for p in own):
            height = max(height, _node(canvas, owner, own, pods, total, x))
            x += NODE_W + GAP
        else:
            height = max(height, _host(canvas, owner, own, x))
            x += HOST_W + GAP
    _node_network(canvas, ports, hosts)
    _peers(canvas, ports)
    width, height = x, height + GAP
    body = "".join(canvas.parts)
    return (
        f'<svg id="cluster" xmlns="http://www.w3.org/2000/svg" width="{width:g}" '
        f'height="{height:g}" viewBox="0 0 {width:g} {height:g}">{ARROW_HEAD}'
        f'<g id="overlay"></g>{body}<g id="marks"></g></svg>'
    )


def _hosts(ports: list[Port]) -> dict[str, list[Port]]:
    """Owner -> its root-namespace ports: nodes first, then hosts outside the cluster, each in
    the order the manifest first names it. The underlay switch is not a host."""
    nodes: dict[str, list[Port]] = {}
    others: dict[str, list[Port]] = {}
    for port in ports:
        if port.node is not None:
            nodes.setdefault(port.node, [])
    for port in ports:
        if port.owner in nodes:
            nodes[port.owner].append(port)
        elif port.node is None and not _on_switch(port, ports):
            others.setdefault(port.owner, []).append(port)
    return nodes | others


def _on_switch(port: Port, ports: list[Port]) -> bool:
    """The underlay switch's own ports: its bridge and the ports its hosts are wired to."""
    return port.kind == "switch-port" or (
        port.kind == "bridge"
        and port.node is None
        and any(p.owner == port.owner and p.kind == "switch-port" for p in ports)
    )


def _node(
    canvas: _Canvas, node: str, own: list[Port], pods: dict[str, list[Port]], total: int, x: float
) -> float:
    stack = sorted(own, key=_stack_order)
    stack_ports = [p for p in stack if p.kind != "veth"]
    veths = {p.peer: p for p in stack if p.kind == "veth"}
    pods_top = canvas.top + 20 + STACK_STEP * len(stack_ports)
    bottom = pods_top + POD_H * len(pods) + 4
    canvas.box("node", x, canvas.top, NODE_W, bottom - canvas.top, node=node)
    canvas.text("title", x + PORT_W + 36, canvas.top + 22, node)
    canvas.text("subtitle", x + PORT_W + 36, canvas.top + 38, "node (root namespace)")
    for number, port in enumerate(stack_ports):
        canvas.port(port, x + 20, canvas.top + 10 + STACK_STEP * number)
    spine_x = x + 10
    for a, b in zip(stack_ports, stack_ports[1:], strict=False):
        ya, yb = canvas.at[a.name][1], canvas.at[b.name][1]
        canvas.link(
            a.name, b.name, "routing", [(x + 20, ya), (spine_x, ya), (spine_x, yb), (x + 20, yb)]
        )
    bridge = next((p for p in stack_ports if p.kind == "bridge"), None)
    toggle_y = pods_top - 6
    canvas.parts.append(
        f'<text class="toggle" data-node="{escape(node)}" x="{x + PORT_W + 36:g}" '
        f'y="{toggle_y:g}">▾ {_counted(len(pods), total)}</text>'
    )
    canvas.parts.append(
        f'<g class="pods" data-node="{escape(node)}" data-x="{x + PORT_W + 60:g}" '
        f'data-y="{toggle_y - 4:g}" data-folded-height="{pods_top - canvas.top:g}">'
    )
    for row, (owner, own_ports) in enumerate(pods.items()):
        top = pods_top + POD_H * row
        canvas.box("pod", x + POD_X, top, POD_W, POD_H - 6, owner=owner)
        canvas.text("pod-name", x + POD_X + 6, top + 11, owner)
        px = x + POD_X + 6
        for port in sorted(own_ports, key=lambda p: (p.kind == "loopback", p.interface)):
            width = LOOP_W if port.kind == "loopback" else PORT_W
            canvas.port(port, px, top + 16, width)
            px += width + 4
        for port in own_ports:
            veth = veths.pop(port.name, None)
            if veth is not None:
                canvas.port(veth, x + VETH_X, top + 16)
                if bridge is not None:
                    bus_x, by = x + 44, canvas.at[bridge.name][1]
                    y = top + 16 + PORT_H / 2
                    canvas.link(
                        veth.name,
                        bridge.name,
                        "bridge-port",
                        [(x + VETH_X, y), (bus_x, y), (bus_x, by + PORT_H / 2)],
                    )
    canvas.parts.append("</g>")
    return bottom


def _counted(drawn: int, total: int) -> str:
    pods = f"{total} pod{'s' if total != 1 else ''}"
    return pods if drawn == total else f"{drawn} of {pods} (the others carry no hop shown here)"


def _stack_order(port: Port) -> tuple:
    order = {"underlay": 0, "vxlan": 1, "ipip": 1, "bridge": 2}
    return (order.get(port.kind, 3), port.interface)


def _host(canvas: _Canvas, owner: str, own: list[Port], x: float) -> float:
    bottom = canvas.top + 60 + STACK_STEP * (len(own) - 1)
    canvas.box("host", x, canvas.top, HOST_W, bottom - canvas.top, node=owner)
    for number, port in enumerate(own):
        canvas.port(port, x + (HOST_W - PORT_W) / 2, canvas.top + 10 + STACK_STEP * number)
    canvas.text("title", x + 10, bottom - 8, owner)
    return bottom


def _node_network(canvas: _Canvas, ports: list[Port], hosts: dict[str, list[Port]]) -> None:
    """Each switch in a band above the hosts: its bridge at the left, a bar, a port above each
    host's wire (a wire between two hosts without a switch is drawn by _peers). A routed node
    network has a switch per subnet that three or more hosts share, one band each."""
    owners = dict.fromkeys(p.owner for p in ports if p.kind == "switch-port")
    for band, owner in enumerate(owners):
        _switch(canvas, ports, owner, hosts, SWITCH_BAND * band)


def _switch(
    canvas: _Canvas, ports: list[Port], owner: str, hosts: dict[str, list[Port]], top: float
) -> None:
    own = [p for p in ports if p.owner == owner]
    switch_ports = [p for p in own if p.kind == "switch-port"]
    by_host = {p.peer: p for p in switch_ports}
    bar_y = top + 52
    xs = []
    for port in ports:
        if port.owner in hosts and port.name in by_host:
            cx, _ = canvas.at[port.name]
            canvas.port(by_host[port.name], cx - PORT_W / 2, bar_y + 12)
            xs.append(cx)
    bridge = next((p for p in own if p.kind == "bridge"), None)
    left = GAP + PORT_W / 2
    if bridge is not None:
        canvas.port(bridge, GAP, top + 8)
    canvas.text("subtitle", GAP + PORT_W + 12, top + 28, f"{owner}: the node network")
    canvas.parts.append(
        f'<line class="bar" x1="{left:g}" y1="{bar_y:g}" x2="{max(xs + [left]):g}" y2="{bar_y:g}"/>'
    )
    for port in switch_ports:
        if port.name in canvas.at:
            cx, cy = canvas.at[port.name]
            target = bridge.name if bridge is not None else port.name
            canvas.link(port.name, target, "bridge-port", [(cx, cy - PORT_H / 2), (cx, bar_y)])
    if bridge is not None:
        canvas.parts.append(
            f'<line class="bar" x1="{left:g}" y1="{top + 8 + PORT_H:g}" x2="{left:g}" '
            f'y2="{bar_y:g}"/>'
        )


def _peers(canvas: _Canvas, ports: list[Port]) -> None:
    """veth pairs and wires, each once: straight between a pod and its host side, over the top
    between a host and the switch or another host."""
    drawn = set()
    for port in ports:
        pair = frozenset({port.name, port.peer})
        if port.peer is None or pair in drawn or port.peer not in canvas.at:
            continue
        if port.name not in canvas.at:
            continue
        drawn.add(pair)
        (ax, ay), (bx, by) = canvas.at[port.name], canvas.at[port.peer]
        if port.kind in ("veth", "pod-eth"):
            left, right = sorted([(ax, ay), (bx, by)])
            points = [(left[0] + PORT_W / 2, left[1]), (right[0] - PORT_W / 2, right[1])]
            canvas.link(port.name, port.peer, "veth", points)
        elif abs(ay - by) < 1 or ay > canvas.top - 20 and by > canvas.top - 20:
            over = canvas.top - 30
            points = [(ax, ay - PORT_H / 2), (ax, over), (bx, over), (bx, by - PORT_H / 2)]
            canvas.link(port.name, port.peer, "wire", points)
        else:
            low, high = sorted([(ax, ay), (bx, by)], key=lambda p: p[1])
            points = [(low[0], low[1] + PORT_H / 2), (high[0], high[1] - PORT_H / 2)]
            canvas.link(port.name, port.peer, "wire", points)


def _label(port: Port) -> str:
    """`eth0 10.1.1.5/24`: the interface and its first address, cut to fit the port."""
    text = " ".join([port.interface, *port.ips[:1]])
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"
