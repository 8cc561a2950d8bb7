"""The cluster's run, compared with golden/cluster/ and checked with kpkt's assertion helpers.

`pytest --kpkt-update-golden` rewrites golden/cluster/ when the change is intended."""

from scapy.layers.inet import UDP


def test_cluster(kpkt_golden):
    run = kpkt_golden("cluster.yaml")  # compared with golden/cluster/
    # the datagram crossed the underlay in VXLAN, on flannel's port
    run.assert_saw("node2/eth0", lambda p: UDP in p and p[UDP].dport == 8472)
    # ... and reached the web pod with the TTL node1 and node2 each took one from
    run.assert_saw("web/eth0", "UDP.dport == 8080 and IP.ttl == 62", count=1)
    run.assert_outcome(0, "delivered")
    run.assert_outcome(1, "delivered")
    run.assert_outcome(2, "refused", "unreachable")
    run.assert_drops("port-unreachable")
