"""NetworkPolicy semantics (tests/reference/netpol.md §1-§4), one test per trap, over the
upstream e2e cluster (namespaces x, y, z; pods a, b, c; ports 80/81 TCP and UDP). Each
expectation is written from the API's semantics, not from kpkt's output."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpkt.errors import TopologyError
from kpkt.policy.model import EGRESS, INGRESS, NAME_LABEL
from kpkt.policy.selector import Requirement, Selector
from kpkt.policy.verdict import cluster_policies
from kpkt.report import describe_topology
from kpkt.topology.load import load_topology_text

from netpol_cluster import cluster, cluster_text, policy
from topology_fuzz import loads_or_reports

OUTSIDE = IPv4Address("192.168.50.100")


class Cluster:
    """A loaded cluster: `allowed("x/a", "y/b", 80)` asks for a new connection's verdict."""

    def __init__(self, *policies, **kwargs) -> None:
        self.topology = load_topology_text(cluster_text(list(policies), **kwargs), "t.yaml")
        self.policies = cluster_policies(self.topology)
        self.ips = {f"{p.namespace}/{p.name}": p.ip for p in self.topology.pods()}
        self.ips |= {node.name: node.ip for node in self.topology.nodes}
        self.ips["outside"] = OUTSIDE

    def verdict(self, src: str, dst: str, port: int | None = 80, protocol: str = "TCP", **kw):
        return self.policies.judge(self.ips[src], self.ips[dst], protocol, port, **kw)

    def allowed(self, *args, **kwargs) -> bool:
        return self.verdict(*args, **kwargs).allowed


def deny_ingress(namespace: str = "x", name: str = "deny") -> dict:
    return policy(name, namespace, {"podSelector": {}, "policyTypes": ["Ingress"]})


def ingress_from(peers: list, ports: list | None = None, target: dict | None = None) -> dict:
    rule: dict = {"from": peers}
    if ports is not None:
        rule["ports"] = ports
    spec = {"podSelector": target or {"matchLabels": {"pod": "a"}}, "ingress": [rule]}
    return policy("allow", "x", spec | {"policyTypes": ["Ingress"]})


# --- selectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "labels", "matches"),
    [
        ("In", {"a", "b"}, {"pod": "a"}, True),
        ("In", {"a"}, {"pod": "c"}, False),
        ("In", {"a"}, {}, False),
        ("NotIn", {"a"}, {"pod": "b"}, True),
        ("NotIn", {"a"}, {}, True),  # NotIn is also true when the key is absent
        ("NotIn", {"a"}, {"pod": "a"}, False),
        ("Exists", set(), {"pod": ""}, True),
        ("Exists", set(), {}, False),
        ("DoesNotExist", set(), {}, True),
        ("DoesNotExist", set(), {"pod": "a"}, False),
    ],
)
def test_match_expressions(operator, values, labels, matches) -> None:
    assert Requirement("pod", operator, frozenset(values)).matches(labels) is matches


def test_match_labels_and_expressions_are_anded_and_the_empty_selector_matches_all() -> None:
    selector = Selector((("app", "web"),), (Requirement("tier", "Exists"),))
    assert selector.matches({"app": "web", "tier": "x"})
    assert not selector.matches({"app": "web"})
    assert not selector.matches({"tier": "x"})
    assert Selector().matches({})


def test_every_namespace_carries_its_name_label() -> None:
    c = Cluster()
    assert dict(c.topology.namespaces[0].labels) == {"ns": "x", NAME_LABEL: "x"}
    # a namespace the topology does not list has the label too
    assert c.policies.namespace_labels("kube-system") == {NAME_LABEL: "kube-system"}


# --- §2.2 policyTypes defaulting --------------------------------------------------------------


def test_egress_rules_without_policy_types_also_deny_all_ingress() -> None:
    spec = {"podSelector": {"matchLabels": {"pod": "a"}}, "egress": [{"to": [{"podSelector": {}}]}]}
    c = Cluster(policy("p", "x", spec))
    assert c.topology.policies[0].types == {INGRESS, EGRESS}
    assert c.allowed("x/a", "x/b")  # egress to its own namespace
    assert not c.allowed("x/a", "y/b")  # egress elsewhere
    assert not c.allowed("x/b", "x/a")  # and no ingress rule at all: ingress denied


