"""Reads `namespaces:` and `networkPolicies:` from a topology file into kpkt/policy's data,
accepting what the API server accepts (with its defaults) and rejecting what it rejects, each
problem with its YAML path (kubernetes pkg/apis/networking/validation, netpol.md §2)."""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Any

from kpkt.policy.model import (
    EGRESS,
    INGRESS,
    NAME_LABEL,
    PROTOCOLS,
    IpBlock,
    Namespace,
    NetworkPolicy,
    Peer,
    PolicyPort,
    Rule,
    default_policy_types,
)
from kpkt.policy.selector import OPERATORS, Requirement, Selector
from kpkt.topology.fields import Fields, parse_cidr, show
from kpkt.topology.hosts import port_name_problem, read_labels

API_VERSION = "networking.k8s.io/v1"
KIND = "NetworkPolicy"
POLICY_KEYS = ("apiVersion", "kind", "metadata", "spec")
METADATA_KEYS = ("name", "namespace", "labels", "annotations")
SPEC_KEYS = ("podSelector", "policyTypes", "ingress", "egress")
SELECTOR_KEYS = ("matchLabels", "matchExpressions")
EXPRESSION_KEYS = ("key", "operator", "values")
PEER_KEYS = ("podSelector", "namespaceSelector", "ipBlock")
PORT_KEYS = ("protocol", "port", "endPort")
NAMESPACE_KEYS = ("name", "labels")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def read_namespaces(doc: Fields) -> list[Namespace]:
    """The listed namespaces, each with the `kubernetes.io/metadata.name` label added."""
    namespaces: list[Namespace] = []
    seen: dict[str, str] = {}
    for path, value in doc.entries("namespaces"):
        f = Fields.check(value, path, doc.report, NAMESPACE_KEYS)
        if f is None:
            continue
        name = f.label("name", required="give every namespace a name")
        labels = read_labels(f, "labels")
        if name is None:
            continue
        if name in seen:
            f.bad("name", f"duplicate namespace '{name}': already listed at {seen[name]}")
            continue
        seen[name] = f.at("name")
        given = dict(labels)
        if given.get(NAME_LABEL, name) != name:
            f.bad(
                f"labels.{NAME_LABEL}",
                f"the API server sets it to the namespace's name '{name}'; leave it out",
            )
        given[NAME_LABEL] = name
        namespaces.append(Namespace(name, tuple(given.items())))
    return namespaces


def read_policies(doc: Fields) -> list[NetworkPolicy]:
    policies: list[NetworkPolicy] = []
    seen: dict[str, str] = {}
    for path, value in doc.entries("networkPolicies"):
        policy = _read_policy(Fields.check(value, path, doc.report, POLICY_KEYS))
        if policy is None:
            continue
        where = f"{path}.metadata.name"
        if policy.key in seen:
            doc.report.error(where, f"duplicate policy {policy.key}: already at {seen[policy.key]}")
        else:
            seen[policy.key] = where
            policies.append(policy)
    return policies


def _read_policy(f: Fields | None) -> NetworkPolicy | None:
    if f is None:
        return None
    for key, wanted in (("apiVersion", API_VERSION), ("kind", KIND)):
        value = f.string(key, required=f"add `{key}: {wanted}`")
        if value is not None and value != wanted:
            f.bad(key, f"expected {wanted}, got {show(value)}")
    metadata = f.child("metadata", METADATA_KEYS)
    if metadata is None:
        if "metadata" not in f.failed:
            f.bad("metadata", "required; add `metadata: {name: my-policy, namespace: default}`")
        return None
    name = metadata.string("name", required="name the policy")
    if name is not None and (len(name) > 253 or not _SUBDOMAIN.fullmatch(name)):
        metadata.bad(
            "name",
            f"{show(name)} is not a DNS subdomain: lowercase letters, digits, '-' and '.'",
        )
    namespace = metadata.label("namespace", "default")
    read_labels(metadata, "labels")
    metadata.string_map("annotations")
    spec = f.child("spec", SPEC_KEYS)
    if spec is None:
        spec = Fields({}, f.at("spec"), f.report)
    pod_selector = _selector(spec, "podSelector") or Selector()
    types = _policy_types(spec)
    ingress = _rules(spec, "ingress", "from")
    egress = _rules(spec, "egress", "to")
    if name is None:
        return None
    return NetworkPolicy(
        name=name,
        namespace=namespace,
        pod_selector=pod_selector,
        types=default_policy_types(types, len(egress)),
        ingress=tuple(ingress),
        egress=tuple(egress),
    )


def _policy_types(spec: Fields) -> list[str]:
    types: list[str] = []
    for path, value in spec.entries("policyTypes"):
        if value not in (INGRESS, EGRESS):
            spec.report.error(path, f"{show(value)} is not a policy type: use Ingress or Egress")
        else:
            types.append(value)
    given = spec.get("policyTypes")
    if isinstance(given, list) and len(given) > 2:
        spec.bad("policyTypes", "may not specify more than two policyTypes")
    return types


