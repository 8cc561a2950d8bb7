"""A pod's stub resolver, glibc or musl, as a sans-IO state machine: the one to use for a libc,
and the one a pod's files (resolv.conf, /etc/hosts) set up.

The resolver builds the DNS queries byte for byte as the libc does, says on which socket each one
goes out, and decides from the replies (or from timeouts and socket errors) what it sends next and
what the lookup returns. It never touches a socket or a clock: the emulation sends the queries,
delivers the replies, and tells it the virtual time (stub.py shows how it is driven).

- stub.py: what both share (the sans-IO interface, sockets, queries, results, /etc/hosts);
- glibc.py, musl.py: each libc's search walk, query building and send loop;
- stub_wire.py: how both read replies, over the cluster DNS's codec (wire.py).
"""

from __future__ import annotations

from collections.abc import Callable

from kpkt.dns.glibc import GlibcResolver
from kpkt.dns.musl import MuslResolver
from kpkt.dns.resolv_conf import ResolvConf, parse_hosts, pod_hosts_text
from kpkt.dns.stub import GLIBC, MUSL, StubResolver
from kpkt.dns.stub_wire import query_message

RESOLVERS: dict[str, type[StubResolver]] = {GLIBC: GlibcResolver, MUSL: MuslResolver}


def resolver_for(libc: str, conf: ResolvConf, name: str, *args, **options) -> StubResolver:
    """One getaddrinfo or res_search call of `libc` ("glibc", "musl"); the other arguments are
    StubResolver's."""
    if libc not in RESOLVERS:
        raise ValueError(f"libc must be {GLIBC!r} or {MUSL!r}, not {libc!r}")
    return RESOLVERS[libc](conf, name, *args, **options)


def make_query(libc: str, name: str, qtype: int, qid: int, *, ad: bool = False) -> bytes | None:
    """The query message the libc's mkquery builds, or None when it refuses the name."""
    qname = RESOLVERS[libc].mkquery_name(name, qtype)
    return None if qname is None else query_message(qname, qtype, qid, ad=ad)


def pod_resolver(
    pod,
    name: str,
    qtype: str | int | None = None,
    *,
    next_id: Callable[[], int],
    dns_service_ip: str = "10.96.0.10",
    cluster_domain: str = "cluster.local",
    conf: ResolvConf | None = None,
) -> StubResolver:
    """The resolver of a pod (anything with `name`, `namespace`, `ip`, `resolver` and, optionally,
    `hostname` and `subdomain`, like `PodSpec`) for one lookup, reading the files the kubelet
    wrote: resolv.conf for dnsPolicy ClusterFirst (or `conf`), and /etc/hosts."""
    if conf is None:
        conf = ResolvConf.for_pod(pod.namespace, cluster_domain, str(dns_service_ip))
    hosts = parse_hosts(
        pod_hosts_text(
            str(pod.ip),
            pod.name,
            pod.namespace,
            getattr(pod, "hostname", None),
            getattr(pod, "subdomain", None),
            cluster_domain,
        )
    )
    libc = getattr(pod, "resolver", GLIBC) or GLIBC
    return resolver_for(libc, conf, name, qtype, next_id=next_id, hosts=hosts)
