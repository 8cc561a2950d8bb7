"""Namespaces (their labels) and NetworkPolicies (as they are), for a kpkt whose topology has
`namespaces:` and `networkPolicies:`; with one that does not, each is noted as not supported
by this kpkt yet, never dropped silently."""

from __future__ import annotations

from typing import Any

from kpkt.importer.documents import KubeObject
from kpkt.importer.notes import Notes
from kpkt.topology import load

NAME_LABEL = "kubernetes.io/metadata.name"  # the API server sets it; kpkt does too
NOT_YET = "not supported by this kpkt yet"


def read_namespaces(objects: list[KubeObject], notes: Notes) -> list[dict[str, Any]]:
    """The topology's `namespaces:`: each with the labels beyond the one the API server sets."""
    namespaces = []
    for obj in objects:
        labels = {
            str(k): str(v) for k, v in (obj.metadata.get("labels") or {}).items() if k != NAME_LABEL
        }
        if not labels:
            continue
        if "namespaces" not in load.TOP_KEYS:
            notes.add(f"Namespace labels {NOT_YET}", obj.ref)
            continue
        namespaces.append({"name": obj.name, "labels": labels})
    return namespaces


def read_policies(objects: list[KubeObject], notes: Notes) -> list[dict[str, Any]]:
    """The topology's `networkPolicies:`: the objects with only their name and namespace kept
    of their metadata."""
    if "networkPolicies" not in load.TOP_KEYS:
        for obj in objects:
            notes.add(f"NetworkPolicies {NOT_YET}", obj.ref)
        return []
    return [
        {
            "apiVersion": obj.body.get("apiVersion"),
            "kind": obj.kind,
            "metadata": {"name": obj.name, "namespace": obj.namespace or "default"},
            "spec": obj.body.get("spec") or {},
        }
        for obj in objects
    ]
