"""The wire layer's place in the code: kpkt/wire is at the bottom (it imports nothing of kpkt),
the capture layer reads frames through it rather than through the datapath, and no module
outside it derives an IPv4 header length from the bytes itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "kpkt"
WIRE = PACKAGE / "wire"
# `(p[0] & 0x0F) * 4`, in either case: the IPv4 header length, which kpkt/wire owns
IHL = re.compile(r"& 0x0[fF]\) \* 4")


def kpkt_imports(path: Path) -> set[str]:
    """The kpkt modules `path` imports (a relative import counts as one of kpkt)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "kpkt"}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or module.split(".")[0] == "kpkt":
                found.add("." * node.level + module)
    return found


def python_files(folder: Path) -> list[Path]:
    files = sorted(folder.rglob("*.py"))
    assert files, f"no Python files under {folder}"
    return files


def test_wire_imports_nothing_of_kpkt_but_itself() -> None:
    assert WIRE.is_dir(), "kpkt/wire is missing"
    for name in ("ethernet", "arp", "ipv4", "icmp", "udp", "tcp", "vxlan"):
        assert (WIRE / f"{name}.py").is_file(), f"kpkt/wire/{name}.py is missing"
    outside = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(WIRE)
        for module in kpkt_imports(path)
        if not module.startswith("kpkt.wire")
    }
    assert not outside, outside


def test_capture_layer_does_not_import_the_datapath() -> None:
    reaching = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(PACKAGE / "capture")
        for module in kpkt_imports(path)
        if module == "kpkt.net" or module.startswith("kpkt.net.")
    }
    assert not reaching, reaching


def test_the_datapath_does_not_import_the_capture_layer() -> None:
    """Devices report through the observer hook (kpkt/observe.py), which imports nothing of
    kpkt; the capture layer subscribes to it, the datapath never reaches for it."""
    reaching = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(PACKAGE / "net")
        for module in kpkt_imports(path)
        if module == "kpkt.capture" or module.startswith("kpkt.capture.")
    }
    assert not reaching, reaching
    below = kpkt_imports(PACKAGE / "observe.py")
    assert not below, f"kpkt/observe.py imports {below}"


def test_only_the_wire_layer_derives_the_ipv4_header_length() -> None:
    assert any(IHL.search(path.read_text()) for path in python_files(WIRE))
    here = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in (PACKAGE, ROOT / "tests", ROOT / "bench")
        for path in python_files(folder)
        if WIRE not in path.parents and path.resolve() != here
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if IHL.search(line)
    ]
    assert not offenders, "use kpkt.wire.ipv4.IP_HEADER_LEN:\n" + "\n".join(offenders)


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The import and pattern checks on a sample, so a check that finds nothing is not blind."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import kpkt.net.stack\nfrom kpkt.capture import tap\nfrom . import sibling\n"
        "import os\nihl = (packet[0] & 0x0f) * 4\n"
    )
    assert kpkt_imports(sample) == {"kpkt.net.stack", "kpkt.capture", "."}
    assert IHL.search(sample.read_text())
