"""Reads the files `kubectl get ... -o yaml` or `-o json` writes into Kubernetes objects: single
objects, multi-document YAML, and `kind: List` (or `PodList`, ...) with its `items`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kpkt.errors import KpktError
from kpkt.files import read_regular_file
from kpkt.importer.kubectl_yaml import Unsupported, parse_documents
from kpkt.topology.load import TagErrors

MAX_DUMP_BYTES = 1024 * 1024 * 1024  # a 5,000-pod `kubectl get -A -o yaml` is about 40 MiB


class _Loader(TagErrors, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's safe loader when PyYAML has it, a refused tagged value a YAML error."""


@dataclass(frozen=True, slots=True)
class KubeObject:
    """One object of a dump: its kind, namespace ("" for cluster-scoped) and name, and the
    object as kubectl printed it."""

    kind: str
    namespace: str
    name: str
    body: dict[str, Any]
    source: str  # the file it came from

    @property
    def ref(self) -> str:
        """How messages name it: `Pod kube-system/coredns-x`, `Node node1`."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def metadata(self) -> dict[str, Any]:
        return self.body.get("metadata") or {}


def read_dump(path: Path) -> tuple[list[KubeObject], bytes]:
    """The objects of one file, and its bytes (for the topology's header)."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise KpktError(f"{path}: not UTF-8 text (byte {error.start})") from None
    documents = _parse(text, path)
    objects: list[KubeObject] = []
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        objects.extend(_objects(document, f"{path}: document {number}", str(path)))
    if not objects:
        raise KpktError(
            f"{path}: holds no Kubernetes object; give what `kubectl get ... -o yaml` prints"
        )
    return objects, data


def _read_bytes(path: Path) -> bytes:
    return read_regular_file(
        path,
        MAX_DUMP_BYTES,
        give="give the file `kubectl get ... -o yaml` wrote",
        limit="kpkt imports (1 GiB)",
    )


def _parse(text: str, path: Path) -> list[Any]:
    """The documents of the file: JSON (`-o json`) or YAML, one or several documents (read
    fast when kubectl wrote it, else by libyaml)."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as error:
            raise KpktError(
                f"{path}: line {error.lineno}, column {error.colno}: not JSON: {error.msg}"
            ) from None
    try:
        return parse_documents(text)
    except Unsupported:
        pass
    try:
        return list(yaml.load_all(text, Loader=_Loader))  # a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise KpktError(f"{path}: {where}not YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise KpktError(f"{path}: not YAML: {error}") from None


def _objects(document: Any, where: str, source: str) -> list[KubeObject]:
    """The object a document is, or the items of a List."""
    if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
        raise KpktError(
            f"{where}: not a Kubernetes object (no `kind`); give what "
            "`kubectl get ... -o yaml` or `-o json` prints"
        )
    kind = document["kind"]
    if kind.endswith("List") and "items" in document:
        items = document["items"] or []
        if not isinstance(items, list):
            raise KpktError(f"{where}: {kind}.items is not a list")
        return [
            _object(item, f"{where}: items[{index}]", source, kind[:-4])
            for index, item in enumerate(items)
        ]
    return [_object(document, where, source, "")]


def _object(value: Any, where: str, source: str, list_kind: str) -> KubeObject:
    """One object; items of a typed list (`PodList`) may leave out their kind, as the API does."""
    if not isinstance(value, dict):
        raise KpktError(f"{where}: not a Kubernetes object (a mapping with kind and metadata)")
    kind = value.get("kind") or list_kind
    metadata = value.get("metadata")
    if not isinstance(kind, str) or not kind:
        raise KpktError(f"{where}: not a Kubernetes object (no `kind`)")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise KpktError(
            f"{where}: {kind} without metadata.name; give the object as kubectl prints it"
        )
    namespace = metadata.get("namespace") or ""
    if not isinstance(namespace, str):
        raise KpktError(f"{where}: {kind} {metadata['name']}: metadata.namespace is not a string")
    return KubeObject(kind, namespace, metadata["name"], value, source)
