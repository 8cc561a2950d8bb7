"""Which CNI a cluster runs, from what its objects show: the CNI's own pods
(`kube-flannel-ds-*`, `calico-node-*`, `cilium-*`, `weave-net-*`), flannel's node annotations
and its `kube-flannel-cfg` ConfigMap, Calico's IPPools. The answer is the `cluster:` settings of
the topology, or an error naming what was found when this kpkt does not model that CNI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kpkt import cni as registry
from kpkt.errors import KpktError
from kpkt.importer.documents import KubeObject
from kpkt.importer.notes import Notes

POD_PREFIXES = (
    ("kube-flannel-ds-", "flannel"),
    ("calico-node-", "calico"),
    ("cilium-", "cilium"),
    ("weave-net-", "weave"),
)
CNI_NAMESPACES = ("kube-system", "kube-flannel", "calico-system", "cilium", "weave")
FLANNEL_BACKEND = "flannel.alpha.coreos.com/backend-type"
NODE_ANNOTATIONS = (
    (FLANNEL_BACKEND, "flannel"),
    ("projectcalico.org/IPv4Address", "calico"),
    ("io.cilium.network.ipv4-pod-cidr", "cilium"),
)
FLANNEL_CONFIG = ("kube-flannel-cfg", "net-conf.json")


@dataclass(slots=True)
class Finding:
    cni: str  # flannel, calico, cilium, weave
    evidence: str  # what showed it: `Pod kube-system/calico-node-x2k9p`
    backend: str = ""  # flannel's backend (vxlan, host-gw) or Calico's encapsulation (ipip, vxlan)


def detect(objects: list[KubeObject]) -> list[Finding]:
    """Everything in the objects that names a CNI, in the order found."""
    findings = []
    for obj in objects:
        finding = _finding(obj)
        if finding is not None:
            findings.append(finding)
    return findings


def _finding(obj: KubeObject) -> Finding | None:
    if obj.kind == "Pod" and obj.namespace in CNI_NAMESPACES:
        for prefix, cni in POD_PREFIXES:
            if obj.name.startswith(prefix) and not obj.name.startswith("cilium-operator"):
                return Finding(cni, obj.ref)
    if obj.kind == "Node":
        annotations = obj.metadata.get("annotations") or {}
        for key, cni in NODE_ANNOTATIONS:
            if key in annotations:
                backend = str(annotations[key]) if key == FLANNEL_BACKEND else ""
                return Finding(cni, f"{obj.ref}'s annotation {key}", backend)
    if obj.kind == "ConfigMap" and obj.name == FLANNEL_CONFIG[0]:
        return Finding("flannel", obj.ref, _flannel_backend(obj))
    if obj.kind == "IPPool" and obj.body.get("apiVersion", "").startswith(
        ("crd.projectcalico.org/", "projectcalico.org/")
    ):
        return Finding("calico", obj.ref, _calico_encapsulation(obj.body.get("spec") or {}))
    return None


def _flannel_backend(obj: KubeObject) -> str:
    try:
        conf = json.loads((obj.body.get("data") or {}).get(FLANNEL_CONFIG[1], ""))
        return str(conf["Backend"]["Type"])
    except (ValueError, KeyError, TypeError):
        return ""


def _calico_encapsulation(spec: dict[str, Any]) -> str:
    if spec.get("vxlanMode") in ("Always", "CrossSubnet"):
        return "vxlan"
    if spec.get("ipipMode") in ("Always", "CrossSubnet"):
        return "ipip"
    return ""


def cluster_settings(findings: list[Finding], override: str | None, notes: Notes) -> dict:
    """The topology's `cni` setting (and its backend's, `cluster.<cni>`, where the CNI registry
    has that backend): the `--cni` override, else what the objects show, else flannel (noted)."""
    if override is not None:
        if override not in registry.CNIS:
            known = ", ".join(registry.CNIS)
            raise KpktError(f"--cni {override}: this kpkt models {known}; pick one of them")
        return {"cni": override}
    found = sorted({finding.cni for finding in findings})
    if not found:
        notes.add(
            "CNI not detected (no kube-flannel-ds-*, calico-node-*, cilium-* or weave-net-* "
            "pod, no flannel or Calico annotation); imported as flannel (--cni chooses)",
            "the cluster",
        )
        return {"cni": "flannel"}
    if len(found) > 1:
        raise KpktError(
            f"the objects show several CNIs: {_shown(findings)}; pass --cni to say which one runs"
        )
    cni = found[0]
    backends = sorted({finding.backend for finding in findings if finding.backend})
    backend = backends[0] if len(backends) == 1 else ""
    settings = _supported(cni, backend)
    if settings is None:
        what = f"{cni} ({backend})" if backend else cni
        raise KpktError(
            f"the cluster runs {what} (found: {_shown(findings)}), which this kpkt does not "
            f"model; it models {', '.join(registry.CNIS)}: pass --cni flannel to import it as that"
        )
    return settings


def _supported(cni: str, backend: str) -> dict | None:
    """The settings for a CNI and backend the registry has, or None: the backend is the value
    of one of the CNI's settings (`cluster.flannel.backend: host-gw`); its default is left out."""
    if cni not in registry.CNIS:
        return None
    if not backend:
        return {"cni": cni}
    for key, values in registry.OPTIONS.get(cni, {}).items():
        if backend in values:
            return {"cni": cni} if backend == values[0] else {"cni": cni, cni: {key: backend}}
    return None


def _shown(findings: list[Finding], shown: int = 3) -> str:
    listed = ", ".join(finding.evidence for finding in findings[:shown])
    more = f" and {len(findings) - shown} more" if len(findings) > shown else ""
    return listed + more
