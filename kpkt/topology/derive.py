"""Deterministic defaults for what a topology leaves out: MACs, host-veth names and addresses."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network
from itertools import islice

MAX_IFNAME = 15  # Linux IFNAMSIZ - 1


def derive_mac(seed: int, key: str) -> str:
    """A locally administered unicast MAC (`02:...`) from the seed and the device's key."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return "02:" + ":".join(f"{byte:02x}" for byte in digest[:5])


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


def hashed_veth_name(seed: int, namespace: str, pod: str) -> str:
    digest = hashlib.sha256(f"{seed}:{pod_key(namespace, pod, 'veth')}".encode()).hexdigest()
    return "veth" + digest[:8]


def veth_names(seed: int, pods: list[tuple[str, str, str | None]]) -> list[str]:
    """The host-veth name of each `(namespace, pod, explicit name)` of one node.

    An explicit name stays; otherwise `veth-<pod>` when it fits in 15 characters and no other
    pod of the node wants it, else `veth` and 8 hex digits of a hash of the seed and the pod.
    """
    wanted = Counter(explicit or f"veth-{pod}" for _, pod, explicit in pods)
    names = []
    for namespace, pod, explicit in pods:
        plain = f"veth-{pod}"
        if explicit:
            names.append(explicit)
        elif len(plain) <= MAX_IFNAME and wanted[plain] == 1:
            names.append(plain)
        else:
            names.append(hashed_veth_name(seed, namespace, pod))
    return names


def free(pool: Iterable[IPv4Address], taken: set[IPv4Address]) -> Iterator[IPv4Address]:
    """The addresses of `pool` in order, skipping those in `taken`."""
    return (address for address in pool if address not in taken)


def pod_addresses(pod_cidr: IPv4Network) -> Iterator[IPv4Address]:
    """host-local IPAM's range on a node: .2 upwards (.0 is the network and flannel.1's
    address, .1 the cni0 gateway), stopping before the broadcast address."""
    first = int(pod_cidr.network_address) + 2
    return (IPv4Address(value) for value in range(first, int(pod_cidr.broadcast_address)))


def node_pod_cidrs(cluster: IPv4Network, named: list[IPv4Network]) -> Iterator[IPv4Network]:
    """The /24s of the cluster's podCIDR from the second one on, skipping any that overlaps
    a podCIDR a node names."""
    if cluster.prefixlen > 24:
        return iter(())
    subnets = islice(cluster.subnets(new_prefix=24), 1, None)
    return (net for net in subnets if not any(net.overlaps(other) for other in named))
