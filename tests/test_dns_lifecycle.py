"""CoreDNS follows the pods that come and go: its kubernetes plugin watches Services,
EndpointSlices, Pods and Namespaces, so when a `delete`, `create` or `label` step changes the
endpoints (as kube-proxy syncs), every CoreDNS pod answers from the new state; its cache plugin
still answers from what it holds until the TTL (kubeadm's `cache 30`)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dns import DNS
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology_text

HEAD = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: dnslife}
cluster: {dns: {node: node1, pods: verified}}
nodes:
  - {name: node1, pods: [{name: client}]}
  - {name: node2, pods: [{name: db-1, labels: {app: db}}, {name: db-2, labels: {app: db}}]}
services:
  - {name: db, clusterIP: None, selector: {app: db}}
traffic:
"""
ASK = "  - dns: {from: client, name: db.default.svc.cluster.local., type: A, at: AT}\n"


def run(tmp_path: Path, traffic: str) -> runner.Run:
    topology = load_topology_text(HEAD + traffic, "dnslife.yaml")
    return runner.run(topology, folder=tmp_path / "out", report=False)


def answers(result: runner.Run) -> list[str]:
    return [log.result for log in result.network.journal.steps]


def replies(result: runner.Run, capture: str) -> list[list[str]]:
    """The A records of each DNS reply the capture holds, as sent on the wire."""
    got = []
    for _, frame in read_pcap(result.folder / f"{capture}.pcap"):
        packet = Ether(frame)
        if packet.haslayer(DNS) and packet[UDP].sport == 53 and packet[DNS].qr:
            dns = packet[DNS]
            got.append(sorted(dns.an[i].rdata for i in range(dns.ancount)))
    return got


def test_a_headless_service_answers_with_the_pods_that_run_now(tmp_path: Path) -> None:
    """Before: both backends. After db-1 is deleted: db-2
    alone. After db-3 is created: db-2 and db-3, db-3 with the address IPAM gave it."""
    result = run(
        tmp_path,
        ASK.replace("AT", "0s")
        + "  - delete: {pod: db-1, at: 1s}\n"
        + ASK.replace("AT", "40s")
        + "  - create: {pod: {name: db-3, labels: {app: db}}, node: node1, at: 41s}\n"
        + ASK.replace("AT", "80s"),
    )
    name = "db.default.svc.cluster.local. A"
    first, _, second, created, third = answers(result)
    assert first == f"{name} -> 10.244.2.2, 10.244.2.3 (1 query)"
    assert second == f"{name} -> 10.244.2.3 (1 query)"
    assert created == "db-3.default: created on node1 with 10.244.1.4"
    assert third == f"{name} -> 10.244.1.4, 10.244.2.3 (1 query)"  # node1 first
    assert replies(result, "client.default__eth0") == [
        ["10.244.2.2", "10.244.2.3"],
        ["10.244.2.3"],
        ["10.244.1.4", "10.244.2.3"],
    ]


def test_the_answer_follows_at_once_and_so_do_ptr_records(tmp_path: Path) -> None:
    """kubeadm's Corefile disables the cache for the cluster zone (`disable success|denial
    cluster.local`): 1 s after the deletion the answer has changed. The reverse lookup of a
    created endpoint names it in the headless Service; a deleted one's no longer matches (the
    plugin falls through to `forward`, which has no upstream here: SERVFAIL, which glibc
    reports as TRY_AGAIN after asking twice)."""
    ptr = "  - dns: {from: client, name: IP.in-addr.arpa., type: PTR}\n"
    result = run(
        tmp_path,
        ASK.replace("AT", "0s")
        + "  - delete: {pod: db-1, at: 1s}\n"
        + ASK.replace("AT", "2s")
        + "  - create: {pod: {name: db-3, labels: {app: db}}, node: node1}\n"
        + ptr.replace("IP", "4.1.244.10")
        + ptr.replace("IP", "2.2.244.10"),
    )
    first, _, second, _, created, deleted = answers(result)
    assert "10.244.2.2" in first and "10.244.2.2" not in second, second
    assert created == (
        "4.1.244.10.in-addr.arpa. PTR -> 10-244-1-4.db.default.svc.cluster.local. (1 query)"
    )
    assert deleted == "2.2.244.10.in-addr.arpa. PTR -> TRY_AGAIN (2 queries)"


def test_a_created_pod_gets_its_verified_pod_record(tmp_path: Path) -> None:
    """`pods verified` answers a-b-c-d.<ns>.pod.<domain> only for a pod that exists with that
    address: a created pod's record appears once it runs, a deleted pod's goes (NXDOMAIN,
    glibc's HOST_NOT_FOUND)."""
    ask = "  - dns: {from: client, name: NAME.default.pod.cluster.local., type: A, at: AT}\n"
    created = ask.replace("NAME", "10-244-1-4")
    deleted = ask.replace("NAME", "10-244-2-2")
    result = run(
        tmp_path,
        created.replace("AT", "0s")
        + deleted.replace("AT", "1s")
        + "  - create: {pod: {name: db-3, labels: {app: db}}, node: node1, at: 2s}\n"
        + "  - delete: {pod: db-1, at: 3s}\n"
        + created.replace("AT", "4s")
        + deleted.replace("AT", "5s"),
    )
    before_created, before_deleted, _, _, after_created, after_deleted = answers(result)
    assert before_created.endswith("-> HOST_NOT_FOUND (1 query)"), before_created
    assert before_deleted.endswith("-> 10.244.2.2 (1 query)"), before_deleted
    assert after_created.endswith("-> 10.244.1.4 (1 query)"), after_created
    assert after_deleted.endswith("-> HOST_NOT_FOUND (1 query)"), after_deleted


def test_the_soa_serial_changes_with_what_coredns_holds(tmp_path: Path) -> None:
    """The serial stands for the time of the plugin's last informer change: the same until a
    step changes the cluster, another after."""
    soa = "  - dns: {from: client, name: cluster.local., type: SOA}\n"
    result = run(tmp_path, soa + soa + "  - delete: {pod: db-1}\n" + soa)
    first, again, _, after = answers(result)
    assert first == again and "SOA -> ns.dns.cluster.local." in first, first
    assert after != first and after.split()[:5] == first.split()[:5], after


def test_a_relabelled_pod_leaves_the_headless_service(tmp_path: Path) -> None:
    """A `label` step that takes db-1 out of the selector takes it out of the answer."""
    result = run(
        tmp_path,
        ASK.replace("AT", "0s")
        + "  - label: {pod: db-1, remove: [app]}\n"
        + ASK.replace("AT", "1s"),
    )
    first, _, after = answers(result)
    assert first.endswith("-> 10.244.2.2, 10.244.2.3 (1 query)"), first
    assert after.endswith("-> 10.244.2.3 (1 query)"), after
