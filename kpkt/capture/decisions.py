"""Decisions as the capture files show them: the text of a `kpkt.observe.Decision` in a hop
table, in an all.pcapng comment and, for a drop, as its detail in the manifest."""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.observe import Decision, Resend, Why
from kpkt.wire.ethernet import mac_str
from kpkt.wire.icmp import describe
from kpkt.wire.tcp import ACK, flag_text


def render(decision: Decision | str) -> str:
    """The text of `decision` (a string is a device's own text, taken as it is)."""
    if decision.__class__ is str:
        return decision
    text = decision.text
    if text is None:
        text = decision.text = _BY_NAME[decision.why._name_](*decision.args)
    return text


def _ip(ip: bytes) -> str:
    """An address in dotted quad, as IPv4Address(ip) prints it (without making one: notes are
    written for every frame)."""
    if type(ip) is bytes and len(ip) == 4:
        return f"{ip[0]}.{ip[1]}.{ip[2]}.{ip[3]}"
    return str(IPv4Address(ip))


def _flooded(mac: bytes, ports: int, hairpin: bool) -> str:
    reason = "broadcast" if mac[0] & 1 else f"fdb miss for {mac_str(mac)}"
    return f"{reason}: flooded to {ports} port(s)" + (" (hairpin)" if hairpin else "")


def _dnat(dst: bytes | None, dport: int, ip: bytes, port: int, service: str, mark: str) -> str:
    via = f"{_ip(dst)}:{dport}" if dst is not None else f"node port {dport}"
    text = f"dnat {via} -> {_ip(ip)}:{port} ({service})"
    return text + _MARKS[mark]


def _segment(flags: int, seq: int, ack: int, length: int, cause: Resend | None) -> str:
    """A segment by its own fields, "tcp SA seq 1 ack 2 len 0", and why it was sent."""
    acked = f" ack {ack}" if flags & ACK else ""
    text = f"tcp {flag_text(flags)} seq {seq}{acked} len {length}"
    return f"{text} {RESENDS[cause]}" if cause is not None else text


def _labels(owner: str, changed: tuple[tuple[str, str], ...], removed: tuple[str, ...]) -> str:
    changes = [f"{key}={value}" for key, value in changed] + [f"{key}-" for key in removed]
    return f"{owner}: labels {' '.join(changes)}"


def _restarted(owner: str, container: str | None, closed: int) -> str:
    which = f"container {container}" if container else "its containers"
    return f"{owner}: {which} restarted: {closed} socket(s) closed"


def _query(query) -> str:
    again = " (again)" if query.retransmit else ""
    return (
        f"dns query {query.transport} #{query.socket} id {query.qid:#06x} {query.qtype} "
        f"{query.qname}{again}"
    )


RESENDS = {
    Resend.SYN_TIMER: "retransmitted",
    Resend.RTO: "retransmitted (rto)",
    Resend.PARTIAL_ACK: "retransmitted (partial ack)",
    Resend.FAST_RETRANSMIT: "retransmitted (fast retransmit)",
    Resend.SYN_AGAIN: "retransmitted (the SYN came again)",
    Resend.DUPLICATE_ACK: "duplicate ack",
    Resend.OUT_OF_ORDER: "duplicate ack, out of order",
    Resend.HOLE_FILLED: "the hole is filled",
    Resend.D_SACK: "d-sack",
    Resend.TIME_WAIT: "from the TIME_WAIT socket",
    Resend.TIME_WAIT_AGAIN: "from the TIME_WAIT socket, again",
    Resend.RESET: "reset",
}

_MARKS = {
    "": "",
    "hairpin": "; hairpin: marked for masquerade",
    "masquerade": "; marked for masquerade",
}

