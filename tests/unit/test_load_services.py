"""Topology loading of services, cluster DNS and dns steps: defaults, allocation, endpoints,
names in traffic, and one test per check on bad input."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpkt.derive import derive_mac
from kpkt.errors import TopologyError
from kpkt.spec import (
    ContainerPort,
    ContainerSpec,
    DnsSpec,
    DnsStep,
    EndpointPort,
    ExternalSpec,
    HostRef,
    ServiceEndpoint,
    ServicePort,
    ServiceSpec,
    TcpStep,
    UdpStep,
    UpstreamSpec,
)
from kpkt.topology.load import load_topology_text

from topology_fuzz import loads_or_reports

HEADER = "apiVersion: kpkt/v1\nkind: Topology\nmetadata: {name: t}\n"
NODES = """
nodes:
  - name: node1
    pods: [{name: pod-a}, {name: pod-b}]
  - name: node2
    pods: [{name: pod-c}]
"""
COREDNS_PORTS = (
    ContainerPort("dns", 53, "UDP"),
    ContainerPort("dns-tcp", 53, "TCP"),
    ContainerPort("metrics", 9153, "TCP"),
)


def load(body: str, seed: int | None = None):
    return load_topology_text(HEADER + textwrap.dedent(body), "t.yaml", seed=seed)


def problems(body: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_topology_text(HEADER + textwrap.dedent(body), "t.yaml")
    return caught.value.problems


def service(topology, key: str) -> ServiceSpec:
    return next(s for s in topology.services if s.key == key)


def pod(topology, name: str):
    return next(p for p in topology.pods() if p.name == name)


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def services(*items: str) -> str:
    return "services:\n" + "".join(f"  - {item}\n" for item in items)


def traffic(*steps: str) -> str:
    return "traffic:\n" + "".join(f"  - {step}\n" for step in steps)


def ips(topology) -> dict[str, str]:
    return {s.key: str(s.cluster_ip) for s in topology.services}


# --- the built-in services --------------------------------------------------------------------


def test_every_cluster_has_the_kubernetes_service_and_no_dns_by_default():
    topology = load(NODES)
    assert topology.cluster.dns is None
    assert topology.services == (
        ServiceSpec(
            name="kubernetes",
            namespace="default",
            type="ClusterIP",
            cluster_ip=ip("10.96.0.1"),
            ports=(ServicePort("https", 443, "TCP", 6443),),
            selector=None,
            endpoints=(
                ServiceEndpoint(
                    ip("192.168.50.1"), (EndpointPort("https", 6443, "TCP"),), node="node1"
                ),
            ),
        ),
    )
    assert [p.name for p in topology.pods()] == ["pod-a", "pod-b", "pod-c"]
    assert topology.externals == () and topology.warnings == ()


def test_the_kubernetes_service_follows_the_service_cidr_and_the_first_node():
    topology = load("""
        cluster: {serviceCIDR: 10.20.0.0/16}
        nodes: [{name: cp, ip: 192.168.50.7}, {name: worker}]
    """)
    [kubernetes] = topology.services
    assert kubernetes.cluster_ip == ip("10.20.0.1")
    assert [(str(e.ip), e.node, e.ports[0].port) for e in kubernetes.endpoints] == [
        ("192.168.50.7", "cp", 6443)
    ]


def test_cluster_dns_defaults():
    topology = load("cluster: {dns: {}}\n" + NODES)
    coredns = pod(topology, "coredns-a")
    assert topology.cluster.dns == DnsSpec(
        service_ip=ip("10.96.0.10"),
        node="node1",
        pod_ips=(ip("10.244.1.4"),),
        ttl=30,
        pods="insecure",
        upstream=None,
    )
    assert [(p.name, p.namespace, p.node, str(p.ip)) for p in topology.pods()] == [
        ("pod-a", "default", "node1", "10.244.1.2"),
        ("pod-b", "default", "node1", "10.244.1.3"),
        ("coredns-a", "kube-system", "node1", "10.244.1.4"),
        ("pod-c", "default", "node2", "10.244.2.2"),
    ]
    assert coredns.labels == (("k8s-app", "kube-dns"),) and coredns.ready
    assert coredns.containers == (ContainerSpec("coredns", COREDNS_PORTS),)
    assert coredns.owner == "coredns-a.kube-system"
    assert coredns.host_veth == "veth-coredns-a"
    assert coredns.mac == derive_mac(0, "pod/kube-system/coredns-a/eth0")
    assert coredns.host_veth_mac == derive_mac(0, "pod/kube-system/coredns-a/veth")
    assert [s.key for s in topology.services] == ["default/kubernetes", "kube-system/kube-dns"]
    kube_dns = service(topology, "kube-system/kube-dns")
    assert kube_dns == ServiceSpec(
        name="kube-dns",
        namespace="kube-system",
        type="ClusterIP",
        cluster_ip=ip("10.96.0.10"),
        ports=(
            ServicePort("dns", 53, "UDP", 53),
            ServicePort("dns-tcp", 53, "TCP", 53),
            ServicePort("metrics", 9153, "TCP", 9153),
        ),
        selector=(("k8s-app", "kube-dns"),),
        endpoints=(
            ServiceEndpoint(
                ip("10.244.1.4"),
                (
                    EndpointPort("dns", 53, "UDP"),
                    EndpointPort("dns-tcp", 53, "TCP"),
                    EndpointPort("metrics", 9153, "TCP"),
                ),
                ready=True,
                pod="coredns-a.kube-system",
                node="node1",
            ),
        ),
    )
    assert topology.warnings == ()


def test_a_dns_step_turns_cluster_dns_on():
    topology = load(NODES + traffic("dns: {from: pod-a, name: web}"))
    assert topology.cluster.dns is not None
    assert topology.cluster.dns.pod_ips == (ip("10.244.1.4"),)
    assert [s.key for s in topology.services] == ["default/kubernetes", "kube-system/kube-dns"]


def test_cluster_dns_can_be_switched_off():
    topology = load("cluster: {dns: {enabled: false, replicas: 3}}\n" + NODES)
    assert topology.cluster.dns is None
    assert [s.key for s in topology.services] == ["default/kubernetes"]
    assert "coredns-a" not in [p.name for p in topology.pods()]
    assert load("cluster: {dns: null}\n" + NODES).cluster.dns is None


def test_cluster_dns_every_field():
    topology = load("""
        cluster:
          serviceCIDR: 10.100.0.0/16
          dns:
            serviceIP: 10.100.0.53
            node: node2
            replicas: 2
            podIPs: [10.244.2.53, 10.244.2.54]
            ttl: 5
            pods: verified
            upstream:
              ip: 192.168.50.53
              records:
                - "example.com. 300 IN A 198.51.100.10"
                - "*.wild.example. 60 in aaaa 2001:db8::1"
                - "_sip._udp.example.com. 30 IN SRV 0 5 5060 sip.example.com."
        nodes:
          - {name: node1}
          - {name: node2, pods: [{name: pod-c}]}
        externals: [{name: laptop}]
    """)
    dns = topology.cluster.dns
    upstream = next(e for e in topology.externals if e.name == "upstream-dns")
    assert upstream == ExternalSpec(
        "upstream-dns", ip("192.168.50.53"), derive_mac(0, "external/upstream-dns/eth0")
    )
    assert [e.name for e in topology.externals] == ["laptop", "upstream-dns"]
    assert dns == DnsSpec(
        service_ip=ip("10.100.0.53"),
        node="node2",
        pod_ips=(ip("10.244.2.53"), ip("10.244.2.54")),
        ttl=5,
        pods="verified",
        upstream=UpstreamSpec(
            ip("192.168.50.53"),
            (
                "example.com. 300 IN A 198.51.100.10",
                "*.wild.example. 60 in aaaa 2001:db8::1",
                "_sip._udp.example.com. 30 IN SRV 0 5 5060 sip.example.com.",
            ),
            "upstream-dns",
            upstream.mac,
        ),
    )
    assert [(p.name, p.node, str(p.ip)) for p in topology.pods()] == [
        ("pod-c", "node2", "10.244.2.2"),
        ("coredns-a", "node2", "10.244.2.53"),
        ("coredns-b", "node2", "10.244.2.54"),
    ]
    assert ips(topology) == {
        "default/kubernetes": "10.100.0.1",
        "kube-system/kube-dns": "10.100.0.53",
    }
    endpoints = service(topology, "kube-system/kube-dns").endpoints
    assert [(str(e.ip), e.pod) for e in endpoints] == [
        ("10.244.2.53", "coredns-a.kube-system"),
        ("10.244.2.54", "coredns-b.kube-system"),
    ]


def test_replicas_and_pod_ips():
    three = load("cluster: {dns: {replicas: 3}}\n" + NODES)
    assert [str(p.ip) for p in three.pods() if p.namespace == "kube-system"] == [
        "10.244.1.4",
        "10.244.1.5",
        "10.244.1.6",
    ]
    assert [p.name for p in three.pods() if p.namespace == "kube-system"] == [
        "coredns-a",
        "coredns-b",
        "coredns-c",
    ]
    one = load("cluster: {dns: {podIP: 10.244.1.2}}\n" + NODES)  # IPAM steps around it
    assert [(p.name, str(p.ip)) for p in one.nodes[0].pods] == [
        ("pod-a", "10.244.1.3"),
        ("pod-b", "10.244.1.4"),
        ("coredns-a", "10.244.1.2"),
    ]
    counted = load("cluster: {dns: {podIPs: [10.244.1.9, 10.244.1.8]}}\n" + NODES)
    assert counted.cluster.dns.pod_ips == (ip("10.244.1.9"), ip("10.244.1.8"))


def test_a_file_may_define_the_builtin_services_itself():
    topology = load(
        "cluster: {dns: {}}\n"
        + NODES
        + services(
            "{name: web, ports: [{port: 80}]}",
            "{name: kube-dns, namespace: kube-system, selector: {k8s-app: kube-dns}, "
            "ports: [{name: dns, port: 53, protocol: UDP}]}",
            "{name: kubernetes, clusterIP: 10.96.0.1, ports: [{name: https, port: 443}], "
            "endpoints: [{ip: 192.168.50.2, port: 443}]}",
        )
    )
    assert ips(topology) == {
        "default/web": "10.96.0.2",
        "kube-system/kube-dns": "10.96.0.10",
        "default/kubernetes": "10.96.0.1",
    }
    assert [s.key for s in topology.services] == [
        "default/web",
        "kube-system/kube-dns",
        "default/kubernetes",
    ]
    kubernetes = service(topology, "default/kubernetes")
    assert kubernetes.ports == (ServicePort("https", 443, "TCP", 443),)
    assert [(str(e.ip), e.node, e.ports) for e in kubernetes.endpoints] == [
        ("192.168.50.2", "node2", (EndpointPort("https", 443, "TCP"),))
    ]
    assert len(service(topology, "kube-system/kube-dns").ports) == 1


# --- cluster IPs and node ports ---------------------------------------------------------------


def test_cluster_ips_explicit_first_then_reserved_then_lowest_free_in_order():
    topology = load(
        "cluster: {dns: {}}\n"
        + NODES
        + services(
            "{name: a, ports: [{port: 80}]}",
            "{name: b, clusterIP: 10.96.0.2, ports: [{port: 80}]}",
            "{name: c, ports: [{port: 80}]}",
            "{name: d, clusterIP: 10.96.0.5, ports: [{port: 80}]}",
            "{name: e, clusterIP: None}",
            "{name: f, type: ExternalName, externalName: www.example.com}",
            "{name: g, ports: [{port: 80}]}",
            "{name: h, ports: [{port: 80}]}",
            "{name: i, ports: [{port: 80}]}",
            "{name: j, ports: [{port: 80}]}",
            "{name: k, ports: [{port: 80}]}",
        )
    )
    assert ips(topology) == {
        "default/kubernetes": "10.96.0.1",
        "kube-system/kube-dns": "10.96.0.10",
        "default/a": "10.96.0.3",
        "default/b": "10.96.0.2",
        "default/c": "10.96.0.4",
        "default/d": "10.96.0.5",
        "default/e": "None",
        "default/f": "None",
        "default/g": "10.96.0.6",
        "default/h": "10.96.0.7",
        "default/i": "10.96.0.8",
        "default/j": "10.96.0.9",
        "default/k": "10.96.0.11",
    }


def test_without_cluster_dns_its_address_is_an_ordinary_one():
    topology = load(NODES + services("{name: a, clusterIP: 10.96.0.10, ports: [{port: 80}]}"))
    assert service(topology, "default/a").cluster_ip == ip("10.96.0.10")


def test_node_ports_explicit_first_then_lowest_free_in_declaration_order():
    topology = load(
        NODES
        + services(
            "{name: a, type: NodePort, ports: [{name: x, port: 80}, "
            "{name: y, port: 81, nodePort: 30001}]}",
            "{name: b, type: NodePort, ports: [{port: 80, nodePort: 30000}]}",
            "{name: c, type: NodePort, ports: [{name: t, port: 53}, "
            "{name: u, port: 53, protocol: UDP}, {name: v, port: 54}]}",
            "{name: d, type: NodePort, ports: [{name: t, port: 53, nodePort: 32767}, "
            "{name: u, port: 53, protocol: UDP}]}",
            "{name: e, ports: [{port: 80}]}",
        )
    )
    node_ports = {s.name: [p.node_port for p in s.ports] for s in topology.services}
    assert node_ports == {
        "kubernetes": [None],
        "a": [30002, 30001],
        "b": [30000],
        "c": [30003, 30003, 30004],  # a TCP and a UDP port of one number share one
        "d": [32767, 32767],
        "e": [None],
    }
    assert service(topology, "default/a").type == "NodePort"


def test_one_service_may_give_one_node_port_to_tcp_and_udp():
    topology = load(
        NODES
        + services(
            "{name: dns, type: NodePort, ports: [{name: u, port: 53, protocol: UDP, "
            "nodePort: 30053}, {name: t, port: 53, nodePort: 30053}]}"
        )
    )
    assert [p.node_port for p in service(topology, "default/dns").ports] == [30053, 30053]


# --- endpoints --------------------------------------------------------------------------------

WEB = """
nodes:
  - name: node1
    pods:
      - name: web-1
        labels: {app: web, tier: front}
        containers:
          - name: app
            ports:
              - {name: http, containerPort: 8080}
              - {name: stats, containerPort: 9000, protocol: UDP}
      - {name: other, labels: {app: api}}
      - name: web-2
        labels: {app: web}
        ready: false
        hostname: w2
        subdomain: web
        containers: [{name: app, ports: [{name: http, containerPort: 8081}]}]
  - name: node2
    pods:
      - name: web-3
        labels: {app: web}
        containers: [{name: side, ports: [{name: stats, containerPort: 9001}]}]
      - {name: web-4, namespace: prod, labels: {app: web}}
      - {name: web-5, labels: {app: web}, hostname: w5, subdomain: db}