def _rules(spec: Fields, direction: str, peers_key: str) -> list[Rule]:
    rules = []
    for path, value in spec.entries(direction):
        f = Fields.check(value, path, spec.report, (peers_key, "ports"))
        if f is None:
            continue
        ports = [_port(p_path, item, f) for p_path, item in f.entries("ports")]
        peers = [_peer(p_path, item, f) for p_path, item in f.entries(peers_key)]
        rules.append(
            Rule(tuple(p for p in peers if p is not None), tuple(p for p in ports if p is not None))
        )
    return rules


def _peer(path: str, value: Any, rule: Fields) -> Peer | None:
    f = Fields.check(value, path, rule.report, PEER_KEYS)
    if f is None:
        return None
    pod_selector = _selector(f, "podSelector")
    namespace_selector = _selector(f, "namespaceSelector")
    ip_block = _ip_block(f)
    given = [key for key in PEER_KEYS if f.get(key) is not None]
    if not given:
        rule.report.error(path, "must specify a peer: podSelector, namespaceSelector or ipBlock")
        return None
    if "ipBlock" in given and len(given) > 1:
        rule.report.error(path, "may not specify both ipBlock and another peer")
        return None
    return Peer(pod_selector, namespace_selector, ip_block)


def _ip_block(peer: Fields) -> IpBlock | None:
    f = peer.child("ipBlock", ("cidr", "except"))
    if f is None:
        return None
    cidr = _cidr(f, "cidr", f.get("cidr", required="give the block, like cidr: 10.0.0.0/8"))
    excepted = []
    for path, value in f.entries("except"):
        net = _cidr(f, path, value, full_path=True)
        if net is None or cidr is None:
            continue
        if not (net.subnet_of(cidr) and net != cidr):
            f.report.error(path, f"{net} must be a strict subset of cidr {cidr}")
        else:
            excepted.append(net)
    return IpBlock(cidr, tuple(excepted)) if cidr is not None else None


def _cidr(f: Fields, key: str, value: Any, full_path: bool = False) -> IPv4Network | None:
    """A CIDR in "subnet" form (no bits set after the prefix: strict validation)."""
    if value is None:
        return None
    net, problem = parse_cidr(value, "10.0.0.0/8")
    if problem is not None:
        f.report.error(key if full_path else f.at(key), problem)
    return net


def _port(path: str, value: Any, rule: Fields) -> PolicyPort | None:
    f = Fields.check(value, path, rule.report, PORT_KEYS)
    if f is None:
        return None
    protocol = f.choice("protocol", PROTOCOLS, "TCP")
    port = f.get("port")
    end_port = f.integer("endPort", 1, 65535)
    if isinstance(port, str):
        if problem := port_name_problem(port):
            f.bad("port", problem)
    elif port is not None:
        port = f.integer("port", 1, 65535)
    if end_port is not None:
        if port is None and "port" not in f.failed:
            f.bad("endPort", "may not be specified when `port` is not specified")
        elif isinstance(port, str):
            f.bad("endPort", "may not be specified when `port` is non-numeric")
        elif isinstance(port, int) and end_port < port:
            f.bad("endPort", f"must be greater than or equal to `port` ({port})")
    if f.failed:
        return None
    return PolicyPort(protocol, port, end_port)


def _selector(f: Fields, key: str) -> Selector | None:
    """The selector under `key`; None when the key is absent (which is not `{}` in a peer)."""
    if f.get(key) is None:
        return None
    s = f.child(key, SELECTOR_KEYS)
    if s is None:
        return None
    match_labels = tuple(read_labels(s, "matchLabels"))
    expressions = []
    for path, value in s.entries("matchExpressions"):
        e = Fields.check(value, path, s.report, EXPRESSION_KEYS)
        if e is None:
            continue
        label_key = e.string("key", required="name the label key")
        operator = e.choice("operator", OPERATORS, "In") if e.given("operator") else None
        if operator is None and "operator" not in e.failed:
            e.bad("operator", f"required; one of {', '.join(OPERATORS)}")
        values = [item for _, item in e.entries("values")]
        if any(not isinstance(item, str) for item in values):
            e.bad("values", "expected a list of strings (put numbers in quotes)")
        elif operator in ("In", "NotIn") and not values:
            e.bad("values", f"must be specified when `operator` is '{operator}'")
        elif operator in ("Exists", "DoesNotExist") and values:
            e.bad("values", f"may not be specified when `operator` is '{operator}'")
        if label_key is not None and operator is not None and not e.failed:
            expressions.append(Requirement(label_key, operator, frozenset(values)))
    return Selector(match_labels, tuple(expressions))