def test_validate_shows_the_effective_policy_types_and_the_selected_pods() -> None:
    spec = {"podSelector": {"matchLabels": {"pod": "a"}}, "egress": [{}]}
    c = Cluster(
        policy("p", "x", spec), policy("q", "y", {"podSelector": {"matchLabels": {"pod": "d"}}})
    )
    lines = describe_topology(c.topology).splitlines()
    start = lines.index("networkPolicies:")
    assert lines[start + 1 : start + 3] == [
        "  x/p: policyTypes Ingress, Egress; 0 ingress rule(s), 1 egress rule(s); selects a",
        "  y/q: policyTypes Ingress; 0 ingress rule(s), 0 egress rule(s); selects no pod",
    ]


def test_an_empty_egress_list_without_policy_types_denies_ingress_and_leaves_egress() -> None:
    c = Cluster(policy("p", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "egress": []}))
    assert c.topology.policies[0].types == {INGRESS}
    assert c.allowed("x/a", "y/b")
    assert not c.allowed("y/b", "x/a")


def test_ingress_rules_under_egress_only_policy_types_are_ignored() -> None:
    spec = {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "policyTypes": ["Egress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "nobody"}}}]}],
        "egress": [{}],
    }
    c = Cluster(policy("p", "x", spec))
    assert c.allowed("y/b", "x/a")  # ingress untouched
    assert c.allowed("x/a", "y/b")


def test_policy_types_in_either_order() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress", "Ingress"]}
    c = Cluster(policy("p", "x", spec))
    assert not c.allowed("x/a", "y/b")
    assert not c.allowed("y/b", "x/a")


# --- §2.3 missing vs empty vs [{}] --------------------------------------------------------------


def test_missing_empty_and_one_empty_rule() -> None:
    selected = {"podSelector": {}, "policyTypes": ["Ingress"]}
    for spec in (selected, selected | {"ingress": []}):
        c = Cluster(policy("p", "x", spec))
        assert not c.allowed("y/a", "x/a") and not c.allowed("x/b", "x/a")
    c = Cluster(policy("p", "x", selected | {"ingress": [{}]}))
    assert c.allowed("y/a", "x/a") and c.allowed("outside", "x/a", 81, "UDP")
    c = Cluster(policy("p", "x", selected | {"ingress": [{"from": []}]}))
    assert c.allowed("y/a", "x/a", 81, "UDP")


def test_a_rule_with_peers_only_allows_every_port_and_protocol_even_icmp() -> None:
    c = Cluster(ingress_from([{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]))
    assert c.allowed("y/b", "x/a", 81, "UDP")
    assert c.allowed("y/b", "x/a", None, "ICMP")
    assert not c.allowed("z/b", "x/a", None, "ICMP")  # isolation drops ICMP too


def test_a_rule_with_ports_only_allows_them_from_anywhere() -> None:
    c = Cluster(ingress_from([], [{"port": 80}]))
    assert c.allowed("outside", "x/a", 80)
    assert c.allowed("z/c", "x/a", 80)
    assert not c.allowed("z/c", "x/a", 81)
    assert not c.allowed("z/c", "x/a", None, "ICMP")  # a rule with ports is not port-less


# --- §2.4 / §4.1 / §4.8 peers ---------------------------------------------------------------


def test_one_peer_with_both_selectors_is_an_and() -> None:
    peer = {
        "namespaceSelector": {
            "matchExpressions": [{"key": "ns", "operator": "NotIn", "values": ["x"]}]
        },
        "podSelector": {"matchLabels": {"pod": "b"}},
    }
    c = Cluster(ingress_from([peer]))
    table = {src: c.allowed(src, "x/a") for src in ("x/b", "y/b", "z/b", "y/a", "z/c")}
    assert table == {"x/b": False, "y/b": True, "z/b": True, "y/a": False, "z/c": False}


def test_two_peers_are_an_or() -> None:
    peers = [
        {
            "namespaceSelector": {
                "matchExpressions": [{"key": "ns", "operator": "NotIn", "values": ["x"]}]
            }
        },
        {"podSelector": {"matchLabels": {"pod": "b"}}},
    ]
    c = Cluster(ingress_from(peers))
    table = {src: c.allowed(src, "x/a") for src in ("x/b", "x/c", "y/a", "z/c")}
    assert table == {"x/b": True, "x/c": False, "y/a": True, "z/c": True}


def test_a_pod_selector_alone_is_the_policy_namespace() -> None:
    c = Cluster(ingress_from([{"podSelector": {}}]))
    assert c.allowed("x/b", "x/a") and not c.allowed("y/b", "x/a")


def test_an_empty_namespace_selector_is_every_pod_and_no_other_address() -> None:
    c = Cluster(ingress_from([{"namespaceSelector": {}}]))
    assert c.allowed("z/c", "x/a")
    assert not c.allowed("outside", "x/a")
    assert not c.allowed("node2", "x/a")


def test_empty_namespace_selector_with_a_pod_selector_spans_every_namespace() -> None:
    peer = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "c"}}}
    c = Cluster(ingress_from([peer]))
    assert c.allowed("x/c", "x/a") and c.allowed("z/c", "x/a") and not c.allowed("z/b", "x/a")