"""


def test_a_selector_picks_its_namespaces_pods_in_declaration_order():
    topology = load(WEB + services("{name: web, selector: {app: web}, ports: [{port: 80}]}"))
    web = service(topology, "default/web")
    assert web.selector == (("app", "web"),) and not web.publish_not_ready
    assert web.ports == (ServicePort(None, 80, "TCP", 80),)
    assert [(e.pod, e.node, str(e.ip), e.ready, e.hostname) for e in web.endpoints] == [
        ("web-1.default", "node1", "10.244.1.2", True, None),
        ("web-2.default", "node1", "10.244.1.4", False, "w2"),
        ("web-3.default", "node2", "10.244.2.2", True, None),
        ("web-5.default", "node2", "10.244.2.4", True, None),  # its subdomain names another
    ]
    assert all(e.ports == (EndpointPort(None, 80, "TCP"),) for e in web.endpoints)
    assert [e.pod for e in web.ready_endpoints()] == [
        "web-1.default",
        "web-3.default",
        "web-5.default",
    ]
    assert topology.warnings == ()


def test_every_selector_label_must_match():
    topology = load(
        WEB + services("{name: front, selector: {app: web, tier: front}, ports: [{port: 80}]}")
    )
    assert [e.pod for e in service(topology, "default/front").endpoints] == ["web-1.default"]
    prod = load(
        WEB + services("{name: web, namespace: prod, selector: {app: web}, ports: [{port: 80}]}")
    )
    assert [e.pod for e in service(prod, "prod/web").endpoints] == ["web-4.prod"]


def test_publish_not_ready_addresses_makes_every_endpoint_ready():
    topology = load(
        WEB
        + services(
            "{name: web, selector: {app: web}, publishNotReadyAddresses: true, ports: [{port: 80}]}"
        )
    )
    web = service(topology, "default/web")
    assert web.publish_not_ready and all(e.ready for e in web.endpoints)


def test_named_target_ports_are_looked_up_per_pod_by_name_and_protocol():
    topology = load(
        WEB
        + services(
            "{name: web, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, "
            "{name: stats, port: 9000, protocol: UDP, targetPort: stats}, "
            "{name: raw, port: 81, targetPort: 8181}]}",
            "{name: only-named, selector: {app: web}, ports: [{name: http, port: 80, "
            "targetPort: http}]}",
        )
    )
    web = service(topology, "default/web")
    assert web.ports[0] == ServicePort("http", 80, "TCP", "http")
    assert {e.pod: e.ports for e in web.endpoints} == {
        "web-1.default": (
            EndpointPort("http", 8080, "TCP"),
            EndpointPort("stats", 9000, "UDP"),
            EndpointPort("raw", 8181, "TCP"),
        ),
        "web-2.default": (EndpointPort("http", 8081, "TCP"), EndpointPort("raw", 8181, "TCP")),
        # web-3's stats port is TCP: the UDP service port finds no match there
        "web-3.default": (EndpointPort("raw", 8181, "TCP"),),
        "web-5.default": (EndpointPort("raw", 8181, "TCP"),),
    }
    # a pod that serves none of the ports is left out of the service
    only = service(topology, "default/only-named")
    assert [e.pod for e in only.endpoints] == ["web-1.default", "web-2.default"]
    assert topology.warnings == ()


def test_a_headless_service_with_a_selector_lists_pods_without_ports():
    topology = load(WEB + services("{name: web, clusterIP: None, selector: {app: web}}"))
    web = service(topology, "default/web")
    assert web.cluster_ip is None and web.ports == ()
    assert [(e.pod, e.ports, e.hostname) for e in web.endpoints][:2] == [
        ("web-1.default", (), None),
        ("web-2.default", (), "w2"),
    ]


def test_explicit_endpoints():
    topology = load(
        NODES
        + services(
            "{name: db, ports: [{name: pg, port: 5432, targetPort: 15432}, "
            "{name: m, port: 9187, protocol: UDP}], endpoints: [{ip: 192.168.50.2}, "
            "{ip: 10.0.0.5, ready: false, hostname: db-1}, {ip: 192.168.50.9, port: 7000}]}",
            "{name: none, ports: [{port: 80}]}",
        )
    )
    db = service(topology, "default/db")
    assert db.selector is None
    assert db.endpoints == (
        ServiceEndpoint(
            ip("192.168.50.2"),
            (EndpointPort("pg", 15432, "TCP"), EndpointPort("m", 9187, "UDP")),
            node="node2",
        ),
        ServiceEndpoint(
            ip("10.0.0.5"),
            (EndpointPort("pg", 15432, "TCP"), EndpointPort("m", 9187, "UDP")),
            ready=False,
            hostname="db-1",
        ),
        ServiceEndpoint(
            ip("192.168.50.9"), (EndpointPort("pg", 7000, "TCP"), EndpointPort("m", 7000, "UDP"))
        ),
    )
    assert service(topology, "default/none").endpoints == ()  # legal: kube-proxy rejects
    assert topology.warnings == ()


def test_explicit_endpoints_with_a_named_target_port_give_their_port():
    topology = load(
        NODES
        + services(
            "{name: x, ports: [{port: 80, targetPort: http}], "
            "endpoints: [{ip: 10.0.0.1, port: 8080}]}"
        )
    )
    assert service(topology, "default/x").endpoints[0].ports == (EndpointPort(None, 8080, "TCP"),)


def test_external_name_services():
    topology = load(
        NODES
        + services(
            "{name: ext, type: ExternalName, externalName: www.example.com}",
            "{name: dotted, type: ExternalName, externalName: 'db.example.org.', "
            "ports: [{port: 5432}]}",
            "{name: numeric, type: ExternalName, externalName: 198.51.100.7}",
        )
    )
    ext = service(topology, "default/ext")
    assert (ext.type, ext.cluster_ip, ext.external_name, ext.endpoints) == (
        "ExternalName",
        None,
        "www.example.com",
        (),
    )
    assert service(topology, "default/dotted").external_name == "db.example.org."
    assert service(topology, "default/numeric").external_name == "198.51.100.7"


def test_a_selector_that_matches_nothing_is_a_warning():
    topology = load(
        NODES
        + services(
            "{name: web, selector: {app: web}, ports: [{port: 80}]}",
            "{name: named, selector: {app: web}, namespace: prod, ports: [{port: 80}]}",
        )
    )
    assert service(topology, "default/web").endpoints == ()
    assert topology.warnings == (
        "t.yaml: services[0].selector: selects no pod in namespace default: default/web has no "
        "endpoints (kube-proxy rejects what is sent to it)",
        "t.yaml: services[1].selector: selects no pod in namespace prod: prod/named has no "
        "endpoints (kube-proxy rejects what is sent to it)",
    )


def test_a_named_port_no_selected_pod_has_is_a_warning():
    topology = load(
        WEB + services("{name: web, selector: {app: web}, ports: [{port: 80, targetPort: grpc}]}")
    )
    assert service(topology, "default/web").endpoints == ()
    assert topology.warnings == (
        "t.yaml: services[0].ports[0].targetPort: no pod default/web selects has a TCP container "
        "port named 'grpc': this port has no endpoints",
    )


# --- services in traffic ----------------------------------------------------------------------

NAMED = (
    NODES.replace("{name: pod-c}", "{name: pod-c}, {name: pod-p, namespace: prod}")
    + "externals: [{name: laptop}]\n"
    + services(
        "{name: web, selector: {app: web}, ports: [{name: http, port: 80}, "
        "{name: dns, port: 53, protocol: UDP}]}",
        "{name: web, namespace: prod, ports: [{port: 8080}]}",
        "{name: api, namespace: prod, ports: [{port: 443}]}",
    )
)


@pytest.mark.parametrize(
    ("written", "dst", "dport"),
    [
        ("from: pod-a, to: web, dport: 80", "10.96.0.2", 80),
        ("from: pod-a, to: 'web:80'", "10.96.0.2", 80),
        ("from: pod-a, to: web.default, dport: 53", "10.96.0.2", 53),
        ("from: pod-a, to: web.default.svc, dport: 80", "10.96.0.2", 80),
        ("from: pod-a, to: web.default.svc.cluster.local, dport: 80", "10.96.0.2", 80),
        ("from: pod-a, to: 'web.default.svc.cluster.local.:80'", "10.96.0.2", 80),
        ("from: pod-a, to: web.prod, dport: 8080", "10.96.0.3", 8080),
        ("from: pod-p, to: web, dport: 8080", "10.96.0.3", 8080),  # the sender's namespace
        ("from: pod-p, to: api, dport: 443", "10.96.0.4", 443),
        ("from: pod-p, to: 'web.default:80'", "10.96.0.2", 80),
        ("from: node1, to: web, dport: 80", "10.96.0.2", 80),  # a node: default
        ("from: laptop, to: kubernetes, dport: 443", "10.96.0.1", 443),
        ("from: pod-a, to: 'web:9999'", "10.96.0.2", 9999),  # a port the service lacks
        ("from: pod-a, to: 10.96.0.2, dport: 80", "10.96.0.2", 80),  # no "nothing answers"
    ],
)
def test_to_may_name_a_service(written, dst, dport):
    topology = load(NAMED + traffic(f"udp: {{{written}}}"))
    [step] = topology.steps
    assert (str(step.dst), step.dport) == (dst, dport)
    assert [w for w in topology.warnings if "traffic" in w] == []


def test_tcp_and_ping_steps_may_name_a_service():
    topology = load(
        NAMED + traffic("tcp: {from: pod-a, to: 'web:80'}", "ping: {from: pod-a, to: web.prod}")
    )
    tcp, ping = topology.steps
    assert isinstance(tcp, TcpStep) and (str(tcp.dst), tcp.dport) == ("10.96.0.2", 80)
    assert str(ping.dst) == "10.96.0.3"


def test_a_pod_beats_a_service_of_the_same_name_with_a_warning():
    topology = load(
        NODES.replace("{name: pod-c}", "{name: web}")
        + services("{name: web, ports: [{port: 80}]}")
        + traffic(
            "udp: {from: pod-a, to: web, dport: 80}",
            "udp: {from: pod-a, to: web.default, dport: 80}",
        )
    )
    assert [str(step.dst) for step in topology.steps] == ["10.244.2.2", "10.96.0.2"]
    assert topology.warnings == (
        "t.yaml: traffic[0].udp.to: 'web' is both a pod and a service: this means the pod; "
        "write 'web.default' for the service",
    )


def test_a_service_step_changes_nothing_else():
    [step] = load(NAMED + traffic("udp: {from: pod-a, to: 'web:53', payload: hi}")).steps
    assert step == UdpStep(
        text="udp: {from: pod-a, to: 'web:53', payload: hi}",
        src=HostRef("pod", "pod-a", "default"),
        dst=ip("10.96.0.2"),
        sport=None,
        dport=53,
        payload=b"hi",
    )


# --- dns steps --------------------------------------------------------------------------------


def test_dns_step_defaults_and_fields():
    topology = load(
        NODES
        + traffic(
            "dns: {from: pod-a, name: web}",
            "dns: {from: pod-c, name: _http._tcp.web.default.svc.cluster.local., type: srv, "
            "at: 2s}",
            "dns: {from: pod-a, name: 10.0.96.10.in-addr.arpa, type: PTR}",
        )
    )
    first, second, third = topology.steps
    assert first == DnsStep(
        text="dns: {from: pod-a, name: web}",
        src=HostRef("pod", "pod-a", "default"),
        name="web",
        qtype=None,
        at_ns=None,
    )
    assert (second.name, second.qtype, second.at_ns) == (
        "_http._tcp.web.default.svc.cluster.local.",
        "SRV",
        2_000_000_000,
    )
    assert (third.src.name, third.qtype) == ("pod-a", "PTR")


@pytest.mark.parametrize("qtype", ["A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "NS", "SOA", "ANY"])
def test_dns_step_types(qtype):
    [step] = load(NODES + traffic(f"dns: {{from: pod-a, name: example.com, type: {qtype}}}")).steps
    assert step.qtype == qtype


def test_a_dns_step_may_come_from_a_coredns_pod():
    [step] = load(NODES + traffic("dns: {from: coredns-a, name: example.com}")).steps
    assert step.src == HostRef("pod", "coredns-a", "kube-system")


# --- problems ---------------------------------------------------------------------------------


def svc(fields: str) -> str:
    return NODES + services(f"{{name: web, {fields}}}")


def dns(fields: str) -> str:
    return f"cluster: {{dns: {{{fields}}}}}\n" + NODES


def step(fields: str) -> str:
    return NODES + traffic(f"dns: {{{fields}}}")


# (id, body, path, a key part of the message)
# fmt: off
CASES = [
    # services: keys and types
    ("services-not-list", NODES + "services: {name: web}", "services", "expected a list"),
    ("service-not-mapping", NODES + services("web"),
     "services[0]", "expected a mapping, got 'web'"),
    ("unknown-key", svc("ports: [{port: 80}], selecter: {app: web}"),
     "services[0].selecter", "unknown key (did you mean 'selector'?)"),
    ("unknown-port-key", svc("ports: [{port: 80, targetport: 8080}]"),
     "services[0].ports[0].targetport", "did you mean 'targetPort'?"),
    ("name-missing", NODES + services("{ports: [{port: 80}]}"), "services[0].name", "required"),
    ("name-label", NODES + services("{name: Web, ports: [{port: 80}]}"),
     "services[0].name", "'Web' is not a DNS label"),
    ("namespace-label", svc("namespace: Prod, ports: [{port: 80}]"),
     "services[0].namespace", "'Prod' is not a DNS label"),
    ("duplicate", NODES + services("{name: web, ports: [{port: 80}]}",
                                   "{name: web, ports: [{port: 81}]}"),
     "services[1].name", "duplicate service: default/web is already at services[0].name"),
    ("type-later", svc("type: LoadBalancer, ports: [{port: 80}]"),
     "services[0].type", "LoadBalancer is not supported yet; use NodePort"),
    ("type-unknown", svc("type: Nodeport, ports: [{port: 80}]"),
     "services[0].type", "unknown service type 'Nodeport' (did you mean 'NodePort'?)"),
    ("publish-type", svc("ports: [{port: 80}], publishNotReadyAddresses: 'yes'"),
     "services[0].publishNotReadyAddresses", "expected true or false"),
    # ports
    ("ports-missing", svc("selector: {app: web}"),
     "services[0].ports", "required; add ports: [{port: 80}] (only a headless or ExternalName"),
    ("port-missing", svc("ports: [{name: http}]"), "services[0].ports[0].port", "required"),
    ("port-range", svc("ports: [{port: 65536}]"), "services[0].ports[0].port", "out of range"),
    ("port-protocol", svc("ports: [{port: 80, protocol: SCTP}]"),
     "services[0].ports[0].protocol", "'SCTP' is not one of: TCP, UDP"),
    ("port-name-label", svc("ports: [{name: HTTP, port: 80}]"),
     "services[0].ports[0].name", "'HTTP' is not a DNS label"),
    ("target-port-range", svc("ports: [{port: 80, targetPort: 0}]"),
     "services[0].ports[0].targetPort", "0 is out of range: use an integer from 1 to 65535"),
    ("target-port-name", svc("ports: [{port: 80, targetPort: '8080'}]"),
     "services[0].ports[0].targetPort", "'8080' is not a valid port name"),
    ("target-port-type", svc("ports: [{port: 80, targetPort: [1]}]"),
     "services[0].ports[0].targetPort", "expected an integer, got a list"),
    ("port-names-needed", svc("ports: [{name: http, port: 80}, {port: 443}]"),
     "services[0].ports[1].name", "required: a service with 2 ports names every port"),
    ("port-names-unique", svc("ports: [{name: http, port: 80}, {name: http, port: 443}]"),
     "services[0].ports[1].name",
     "duplicate port name 'http': already at services[0].ports[0].name"),
    ("port-unique", svc("ports: [{name: a, port: 80}, {name: b, port: 80, protocol: TCP}]"),
     "services[0].ports[1].port", "duplicate port 80/TCP: already at services[0].ports[0].port"),
    # node ports
    ("node-port-range", svc("type: NodePort, ports: [{port: 80, nodePort: 8080}]"),
     "services[0].ports[0].nodePort", "8080 is out of range: use an integer from 30000 to 32767"),
    ("node-port-on-cluster-ip", svc("ports: [{port: 80, nodePort: 30080}]"),
     "services[0].ports[0].nodePort", "only NodePort services have a nodePort (this one is "
                                      "ClusterIP); remove it or set type: NodePort"),
    ("node-port-taken", NODES + services(
        "{name: a, type: NodePort, ports: [{port: 80, nodePort: 30080}]}",
        "{name: b, type: NodePort, ports: [{port: 80, nodePort: 30080}]}"),
     "services[1].ports[0].nodePort", "nodePort 30080 is already default/a's "
                                      "(services[0].ports[0].nodePort); node ports are unique"),
    ("node-port-twice", svc("type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}, "
                            "{name: b, port: 81, nodePort: 30080}]"),
     "services[0].ports[1].nodePort", "duplicate nodePort 30080/TCP: already at "
                                      "services[0].ports[0].nodePort"),
    # cluster IPs
    ("cluster-ip-type", svc("clusterIP: 7, ports: [{port: 80}]"),
     "services[0].clusterIP", "expected an address in cluster.serviceCIDR like 10.96.0.50, or "
                              "None for a headless service, got 7"),
    ("cluster-ip-none-case", svc("clusterIP: none, ports: [{port: 80}]"),
     "services[0].clusterIP", "'none': write None (capital N"),
    ("cluster-ip-outside", svc("clusterIP: 10.244.0.50, ports: [{port: 80}]"),
     "services[0].clusterIP", "10.244.0.50 is outside cluster.serviceCIDR 10.96.0.0/12"),
    ("cluster-ip-network", svc("clusterIP: 10.96.0.0, ports: [{port: 80}]"),
     "services[0].clusterIP", "10.96.0.0 is the network address of cluster.serviceCIDR"),
    ("cluster-ip-broadcast", svc("clusterIP: 10.111.255.255, ports: [{port: 80}]"),
     "services[0].clusterIP", "the broadcast address of cluster.serviceCIDR 10.96.0.0/12"),
    ("cluster-ip-kubernetes", svc("clusterIP: 10.96.0.1, ports: [{port: 80}]"),
     "services[0].clusterIP", "10.96.0.1 is the kubernetes service's address (the first of "
                              "cluster.serviceCIDR); pick another or leave clusterIP out"),
    ("cluster-ip-dns", "cluster: {dns: {}}\n" + svc("clusterIP: 10.96.0.10, ports: [{port: 80}]"),
     "services[0].clusterIP", "10.96.0.10 is the kube-dns service's address "
                              "(cluster.dns.serviceIP); pick another or leave clusterIP out"),
    ("cluster-ip-duplicate", NODES + services(
        "{name: a, clusterIP: 10.96.0.50, ports: [{port: 80}]}",
        "{name: b, clusterIP: 10.96.0.50, ports: [{port: 80}]}"),
     "services[1].clusterIP", "duplicate cluster IP: 10.96.0.50 is already default/a's "
                              "(services[0].clusterIP)"),
    ("headless-node-port", svc("type: NodePort, clusterIP: None, ports: [{port: 80}]"),
     "services[0].clusterIP", "a NodePort service cannot be headless"),
    ("kubernetes-elsewhere", NODES + services(
        "{name: kubernetes, clusterIP: 10.96.0.7, ports: [{port: 443}]}"),
     "services[0].clusterIP", "default/kubernetes is the API server's service: it has the first "
                              "address of cluster.serviceCIDR, 10.96.0.1, not 10.96.0.7; remove"),
    ("kube-dns-elsewhere", "cluster: {dns: {}}\n" + NODES + services(
        "{name: kube-dns, namespace: kube-system, clusterIP: 10.96.0.11, ports: [{port: 53}]}"),
     "services[0].clusterIP", "kube-system/kube-dns is cluster DNS's service: it has "
                              "cluster.dns.serviceIP 10.96.0.10, not 10.96.0.11; remove clusterIP "
                              "or set cluster.dns.serviceIP"),
    ("kube-dns-headless", "cluster: {dns: {}}\n" + NODES + services(
        "{name: kube-dns, namespace: kube-system, clusterIP: None}"),
     "services[0].clusterIP", "remove clusterIP: None"),
    ("kube-dns-external-name", "cluster: {dns: {}}\n" + NODES + services(
        "{name: kube-dns, namespace: kube-system, type: ExternalName, externalName: x.example}"),
     "services[0].type", "remove type: ExternalName"),
    ("service-cidr-full", "cluster: {serviceCIDR: 10.96.0.0/29}\n" + NODES + services(
        *(f"{{name: s{i}, ports: [{{port: 80}}]}}" for i in range(6))),
     "services[5].clusterIP", "no free address left in cluster.serviceCIDR 10.96.0.0/29"),
    ("service-cidr-small", "cluster: {serviceCIDR: 10.96.0.0/30}\n" + NODES,
     "cluster.serviceCIDR", "10.96.0.0/30 is too small: a service range needs at least 8"),
    # selectors and endpoints
    ("selector-empty", svc("selector: {}, ports: [{port: 80}]"),
     "services[0].selector", "an empty selector selects nothing here: remove selector for a "
                             "service with explicit endpoints"),
    ("selector-type", svc("selector: app, ports: [{port: 80}]"),
     "services[0].selector", "expected a mapping of strings, got 'app'"),
    ("selector-value", svc("selector: {app: 'a b'}, ports: [{port: 80}]"),
     "services[0].selector.app", "not a valid label value"),
    ("selector-value-type", svc("selector: {version: 2}, ports: [{port: 80}]"),
     "services[0].selector.version", "expected a string, got 2 (put it in quotes)"),
    ("endpoints-with-selector", svc("selector: {app: web}, ports: [{port: 80}], "
                                    "endpoints: [{ip: 10.0.0.1}]"),
     "services[0].endpoints", "explicit endpoints are for a service without selector"),
    ("endpoint-ip-missing", svc("ports: [{port: 80}], endpoints: [{port: 80}]"),
     "services[0].endpoints[0].ip", "required"),
    ("endpoint-ip-bad", svc("ports: [{port: 80}], endpoints: [{ip: 10.0.0.300}]"),
     "services[0].endpoints[0].ip", "expected an IPv4 address"),
    ("endpoint-ip-loopback", svc("ports: [{port: 80}], endpoints: [{ip: 127.0.0.1}]"),
     "services[0].endpoints[0].ip", "127.0.0.1 is a loopback address: an endpoint may not be one"),
    ("endpoint-ip-link-local", svc("ports: [{port: 80}], endpoints: [{ip: 169.254.1.1}]"),
     "services[0].endpoints[0].ip", "is a link-local address"),
    ("endpoint-ip-multicast", svc("ports: [{port: 80}], endpoints: [{ip: 224.0.0.1}]"),
     "services[0].endpoints[0].ip", "is a multicast address"),
    ("endpoint-ip-zero", svc("ports: [{port: 80}], endpoints: [{ip: 0.0.0.0}]"),
     "services[0].endpoints[0].ip", "is the unspecified address"),
    ("endpoint-duplicate", svc("ports: [{port: 80}], endpoints: [{ip: 10.0.0.1}, {ip: 10.0.0.1}]"),
     "services[0].endpoints[1].ip", "duplicate endpoint 10.0.0.1: already at "
                                    "services[0].endpoints[0].ip"),
    ("endpoint-port", svc("ports: [{port: 80}], endpoints: [{ip: 10.0.0.1, port: 0}]"),
     "services[0].endpoints[0].port", "out of range"),
    ("endpoint-named-port",
     svc("ports: [{port: 80, targetPort: http}], endpoints: [{ip: 10.0.0.1}]"),
     "services[0].endpoints[0].port", "required: targetPort 'http' is a container port's name"),
    ("endpoint-ready", svc("ports: [{port: 80}], endpoints: [{ip: 10.0.0.1, ready: 1}]"),
     "services[0].endpoints[0].ready", "expected true or false"),
    ("endpoint-hostname", svc("ports: [{port: 80}], endpoints: [{ip: 10.0.0.1, hostname: DB}]"),
     "services[0].endpoints[0].hostname", "not a DNS label"),
    ("endpoint-unknown-key", svc("ports: [{port: 80}], endpoints: [{ip: 10.0.0.1, prot: 1}]"),
     "services[0].endpoints[0].prot", "did you mean 'port'?"),
    # ExternalName
    ("external-name-missing", svc("type: ExternalName"),
     "services[0].externalName", "required; give the DNS name it aliases"),
    ("external-name-bad", svc("type: ExternalName, externalName: Www.Example.com"),
     "services[0].externalName", "'Www.Example.com' is not a DNS name"),
    ("external-name-long", svc(f"type: ExternalName, externalName: {'a.' * 127}ab"),
     "services[0].externalName", "is not a DNS name"),
    ("external-name-elsewhere", svc("externalName: x.example, ports: [{port: 80}]"),
     "services[0].externalName", "only an ExternalName service has one (this one is ClusterIP)"),
    ("external-name-cluster-ip", svc("type: ExternalName, externalName: x.example, "
                                     "clusterIP: 10.96.0.9"),
     "services[0].clusterIP", "an ExternalName service has no cluster IP"),
    ("external-name-selector", svc("type: ExternalName, externalName: x.example, "
                                   "selector: {a: b}"),
     "services[0].selector", "an ExternalName service has no endpoints; remove selector"),
    ("external-name-endpoints", svc("type: ExternalName, externalName: x.example, "
                                    "endpoints: [{ip: 10.0.0.1}]"),
     "services[0].endpoints", "an ExternalName service has no endpoints; remove endpoints"),
    # cluster.dns
    ("dns-not-mapping", "cluster: {dns: 5}\n" + NODES, "cluster.dns", "expected a mapping, got 5"),
    ("dns-unknown-key", dns("replica: 2"), "cluster.dns.replica", "did you mean 'replicas'?"),
    ("dns-enabled", dns("enabled: 'yes'"), "cluster.dns.enabled", "expected true or false"),
    ("dns-node", dns("node: node3"), "cluster.dns.node", "no node named 'node3' (did you mean"),
    ("dns-node-label", dns("node: Node1"), "cluster.dns.node", "not a DNS label"),
    ("dns-service-ip", dns("serviceIP: 10.97.0.300"),
     "cluster.dns.serviceIP", "expected an IPv4 address"),
    ("dns-service-ip-outside", dns("serviceIP: 10.244.0.10"),
     "cluster.dns.serviceIP", "10.244.0.10 is outside cluster.serviceCIDR 10.96.0.0/12; pick "
                              "another, like 10.96.0.10"),
    ("dns-service-ip-kubernetes", dns("serviceIP: 10.96.0.1"),
     "cluster.dns.serviceIP", "10.96.0.1 is the kubernetes service's address"),
    ("dns-service-ip-network", dns("serviceIP: 10.96.0.0"),
     "cluster.dns.serviceIP", "the network address of cluster.serviceCIDR"),
    ("dns-service-ip-default-outside", "cluster: {serviceCIDR: 10.100.0.0/16, dns: {}}\n" + NODES,
     "cluster.dns.serviceIP", "required: the default 10.96.0.10 is outside cluster.serviceCIDR "
                              "10.100.0.0/16"),
    ("dns-replicas", dns("replicas: 9"),
     "cluster.dns.replicas", "9 is out of range: use an integer from 1 to 8"),
    ("dns-ttl", dns("ttl: 3601"), "cluster.dns.ttl", "out of range: use an integer from 0 to 3600"),
    ("dns-pods", dns("pods: verify"),
     "cluster.dns.pods", "'verify' is not one of: insecure, verified, disabled (did you mean "
                         "'verified'?)"),
    ("dns-pod-ip-outside", dns("podIP: 10.244.2.9"),
     "cluster.dns.podIP", "10.244.2.9 is outside node1's podCIDR 10.244.1.0/24"),
    ("dns-pod-ip-gateway", dns("podIP: 10.244.1.1"),
     "cluster.dns.podIP", "the cni0 gateway address"),
    ("dns-pod-ip-taken", dns("podIP: 10.244.1.2").replace("{name: pod-a}",
                                                          "{name: pod-a, ip: 10.244.1.2}"),
     "cluster.dns.podIP", "duplicate address: 10.244.1.2 is already used by pod default/pod-a "
                          "(nodes[0].pods[0].ip)"),
    ("dns-pod-ip-type", dns("podIP: [1]"), "cluster.dns.podIP", "expected an IPv4 address"),
    ("dns-pod-ips-both", dns("podIP: 10.244.1.50, podIPs: [10.244.1.51]"),
     "cluster.dns.podIP", "give podIP (one replica) or podIPs (one per replica), not both"),
    ("dns-pod-ip-replicas", dns("replicas: 2, podIP: 10.244.1.50"),
     "cluster.dns.podIP", "podIP is for one replica: give podIPs, a list of 2 addresses"),
    ("dns-pod-ips-count", dns("replicas: 3, podIPs: [10.244.1.50, 10.244.1.51]"),
     "cluster.dns.podIPs", "2 addresses for 3 replicas: give one per replica"),
    ("dns-pod-ips-count-one", dns("replicas: 2, podIPs: [10.244.1.50]"),
     "cluster.dns.podIPs", "1 address for 2 replicas"),
    ("dns-pod-ips-too-many", dns(f"podIPs: [{', '.join(f'10.244.1.{i}' for i in range(50, 59))}]"),
     "cluster.dns.podIPs", "give 1 to 8 addresses, one per replica"),
    ("dns-pod-ips-empty", dns("podIPs: []"), "cluster.dns.podIPs", "give 1 to 8 addresses"),
    ("dns-pod-ips-entry", dns("podIPs: [10.244.1.50, x]"),
     "cluster.dns.podIPs[1]", "expected an IPv4 address like 10.244.1.53, got 'x'"),
    ("dns-pod-ips-duplicate", dns("podIPs: [10.244.1.50, 10.244.1.50]"),
     "cluster.dns.podIPs[1]", "duplicate address: 10.244.1.50 is already used by pod "
                              "kube-system/coredns-a (cluster.dns.podIPs[0])"),
    ("dns-pod-addresses", "cluster: {dns: {}}\nnodes: [{name: n1, podCIDR: 10.244.1.0/30, "
                          "pods: [{name: a}]}]",
     "cluster.dns.podIP", "no free address left in n1's podCIDR 10.244.1.0/30"),
    ("dns-pod-name-taken", dns("").replace("{name: pod-b}",
                                           "{name: coredns-a, namespace: kube-system}"),
     "nodes[0].pods[1].name", "kube-system/coredns-a is a CoreDNS pod (cluster DNS is on): "
                              "rename this pod"),
    # cluster.dns.upstream
    ("upstream-not-mapping", dns("upstream: 192.168.50.53"),
     "cluster.dns.upstream", "expected a mapping, got '192.168.50.53'"),
    ("upstream-ip-missing", dns("upstream: {records: []}"),
     "cluster.dns.upstream.ip", "required; give the upstream DNS server's address"),
    ("upstream-ip-outside", dns("upstream: {ip: 10.0.0.53}"),
     "cluster.dns.upstream.ip", "10.0.0.53 is outside cluster.underlay.cidr 192.168.50.0/24"),
    ("upstream-ip-node", "cluster: {dns: {upstream: {ip: 192.168.50.1}}}\n"
                         "nodes: [{name: node1, ip: 192.168.50.1}]",
     "cluster.dns.upstream.ip", "192.168.50.1 is node node1's address (nodes[0].ip); pick another"),
    ("upstream-ip-external", dns("upstream: {ip: 192.168.50.9}")
                             + "externals: [{name: resolver, ip: 192.168.50.9}]",
     "cluster.dns.upstream.ip", "192.168.50.9 is external resolver's address (externals[0].ip); "
                                "pick another or drop the external"),
    ("upstream-name-taken", dns("upstream: {ip: 192.168.50.53}")
                            + "externals: [{name: upstream-dns}]",
     "externals[0].name", "'upstream-dns' is the upstream DNS server's name "
                          "(cluster.dns.upstream); rename the external"),
    ("upstream-records-type", dns("upstream: {ip: 192.168.50.53, records: x}"),
     "cluster.dns.upstream.records", "expected a list"),
    ("record-not-string", dns("upstream: {ip: 192.168.50.53, records: [5]}"),
     "cluster.dns.upstream.records[0]", "expected a string (put it in quotes)"),
    ("record-shape", dns("upstream: {ip: 192.168.50.53, records: ['example.com A 1.2.3.4']}"),
     "cluster.dns.upstream.records[0]", "'example.com A 1.2.3.4' is not a zone-file record: "
                                        "write '<name> <ttl> IN <type> <data>'"),
    ("record-name", dns("upstream: {ip: 192.168.50.53, records: ['a..b 300 IN A 1.2.3.4']}"),
     "cluster.dns.upstream.records[0]", "the record's name: 'a..b' is not a DNS name"),
    ("record-ttl", dns("upstream: {ip: 192.168.50.53, records: ['a 5m IN A 1.2.3.4']}"),
     "cluster.dns.upstream.records[0]", "the record's TTL '5m' is not a number of seconds"),
    ("record-class", dns("upstream: {ip: 192.168.50.53, records: ['a 300 CH A 1.2.3.4']}"),
     "cluster.dns.upstream.records[0]", "the record's class 'CH' is not IN"),
    ("record-type", dns("upstream: {ip: 192.168.50.53, records: ['a 300 IN AAA ::1']}"),
     "cluster.dns.upstream.records[0]", "unknown record type 'AAA' (did you mean 'AAAA'?)"),
    ("record-a", dns("upstream: {ip: 192.168.50.53, records: ['a 300 IN A 1.2.3']}"),
     "cluster.dns.upstream.records[0]", "an A record's data must be an IPv4 address, got '1.2.3'"),
    ("record-aaaa", dns("upstream: {ip: 192.168.50.53, records: ['a 300 IN AAAA 1.2.3.4']}"),
     "cluster.dns.upstream.records[0]", "an AAAA record's data must be an IPv6 address"),
    # dns steps
    ("dns-step-off", dns("enabled: false") + traffic("dns: {from: pod-a, name: web}"),
     "traffic[0].dns", "cluster DNS is off (cluster.dns.enabled: false): remove `enabled: false`, "
                       "or the dns step"),
    ("dns-step-node", step("from: node1, name: web"),
     "traffic[0].dns.from", "dns steps run a pod's stub resolver: name a pod ('node1' is a node)"),
    ("dns-step-external", step("from: laptop, name: web") + "externals: [{name: laptop}]",
     "traffic[0].dns.from", "name a pod ('laptop' is an external host)"),
    ("dns-step-from-missing", step("name: web"), "traffic[0].dns.from", "required"),
    ("dns-step-from-unknown", step("from: pod-z, name: web"),
     "traffic[0].dns.from", "no pod or node named 'pod-z' (did you mean 'pod-a'?)"),
    ("dns-step-name-missing", step("from: pod-a"),
     "traffic[0].dns.name", "required; name what to look up"),
    ("dns-step-name-type", step("from: pod-a, name: 5"),
     "traffic[0].dns.name", "expected a string, got 5 (put it in quotes)"),
    ("dns-step-name-bad", step("from: pod-a, name: 'web default'"),
     "traffic[0].dns.name", "'web default' is not a DNS name"),
    ("dns-step-name-empty-label", step("from: pod-a, name: web..default"),
     "traffic[0].dns.name", "is not a DNS name"),
    ("dns-step-name-label-long", step(f"from: pod-a, name: {'a' * 64}.com"),
     "traffic[0].dns.name", "is not a DNS name"),
    ("dns-step-name-long", step(f"from: pod-a, name: {'abc.' * 63}ab"),
     "traffic[0].dns.name", "at most 253 characters"),
    ("dns-step-type", step("from: pod-a, name: web, type: MX"),
     "traffic[0].dns.type", "'MX' is not one of: A, AAAA, SRV, PTR, TXT, CNAME, NS, SOA, ANY"),
    ("dns-step-type-hint", step("from: pod-a, name: web, type: SVR"),
     "traffic[0].dns.type", "(did you mean 'SRV'?)"),
    ("dns-step-at", step("from: pod-a, name: web, at: soon"), "traffic[0].dns.at",
     "expected a duration"),
    ("dns-step-unknown-key", step("from: pod-a, name: web, qtype: A"),
     "traffic[0].dns.qtype", "unknown key"),
    # services named in traffic
    ("to-headless", NODES + services("{name: db, clusterIP: None}")
                    + traffic("udp: {from: pod-a, to: db, dport: 5432}"),
     "traffic[0].udp.to", "'db' is headless service default/db: a headless service has no "
                          "cluster IP; name one of its pods, or look it up with a dns step"),
    ("to-external-name",
     NODES + services("{name: ext, type: ExternalName, externalName: x.example}")
                         + traffic("tcp: {from: pod-a, to: 'ext.default.svc:80'}"),
     "traffic[0].tcp.to", "'ext.default.svc' is ExternalName service default/ext (an alias of "
                          "x.example): it has no cluster IP; look it up with a dns step"),
    ("to-service-other-namespace",
     NODES + services("{name: api, namespace: prod, ports: [{port: 1}]}")
                                   + traffic("udp: {from: pod-a, to: api, dport: 1}"),
     "traffic[0].udp.to", "no pod, node or service named 'api' (a service in another namespace: "
                          "write api.prod)"),
    ("to-service-typo", NODES + services("{name: web, ports: [{port: 1}]}")
                        + traffic("udp: {from: pod-a, to: wbe, dport: 1}"),
     "traffic[0].udp.to", "no pod, node or service named 'wbe' (did you mean 'web'?)"),
    ("to-service-with-externals", NODES + "externals: [{name: laptop}]\n"
                                  + traffic("udp: {from: pod-a, to: nope, dport: 1}"),
     "traffic[0].udp.to", "no pod, node, external host or service named 'nope'"),
    ("to-service-wrong-domain", NODES + services("{name: web, ports: [{port: 1}]}")
                                + traffic("udp: {from: pod-a, to: web.default.svc.example, "
                                          "dport: 1}"),
     "traffic[0].udp.to", "no pod, node or service named 'web.default.svc.example'"),
    ("to-service-port", NODES + services("{name: web, ports: [{port: 1}]}")
                        + traffic("udp: {from: pod-a, to: 'web:http'}"),
     "traffic[0].udp.to", "'http' after the colon is not a port"),
    ("to-service-no-port", NODES + services("{name: web, ports: [{port: 1}]}")
                           + traffic("udp: {from: pod-a, to: web}"),
     "traffic[0].udp.dport", "required"),
    ("from-service", NODES + services("{name: web, ports: [{port: 1}]}")
                     + traffic("udp: {from: web, to: pod-a, dport: 1}"),
     "traffic[0].udp.from", "'web' is a service, which sends nothing: name a pod, node or "
                            "external host"),
    ("payload-to-service", NODES + services("{name: web, ports: [{port: 1}]}")
                           + traffic(f"udp: {{from: node1, to: 'web:1', payload: {'x' * 1423}}}"),
     "traffic[0].udp.payload", "1423 bytes do not fit the pod MTU 1450"),
]
# fmt: on


@pytest.mark.parametrize(
    ("body", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_names_the_path_and_the_fix(body, path, message):
    lines = problems(body)
    prefix = f"t.yaml: {path}: "
    assert any(line.startswith(prefix) and message in line for line in lines), lines


def test_every_service_problem_is_reported_at_once():
    lines = problems(
        "cluster: {dns: {ttl: -1}}\n"
        + NODES
        + services(
            "{name: a, type: NodePort, ports: [{port: 80, nodePort: 1}]}",
            "{name: b, clusterIP: 10.244.0.1, ports: [{port: 80}]}",
            "{name: c, type: ExternalName}",
        )
        + traffic("udp: {from: pod-a, to: c, dport: 1}", "dns: {from: node1, name: x}")
    )
    paths = [line.split(": ")[1] for line in lines]
    assert paths == [
        "cluster.dns.ttl",
        "services[0].ports[0].nodePort",
        "services[2].externalName",
        "services[1].clusterIP",
        "traffic[0].udp.to",
        "traffic[1].dns.from",
    ]


def test_loading_is_stable():
    body = (
        WEB
        + "cluster: {dns: {replicas: 2}}\n"
        + services("{name: web, type: NodePort, selector: {app: web}, ports: [{port: 80}]}")
    )
    assert load(body) == load(body)
    assert load(body, seed=3).cluster.dns.pod_ips == load(body).cluster.dns.pod_ips


# --- robustness: any value anywhere gives a TopologyError, never another exception -----------

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "None",
            "web",
            "web.default",
            "web.default.svc.cluster.local",
            "10.96.0.10",
            "10.96.0.1",
            "10.244.1.53",
            "192.168.50.53",
            "http",
            "TCP",
            "UDP",
            "NodePort",
            "ExternalName",
            "example.com. 300 IN A 198.51.100.10",
            30080,
            {},
            {"app": "web"},
            [{"port": 80}],
            [{"ip": "10.0.0.1"}],
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# fmt: off
SPOTS = [
    ("cluster", "dns"), ("cluster", "dns", "enabled"), ("cluster", "dns", "serviceIP"),
    ("cluster", "dns", "node"), ("cluster", "dns", "podIP"), ("cluster", "dns", "podIPs"),
    ("cluster", "dns", "replicas"), ("cluster", "dns", "ttl"), ("cluster", "dns", "pods"),
    ("cluster", "dns", "upstream"), ("cluster", "dns", "upstream", "ip"),
    ("cluster", "dns", "upstream", "records"), ("cluster", "serviceCIDR"),
    ("services",), ("services", 0), ("services", 1), ("services", 0, "name"),
    ("services", 0, "namespace"), ("services", 0, "type"), ("services", 0, "clusterIP"),
    ("services", 0, "selector"), ("services", 0, "ports"), ("services", 0, "ports", 0),
    ("services", 0, "ports", 0, "targetPort"), ("services", 0, "ports", 0, "nodePort"),
    ("services", 0, "ports", 0, "protocol"), ("services", 0, "ports", 0, "name"),
    ("services", 1, "endpoints"), ("services", 1, "endpoints", 0),
    ("services", 1, "endpoints", 0, "ip"), ("services", 1, "endpoints", 0, "port"),
    ("services", 0, "externalName"), ("services", 0, "publishNotReadyAddresses"),
    ("traffic", 0), ("traffic", 0, "udp", "to"), ("traffic", 1, "dns"),
    ("traffic", 1, "dns", "name"), ("traffic", 1, "dns", "type"), ("traffic", 1, "dns", "from"),
]
# fmt: on


def valid_document() -> dict:
    return yaml.safe_load(
        HEADER
        + "cluster: {dns: {upstream: {ip: 192.168.50.53, records: "
        + "['example.com. 300 IN A 198.51.100.10']}}}\n"
        + NODES.replace("{name: pod-a}", "{name: pod-a, labels: {app: web}}")
        + services(
            "{name: web, type: NodePort, selector: {app: web}, ports: [{port: 80}]}",
            "{name: db, clusterIP: None, ports: [{port: 5432}], endpoints: [{ip: 10.0.0.1}]}",
        )
        + traffic("udp: {from: pod-b, to: 'web:80'}", "dns: {from: pod-b, name: web}")
    )


def test_the_fuzz_base_document_loads():
    topology = load_topology_text(yaml.safe_dump(valid_document()), "fuzz.yaml")
    assert [s.key for s in topology.services] == [
        "default/kubernetes",
        "kube-system/kube-dns",
        "default/web",
        "default/db",
    ]
    assert isinstance(topology.steps[1], DnsStep)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(SPOTS), VALUES), min_size=1, max_size=3))
def test_any_value_anywhere_is_a_topology_error_or_loads(changes):
    loads_or_reports(valid_document(), changes)


def test_a_service_whose_cluster_ip_is_rejected_is_not_called_headless():
    lines = problems(
        NODES
        + services("{name: web, clusterIP: 10.244.0.9, ports: [{port: 80}]}")
        + traffic("udp: {from: pod-a, to: web, dport: 80}")
    )
    assert [line.split(": ")[1] for line in lines] == ["services[0].clusterIP"]
