"""Which CNI a cluster runs, from what its objects show (the signs kpkt/cni's registry lists for
each CNI: its pods, node annotations, configuration ConfigMap, IPPools). The answer is the
`cluster:` settings of the topology, or an error naming what was found when this kpkt does not
model that CNI."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kpkt import cni as registry
from kpkt.errors import KpktError
from kpkt.importer.documents import KubeObject
from kpkt.importer.notes import Notes


@dataclass(slots=True)
class Finding:
    cni: str
    evidence: str  # the object that showed it, as `Pod <namespace>/<name>`
    backend: str = ""  # the CNI's backend (vxlan, host-gw), when shown
    settings: dict[str, Any] = field(default_factory=dict)  # a pool's `cluster.<cni>` fields


def detect(objects: list[KubeObject]) -> list[Finding]:
    """Everything in the objects that names a CNI, in the order found."""
    findings = []
    for obj in objects:
        for cni, signs in registry.SIGNS.items():
            finding = _finding(obj, cni, signs)
            if finding is not None:
                findings.append(finding)
                break
    return findings


def _finding(obj: KubeObject, cni: str, signs: dict[str, tuple[str, ...]]) -> Finding | None:
    pod = obj.kind == "Pod" and obj.namespace in signs.get("namespaces", ())
    theirs = obj.name.startswith(signs.get("pods", ()))
    if pod and theirs and not obj.name.startswith(signs.get("skip", ())):
        variable, backend = signs.get("no_env", ("", ""))
        return Finding(cni, obj.ref, backend if _env(obj).get(variable) else "")
    if obj.kind == "Node":
        annotations = obj.metadata.get("annotations") or {}
        for key in signs.get("annotations", ()):
            if key in annotations:
                backend = str(annotations[key]) if key in signs.get("backend", ()) else ""
                return Finding(cni, f"{obj.ref}'s annotation {key}", backend)
    if obj.kind in signs.get("kinds", ()):
        return Finding(cni, obj.ref)
    if obj.kind == "ConfigMap" and obj.name in signs.get("settings", ()):
        return Finding(cni, obj.ref, settings=_flat_settings(obj, cni))
    if obj.kind == "ConfigMap" and obj.name == signs.get("config", ("",))[0]:
        backend = _config(obj, signs["config"][1]).get("Backend")
        kind = backend.get("Type", "") if isinstance(backend, dict) else ""
        return Finding(cni, obj.ref, str(kind))
    if obj.kind == "IPPool" and str(obj.body.get("apiVersion", "")).startswith(
        signs.get("pools", ())
    ):
        spec = obj.body.get("spec") or {}
        options = registry.OPTIONS.get(cni, {})
        return Finding(cni, obj.ref, settings={k: v for k, v in spec.items() if k in options})
    return None


def configured_range(objects: list[KubeObject], cni: str) -> str | None:
    """The pod range the CNI's configuration gives: its configuration ConfigMap's `Network`, its
    first IPPool's `cidr`, its pods' `range_env` variable (the registry's POD_CIDRS default when
    they do not set it), or None."""
    signs = registry.SIGNS.get(cni, {})
    for obj in objects:
        if obj.kind == "ConfigMap" and obj.name == signs.get("config", ("",))[0]:
            return network(obj)
        if obj.kind == "IPPool" and "pools" in signs:
            cidr = (obj.body.get("spec") or {}).get("cidr")
            return cidr if isinstance(cidr, str) else None
        if "range_env" in signs and obj.kind == "Pod" and _finding(obj, cni, signs):
            value = _env(obj).get(signs["range_env"][0])
            if value:
                return value
    default = registry.POD_CIDRS.get(cni)
    return str(default) if default else None


def _env(pod: KubeObject) -> dict[str, Any]:
    """The plain values (`value`, not `valueFrom`) of the pod's containers' environment."""
    containers = (pod.body.get("spec") or {}).get("containers") or []
    return {
        variable.get("name"): variable.get("value")
        for container in containers
        for variable in container.get("env") or []
        if isinstance(variable, dict) and "value" in variable
    }


def configures(obj: KubeObject) -> bool:
    """Whether the object is a CNI's configuration or state that the import reads (its
    ConfigMaps, a pool, the objects of the kinds only it makes)."""
    if obj.kind == "ConfigMap":
        return obj.name in config_maps() or any(
            obj.name in signs.get("settings", ()) for signs in registry.SIGNS.values()
        )
    if any(obj.kind in signs.get("kinds", ()) for signs in registry.SIGNS.values()):
        return True
    version = str(obj.body.get("apiVersion", ""))
    return obj.kind == "IPPool" and any(
        version.startswith(signs.get("pools", ())) for signs in registry.SIGNS.values()
    )


def config_maps() -> dict[str, str]:
    """The CNIs' configuration ConfigMaps: name -> the key of their JSON."""
    return {s["config"][0]: s["config"][1] for s in registry.SIGNS.values() if "config" in s}