def test_a_namespace_selected_by_its_name_label() -> None:
    peer = {"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}
    c = Cluster(ingress_from([peer]))
    assert c.allowed("y/c", "x/a") and not c.allowed("z/c", "x/a")


def test_peers_that_match_nothing_still_isolate() -> None:
    c = Cluster(ingress_from([{"namespaceSelector": {"matchLabels": {"ns2": "updated"}}}]))
    assert not any(c.allowed(src, "x/a") for src in ("x/b", "y/a", "z/c"))
    c = Cluster(
        ingress_from([{"namespaceSelector": {"matchLabels": {"ns2": "updated"}}}]),
        namespace_labels={"y": {"ns2": "updated"}},
    )
    assert c.allowed("y/a", "x/a") and not c.allowed("z/a", "x/a")


def test_a_policy_never_applies_to_pods_of_another_namespace() -> None:
    c = Cluster(deny_ingress("y"))
    assert c.allowed("z/a", "x/a") and not c.allowed("z/a", "y/a")


def test_a_pod_selector_matching_no_pod_is_a_no_op() -> None:
    spec = {"podSelector": {"matchLabels": {"pod": "nobody"}}, "policyTypes": ["Ingress", "Egress"]}
    c = Cluster(policy("p", "x", spec))
    assert c.allowed("x/a", "y/a") and c.allowed("y/a", "x/a")


# --- §4.2 / §4.3 ipBlock -----------------------------------------------------------------------


def test_ip_block_matches_pod_addresses_and_except_carves_out() -> None:
    c = Cluster()
    xb = str(c.ips["x/b"])
    block = {"cidr": "10.244.0.0/16", "except": [f"{xb}/32"]}
    c = Cluster(ingress_from([{"ipBlock": block}]))
    assert c.allowed("y/b", "x/a")
    assert not c.allowed("x/b", "x/a")
    assert not c.allowed("outside", "x/a")


def test_except_only_carves_its_own_peer() -> None:
    c = Cluster()
    xb = str(c.ips["x/b"])
    peers = [
        {"ipBlock": {"cidr": "0.0.0.0/4", "except": [f"{xb}/32"]}},
        {"ipBlock": {"cidr": f"{xb}/32"}},
    ]
    c = Cluster(ingress_from(peers))
    assert c.allowed("x/b", "x/a") and c.allowed("y/c", "x/a")


def test_egress_to_an_external_cidr() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "192.168.50.0/24"}}]}],
    }
    c = Cluster(policy("p", "x", spec))
    assert c.allowed("x/a", "outside") and c.allowed("x/a", "node2")
    assert not c.allowed("x/a", "y/a")


# --- §2.5 / §4.4 / §4.5 ports ------------------------------------------------------------------


def test_protocol_defaults_to_tcp() -> None:
    c = Cluster(ingress_from([], [{"port": 80}]))
    assert c.allowed("y/a", "x/a", 80, "TCP")
    assert not c.allowed("y/a", "x/a", 80, "UDP")


