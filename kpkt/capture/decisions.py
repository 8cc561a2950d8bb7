"""Decisions as the capture files show them: the text of a `kpkt.observe.Decision` in a hop
table and in an all.pcapng comment."""

from __future__ import annotations

from ipaddress import IPv4Address

from kpkt.observe import Decision, Why
from kpkt.wire.ethernet import mac_str


def render(decision: Decision | str) -> str:
    """The text of `decision` (a string is a device's own text, taken as it is)."""
    if decision.__class__ is str:
        return decision
    text = decision.text
    if text is None:
        text = decision.text = _TEXT[decision.why](*decision.args)
    return text


def _flooded(mac: bytes, ports: int, hairpin: bool) -> str:
    reason = "broadcast" if mac[0] & 1 else f"fdb miss for {mac_str(mac)}"
    return f"{reason}: flooded to {ports} port(s)" + (" (hairpin)" if hairpin else "")


_TEXT = {
    Why.FDB_LEARN: lambda mac, port: f"fdb learn {mac_str(mac)} on {port}",
    Why.FDB_LOCAL: lambda mac: f"fdb: {mac_str(mac)} is local",
    Why.FDB_PORT: lambda mac, port: f"fdb: {mac_str(mac)} on {port}",
    Why.PASSED_UP: lambda: "broadcast: also passed up to the bridge",
    Why.FLOODED: _flooded,
    Why.ARP_WHO_HAS: lambda ip, n: f"arp who-has {IPv4Address(ip)} (try {n})",
    Why.ARP_PROBE: lambda ip, n: f"arp unicast probe {IPv4Address(ip)} (try {n})",
    Why.ARP_REPLY: lambda ip, mac: f"arp reply {IPv4Address(ip)} is-at {mac_str(mac)}",
    Why.ARP_PROXY_REPLY: lambda ip, mac: f"proxy arp reply {IPv4Address(ip)} is-at {mac_str(mac)}",
    Why.ARP_RESOLVED: lambda ip: f"arp resolved {IPv4Address(ip)}",
    Why.THEN: lambda *parts: "; ".join(render(part) for part in parts),
}
