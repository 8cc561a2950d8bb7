"""The upstream NetworkPolicy conformance tests (kubernetes/kubernetes test/e2e/network/netpol,
netpol.md §5), re-encoded over their cluster (namespaces x, y, z; pods a, b, c labelled
`pod=<name>`; ports 80 and 81 over TCP and UDP; a Service `s-<ns>-<pod>` per pod) and probed
on the wire: every probe goes to the server's Service ClusterIP, as the e2e harness's
`agnhost connect` does, so policy is judged after kube-proxy's DNAT.

Each case lists the pods its upstream test starts, its policies and, per port and protocol,
the truth table it asserts, built as upstream builds it: everything allowed, then `expect`
entries applied in order (a side is a pod `x/a`, a namespace `x`, or `*` for any pod). As
upstream, the loopback cells (a pod to itself) are not asserted. A test that changes a policy,
a label or deletes policies is a case of several phases, each its own cluster. The SCTP group
is left out (kpkt's probes speak TCP and UDP); the TCP tests about SCTP rules are in.

Every case runs on each enforcing datapath of tests/netpol_cluster.py's CNIS: flannel (Calico's
chains as Canal runs them), Calico IPIP and VXLAN (felix's chains in the node's FORWARD), and
weave (weave-npc on the bridge); the whole table per CNI takes about 6 s."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml

from kpkt.policy.model import NAME_LABEL
from kpkt.reach import probe_steps, reach, tables
from kpkt.runner import run
from kpkt.topology.load import load_topology_text

from netpol_cluster import CNIS, cluster, policy

Expect = tuple[str, str, bool]  # (from, to, allowed)


@dataclass
class Phase:
    policies: list[dict]
    checks: dict[str, list[Expect]]  # "80/TCP" -> the expectations after "all allowed"
    namespace_labels: dict = field(default_factory=dict)
    pod_labels: dict = field(default_factory=dict)


def ingress(name: str, ns: str, target: dict, *rules: dict) -> dict:
    """What upstream's SetSpecIngressRules makes: ingress rules (maybe none) and Ingress in
    policyTypes."""
    return policy(
        name, ns, {"podSelector": target, "policyTypes": ["Ingress"], "ingress": list(rules)}
    )


def egress(name: str, ns: str, target: dict, *rules: dict) -> dict:
    return policy(
        name, ns, {"podSelector": target, "policyTypes": ["Egress"], "egress": list(rules)}
    )


def pod(name: str) -> dict:
    return {"matchLabels": {"pod": name}}


def ns_name(*names: str, operator: str = "In") -> dict:
    return {"matchExpressions": [{"key": NAME_LABEL, "operator": operator, "values": list(names)}]}


def tcp(port: int | str) -> dict:
    return {"port": port, "protocol": "TCP"}


ALL = {}
DENY_ALL_X = policy("deny-all", "x", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def ip_of(pod_key: str) -> str:
    topology = load_topology_text(yaml.safe_dump(cluster([])), "ips.yaml")
    ns, name = pod_key.split("/")
    return str(next(p.ip for p in topology.pods() if (p.namespace, p.name) == (ns, name)))


CASES: dict[str, tuple[list[str], list[Phase]]] = {
    "should support a 'default-deny-ingress' policy": (
        ["x/a", "x/b", "y/a", "y/b"],
        [Phase([ingress("deny-ingress", "x", ALL)], {"80/TCP": [("*", "x", False)]})],
    ),
    "should support a 'default-deny-all' policy": (
        ["x/a", "x/b", "y/a"],
        [Phase([DENY_ALL_X], {"80/TCP": [("*", "x", False), ("x", "*", False)]})],
    ),
    "should enforce policy to allow traffic from pods within server namespace based on PodSelector": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "x/c", "y/a"],
        [
            Phase(
                [ingress("x-a-allows-x-b", "x", pod("a"), {"from": [{"podSelector": pod("b")}]})],
                {"80/TCP": [("*", "x/a", False), ("x/b", "x/a", True)]},
            )
        ],
    ),
    "should enforce policy to allow ingress traffic for a target": (
        ["x/a", "x/b", "y/a"],
        [
            Phase(
                [
                    ingress("deny-all", "x", ALL),
                    ingress(
                        "allow-all-to-a",
                        "x",
                        pod("a"),
                        {"from": [{"podSelector": {}, "namespaceSelector": {}}]},
                    ),
                ],
                {"80/TCP": [("*", "x/a", True), ("*", "x/b", False)]},
            )
        ],
    ),
    "should enforce policy to allow ingress traffic from pods in all namespaces": (
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-from-another-ns",
                        "x",
                        pod("a"),
                        {"from": [{"namespaceSelector": {}}]},
                    )
                ],
                {"80/TCP": []},
            )
        ],
    ),
    "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector",
                        "x",
                        pod("a"),
                        {"from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}]},
                    )
                ],
                {"80/TCP": [("x", "x/a", False), ("z", "x/a", False)]},
            )
        ],
    ),
    "should enforce policy based on PodSelector with MatchExpressions": (
        ["x/a", "x/b", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "x-a-allows-x-b",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {
                                    "podSelector": {
                                        "matchExpressions": [
                                            {"key": "pod", "operator": "In", "values": ["b"]}
                                        ]
                                    }
                                }
                            ]
                        },
                    )
                ],
                {"80/TCP": [("*", "x/a", False), ("x/b", "x/a", True)]},
            )
        ],
    ),
    "should enforce policy based on NamespaceSelector with MatchExpressions": (
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-y-match-selector",
                        "x",
                        pod("a"),
                        {"from": [{"namespaceSelector": ns_name("y")}]},
                    )
                ],
                {"80/TCP": [("x", "x/a", False), ("z", "x/a", False)]},
            )
        ],
    ),
    "should enforce policy based on PodSelector or NamespaceSelector": (
        ["x/a", "x/b", "x/c", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-y-match-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {"namespaceSelector": ns_name("x", operator="NotIn")},
                                {"podSelector": pod("b")},
                            ]
                        },
                    )
                ],
                {"80/TCP": [("x/a", "x/a", False), ("x/c", "x/a", False)]},
            )
        ],
    ),
    "should enforce policy based on PodSelector and NamespaceSelector": (
        ["x/a", "x/b", "y/a", "y/b", "z/b"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-y-podselector-and-nsselector",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {
                                    "namespaceSelector": ns_name("x", operator="NotIn"),
                                    "podSelector": pod("b"),
                                }
                            ]
                        },
                    )
                ],
                {"80/TCP": [("*", "x/a", False), ("y/b", "x/a", True), ("z/b", "x/a", True)]},
            )
        ],
    ),
    "should enforce policy based on Multiple PodSelectors and NamespaceSelectors": (
        ["x/a", "x/b", "y/a", "y/b", "y/c"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-y-z-pod-b-c",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {
                                    "namespaceSelector": ns_name("x", operator="NotIn"),
                                    "podSelector": {
                                        "matchExpressions": [
                                            {"key": "pod", "operator": "In", "values": ["b", "c"]}
                                        ]
                                    },
                                }
                            ]
                        },
                    )
                ],
                {"80/TCP": [("x", "x/a", False), ("y/a", "x/a", False)]},
            )
        ],
    ),
    "should enforce policy based on any PodSelectors": (
        ["x/a", "x/b", "x/c"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-x-pod-b-c",
                        "x",
                        pod("a"),
                        {"from": [{"podSelector": pod("b")}, {"podSelector": pod("c")}]},
                    )
                ],
                {"80/TCP": [("*", "x/a", False), ("x/b", "x/a", True), ("x/c", "x/a", True)]},
            )
        ],
    ),
    "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "y/a", "y/b", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-y-pod-a-via-namespace-pod-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}},
                                    "podSelector": pod("a"),
                                }
                            ]
                        },
                    )
                ],
                {"80/TCP": [("*", "x/a", False), ("y/a", "x/a", True)]},
            )
        ],
    ),
    "should enforce policy based on Ports": (
        ["x/a", "x/b", "y/a", "y/b", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}],
                            "ports": [tcp(81)],
                        },
                    )
                ],
                {"81/TCP": [("x", "x/a", False), ("y", "x/a", True), ("z", "x/a", False)]},
            )
        ],
    ),
    "should enforce multiple, stacked policies with overlapping podSelectors": (
        ["x/a", "x/b", "y/a", "y/b", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}],
                            "ports": [tcp(81)],
                        },
                    )
                ],
                {
                    "81/TCP": [("x", "x/a", False), ("y", "x/a", True), ("z", "x/a", False)],
                    "80/TCP": [("*", "x/a", False)],
                },
            ),
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}],
                            "ports": [tcp(81)],
                        },
                    ),
                    ingress(
                        "allow-client-a-via-ns-selector-80",
                        "x",
                        pod("a"),
                        {
                            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}],
                            "ports": [tcp(80)],
                        },
                    ),
                ],
                {"80/TCP": [("x", "x/a", False), ("y", "x/a", True), ("z", "x/a", False)]},
            ),
        ],
    ),
    "should support allow-all policy": (
        ["x/a", "x/b", "y/a"],
        [Phase([ingress("allow-all", "x", ALL, {})], {"80/TCP": [], "81/TCP": []})],
    ),
    "should allow ingress access on one named port": (
        ["x/a", "x/b", "y/a"],
        [
            Phase(
                [ingress("allow-all", "x", ALL, {"ports": [{"port": "serve-81-tcp"}]})],
                {"81/TCP": [], "80/TCP": [("*", "x", False)]},
            )
        ],
    ),
    "should allow ingress access from namespace on one named port": (
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector-80",
                        "x",
                        pod("a"),
                        {
                            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}],
                            "ports": [tcp("serve-80-tcp")],
                        },
                    )
                ],
                {
                    "80/TCP": [("x", "x/a", False), ("z", "x/a", False)],
                    "81/TCP": [("*", "x/a", False)],
                },
            )
        ],
    ),
    "should allow egress access on one named port": (
        ["x/a", "y/a"],
        [
            Phase(
                [egress("allow-egress", "x", ALL, {"ports": [{"port": "serve-80-tcp"}]})],
                {"80/TCP": [], "81/TCP": [("x", "*", False)]},
            )
        ],
    ),
    "should enforce updated policy": (
        ["x/a", "y/a"],
        [
            Phase([ingress("allow-all-mutate-to-deny-all", "x", ALL, {})], {"81/TCP": []}),
            Phase(
                [ingress("allow-all-mutate-to-deny-all", "x", ALL)], {"81/TCP": [("*", "x", False)]}
            ),
        ],
    ),
    "should allow ingress access from updated namespace": (
        ["x/a", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector",
                        "x",
                        pod("a"),
                        {"from": [{"namespaceSelector": {"matchLabels": {"ns2": "updated"}}}]},
                    )
                ],
                {"80/TCP": [("*", "x/a", False)]},
            ),
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector",
                        "x",
                        pod("a"),
                        {"from": [{"namespaceSelector": {"matchLabels": {"ns2": "updated"}}}]},
                    )
                ],
                {"80/TCP": [("*", "x/a", False), ("y", "*", True)]},
                namespace_labels={"y": {"ns2": "updated"}},
            ),
        ],
    ),
    "should allow ingress access from updated pod": (
        ["x/a", "x/b"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-pod-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {"podSelector": {"matchLabels": {"pod": "b", "pod2": "updated"}}}
                            ]
                        },
                    )
                ],
                {"80/TCP": [("*", "x/a", False)]},
            ),
            Phase(
                [
                    ingress(
                        "allow-client-a-via-pod-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {"podSelector": {"matchLabels": {"pod": "b", "pod2": "updated"}}}
                            ]
                        },
                    )
                ],
                {"80/TCP": [("*", "x/a", False), ("x/b", "x/a", True)]},
                pod_labels={"x/b": {"pod": "b", "pod2": "updated"}},
            ),
        ],
    ),
    "should deny ingress from pods on other namespaces": (
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [ingress("deny-empty-policy", "x", ALL, {"from": [{"podSelector": {}}]})],
                {"80/TCP": [("y", "x", False), ("z", "x", False)]},
            )
        ],
    ),
    "should deny ingress access to updated pod": (
        ["x/a", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "deny-ingress-via-label-selector",
                        "x",
                        {"matchLabels": {"target": "isolated"}},
                    )
                ],
                {"80/TCP": []},
            ),
            Phase(
                [
                    ingress(
                        "deny-ingress-via-label-selector",
                        "x",
                        {"matchLabels": {"target": "isolated"}},
                    )
                ],
                {"80/TCP": [("*", "x/a", False)]},
                pod_labels={"x/a": {"pod": "a", "target": "isolated"}},
            ),
        ],
    ),
    "should deny egress from pods based on PodSelector": (
        ["x/a", "x/b", "y/a"],
        [Phase([egress("deny-egress-pod-a", "x", pod("a"))], {"80/TCP": [("x/a", "*", False)]})],
    ),
    "should deny egress from all pods in a namespace": (
        ["x/a", "x/b", "y/a"],
        [Phase([egress("deny-egress-ns-x", "x", ALL)], {"80/TCP": [("x", "*", False)]})],
    ),
    "should work with Ingress, Egress specified together": (
        ["x/a", "x/b", "x/c", "y/a"],
        [
            Phase(
                [
                    policy(
                        "allow-client-a-via-pod-selector",
                        "x",
                        {
                            "podSelector": pod("a"),
                            "policyTypes": ["Egress", "Ingress"],
                            "ingress": [{"from": [{"podSelector": pod("b")}]}],
                            "egress": [{"ports": [{"port": 80}]}],
                        },
                    )
                ],
                {
                    "80/TCP": [("*", "x/a", False), ("x/b", "x/a", True)],
                    "81/TCP": [("*", "x/a", False), ("x/a", "*", False), ("x/b", "x/a", True)],
                },
            )
        ],
    ),
    "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)": (  # noqa: E501 (the upstream test's name)
        ["x/a", "y/a", "y/b"],
        [
            Phase(
                [
                    egress(
                        "allow-to-ns-y-pod-a",
                        "x",
                        pod("a"),
                        {
                            "to": [
                                {
                                    "namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}},
                                    "podSelector": pod("a"),
                                }
                            ]
                        },
                    ),
                    ingress(
                        "allow-from-xa-on-ya-match-selector",
                        "y",
                        pod("a"),
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {NAME_LABEL: "x"}},
                                    "podSelector": pod("a"),
                                }
                            ]
                        },
                    ),
                    ingress(
                        "allow-from-xa-on-yb-match-selector",
                        "y",
                        pod("b"),
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {NAME_LABEL: "x"}},
                                    "podSelector": pod("a"),
                                }
                            ]
                        },
                    ),
                ],
                {
                    "80/TCP": [
                        ("x/a", "*", False),
                        ("*", "y/a", False),
                        ("x/a", "y/a", True),
                        ("*", "y/b", False),
                    ]
                },
            )
        ],
    ),
    "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector": (  # noqa: E501 (the upstream test's name)
        ["x/a", "y/a", "y/b"],
        [
            Phase(
                [
                    egress(
                        "allow-to-ns-y-pod-a",
                        "x",
                        pod("a"),
                        {
                            "to": [
                                {
                                    "namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}},
                                    "podSelector": pod("a"),
                                }
                            ]
                        },
                    )
                ],
                {"80/TCP": [("x/a", "*", False), ("x/a", "y/a", True)]},
            )
        ],
    ),
    "should enforce ingress policy allowing any port traffic to a server on a specific protocol": (
        ["x/a", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-ingress-by-proto", "x", pod("a"), {"ports": [{"protocol": "TCP"}]}
                    )
                ],
                {"80/TCP": [], "80/UDP": [("*", "x/a", False)]},
            )
        ],
    ),
    "should enforce multiple ingress policies with ingress allow-all policy taking precedence": (
        ["x/a", "y/a"],
        [
            Phase(
                [ingress("allow-ingress-port-80", "x", ALL, {"ports": [{"port": 80}]})],
                {"81/TCP": [("*", "x", False)]},
            ),
            Phase(
                [
                    ingress("allow-ingress-port-80", "x", ALL, {"ports": [{"port": 80}]}),
                    ingress("allow-ingress", "x", ALL, {}),
                ],
                {"81/TCP": []},
            ),
        ],
    ),
    "should enforce multiple egress policies with egress allow-all policy taking precedence": (
        ["x/a", "y/a"],
        [
            Phase(
                [egress("allow-egress-port-80", "x", ALL, {"ports": [{"port": 80}]})],
                {"81/TCP": [("x", "*", False)]},
            ),
            Phase(
                [
                    egress("allow-egress-port-80", "x", ALL, {"ports": [{"port": 80}]}),
                    egress("allow-egress", "x", ALL, {}),
                ],
                {"81/TCP": []},
            ),
        ],
    ),
    "should stop enforcing policies after they are deleted": (
        ["x/a", "y/a"],
        [
            Phase([DENY_ALL_X], {"80/TCP": [("x", "*", False), ("*", "x", False)]}),
            Phase([], {"80/TCP": []}),
        ],
    ),
    "should allow egress access to server in CIDR block": (
        ["x/a", "y/a", "y/b"],
        [
            Phase(
                [
                    egress(
                        "allow-client-a-via-cidr-egress-rule",
                        "x",
                        pod("a"),
                        {"to": [{"ipBlock": {"cidr": f"{ip_of('y/b')}/32"}}]},
                    )
                ],
                {"80/TCP": [("x/a", "*", False), ("x/a", "y/b", True)]},
            )
        ],
    ),
    "should enforce except clause while egress access to server in CIDR block": (
        ["x/a", "x/b", "x/c"],
        [
            Phase(
                [
                    egress(
                        "allow-client-a-via-cidr-egress-rule",
                        "x",
                        pod("a"),
                        {
                            "to": [
                                {"ipBlock": {"cidr": "0.0.0.0/4", "except": [f"{ip_of('x/b')}/32"]}}
                            ]
                        },
                    )
                ],
                {"80/TCP": [("x/a", "x/b", False)]},
            )
        ],
    ),
    "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed": (
        ["x/a", "x/b", "x/c"],
        [
            Phase(
                [
                    egress(
                        "allow-client-a-via-cidr-egress-rule",
                        "x",
                        pod("a"),
                        {
                            "to": [
                                {"ipBlock": {"cidr": "0.0.0.0/4", "except": [f"{ip_of('x/b')}/32"]}}
                            ]
                        },
                    )
                ],
                {"80/TCP": [("x/a", "x/b", False)]},
            ),
            Phase(  # the same policy updated to the /32 alone
                [
                    egress(
                        "allow-client-a-via-cidr-egress-rule",
                        "x",
                        pod("a"),
                        {"to": [{"ipBlock": {"cidr": f"{ip_of('x/b')}/32"}}]},
                    )
                ],
                {"80/TCP": [("x/a", "*", False), ("x/a", "x/b", True)]},
            ),
        ],
    ),
    "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "y/a"],
        [
            Phase([egress("allow-egress-for-target", "x", pod("a"), {})], {"80/TCP": []}),
            Phase(
                [
                    egress("allow-egress-for-target", "x", pod("a"), {}),
                    ingress("deny-ingress-via-label-selector", "x", pod("a")),
                ],
                {"80/TCP": [("*", "x/a", False)]},
            ),
        ],
    ),
    "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP": (  # noqa: E501 (the upstream test's name)
        ["x/a", "y/a"],
        [
            Phase(
                [
                    ingress("deny-ingress", "x", ALL),
                    ingress(
                        "allow-only-sctp-ingress-on-port-81",
                        "x",
                        pod("a"),
                        {"ports": [{"port": 81, "protocol": "SCTP"}]},
                    ),
                ],
                {"81/TCP": [("*", "x", False)]},
            )
        ],
    ),
    "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP": (  # noqa: E501 (the upstream test's name)
        ["x/a", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-only-sctp-ingress-on-port-80",
                        "x",
                        pod("a"),
                        {"ports": [{"port": 80, "protocol": "SCTP"}]},
                    )
                ],
                {"81/TCP": [("*", "x/a", False)]},
            )
        ],
    ),
    "should not allow access by TCP when a policy specifies only UDP": (
        ["x/a", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-only-udp-ingress-on-port-81",
                        "x",
                        pod("a"),
                        {"ports": [{"port": 81, "protocol": "UDP"}]},
                    )
                ],
                {"81/TCP": [("*", "x/a", False)]},
            )
        ],
    ),
    "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-client-a-via-ns-selector-for-immutable-ns-label",
                        "x",
                        pod("a"),
                        {"from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}]},
                    )
                ],
                {"80/TCP": [("x", "x/a", False), ("z", "x/a", False)]},
            )
        ],
    ),
    "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    egress(
                        "allow-ns-y-match-selector-for-immutable-ns-label",
                        "x",
                        pod("a"),
                        {"to": [{"namespaceSelector": ns_name("y", operator="NotIn")}]},
                    )
                ],
                {"80/TCP": [("x/a", "y", False)]},
            )
        ],
    ),
    # the UDP group ("Netpol [LinuxOnly] NetworkPolicy between server and client using UDP")
    "UDP: should support a 'default-deny-ingress' policy": (
        ["x/a", "x/b", "y/a", "y/b"],
        [Phase([ingress("deny-all", "x", ALL)], {"80/UDP": [("*", "x", False)]})],
    ),
    "UDP: should enforce policy based on Ports": (
        ["x/a", "x/b", "y/a", "z/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-ingress-on-port-81-ns-x",
                        "x",
                        pod("a"),
                        {
                            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}}}],
                            "ports": [{"port": 81, "protocol": "UDP"}],
                        },
                    )
                ],
                {"81/UDP": [("x", "x/a", False), ("z", "x/a", False)]},
            )
        ],
    ),
    "UDP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector": (  # noqa: E501 (the upstream test's name)
        ["x/a", "x/b", "y/a"],
        [
            Phase(
                [
                    ingress(
                        "allow-ns-y-pod-a-via-namespace-pod-selector",
                        "x",
                        pod("a"),
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {NAME_LABEL: "y"}},
                                    "podSelector": pod("a"),
                                }
                            ]
                        },
                    )
                ],
                {"80/UDP": [("*", "x/a", False), ("y/a", "x/a", True)]},
            )
        ],
    ),
}


def _matches(side: str, pod_key: str) -> bool:
    return side == "*" or side == pod_key or side == pod_key.split("/")[0]


def expected_table(pods: list[str], expectations: list[Expect]) -> dict[tuple[str, str], bool]:
    """NewReachability(pods, true) with each expectation applied in order, loopback left out."""
    table = {(src, dst): True for src in pods for dst in pods if src != dst}
    for side_from, side_to, allowed in expectations:
        for src, dst in table:
            if _matches(side_from, src) and _matches(side_to, dst):
                table[src, dst] = allowed
    return table


def probed_table(
    pods: list[str], phase: Phase, port: str, cni: str = "flannel"
) -> tuple[dict, list[dict]]:
    document = cluster(
        phase.policies,
        namespace_labels=phase.namespace_labels,
        pod_labels=phase.pod_labels,
        services=True,
        cni=cni,
    )
    topology = load_topology_text(yaml.safe_dump(document), "e2e.yaml")
    services = [f"service/{p.split('/')[0]}/s-{p.replace('/', '-')}" for p in pods]
    steps = probe_steps(topology, pods, services, [port])
    probes = reach(topology, steps)
    pod_of = dict(zip(services, pods, strict=True))
    for probe in probes:
        probe["to"] = pod_of[probe["to"]]
    table = {
        (p["from"], p["to"]): p["verdict"] == "allowed" for p in probes if p["from"] != p["to"]
    }
    return table, probes


@pytest.mark.parametrize("cni", CNIS)
@pytest.mark.parametrize("name", CASES)
def test_upstream_netpol_case(name: str, cni: str) -> None:
    pods, phases = CASES[name]
    for number, phase in enumerate(phases, 1):
        for port, expectations in phase.checks.items():
            probed, probes = probed_table(pods, phase, port, cni)
            assert {p["verdict"] for p in probes} <= {"allowed", "denied"}, tables(probes)
            expected = expected_table(pods, expectations)
            wrong = sorted(cell for cell in expected if expected[cell] != probed[cell])
            assert not wrong, f"phase {number}, {port}: cells {wrong} differ\n{tables(probes)}"


def test_the_harness_fails_on_a_wrong_expectation() -> None:
    """A case whose expectation is wrong fails: the tables are compared, not just computed."""
    phase = Phase([ingress("deny-ingress", "x", ALL)], {"80/TCP": []})
    probed, _ = probed_table(["x/a", "y/a"], phase, "80/TCP")
    assert probed != expected_table(["x/a", "y/a"], [])
    assert probed == expected_table(["x/a", "y/a"], [("*", "x", False)])


# the cases whose second phase changes only labels: upstream relabels the running cluster
LABEL_UPDATES = (
    "should allow ingress access from updated namespace",
    "should allow ingress access from updated pod",
    "should deny ingress access to updated pod",
)


def label_steps(before: Phase, after: Phase) -> list[dict]:
    """The `label` steps that take the cluster from `before`'s labels to `after`'s."""
    steps = []
    for key in sorted(before.pod_labels.keys() | after.pod_labels.keys()):
        default = {"pod": key.split("/")[1]}
        old, new = before.pod_labels.get(key, default), after.pod_labels.get(key, default)
        steps.append({"label": {"pod": key, "set": new, "remove": sorted(old.keys() - new)}})
    for ns in sorted(before.namespace_labels.keys() | after.namespace_labels.keys()):
        old, new = before.namespace_labels.get(ns, {}), after.namespace_labels.get(ns, {})
        steps.append({"label": {"namespace": ns, "set": new, "remove": sorted(old.keys() - new)}})
    for step in steps:
        step["label"] = {key: value for key, value in step["label"].items() if value}
    return steps


@pytest.mark.parametrize("cni", ["flannel", "calico-ipip"])
@pytest.mark.parametrize("name", LABEL_UPDATES)
def test_upstream_label_updates_on_the_running_cluster(name: str, cni: str) -> None:
    """The label cases as upstream runs them: one cluster, probed, relabelled by `label` steps,
    probed again; each round must give its phase's table."""
    pods, (before, after) = CASES[name]
    assert before.policies == after.policies and before.checks.keys() == after.checks.keys()
    [port] = before.checks
    number, protocol = port.split("/")
    cells = [(src, dst) for src in pods for dst in pods if src != dst]
    probes = [
        {
            "probe": {
                "from": src,
                "to": f"service/{dst.split('/')[0]}/s-{dst.replace('/', '-')}",
                "port": int(number),
                "protocol": protocol,
            }
        }
        for src, dst in cells
    ]
    document = cluster(
        before.policies,
        namespace_labels=before.namespace_labels,
        pod_labels=before.pod_labels,
        services=True,
        cni=cni,
        traffic=probes + label_steps(before, after) + probes,
    )
    logs = run(load_topology_text(yaml.safe_dump(document), "relabel.yaml")).network.journal.steps
    allowed = [log.probe["verdict"] == "allowed" for log in logs if log.probe]
    assert dict(zip(cells, allowed[: len(cells)], strict=True)) == expected_table(
        pods, before.checks[port]
    )
    assert dict(zip(cells, allowed[len(cells) :], strict=True)) == expected_table(
        pods, after.checks[port]
    )