def test_a_protocol_without_a_port_is_every_port_of_it() -> None:
    c = Cluster(ingress_from([], [{"protocol": "UDP"}]))
    assert c.allowed("y/a", "x/a", 81, "UDP") and not c.allowed("y/a", "x/a", 81, "TCP")


def test_sctp_never_matches_tcp() -> None:
    c = Cluster(ingress_from([], [{"protocol": "SCTP", "port": 80}]))
    assert not c.allowed("y/a", "x/a", 80, "TCP")


def test_sctp_rules_match_sctp_and_ports_without_protocol_mean_tcp() -> None:
    # kpkt sends no SCTP, but the engine judges it as the API says: protocol and port both
    c = Cluster(ingress_from([], [{"protocol": "SCTP", "port": 80}]))
    assert c.allowed("y/a", "x/a", 80, "SCTP")
    assert not c.allowed("y/a", "x/a", 81, "SCTP") and not c.allowed("y/a", "x/a", 80, "UDP")
    c = Cluster(ingress_from([], [{"port": 80}]))  # protocol defaults to TCP
    assert c.allowed("y/a", "x/a", 80) and not c.allowed("y/a", "x/a", 80, "SCTP")
    c = Cluster(ingress_from([], [{"protocol": "SCTP", "port": 80, "endPort": 90}]))
    assert c.allowed("y/a", "x/a", 90, "SCTP") and not c.allowed("y/a", "x/a", 91, "SCTP")
    c = Cluster(ingress_from([{"podSelector": {"matchLabels": {"pod": "b"}}}]))  # no ports
    assert c.allowed("x/b", "x/a", 80, "SCTP") and not c.allowed("x/c", "x/a", 80, "SCTP")


def test_named_ports_resolve_per_destination_pod() -> None:
    labels = {"x/a": {"pod": "a"}}
    c = Cluster(ingress_from([], [{"port": "serve-81-tcp"}]), pod_labels=labels)
    assert c.allowed("y/a", "x/a", 81) and not c.allowed("y/a", "x/a", 80)
    # the same name on another pod may be another number: egress resolves it on the peer
    topology = cluster([])
    topology["nodes"][1]["pods"][0]["containers"][0]["ports"][0]["name"] = "web"  # x/b 80/TCP
    topology["nodes"][1]["pods"][1]["containers"][2]["ports"][0]["name"] = "web"  # y/b 81/TCP
    topology["networkPolicies"] = [
        policy(
            "p",
            "z",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": "web"}]}],
            },
        )
    ]
    t = load_topology_text(yaml.safe_dump(topology), "t.yaml")
    p = cluster_policies(t)
    ip = {f"{pod.namespace}/{pod.name}": pod.ip for pod in t.pods()}
    assert p.judge(ip["z/a"], ip["x/b"], "TCP", 80).allowed
    assert not p.judge(ip["z/a"], ip["x/b"], "TCP", 81).allowed
    assert p.judge(ip["z/a"], ip["y/b"], "TCP", 81).allowed
    assert not p.judge(ip["z/a"], ip["y/b"], "TCP", 80).allowed


def test_a_named_port_of_another_protocol_matches_nothing() -> None:
    c = Cluster(ingress_from([], [{"port": "serve-80-udp"}]))  # protocol TCP by default
    assert not c.allowed("y/a", "x/a", 80, "UDP") and not c.allowed("y/a", "x/a", 80, "TCP")


def test_a_named_port_never_matches_an_address_outside_the_pods() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "http"}]}]}
    c = Cluster(policy("p", "x", spec))
    assert not c.allowed("x/a", "outside", 80)


def test_end_port_is_inclusive() -> None:
    ports = [
        {"protocol": "TCP", "port": 53, "endPort": 80},
        {"protocol": "UDP", "port": 53, "endPort": 84},
    ]
    c = Cluster(ingress_from([], ports))
    assert c.allowed("y/a", "x/a", 80, "TCP") and not c.allowed("y/a", "x/a", 81, "TCP")
    assert c.allowed("y/a", "x/a", 80, "UDP") and c.allowed("y/a", "x/a", 81, "UDP")
    assert c.allowed("y/a", "x/a", 53, "UDP") and not c.allowed("y/a", "x/a", 85, "UDP")


