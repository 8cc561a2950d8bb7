"""The format docs keep up with the code: every key the loader accepts is in docs/topology.md, and
every manifest field and drop code is in docs/outputs.md (a new one fails here until documented)."""

from __future__ import annotations

import json
import re

import pytest

from kpkt.cni import CNIS, OPTIONS
from kpkt.net.drops import REASONS
from kpkt.topology import dns, hosts, load, policies, services, traffic

from conftest import ROOT

TOPOLOGY_DOC = (ROOT / "docs" / "topology.md").read_text()
OUTPUTS_DOC = (ROOT / "docs" / "outputs.md").read_text()
KEYS = {
    "top level": load.TOP_KEYS,
    "cluster": load.CLUSTER_KEYS,
    "cluster.underlay": load.UNDERLAY_KEYS,
    "cluster.dns": dns.DNS_KEYS,
    **{f"cluster.{cni}": tuple(OPTIONS[cni]) for cni in CNIS},
    "nodes[]": hosts.NODE_KEYS,
    "nodes[].devices": hosts.NODE_DEVICES,
    "nodes[].pods[]": hosts.POD_KEYS,
    "externals[]": hosts.EXTERNAL_KEYS,
    "containers[].ports[]": hosts.PORT_KEYS,
    "services[]": services.SERVICE_KEYS,
    "services[].ports[]": services.PORT_KEYS,
    "services[].endpoints[]": services.ENDPOINT_KEYS,
    "udp": traffic.UDP_KEYS,
    "ping": traffic.PING_KEYS,
    "tcp": traffic.TCP_KEYS,
    "dns": traffic.DNS_KEYS,
    "link": traffic.LINK_KEYS,
    "impair": traffic.IMPAIR_KEYS,
    "restart": traffic.RESTART_KEYS,
    "delete": traffic.DELETE_KEYS,
    "create": traffic.CREATE_KEYS,
    "label": traffic.LABEL_KEYS,
    "probe": traffic.PROBE_KEYS,
    "namespaces[]": policies.NAMESPACE_KEYS,
    "networkPolicies[]": policies.POLICY_KEYS,
    "networkPolicies[].metadata": policies.METADATA_KEYS,
    "networkPolicies[].spec": policies.SPEC_KEYS,
    "peers": policies.PEER_KEYS,
    "ports": policies.PORT_KEYS,
    "selectors": policies.SELECTOR_KEYS,
    "matchExpressions[]": policies.EXPRESSION_KEYS,
}


def mentioned(name: str, text: str) -> bool:
    """`name` as a key: in backticks, or as a part of a dotted key in backticks."""
    return re.search(rf"`([\w.]+\.)?{re.escape(name)}(\.[\w.]+)?`", text) is not None


@pytest.mark.parametrize("group", KEYS)
def test_every_topology_key_is_documented(group: str) -> None:
    missing = [key for key in KEYS[group] if not mentioned(key, TOPOLOGY_DOC)]
    assert not missing, f"docs/topology.md does not describe {group} keys {missing}"


def test_every_step_kind_has_its_section() -> None:
    for kind in traffic.READERS:
        assert f"### `{kind}`" in TOPOLOGY_DOC


def test_every_drop_reason_is_documented() -> None:
    missing = [reason for reason in REASONS if f"| `{reason}` |" not in OUTPUTS_DOC]
    assert not missing, f"docs/outputs.md does not list drop reasons {missing}"


def test_every_manifest_field_is_documented() -> None:
    """Every field of every golden manifest (they have captures, steps, hops and drops)."""
    fields: set[str] = set()
    for path in sorted((ROOT / "tests" / "golden").glob("*/expected/manifest.json")):
        manifest = json.loads(path.read_text())
        fields |= set(manifest) | set(manifest["background"])
        for entries in (manifest["captures"], manifest["steps"], manifest["drops"]):
            fields |= {key for entry in entries for key in entry}
        fields |= {key for step in manifest["steps"] for hop in step["hops"] for key in hop}
    assert {"tNs", "reason", "packet"} <= fields, "no golden manifest with a drop"
    missing = sorted(field for field in fields if not mentioned(field, OUTPUTS_DOC))
    assert not missing, f"docs/outputs.md does not describe manifest fields {missing}"
