"""An ARP responder in a device's tc ingress program, as eBPF datapaths build one: a request is
turned into its reply in place (`arp_prepare_response`) and sent back out of the device it
came in on, so the requester learns the device's own MAC for whatever address it asked about.
The reply is 42 bytes like the request (rewritten, not padded); no stack, no proxy-ARP sysctl.
"""

from __future__ import annotations

from kpkt.wire.arp import ARP_REPLY, ARP_REQUEST, arp_fields, arp_frame
from kpkt.wire.ethernet import ETH_TYPE, ETH_TYPE_ARP


def is_request(frame: bytes) -> bool:
    return frame[ETH_TYPE] == ETH_TYPE_ARP and arp_fields(frame)[0] == ARP_REQUEST


def reply_in_place(request: bytes, mac: bytes) -> bytes:
    """The reply to `request` saying its target address is at `mac`: sha = `mac`, spa = the
    asked address, tha/tpa = the requester, Ethernet from `mac` to the requester."""
    _, sha, spa, _, tpa = arp_fields(request)
    return arp_frame(ARP_REPLY, sha, mac, tpa, sha, spa)


def target(request: bytes) -> bytes:
    """The address an ARP request asks about."""
    return arp_fields(request)[4]