# --- §3 union, both ends, node ------------------------------------------------------------------


def test_union_is_over_whole_rules() -> None:
    spec = {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
                "ports": [{"port": 80}],
            },
            {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}], "ports": [{"port": 81}]},
        ],
    }
    c = Cluster(policy("p", "x", spec))
    assert c.allowed("y/c", "x/a", 80) and not c.allowed("y/c", "x/a", 81)
    assert c.allowed("x/b", "x/a", 81) and not c.allowed("x/b", "x/a", 80)


def test_policies_are_additive() -> None:
    allow_all = policy("all", "x", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})
    c = Cluster(deny_ingress(), allow_all)
    assert c.allowed("y/a", "x/a")
    verdict = c.verdict("y/a", "x/a")
    assert verdict.policies == ("x/all",)


def test_egress_deny_on_the_client_wins_over_ingress_allow_on_the_server() -> None:
    deny_egress = policy("deny-egress", "x", {"podSelector": {}, "policyTypes": ["Egress"]})
    allow = policy("allow", "y", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})
    c = Cluster(deny_egress, allow)
    verdict = c.verdict("x/a", "y/a")
    assert (verdict.allowed, verdict.side, verdict.policies) == (
        False,
        "egress",
        ("x/deny-egress",),
    )


def test_a_denied_verdict_names_the_side_and_the_isolating_policies() -> None:
    c = Cluster(deny_ingress("y", "deny-all"), deny_ingress("y", "deny-more"))
    verdict = c.verdict("x/a", "y/b")
    assert (verdict.allowed, verdict.side) == (False, "ingress")
    assert verdict.policies == ("y/deny-all", "y/deny-more")


def test_the_own_node_is_always_allowed_in_and_a_remote_node_is_an_address() -> None:
    c = Cluster(deny_ingress())
    assert c.allowed("node1", "x/a", from_own_node=True)
    assert not c.allowed("node2", "x/a")


def test_nodes_and_externals_are_never_subject_to_egress_policy() -> None:
    c = Cluster(policy("p", "x", {"podSelector": {}, "policyTypes": ["Egress"]}))
    assert c.allowed("outside", "x/a") and c.allowed("node1", "y/a")


# --- §4.6 / §4.11 DNS and Service VIPs ---------------------------------------------------------


def test_egress_isolation_blocks_dns_unless_a_rule_allows_port_53() -> None:
    deny = policy("deny", "x", {"podSelector": {}, "policyTypes": ["Egress"]})
    c = Cluster(deny, dns=True)
    coredns = next(p.ip for p in c.topology.pods() if p.namespace == "kube-system")
    assert not c.policies.judge(c.ips["x/a"], coredns, "UDP", 53).allowed
    dns_rule = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns_rule]}
    c = Cluster(policy("deny-but-dns", "x", spec), dns=True)
    assert c.policies.judge(c.ips["x/a"], coredns, "UDP", 53).allowed
    assert c.policies.judge(c.ips["x/a"], OUTSIDE, "UDP", 53).allowed  # any host on port 53
    assert not c.allowed("x/a", "y/a")


def test_dns_allowed_to_the_coredns_pods_by_selector() -> None:
    peer = {
        "namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [peer], "ports": [{"protocol": "UDP", "port": 53}]}],
    }
    c = Cluster(policy("dns", "x", spec), dns=True)
    coredns = next(p.ip for p in c.topology.pods() if p.namespace == "kube-system")
    assert c.policies.judge(c.ips["x/a"], coredns, "UDP", 53).allowed
    # policy sees the pod after kube-proxy's DNAT: an ipBlock of the Service VIP is not the pod
    vip = {"to": [{"ipBlock": {"cidr": "10.96.0.10/32"}}]}
    c = Cluster(policy("vip", "x", spec | {"egress": [vip]}), dns=True)
    assert not c.policies.judge(c.ips["x/a"], coredns, "UDP", 53).allowed


# --- validation: what the API server rejects (exit 2, YAML path) -------------------------------