_TEXT = {
    Why.FDB_LEARN: lambda mac, port: f"fdb learn {mac_str(mac)} on {port}",
    Why.FDB_LOCAL: lambda mac: f"fdb: {mac_str(mac)} is local",
    Why.FDB_PORT: lambda mac, port: f"fdb: {mac_str(mac)} on {port}",
    Why.PASSED_UP: lambda: "broadcast: also passed up to the bridge",
    Why.FLOODED: _flooded,
    Why.ARP_WHO_HAS: lambda ip, n: f"arp who-has {_ip(ip)} (try {n})",
    Why.ARP_PROBE: lambda ip, n: f"arp unicast probe {_ip(ip)} (try {n})",
    Why.ARP_REPLY: lambda ip, mac: f"arp reply {_ip(ip)} is-at {mac_str(mac)}",
    Why.ARP_PROXY_REPLY: lambda ip, mac: f"proxy arp reply {_ip(ip)} is-at {mac_str(mac)}",
    Why.ARP_RESOLVED: lambda ip: f"arp resolved {_ip(ip)}",
    Why.GRATUITOUS_ARP: lambda ip, by: f"gratuitous arp for {_ip(ip)} ({by})",
    Why.FORWARD: lambda route, ttl: f"forward: route {route}, ttl {ttl}",
    Why.ECHO_REPLY: lambda: "icmp echo reply",
    Why.ICMP_ERROR: lambda kind, code, ip: f"icmp {describe(kind, code)} to {_ip(ip)}",
    Why.ICMP_RATE_LIMITED: lambda kind, code: f"icmp {describe(kind, code)} rate-limited",
    Why.VXLAN_ENCAP: lambda vni, ip: f"vxlan encap vni {vni} -> {_ip(ip)}",
    Why.VXLAN_DECAP: lambda vni: f"vxlan decap vni {vni}",
    Why.DNAT: _dnat,
    Why.MASQUERADE: lambda by, ip, port, to_ip, to_port: (
        f"masquerade ({by}) {_ip(ip)}:{port} -> {_ip(to_ip)}:{to_port}"
    ),
    Why.UNDO_SNAT: lambda ip, port: f"reverse nat -> {_ip(ip)}:{port}",
    Why.UNDO_DNAT: lambda ip, port: f"reverse nat <- {_ip(ip)}:{port}",
    Why.RELATED: lambda to_dst, ip: (
        f"related icmp: reverse nat {'->' if to_dst else '<-'} {_ip(ip)}"
    ),
    Why.BRIDGED: lambda: "bridged",
    Why.BRIDGED_VIA_NEIGHBOUR: lambda: "bridged, via the neighbour",
    Why.THEN: lambda *parts: "; ".join(render(part) for part in parts),
    Why.NO_ROUTE: lambda ip: f"no route to {_ip(ip)}",
    Why.NO_ROUTE_AFTER_DNAT: lambda ip: f"no route to {_ip(ip)} after dnat",
    Why.UNREACHABLE: lambda ip: f"no route to {_ip(ip)} (sendmsg: network is unreachable)",
    Why.NOT_FOR_US: lambda ip, owner: f"{_ip(ip)} is not an address of {owner}",
    Why.TTL_EXCEEDED: lambda ttl, ip: f"ttl {ttl} forwarding to {_ip(ip)}",
    Why.MTU_EXCEEDED: lambda size, mtu, dev: f"{size} bytes > mtu {mtu} of {dev}",
    Why.REJECTED: lambda name: f"{name} has no endpoints: rejected",
    Why.NO_UDP_LISTENER: lambda port: f"nothing listens on udp port {port}",
    Why.NO_TCP_LISTENER: lambda port: f"nothing listens on tcp port {port} (reset)",
    Why.ARP_QUEUE_FULL: lambda dev, ip: f"{dev}: arp queue for {_ip(ip)} is full",
    Why.ARP_UNRESOLVED: lambda dev, ip: f"{dev}: no ARP reply from {_ip(ip)}",
    Why.SAME_PORT: lambda bridge, mac, port: f"{bridge}: {mac_str(mac)} is behind {port}",
    Why.NO_VXLAN_FDB: lambda dev, mac: f"{dev}: no fdb entry for {mac_str(mac)}",
    Why.VXLAN_MALFORMED: lambda: "vxlan: short packet or I flag clear",
    Why.VNI_MISMATCH: lambda vni, mine: f"vxlan: vni {vni}, device has {mine}",
    Why.SLEEVE_MALFORMED: lambda detail: detail,
    Why.SLEEVE_UNKNOWN_PEER: lambda peer: f"sleeve: frame from unknown peer {mac_str(peer)}",
    Why.OVERLAY_FLOOD: lambda mac, peers: f"overlay flood {mac_str(mac)} to {peers} peers",
    Why.OVERLAY_PEER: lambda mac, peer: f"overlay {mac_str(mac)} is behind {mac_str(peer)}",
    Why.OVERLAY_INJECT: lambda peer: f"overlay inject from {mac_str(peer)}",
    Why.FASTDP_ENCAP: lambda vni, ip: f"vxlan encap vni 0x{vni:06x} -> {_ip(ip)}",
    Why.FASTDP_DECAP: lambda vni: f"vxlan decap vni 0x{vni:06x}",
    Why.SLEEVE_SEND: lambda frames, ip: (
        f"sleeve {frames} frame{'s' if frames != 1 else ''} -> {_ip(ip)}"
    ),
    Why.LINK_DOWN: lambda dev: f"{dev} has no peer",
    Why.NO_CARRIER: lambda dev: f"{dev} has no carrier",
    Why.PORT_DISABLED: lambda bridge, port: (
        f"{bridge}: port {port} is disabled (its carrier is not reported yet), not forwarding"
    ),
    Why.CARRIER_LOST: lambda dev: f"{dev} lost its carrier with the frame on the wire",
    Why.NETEM_LOSS: lambda dev, loss: f"{dev}: netem loss {loss:.2%}",
    Why.CORRUPTED: lambda error: f"{error} does not match",
    Why.POLICY_DENIED: lambda verdict: verdict.text(),
    Why.BLACKHOLE: lambda route: f"route {route}",
    Why.IPIP_ENCAP: lambda ip: f"ipip encap -> {_ip(ip)}",
    Why.IPIP_DECAP: lambda: "ipip decap",
    Why.BPF_ARP_REPLY: lambda ip: f"bpf arp responder: {_ip(ip)} is-at lxc",
    Why.BPF_ENCAP: lambda identity: f"bpf encap: identity {identity}",
    Why.BPF_LOCAL_DELIVERY: lambda owner, ttl: f"bpf local delivery to {owner}, ttl {ttl}",
    Why.BPF_UNKNOWN_L3: lambda: "bpf_lxc: unknown L3 protocol (DROP_UNKNOWN_L3)",
    Why.BPF_NO_ENDPOINT: lambda ip: f"bpf_host: no endpoint {_ip(ip)}",
    Why.BPF_TTL_EXCEEDED: lambda ttl: f"bpf ipv4_l3: ttl {ttl}",
    Why.BPF_NOT_IPV4: lambda: "bpf_overlay: not IPv4",
    Why.IPIP_MALFORMED: lambda: "ipip: the inner packet is not IPv4",
    Why.MALFORMED: lambda what: what,
    Why.BAD_CHECKSUM: lambda stated, ip, right: (
        f"ipv4 header checksum 0x{stated:04x} from {_ip(ip)}, should be 0x{right:04x}"
    ),
    Why.FRAGMENT: lambda offset, more: (
        f"offset {offset}, {'more fragments' if more else 'the last'}: reassembly is not modelled"
    ),
    Why.TUNNEL_LOOP: lambda dev, ip: f"{dev}: the route to {_ip(ip)} leads back into the tunnel",
    Why.TCP_SEGMENT: _segment,
    Why.UDP_SEND: lambda number, count: f"udp send {number}/{count}",
    Why.PING_REQUEST: lambda seq: f"ping echo request seq {seq}",
    Why.RAW_SEND: lambda frame, number, count: (
        f"raw {'frame' if frame else 'packet'} send {number}/{count}"
    ),
    Why.DNS_QUERY: _query,
    Why.DNS_ANSWER: lambda: "dns answer",
    Why.DNS_FORWARD: lambda: "dns forward",
    Why.LINK_SET: lambda up, where: f"link {'up' if up else 'down'} ({where})",
    Why.NETEM_SET: lambda impairment: (
        f"netem {impairment.text()}" if impairment is not None else "netem removed"
    ),
    Why.POD_DELETED: lambda owner: (
        f"{owner} deleted: its namespace and veth are gone, and its service endpoints"
    ),
    Why.POD_CREATED: lambda owner, node, ip: f"{owner}: created on {node} with {IPv4Address(ip)}",
    Why.LABELS_SET: _labels,
    Why.RESTARTED: _restarted,
}
# `_TEXT` by the kinds' names: an Enum member hashes with a Python call, its name's hash is kept
_BY_NAME = {why._name_: text for why, text in _TEXT.items()}
