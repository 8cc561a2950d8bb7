"""Which CoreDNS: the Corefile kubeadm installs, or a bare `kubernetes cluster.local` block.

kubeadm (cmd/kubeadm/app/phases/addons/dns/manifests.go):

    .:53 {
        errors
        health { lameduck 5s }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
           pods insecure
           fallthrough in-addr.arpa ip6.arpa
           ttl 30
        }
        prometheus :9153
        forward . /etc/resolv.conf { max_concurrent 1000 }
        cache 30 { disable success cluster.local; disable denial cluster.local }
        loop
        reload
        loadbalance
    }

Plugins run in plugin.cfg order whatever the Corefile says: loadbalance, cache, kubernetes,
forward. `health`, `ready`, `prometheus`, `errors`, `loop` and `reload` change no answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

POD_MODES = ("insecure", "verified", "disabled")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    ttl: int  # the kubernetes plugin's `ttl` (SOA: min(ttl, 300); schema TXT: 28800)
    pods: str  # insecure | verified | disabled
    reverse_zones: bool  # `in-addr.arpa ip6.arpa` among the plugin's zones
    fallthrough_reverse: bool  # `fallthrough in-addr.arpa ip6.arpa`
    forward: bool  # `forward . /etc/resolv.conf` (it also lets non-IN classes in)
    cache_ttl: int | None  # `cache 30`: the cap; None: no cache plugin
    cache_min_ttl: int = 5  # the cache plugin's default MINTTL for success and denial
    cache_disabled_zone: bool = True  # `disable success|denial <cluster zone>`
    loadbalance: bool = True

    def with_cluster(self, ttl: int, pods: str) -> Profile:
        """The profile with the topology's `cluster.dns.ttl` and `cluster.dns.pods`."""
        return replace(self, ttl=ttl, pods=pods)


KUBEADM = Profile(
    name="kubeadm",
    ttl=30,
    pods="insecure",
    reverse_zones=True,
    fallthrough_reverse=True,
    forward=True,
    cache_ttl=30,
)

PLUGIN_DEFAULTS = Profile(
    name="coredns_plugin_defaults",
    ttl=5,
    pods="disabled",
    reverse_zones=False,
    fallthrough_reverse=False,
    forward=False,
    cache_ttl=None,
    loadbalance=False,
)

PROFILES = {profile.name: profile for profile in (KUBEADM, PLUGIN_DEFAULTS)}