def _rejected(spec: dict, namespace_labels=None) -> str:
    with pytest.raises(TopologyError) as raised:
        load_topology_text(cluster_text([policy("p", "x", spec)], namespace_labels), "t.yaml")
    return str(raised.value)


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]", "must specify a peer"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "spec.ingress[0].from[0]",
            "may not specify both ipBlock and another peer",
        ),
        (
            {"ingress": [{"ports": [{"endPort": 90}]}]},
            "ports[0].endPort",
            "when `port` is not specified",
        ),
        (
            {"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            "ports[0].endPort",
            "non-numeric",
        ),
        (
            {"egress": [{"ports": [{"port": 90, "endPort": 80}]}]},
            "ports[0].endPort",
            "greater than or equal",
        ),
        ({"ingress": [{"ports": [{"port": 0}]}]}, "ports[0].port", "out of range"),
        ({"ingress": [{"ports": [{"port": "Web_1"}]}]}, "ports[0].port", "not a valid port name"),
        ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "ports[0].protocol", "TCP, UDP, SCTP"),
        (
            {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}
                ]
            },
            "ipBlock.except[0]",
            "strict subset",
        ),
        (
            {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/24"]}}]}
                ]
            },
            "ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.1.2.3/4"}}]}]},
            "ipBlock.cidr",
            "host bits",
        ),
        ({"policyTypes": ["ingress"]}, "spec.policyTypes[0]", "Ingress or Egress"),
        ({"policyTypes": ["Ingress", "Egress", "Ingress"]}, "spec.policyTypes", "more than two"),
        ({"policyTypes": "Ingress"}, "spec.policyTypes", "expected a list"),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "matchExpressions[0].values",
            "must be specified",
        ),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]
                }
            },
            "matchExpressions[0].values",
            "may not be specified",
        ),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
                }
            },
            "matchExpressions[0].operator",
            "not one of",
        ),
        ({"podSelector": {"matchLabels": {"a": "b c"}}}, "matchLabels.a", "label value"),
        ({"ingres": []}, "spec.ingres", "did you mean 'ingress'"),
    ],
)
def test_the_api_server_rejections(spec: dict, path: str, message: str) -> None:
    problem = _rejected(spec)
    assert f"networkPolicies[0].{'spec.' if not path.startswith('spec') else ''}" in problem
    assert path in problem and message in problem, problem


def test_the_name_label_of_a_namespace_is_the_api_servers() -> None:
    with pytest.raises(TopologyError, match=r"namespaces\[0\].labels.kubernetes.io/metadata.name"):
        load_topology_text(cluster_text([], {"x": {NAME_LABEL: "other"}}), "t.yaml")


def test_a_policy_needs_the_kubernetes_header_and_a_unique_name() -> None:
    bad = policy("p", "x", {}) | {"apiVersion": "networking.k8s.io/v1beta1"}
    with pytest.raises(
        TopologyError, match=r"networkPolicies\[0\].apiVersion: expected networking.k8s.io/v1"
    ):
        load_topology_text(cluster_text([bad]), "t.yaml")
    with pytest.raises(
        TopologyError, match=r"networkPolicies\[1\].metadata.name: duplicate policy x/p"
    ):
        load_topology_text(cluster_text([policy("p", "x", {}), policy("p", "x", {})]), "t.yaml")


def test_a_policy_with_no_spec_selects_every_pod_of_its_namespace_for_ingress() -> None:
    c = Cluster(policy("p", "x", {}) | {"spec": None})
    assert not c.allowed("y/a", "x/c") and c.allowed("x/c", "y/a")


# --- robustness: any value anywhere in a policy is a one-line problem, never a crash -----------

RICH = policy(
    "p",
    "x",
    {
        "podSelector": {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["a"]}]},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                ],
                "ports": [{"protocol": "TCP", "port": 80, "endPort": 81}, {"port": "serve-80-tcp"}],
            }
        ],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
    },
)
# values a policy's fields take, right and wrong, and any other YAML
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "Ingress",
            "Egress",
            "In",
            "NotIn",
            "Exists",
            "TCP",
            "SCTP",
            "x",
            "serve-80-tcp",
            "10.0.0.0/8",
            "10.1.2.3/8",
            "0.0.0.0/0",
            "kubernetes.io/metadata.name",
            80,
            65536,
            "",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
