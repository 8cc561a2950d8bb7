"""Deterministic defaults for what a topology leaves out: MACs and device names.

The topology reader (`kpkt/topology/`) fills its specs in with these, and `kpkt/build.py` gives
the underlay switch, which no topology describes, its MACs and port names by the same rules.
Imports nothing of kpkt."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from functools import partial

MAX_IFNAME = 15  # Linux IFNAMSIZ - 1


def derive_mac(seed: int, key: str) -> str:
    """A locally administered unicast MAC (`02:...`) from the seed and the device's key."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return "02:" + digest[:5].hex(":")


def unique_mac(seed: int, key: str, taken: set[str]) -> str:
    """`derive_mac(seed, key)`, re-derived from `key#1`, `key#2`, ... while it is taken.

    The MAC returned joins `taken`.
    """
    mac, attempt = derive_mac(seed, key), 0
    while mac in taken:
        attempt += 1
        mac = derive_mac(seed, f"{key}#{attempt}")
    taken.add(mac)
    return mac


def node_key(node: str, device: str) -> str:
    return f"node/{node}/{device}"


def pod_key(namespace: str, pod: str, device: str) -> str:
    return f"pod/{namespace}/{pod}/{device}"


def external_key(name: str) -> str:
    return f"external/{name}/eth0"


SWITCH = "underlay"  # the owner of the switch joining three or more hosts of the node network
ROUTER = "router"  # the owner of the router joining the subnets of a routed node network


def switch_owner(subnet: str) -> str:
    """The owner of the switch of one subnet of the node network (`underlay`, or with
    `underlay.subnets` `underlay-<subnet>`)."""
    return f"{SWITCH}-{subnet}" if subnet else SWITCH


def router_key(interface: str) -> str:
    return f"{ROUTER}/{interface}"


SWITCH_PORT_PREFIX = "ul-"


def _name_hash(key: str, attempt: int) -> str:
    text = key if attempt == 0 else f"{key}#{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()


def _unique(make: Callable[[str], str], key: str, taken: set[str]) -> str:
    """`make(hash)` for the hash of `key`, re-made from the hashes of `key#1`, `key#2`, ...
    while it is taken; the name returned joins `taken`."""
    attempt = 0
    name = make(_name_hash(key, attempt))
    while name in taken:
        attempt += 1
        name = make(_name_hash(key, attempt))
    taken.add(name)
    return name


def veth_names(
    seed: int, pods: list[tuple[str, str, str | None]], hashed: tuple[str, int] | None = None
) -> list[str]:
    """The host-veth name of each `(namespace, pod, explicit name)` of one node.

    An explicit name stays; otherwise `veth-<pod>` when it fits in 15 characters and no other
    pod of the node wants it, else `veth` and 8 hex digits of a hash of the seed and the pod,
    re-hashed while another pod of the node has that name. `hashed` = (prefix, digits): every
    name not explicit is the prefix and that many hex digits of the hash (`lxc` + 12).
    """
    if hashed is not None:
        prefix, digits = hashed
        taken = {explicit for _, _, explicit in pods if explicit}
        return [
            explicit
            or _unique(
                lambda digest: prefix + digest[:digits],
                f"{seed}:{pod_key(namespace, pod, 'veth')}",
                taken,
            )
            for namespace, pod, explicit in pods
        ]
    wanted = Counter(explicit or f"veth-{pod}" for _, pod, explicit in pods)
    plain = {name for name, times in wanted.items() if times == 1 and len(name) <= MAX_IFNAME}
    taken = {explicit for _, _, explicit in pods if explicit} | plain
    names = []
    for namespace, pod, explicit in pods:
        if explicit:
            names.append(explicit)
        elif f"veth-{pod}" in plain:
            names.append(f"veth-{pod}")
        else:
            key = f"{seed}:{pod_key(namespace, pod, 'veth')}"
            names.append(_unique(lambda digest: "veth" + digest[:8], key, taken))
    return names


def switch_port_names(hosts: list[str]) -> list[str]:
    """The switch's port to each host of the node network: `ul-<host>` when it fits in 15
    characters, else the host's name cut and ended with `-` and 6 hex digits of its hash (as a
    CNI names host veths), unique among the ports."""
    full = [SWITCH_PORT_PREFIX + host for host in hosts]
    taken = {name for name in full if len(name) <= MAX_IFNAME}
    return [
        name if len(name) <= MAX_IFNAME else _unique(partial(_cut_port_name, host), host, taken)
        for host, name in zip(hosts, full, strict=True)
    ]


def _cut_port_name(host: str, digest: str) -> str:
    room = MAX_IFNAME - len(SWITCH_PORT_PREFIX) - 7  # "-" and 6 hex digits
    return f"{SWITCH_PORT_PREFIX}{host[:room]}-{digest[:6]}"
