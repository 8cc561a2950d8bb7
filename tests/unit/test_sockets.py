"""kpkt/net/sockets.py: applications bind, send, receive and close sockets on a stack; a closed
socket's port answers with ICMP port unreachable (UDP) or a reset (TCP), a closed ping socket's
replies are ignored, and a server keeps its port's datagrams."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from kpkt import runner
from kpkt.net.sockets import PingSocket, TcpListener, UdpSocket
from kpkt.topology.load import load_topology_text
from kpkt.wire import icmp

TOPOLOGY = """\
apiVersion: kpkt/v1
kind: Topology
metadata: {name: sockets}
nodes:
  - name: node1
    pods: [{name: client}, {name: server}]
  - name: node2
    pods: [{name: far}]
traffic: []
"""
SERVER_IP = IPv4Address("10.244.1.3").packed
FAR_IP = IPv4Address("10.244.2.2").packed


class Net:
    """The topology's network, built and not run, with its captures in `folder`."""

    def __init__(self, folder) -> None:
        self.network = runner.run(load_topology_text(TOPOLOGY, "sockets.yaml"), steps=0).network
        self.network.journal.open(folder)
        self.flow = self.network.journal.new_flow(-1)
        self.client = self.network.stacks["client.default"]
        self.server = self.network.stacks["server.default"]
        self.far = self.network.stacks["far.default"]

    def tag(self):
        return self.network.journal.packet(self.flow)

    def settle(self) -> None:
        """Run until nothing is left to do (kernel timers included)."""
        while self.network.sched.step():
            pass


@pytest.fixture
def net(tmp_path) -> Net:
    return Net(tmp_path)


def test_a_bound_socket_receives_datagrams_and_its_sender_the_answers(net: Net) -> None:
    got, answers = [], []

    def echo(src, sport, dst, payload, tag) -> None:
        got.append((src, sport, dst, payload))
        server.sendto(src, sport, payload.upper(), net.tag(), src=dst)

    server = UdpSocket(net.server, 7000, echo)
    client = UdpSocket(net.client, 40000, lambda *datagram: answers.append(datagram[:4]))
    client.sendto(SERVER_IP, 7000, b"one", net.tag())
    client.sendto(FAR_IP, 7000, b"lost", net.tag())  # nothing listens there: no error handler
    client.sendto(SERVER_IP, 7000, b"two", net.tag())
    net.settle()
    client_ip = IPv4Address("10.244.1.2").packed
    assert got == [(client_ip, 40000, SERVER_IP, b"one"), (client_ip, 40000, SERVER_IP, b"two")]
    assert answers == [(SERVER_IP, 7000, client_ip, b"ONE"), (SERVER_IP, 7000, client_ip, b"TWO")]


def test_after_close_a_datagram_to_the_port_gets_port_unreachable(net: Net) -> None:
    got, errors = [], []
    server = UdpSocket(net.server, 7000, lambda *datagram: got.append(datagram[3]))
    client = UdpSocket(
        net.client, 40000, lambda *_: None, lambda packet, tag: errors.append(packet)
    )
    client.sendto(SERVER_IP, 7000, b"open", net.tag())
    net.settle()
    server.close()
    client.sendto(SERVER_IP, 7000, b"closed", net.tag())
    net.settle()
    assert got == [b"open"]
    assert len(errors) == 1
    assert (errors[0][20], errors[0][21]) == (icmp.DEST_UNREACH, icmp.PORT_UNREACH)
    assert 7000 not in net.server.udp_sockets


def test_a_closed_sender_no_longer_hears_its_errors(net: Net) -> None:
    errors = []
    client = UdpSocket(net.client, 40000, lambda *_: None, lambda packet, tag: errors.append(1))
    client.close()
    client.sendto(SERVER_IP, 7000, b"x", net.tag())  # a socket closed is not reopened by use
    net.settle()
    assert errors == []
    assert 40000 not in net.client.udp_errors


def test_a_server_keeps_its_port_and_a_step_socket_there_gets_only_its_errors(net: Net) -> None:
    to_server, to_step, errors = [], [], []
    UdpSocket(net.server, 53, lambda *d: to_server.append(d[3]), server=True)
    step = UdpSocket(net.server, 53, lambda *d: to_step.append(d[3]), lambda p, t: errors.append(p))
    UdpSocket(net.client, 40000, lambda *_: None).sendto(SERVER_IP, 53, b"query", net.tag())
    step.sendto(FAR_IP, 9, b"nobody", net.tag())
    net.settle()
    assert to_server == [b"query"] and to_step == []
    assert len(errors) == 1
    step.close()  # the step's socket closing leaves the server's port alone
    assert net.server.udp_sockets[53].server


def test_a_ping_socket_gets_its_replies_until_it_is_closed(net: Net) -> None:
    replies = []
    ping = PingSocket(net.client, 0x1234, lambda packet, tag: replies.append(packet[20]))
    request = icmp.echo(icmp.ECHO_REQUEST, 0x1234, 1, b"payload")
    ping.send(FAR_IP, request, net.tag())
    net.settle()
    assert replies == [icmp.ECHO_REPLY]
    ping.close()
    ping.send(FAR_IP, icmp.echo(icmp.ECHO_REQUEST, 0x1234, 2, b"payload"), net.tag())
    net.settle()
    assert replies == [icmp.ECHO_REPLY]
    assert 0x1234 not in net.client.ping_sockets


def test_a_closed_listener_answers_a_connect_with_a_reset(net: Net) -> None:
    accepted, ends = [], []

    def accept(local, lport, remote, rport, tag):
        accepted.append(rport)
        return net.server.tcp.socket(
            (local, lport), (remote, rport), net.server.route_for(remote), tag
        )

    listener = TcpListener(net.server, 8080, accept)
    net.client.tcp.connect(
        SERVER_IP, 41000, 8080, net.tag(), on_done=lambda conn, how: ends.append(how)
    )
    net.settle()
    assert accepted == [41000]
    listener.close()
    net.client.tcp.connect(
        SERVER_IP, 41001, 8080, net.tag(), on_done=lambda conn, how: ends.append(how)
    )
    net.settle()
    assert accepted == [41000]
    assert ends == ["connection reset"]  # the first connection is still open
    assert 8080 not in net.server.tcp.listeners
