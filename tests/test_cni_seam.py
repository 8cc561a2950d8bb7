"""The CNI seam (`kpkt/cni/`): everything CNI-specific lives in its CNI's module, and the rest of
kpkt (the builder, the datapath's kernel models, capture, topology reading) names no CNI."""

from __future__ import annotations

from kpkt.cni import CNIS, plugin

from conftest import ROOT

PACKAGE = ROOT / "kpkt"
# where a CNI's name may appear: its module, the registry of names, and the example topologies
ALLOWED = {"kpkt/cni/__init__.py", *(f"kpkt/cni/{cni}.py" for cni in CNIS)}
INTERFACE = ("masquerade", "node", "pod", "peers", "describe")


def naming(word: str) -> set[str]:
    files = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {
        str(path.relative_to(ROOT))
        for path in files
        if word in path.read_bytes().decode("utf-8", "replace").lower()
    }


def test_only_the_cni_modules_and_the_examples_name_a_cni() -> None:
    for cni in CNIS:
        where = {p for p in naming(cni) if not p.startswith("kpkt/examples/")}
        assert where - ALLOWED == set(), f"{cni} is named outside kpkt/cni: {sorted(where)}"


def test_the_checker_finds_a_name() -> None:
    assert "kpkt/cni/flannel.py" in naming("flannel")


def test_every_cni_module_implements_the_interface() -> None:
    for cni in CNIS:
        missing = [name for name in INTERFACE if not callable(getattr(plugin(cni), name, None))]
        assert missing == [], f"kpkt/cni/{cni}.py: Plugin lacks {missing}"
