"""IPAM blocks as the nodes' pod ranges, for a CNI whose IPAM hands each node blocks of a pool
(the registry's BLOCK_IPAM): a node's pods take their addresses from the blocks affine to it
(a /26 by default), not from the `spec.podCIDR` kube-controller-manager gives the Node (a /24
under kubeadm), which that CNI ignores; kpkt models one block per node. The block is read from
the dump's evidence, strongest first: the object that ties it to the node (a BlockAffinity),
the address of the node's tunnel device (taken from its block), the addresses of its pods; a
node with none of them gets the first free block."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import Any

from kpkt.cni import BlockIpam
from kpkt.errors import KpktError
from kpkt.importer.documents import KubeObject
from kpkt.importer.notes import Notes
from kpkt.importer.ranges import network


@dataclass(slots=True)
class Evidence:
    """The dump's objects that say where a node's block is."""

    ipam: BlockIpam
    affinities: dict[str, list[IPv4Network]]  # node name -> its confirmed blocks
    pod_ips: dict[str, list[tuple[IPv4Address, str]]]  # node name -> (address, pod) of its pods


def evidence(objects: list[KubeObject], ipam: BlockIpam) -> Evidence:
    affinities: dict[str, list[IPv4Network]] = {}
    pod_ips: dict[str, list[tuple[IPv4Address, str]]] = {}
    for obj in objects:
        if obj.kind == ipam.affinity:
            spec = obj.body.get("spec") or {}
            cidr = network(spec.get("cidr"))
            if cidr is not None and spec.get("state", "confirmed") == "confirmed":
                affinities.setdefault(str(spec.get("node")), []).append(cidr)
        elif obj.kind == "Pod":
            spec, status = obj.body.get("spec") or {}, obj.body.get("status") or {}
            ip = _address(status.get("podIP"))
            if ip is not None and spec.get("nodeName") and not spec.get("hostNetwork"):
                pod_ips.setdefault(spec["nodeName"], []).append((ip, obj.ref))
    return Evidence(ipam, affinities, pod_ips)


def node_blocks(
    nodes: list[tuple[KubeObject, IPv4Network | None]],
    found: Evidence,
    block_size: int,
    pool: IPv4Network | None,
    notes: Notes,
) -> list[IPv4Network]:
    """Each node's block, given (Node, its spec.podCIDR or None): where it differs from the
    podCIDR, a note says what it was read from. A node the dump shows no block of gets the
    pool's first free block (the first of its podCIDR when the dump has no IPPool)."""
    blocks: list[IPv4Network | None] = []
    for obj, pod_cidr in nodes:
        block, source = _block(obj, pod_cidr, found, block_size)
        blocks.append(block)
        if source:
            notes.add(
                f"nodes' pod ranges are their IPAM blocks (/{block_size}, as their {source} "
                "show), not spec.podCIDR",
                f"{obj.ref}: {block}",
            )
    for index, (obj, pod_cidr) in enumerate(nodes):
        if blocks[index] is not None:
            continue
        room = pool or pod_cidr
        if room is None or room.prefixlen > block_size:
            raise KpktError(
                f"{obj.ref}: no IPAM block in the dump (no {found.ipam.affinity}, tunnel "
                "address, pod or spec.podCIDR); include the IPPool (`kubectl get ippools -o yaml`)"
            )
        taken = [block for block in blocks if block is not None]
        free = (b for b in room.subnets(new_prefix=block_size) if not any(map(b.overlaps, taken)))
        blocks[index] = next(free, None)
        if blocks[index] is None:
            raise KpktError(f"{obj.ref}: no free /{block_size} IPAM block left in {room}")
        if blocks[index] != pod_cidr:
            notes.add(
                f"nodes with no IPAM block in the dump (no {found.ipam.affinity}, tunnel address "
                f"or pod) get the first free block of the {'IPPool' if pool else 'podCIDR'}",
                f"{obj.ref}: {blocks[index]}",
            )
    return [block for block in blocks if block is not None]


def _block(
    obj: KubeObject, pod_cidr: IPv4Network | None, found: Evidence, block_size: int
) -> tuple[IPv4Network | None, str]:
    """The node's block and what it was read from ("" when there is nothing to say: no
    evidence, or the node's spec.podCIDR is that block)."""
    affine = found.affinities.get(obj.name)
    if affine:
        block, source = affine[0], f"{found.ipam.affinity} objects"
        if len(affine) > 1:
            raise KpktError(
                f"{obj.ref}: {len(affine)} IPAM blocks ({', '.join(map(str, affine))}); kpkt "
                f"models one block per node: raise the IPPool's {found.ipam.size} so one block "
                "holds the node's pods"
            )
    else:
        annotations = obj.metadata.get("annotations") or {}
        tunnels = [_address(annotations.get(key)) for key in found.ipam.addresses]
        tunnel = next((ip for ip in tunnels if ip is not None), None)
        ips = found.pod_ips.get(obj.name, [])
        if tunnel is not None:
            source, first = "tunnel addresses", tunnel
        elif ips:
            source, first = "pods' addresses", ips[0][0]
        else:
            return None, ""
        block = IPv4Network((first, block_size), strict=False)
    for ip, pod in found.pod_ips.get(obj.name, []):
        if ip not in block:
            raise KpktError(
                f"{pod}: status.podIP {ip} is outside {obj.ref}'s IPAM block {block} (as its "
                f"{source} show); kpkt models one block per node: raise the IPPool's "
                f"{found.ipam.size} so one block holds the node's pods"
            )
    return block, "" if block == pod_cidr else source


def _address(text: Any) -> IPv4Address | None:
    try:
        ip = ip_address(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return ip if isinstance(ip, IPv4Address) else None