P = ("networkPolicies", 0)
SPEC = (*P, "spec")
RULE = (*SPEC, "ingress", 0)
# fmt: off
POLICY_SPOTS = [
    ("namespaces",), ("namespaces", 0), ("namespaces", 0, "name"), ("namespaces", 0, "labels"),
    ("networkPolicies",), P, (*P, "apiVersion"), (*P, "kind"), (*P, "metadata"),
    (*P, "metadata", "name"), (*P, "metadata", "namespace"), (*P, "metadata", "labels"), SPEC,
    (*SPEC, "podSelector"), (*SPEC, "podSelector", "matchExpressions"),
    (*SPEC, "podSelector", "matchExpressions", 0),
    (*SPEC, "podSelector", "matchExpressions", 0, "operator"),
    (*SPEC, "podSelector", "matchExpressions", 0, "values"), (*SPEC, "policyTypes"),
    (*SPEC, "policyTypes", 0), (*SPEC, "ingress"), RULE, (*RULE, "from"), (*RULE, "from", 0),
    (*RULE, "from", 0, "namespaceSelector"), (*RULE, "from", 0, "namespaceSelector", "matchLabels"),
    (*RULE, "from", 1, "ipBlock"), (*RULE, "from", 1, "ipBlock", "cidr"),
    (*RULE, "from", 1, "ipBlock", "except"), (*RULE, "from", 1, "ipBlock", "except", 0),
    (*RULE, "ports"), (*RULE, "ports", 0), (*RULE, "ports", 0, "port"),
    (*RULE, "ports", 0, "endPort"),
    (*RULE, "ports", 0, "protocol"), (*RULE, "ports", 1, "port"), (*SPEC, "egress"),
    (*SPEC, "egress", 0, "to"),
]
# fmt: on


def small_cluster() -> dict:
    """One node, one pod: the fuzz is about the policy, and loads stay fast."""
    return {
        "apiVersion": "kpkt/v1",
        "kind": "Topology",
        "metadata": {"name": "fuzz"},
        "namespaces": [{"name": "x", "labels": {"ns": "x"}}],
        "nodes": [{"name": "node1", "pods": [{"name": "a", "namespace": "x"}]}],
        "networkPolicies": [RICH],
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(POLICY_SPOTS), VALUES), min_size=1, max_size=3))
def test_any_value_anywhere_in_a_policy_is_a_topology_error_or_loads(changes):
    loads_or_reports(small_cluster(), changes)


# --- label changes --------------------------------------------------------------------------


def test_a_pod_relabelled_is_selected_and_matched_by_its_new_labels() -> None:
    allow = ingress_from([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"ok": "1"}}}])
    c = Cluster(allow)
    assert not c.allowed("y/b", "x/a") and c.allowed("y/b", "x/b")
    c.policies.relabel("y", "b", {"ok": "1"}, ())  # y/b now matches the peer
    assert c.allowed("y/b", "x/a")
    c.policies.relabel("x", "b", {"pod": "a"}, ())  # x/b is now selected by the policy
    assert not c.allowed("y/a", "x/b") and c.allowed("y/b", "x/b")
    c.policies.relabel("y", "b", {}, ["ok"])
    assert not c.allowed("y/b", "x/a") and not c.allowed("y/b", "x/b")


def test_a_namespace_relabelled_keeps_its_name_label() -> None:
    allow = ingress_from([{"namespaceSelector": {"matchLabels": {"team": "blue"}}}])
    c = Cluster(allow)
    assert not c.allowed("z/a", "x/a")
    c.policies.relabel("z", None, {"team": "blue"}, ())
    assert c.allowed("z/a", "x/a") and c.allowed("z/c", "x/a") and not c.allowed("y/a", "x/a")
    # the API server sets kubernetes.io/metadata.name whatever an update says
    c.policies.relabel("z", None, {NAME_LABEL: "other"}, ["ns"])
    labels = c.policies.namespace_labels("z")
    assert labels == {NAME_LABEL: "z", "team": "blue"}
