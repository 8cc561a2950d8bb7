"""The files the kubelet writes into a pod for name resolution: `/etc/resolv.conf` and
`/etc/hosts`.

resolv.conf for `dnsPolicy: ClusterFirst` (kubernetes `pkg/kubelet/network/dns/dns.go`,
`GetPodDNS`): the cluster DNS service is the only nameserver (the node's are dropped), the search
list is `<ns>.svc.<domain> svc.<domain> <domain>` followed by the node's own search domains with
duplicates removed, and the node's options are replaced by `ndots:5`. The standard file is

    nameserver 10.96.0.10
    search default.svc.cluster.local svc.cluster.local cluster.local
    options ndots:5

A `hostNetwork: true` pod with ClusterFirst falls back to `Default`, the node's own file:
`ResolvConf.parse(node_text)`.

/etc/hosts (`pkg/kubelet/kubelet_pods.go`, `managedHostsFileContent`): localhost, the IPv6
loopback names, and the pod's own address under its hostname (and its FQDN when the pod has a
subdomain). getaddrinfo looks here before it sends any DNS query (glibc `hosts: files dns`, musl
`name_from_hosts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# glibc <resolv.h> RES_TIMEOUT and RES_DFLRETRY; musl resolvconf.c uses the same defaults.
DEFAULT_TIMEOUT_S = 5
DEFAULT_ATTEMPTS = 2
DEFAULT_NDOTS = 1  # when resolv.conf says nothing (both libcs)
KUBELET_NDOTS = 5  # kubelet defaultDNSOptions = []string{"ndots:5"}


@dataclass(frozen=True, slots=True)
class ResolvConf:
    """What the stub resolver reads from /etc/resolv.conf."""

    nameservers: tuple[str, ...]
    search: tuple[str, ...] = ()
    ndots: int = DEFAULT_NDOTS
    timeout: int = DEFAULT_TIMEOUT_S  # seconds, `options timeout:N`
    attempts: int = DEFAULT_ATTEMPTS  # `options attempts:N`

    @classmethod
    def for_pod(
        cls,
        namespace: str,
        cluster_domain: str = "cluster.local",
        dns_service_ip: str = "10.96.0.10",
        host_search: Iterable[str] = (),
    ) -> ResolvConf:
        """The kubelet's resolv.conf for a pod with dnsPolicy ClusterFirst (or
        ClusterFirstWithHostNet). `host_search`: the node's search domains, appended."""
        domain = cluster_domain.rstrip(".")
        search: list[str] = []
        for entry in (f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host_search):
            entry = entry.rstrip(".")
            if entry and entry not in search:
                search.append(entry)
        return cls(nameservers=(str(dns_service_ip),), search=tuple(search), ndots=KUBELET_NDOTS)

    @classmethod
    def parse(cls, text: str) -> ResolvConf:
        """Read a resolv.conf: `nameserver` lines (at most 3), the last `search`/`domain`
        line, and the `ndots:`, `timeout:`, `attempts:` options (capped as glibc caps them)."""
        nameservers: list[str] = []
        search: tuple[str, ...] = ()
        ndots, timeout, attempts = DEFAULT_NDOTS, DEFAULT_TIMEOUT_S, DEFAULT_ATTEMPTS
        for line in text.splitlines():
            words = line.split()
            if not words or words[0].startswith(("#", ";")):
                continue
            key, args = words[0], words[1:]
            if key == "nameserver" and args and len(nameservers) < 3:
                nameservers.append(args[0])
            elif key in ("search", "domain"):
                search = tuple(arg.rstrip(".") for arg in args)
            elif key == "options":
                for arg in args:
                    name, _, value = arg.partition(":")
                    if not value.isdigit():
                        continue
                    if name == "ndots":
                        ndots = min(int(value), 15)
                    elif name == "timeout":
                        timeout = min(int(value), 30)
                    elif name == "attempts":
                        attempts = min(int(value), 5)
        return cls(tuple(nameservers), search, ndots, timeout, attempts)

    def text(self) -> str:
        """The file, as the kubelet writes it."""
        lines = [f"nameserver {server}" for server in self.nameservers]
        if self.search:
            lines.append("search " + " ".join(self.search))
        options = [f"ndots:{self.ndots}"]
        if self.timeout != DEFAULT_TIMEOUT_S:
            options.append(f"timeout:{self.timeout}")
        if self.attempts != DEFAULT_ATTEMPTS:
            options.append(f"attempts:{self.attempts}")
        lines.append("options " + " ".join(options))
        return "\n".join(lines) + "\n"


def pod_hosts_text(
    pod_ip: str,
    pod_name: str,
    namespace: str,
    hostname: str | None = None,
    subdomain: str | None = None,
    cluster_domain: str = "cluster.local",
) -> str:
    """The kubelet's /etc/hosts for a pod (not on the host network), byte for byte."""
    host = hostname or pod_name
    if subdomain:
        own = f"{pod_ip}\t{host}.{subdomain}.{namespace}.svc.{cluster_domain}\t{host}\n"
    else:
        own = f"{pod_ip}\t{host}\n"
    return (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n" + own
    )


def parse_hosts(text: str) -> dict[str, tuple[str, ...]]:
    """Name -> addresses in file order: what getaddrinfo finds in /etc/hosts."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        address, names = words[0], words[1:]
        for name in names:
            if address not in table.setdefault(name, []):
                table[name].append(address)
    return {name: tuple(addresses) for name, addresses in table.items()}
