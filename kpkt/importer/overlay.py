"""The small kpkt file that goes with kubectl dumps (`kind: Overlay`): what Kubernetes objects do
not say (traffic steps, external hosts, cluster settings such as the upstream DNS server or the
CNI, a pod's resolver), laid over the imported topology."""

from __future__ import annotations

from typing import Any

from kpkt.errors import TopologyError
from kpkt.topology.load import API_VERSION, parse_document, read_text

KIND = "Overlay"
KEYS = ("apiVersion", "kind", "metadata", "seed", "cluster", "externals", "pods", "traffic")


def read_overlay(path: str) -> dict[str, Any]:
    """The overlay a file holds, its keys checked (their values are checked with the topology)."""
    document = parse_document(read_text(path), path)
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise TopologyError(f"{path}: expected a mapping with `kind: {KIND}`")
    if document.get("apiVersion") != API_VERSION:
        raise TopologyError(f"{path}: apiVersion: expected {API_VERSION} in a kpkt overlay")
    unknown = [key for key in document if key not in KEYS]
    if unknown:
        raise TopologyError(
            f"{path}: {unknown[0]}: not a key of an overlay; it holds {', '.join(KEYS[2:])}"
        )
    return document


def apply_overlay(document: dict[str, Any], overlay: dict[str, Any], source: str) -> None:
    """Lay `overlay` over the imported `document`: cluster settings key by key, the pods'
    settings onto the imported pods, the rest as given."""
    for key in ("seed", "externals", "traffic"):
        if key in overlay:
            document[key] = overlay[key]
    if isinstance(overlay.get("metadata"), dict):
        document["metadata"] = {**document["metadata"], **overlay["metadata"]}
    if isinstance(overlay.get("cluster"), dict):
        document["cluster"] = _merged(document["cluster"], overlay["cluster"])
    pods = {
        (pod.get("namespace", "default"), pod["name"]): pod
        for node in document["nodes"]
        for pod in node.get("pods", [])
    }
    for index, entry in enumerate(overlay.get("pods") or []):
        where = f"{source}: pods[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TopologyError(f"{where}: give the pod's name (and namespace) and its settings")
        key = (entry.get("namespace", "default"), entry["name"])
        if key not in pods:
            raise TopologyError(f"{where}: no imported pod {key[0]}/{key[1]}")
        pods[key].update(entry)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged
