"""A server owns its port: a `udp` step's datagram to a port where kpkt runs a server (CoreDNS
on 53, behind the kube-dns service) reaches that server and is answered, as on a real node; the
step's own receiver does not take the port over."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from kpkt import runner
from kpkt.capture.pcap import read_pcap
from kpkt.topology.load import load_topology_text

QUERY = DNS(id=0x4B50, rd=1, qd=DNSQR(qname="kubernetes.default.svc.cluster.local", qtype="A"))
TOPOLOGY = f"""\
apiVersion: kpkt/v1
kind: Topology
metadata: {{name: server-ports}}
cluster:
  dns: {{node: node1}}
nodes:
  - {{name: node1, pods: [{{name: client}}]}}
  - {{name: node2, pods: [{{name: web}}]}}
traffic:
  - udp: {{from: client, to: "kube-dns.kube-system:53", sport: 40053,
          payloadHex: "{bytes(QUERY).hex()}"}}
  - udp: {{from: client, to: "web:53", payload: "not a server's port"}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ports") / "out"
    return runner.run(load_topology_text(TOPOLOGY, "server-ports.yaml"), folder=folder)


def test_a_datagram_to_coredns_is_answered(run):
    frames = [Ether(f) for _, f in read_pcap(run.folder / "client.default__eth0.pcap")]
    answers = [p for p in frames if p.haslayer(DNS) and p[DNS].qr == 1]
    assert len(answers) == 1
    answer = answers[0]
    assert (answer[IP].src, answer[UDP].sport, answer[UDP].dport) == ("10.96.0.10", 53, 40053)
    assert answer[DNS].id == QUERY.id and answer[DNS].rcode == 0
    assert answer[DNS].an[0].rdata == "10.96.0.1"
    step = run.network.journal.steps[0]
    assert step.result == "sent 1, received 1 (answers: 1 from 10.96.0.10:53)"
    assert step.outcome == "delivered" and step.drops == []


def test_a_port_without_a_server_is_the_steps_receiver(run):
    step = run.network.journal.steps[1]
    assert step.result == "sent 1, received 1" and step.outcome == "delivered"