def network(obj: KubeObject) -> str | None:
    """The pod range a CNI's configuration ConfigMap gives (its JSON's `Network`), if any."""
    key = config_maps().get(obj.name)
    value = _config(obj, key).get("Network") if key else None
    return value if isinstance(value, str) else None


def _flat_settings(obj: KubeObject, cni: str) -> dict[str, Any]:
    """The `cluster.<cni>` settings a ConfigMap of flat settings gives (CONFIG_SETTINGS)."""
    data = obj.body.get("data") or {}
    settings = {}
    for key, (setting, meanings) in registry.CONFIG_SETTINGS[cni].items():
        if key in data:
            settings[setting] = meanings.get(data[key], data[key])
    return settings


def _config(obj: KubeObject, key: str) -> dict[str, Any]:
    try:
        conf = json.loads((obj.body.get("data") or {}).get(key, ""))
    except (ValueError, TypeError):
        return {}
    return conf if isinstance(conf, dict) else {}


def cluster_settings(findings: list[Finding], override: str | None, notes: Notes) -> dict:
    """The topology's `cni` setting (and its backend's, `cluster.<cni>`, where the CNI registry
    has that backend): the `--cni` override, else what the objects show, else the registry's
    first CNI (noted)."""
    default = registry.CNIS[0]
    if override is not None:
        if override not in registry.CNIS:
            known = ", ".join(registry.CNIS)
            raise KpktError(f"--cni {override}: this kpkt models {known}; pick one of them")
        return {"cni": override}
    found = sorted({finding.cni for finding in findings})
    if not found:
        notes.add(
            "CNI not detected (none of the pods, node annotations or objects a CNI leaves); "
            f"imported as {default} (--cni chooses)",
            "the cluster",
        )
        return {"cni": default}
    if len(found) > 1:
        raise KpktError(
            f"the objects show several CNIs: {_shown(findings)}; pass --cni to say which one runs"
        )
    cni = found[0]
    backends = sorted({finding.backend for finding in findings if finding.backend})
    backend = backends[0] if len(backends) == 1 else ""
    settings = _supported(cni, backend)
    if settings is not None:
        settings = _with_configured(settings, [f for f in findings if f.settings], notes)
    if settings is None:
        what = f"{cni} ({backend})" if backend else cni
        raise KpktError(
            f"the cluster runs {what} (found: {_shown(findings)}), which this kpkt does not "
            f"model; it models {', '.join(registry.CNIS)}: pass --cni {default} to import it "
            "as that"
        )
    return settings


def _supported(cni: str, backend: str) -> dict | None:
    """The settings for a CNI and backend the registry has, or None: the backend is the value
    of one of the CNI's settings (`cluster.<cni>.backend`); its default is left out."""
    if cni not in registry.CNIS:
        return None
    if not backend:
        return {"cni": cni}
    for key, values in registry.OPTIONS.get(cni, {}).items():
        if isinstance(values, tuple) and backend in values:
            return {"cni": cni} if backend == values[0] else {"cni": cni, cni: {key: backend}}
    return None


def _with_configured(settings: dict, sources: list[Finding], notes: Notes) -> dict:
    """The settings with the first source's fields (`cluster.<cni>`: an IPPool's, a settings
    ConfigMap's) that differ from the registry's defaults; a value the registry does not allow
    is an error."""
    if not sources:
        return settings
    cni, first = settings["cni"], sources[0]
    chosen = {}
    for key, value in first.settings.items():
        option = registry.OPTIONS[cni][key]
        if not _allowed(option, value):
            raise KpktError(
                f"{first.evidence}: {key} {value!r} is not one this kpkt models "
                f"({_values(option)}); fix the dump or leave {first.evidence} out and set "
                f"cluster.{cni}.{key} in the topology"
            )
        if value != registry.default_of(option):
            chosen[key] = value
    for source in sources[1:]:
        if source.settings != first.settings:
            notes.add(
                f"CNI settings differ from {first.evidence}'s, which kpkt uses", source.evidence
            )
    return {**settings, cni: chosen} if chosen else settings


def _allowed(option: registry.Option, value: Any) -> bool:
    if isinstance(option, tuple):
        return value in option
    if isinstance(option, bool):
        return isinstance(value, bool)
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and option.low <= value <= option.high
    )


def _values(option: registry.Option) -> str:
    if isinstance(option, tuple):
        return ", ".join(option)
    if isinstance(option, bool):
        return "true or false"
    return f"{option.low} to {option.high}"


def _shown(findings: list[Finding], shown: int = 3) -> str:
    listed = ", ".join(finding.evidence for finding in findings[:shown])
    more = f" and {len(findings) - shown} more" if len(findings) > shown else ""
    return listed + more
