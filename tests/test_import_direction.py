"""The direction of imports between kpkt's layers, read from the source (every `import` and
`from ... import`, at any depth of a module).

The specs (`kpkt/spec.py`) and the naming rules (`kpkt/derive.py`) sit at the bottom: they import
nothing of kpkt, so every layer may import them. `kpkt/topology/` reads YAML into the specs and
builds nothing; `kpkt/build.py` turns specs into a network; the datapath (`kpkt/net/`) and the
layers under the builder never read a topology file nor reach up to the builder.

The datapath (`kpkt/net/`) imports neither the specs, nor the topology reader, nor the capture
layer (which `tests/test_layers.py` also asserts from its side).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

KPKT = Path(__file__).resolve().parent.parent / "kpkt"


def _module(path: Path) -> str:
    parts = path.relative_to(KPKT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The kpkt modules `path` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module or "")
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "kpkt" or name.startswith("kpkt.")}


def _files(*places: str) -> list[Path]:
    """The source files of the modules and packages named (`spec`, `topology`, ...)."""
    files = []
    for place in places:
        package = KPKT / place
        found = sorted(package.rglob("*.py")) if package.is_dir() else [KPKT / f"{place}.py"]
        assert found and all(file.is_file() for file in found), f"no source for kpkt.{place}"
        files += found
    return files


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _offending(places: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{_module(file)} imports {name}"
        for file in _files(*places)
        for name in sorted(_imports(file))
        if any(_within(name, prefix) for prefix in forbidden)
    ]


def test_the_specs_and_naming_rules_import_nothing_of_kpkt() -> None:
    for file in _files("spec", "derive"):
        assert _imports(file) == set(), f"{_module(file)} must import nothing of kpkt"


def test_topology_reads_yaml_and_builds_nothing() -> None:
    # of the datapath, the reader knows only the drop reasons `expect: {drop: ...}` may name
    allowed = ("kpkt.topology", "kpkt.spec", "kpkt.derive", "kpkt.errors", "kpkt.outcome")
    allowed += ("kpkt.net.drops",)
    # reading a user's file safely (kpkt/files.py imports only kpkt.errors)
    allowed += ("kpkt.files",)
    # and pausing the cyclic garbage collector while it reads (imports nothing of kpkt)
    allowed += ("kpkt.engine.collector",)
    # and of the CNI plugins, their registry (names, settings), which loads no plugin
    allowed += ("kpkt.cni",)
    # and a `packet:` step's Scapy expression or hex is made into bytes by kpkt.crafted
    allowed += ("kpkt.crafted",)
    # and the data NetworkPolicies become (kpkt/policy's model and selectors, which are pure)
    allowed += ("kpkt.policy.model", "kpkt.policy.selector")
    others = [
        f"{_module(file)} imports {name}"
        for file in _files("topology")
        for name in sorted(_imports(file))
        if not any(_within(name, prefix) for prefix in allowed)
    ]
    assert others == []


def test_the_datapath_and_what_the_builder_uses_never_read_yaml_nor_reach_up() -> None:
    lower = ("net", "apps", "dns", "capture", "engine", "network", "build")
    assert _offending(lower, ("kpkt.topology",)) == []
    assert _offending(("net",), ("kpkt.build", "kpkt.apps", "kpkt.dns", "kpkt.output")) == []
    assert _offending(("apps", "dns", "capture"), ("kpkt.build", "kpkt.output")) == []


def test_the_datapath_imports_no_spec_nor_capture() -> None:
    """Devices and rule tables get plain values from the builder (kube-proxy's rules are made
    of `ServicePortInfo`, not Services), and report through the observer hook."""
    assert _offending(("net",), ("kpkt.spec", "kpkt.topology", "kpkt.capture")) == []


def test_the_checker_sees_imports_at_any_depth(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from kpkt.topology.load import load_topology\nimport yaml\n")
    assert _imports(source) == {"kpkt.topology.load", "kpkt.topology.load.load_topology"}


def test_importing_the_specs_loads_no_other_kpkt_module() -> None:
    code = (
        "import sys, kpkt.spec, kpkt.derive\n"
        "print(sorted(m for m in sys.modules if m.startswith('kpkt')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=KPKT.parent
    )
    assert done.stdout.strip() == "['kpkt', 'kpkt.derive', 'kpkt.spec']"


def test_the_cni_registry_loads_no_plugin_nor_datapath() -> None:
    code = "import sys, kpkt.cni\nprint(sorted(m for m in sys.modules if m.startswith('kpkt')))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=KPKT.parent
    )
    assert done.stdout.strip() == "['kpkt', 'kpkt.cni']"
