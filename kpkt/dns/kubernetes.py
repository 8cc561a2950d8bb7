"""CoreDNS's `kubernetes` plugin (plugin/kubernetes with plugin/backend_lookup.go), code path
for code path: the query-name grammar, the service/endpoint/pod lookups, the record builders,
and the handler's choice between an answer, NODATA, NXDOMAIN and passing the query on.

The handler is a generator: an ExternalName whose target lies outside the zone is looked up
through CoreDNS's own server again (plugin/pkg/upstream), which may have to ask the upstream
server; `lookup` is that re-entry and yields whatever it needs to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from kpkt.dns import names
from kpkt.dns.cluster_view import ClusterView
from kpkt.dns.message import (
    AAAA,
    AXFR,
    CNAME,
    IN,
    IXFR,
    MX,
    NOERROR,
    NS,
    NXDOMAIN,
    PTR,
    REFUSED,
    RR,
    SERVFAIL,
    SOA,
    SRV,
    TXT,
    A,
    Message,
    Question,
    address_rr,
    cname_rr,
    ns_rr,
    ptr_rr,
    soa_rr,
    srv_rr,
    txt_rr,
)
from kpkt.dns.names import Name
from kpkt.dns.profile import Profile

SCHEMA_VERSION = b"1.1.0"  # kubernetes.go DNSSchemaVersion
SCHEMA_TTL = 28800
SOA_NUMBERS = (7200, 1800, 86400)  # refresh, retry, expire (backend_lookup.go SOA)
REVERSE_ZONES: tuple[Name, ...] = ((b"in-addr", b"arpa"), (b"ip6", b"arpa"))
DEFAULT_NS = (b"ns", b"dns")

# errors: the three that are a "name error" (IsNameError), plus an internal one
NO_ITEMS = "no items found"
NS_NOT_EXPOSED = "namespace is not exposed"
INVALID_REQUEST = "invalid query name"
NAME_ERRORS = (NO_ITEMS, NS_NOT_EXPOSED, INVALID_REQUEST)

NEXT = "next plugin"  # the handler passes the query on (plugin.NextOrFailure)

Lookup = Callable[[Message, Name, int], Generator[Any, Any, Message | None]]
Outcome = Message | int | str  # a written reply, an rcode for the server to write, or NEXT


@dataclass(frozen=True, slots=True)
class Entry:
    """msg.Service: one thing a name stands for."""

    host: str  # an address, or the target name of an ExternalName
    ttl: int
    port: int = 0
    domain: Name = ()  # msg.Domain(Key): the name of the entry (SRV and NS targets)
    text: bytes = b""

    def host_type(self) -> tuple[int, IPv4Address | IPv6Address | None]:
        """msg.Service.HostType: A or AAAA for an address, else CNAME (TXT with text)."""
        ip = names.host_ip(self.host)
        if ip is None:
            return (TXT if self.text else CNAME), None
        return (A if isinstance(ip, IPv4Address) else AAAA), ip


@dataclass(slots=True)
class Request:
    """parse.go recordRequest."""

    port: str = ""
    protocol: str = ""
    endpoint: str = ""
    service: str = ""
    namespace: str = ""
    pod_or_svc: str = ""


@dataclass(slots=True)
class State:
    """request.Request with its Zone: the query (or a copy with another question) and the zone
    as the query spells it."""

    req: Message
    zone: Name
    name: Name = field(init=False)  # lower case
    text: str = field(init=False)  # state.Name(): lower-case presentation form
    zone_text: str = field(init=False)  # state.Zone: the zone in the query's case

    def __post_init__(self) -> None:
        self.name = names.lower(self.qname)
        self.text = names.to_text(self.name)
        self.zone_text = names.to_text(self.zone)

    @property
    def qname(self) -> Name:
        return self.req.question[0].name

    @property
    def qtype(self) -> int:
        return self.req.question[0].qtype

    def with_question(self, name: Name, qtype: int) -> State:
        """NewWithQuestion: a copy of the request asking something else (class IN)."""
        req = self.req.copy()
        req.question = [Question(name, qtype, IN)]
        return State(req, self.zone)

    def base(self) -> list[str]:
        """dnsutil.TrimZone then dns.SplitDomainName: the labels left of the zone."""
        return names.keys(self.name[: len(self.name) - len(self.zone)])


def parse_request(base: list[str]) -> tuple[Request, str | None]:
    """parse.go parseRequest, read right to left (no multicluster, no zonal)."""
    r = Request()
    if not base or base in (["svc"], ["pod"]):
        return r, None  # the apex, svc.<zone> and pod.<zone>: NODATA
    segs = list(base)
    last = len(segs) - 1
    r.pod_or_svc = segs[last]
    if r.pod_or_svc not in ("pod", "svc"):
        return r, INVALID_REQUEST
    last -= 1
    if last < 0:
        return r, None
    r.namespace = segs[last]
    last -= 1
    if last < 0:
        return r, None
    r.service = segs[last]
    last -= 1
    if last < 0:
        return r, None
    if last == 0:
        r.endpoint = segs[0]
    elif last == 1:
        r.protocol = _strip_underscore(segs[1])
        r.port = _strip_underscore(segs[0])
    else:
        return r, INVALID_REQUEST
    return r, None


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def _match(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _match_port(port: str, port_name: str, protocol: str, port_protocol: str) -> bool:
    """matchPortAndProtocol: an empty port or protocol in the query matches anything."""
    return (not port or _match(port, port_name)) and (
        not protocol or _match(protocol, port_protocol)
    )


def _ascii(text: str) -> bytes:
    return text.encode("ascii", "replace")


class KubernetesPlugin:
    def __init__(
        self,
        view: ClusterView,
        profile: Profile,
        zone: Name,
        local_ips: tuple[IPv4Address | IPv6Address, ...],
    ):
        self.view = view
        self.profile = profile
        self.primary_zone = zone  # as configured (PTR targets use it)
        self.zones = [names.lower(zone)]
        if profile.reverse_zones:
            self.zones += REVERSE_ZONES
        self.local_ips = local_ips
        self.ttl = profile.ttl

    # ------------------------------------------------------------ the handler (handler.go)

    def match_zone(self, qname: Name) -> Name | None:
        """plugin.Zones.Matches: the longest zone holding the name, in the query's case."""
        best = None
        for zone in self.zones:
            if names.is_subdomain(qname, zone) and (best is None or len(zone) > len(best)):
                best = zone
        if best is None:
            return None
        return qname[len(qname) - len(best) :]

    def serve(self, req: Message, lookup: Lookup) -> Generator[Any, Any, Outcome]:
        zone = self.match_zone(req.question[0].name)
        if zone is None:
            return NEXT
        state = State(req, zone)
        records: list[RR] = []
        extra: list[RR] = []
        truncated = False
        err: str | None = None
        qtype = state.qtype
        if qtype in (AXFR, IXFR):
            return REFUSED  # no transfer plugin
        if qtype == A:
            records, truncated, err = yield from self.address(state, [], lookup, A)
        elif qtype == AAAA:
            records, truncated, err = yield from self.address(state, [], lookup, AAAA)
        elif qtype == TXT:
            records, err = self.txt(state)
        elif qtype == CNAME:
            records, err = self.cname(state)
        elif qtype == PTR:
            records, err = self.ptr(state)
        elif qtype == MX:
            records, extra, err = self.mx(state)
        elif qtype == SRV:
            records, extra, err = self.srv(state)
        elif qtype == SOA:
            if len(state.qname) == len(zone):  # qname == zone
                records = [self.soa(state)]
        elif qtype == NS and state.text == state.zone_text:
            records, extra = self.ns(state)
        else:  # a fake A lookup tells NODATA from NXDOMAIN
            fake = state.with_question(state.qname, A)
            _, _, err = yield from self.address(fake, [], lookup, A)
        if err in NAME_ERRORS:
            if self.profile.fallthrough_reverse and any(
                names.is_subdomain(state.name, reverse) for reverse in REVERSE_ZONES
            ):
                return NEXT
            return self.backend_error(state, NXDOMAIN)
        if err is not None:
            return SERVFAIL
        if not records:
            return self.backend_error(state, NOERROR)
        reply = req.reply()
        reply.aa = True
        reply.tc = truncated
        reply.answer = records
        reply.additional = extra
        return reply

    def backend_error(self, state: State, rcode: int) -> Message:
        """plugin.BackendError: the rcode, AA, and the zone's SOA in the authority section."""
        reply = state.req.reply_rcode(rcode)
        reply.aa = True
        reply.authority = [self.soa(state)]
        return reply

    def soa(self, state: State) -> RR:
        ttl = min(self.ttl, 300)
        zone = state.zone
        numbers = (self.view.serial, *SOA_NUMBERS, self.ttl)
        return soa_rr(zone, DEFAULT_NS + zone, (b"hostmaster",) + zone, numbers, ttl)

    # ------------------------------------------------------------ Services (kubernetes.go)

    def services(self, state: State) -> tuple[list[Entry], str | None]:
        qtype = state.qtype
        if qtype == TXT:
            if state.base() == ["dns-version"]:
                return [Entry("", SCHEMA_TTL, text=SCHEMA_VERSION)], None
            found, _ = self.records(state)
            return ([], None) if found else ([], NO_ITEMS)
        if state.text.startswith("ns.dns.") and state.text.find(state.zone_text) == 7:
            return [
                Entry(str(ip), self.ttl)
                for _, ip in self.ns_addresses(state)
                if (qtype == A) == isinstance(ip, IPv4Address) and qtype in (A, AAAA)
            ], None
        found, err = self.records(state)
        if qtype == SRV:  # "SRV for external services is not yet implemented"
            found = [entry for entry in found if entry.host_type()[0] != CNAME]
        return found, err

    def records(self, state: State) -> tuple[list[Entry], str | None]:
        r, err = parse_request(state.base())
        if err is not None:
            return [], err
        if not r.pod_or_svc:
            return [], None
        if state.text.endswith((".in-addr.arpa.", ".ip6.arpa.")):
            return [], NO_ITEMS
        if not self.view.namespace_exists(r.namespace):
            return [], NS_NOT_EXPOSED
        if r.pod_or_svc == "pod":
            return self.find_pods(r)
        return self.find_services(r, state.zone)

    def find_pods(self, r: Request) -> tuple[list[Entry], str | None]:
        if self.profile.pods == "disabled":
            return [], NO_ITEMS
        podname = r.service
        if not podname:
            return [], None  # <ns>.pod.<zone>: NODATA
        if podname.count("-") == 3 and "--" not in podname:
            ip = podname.replace("-", ".")
        else:
            ip = podname.replace("-", ":")
        if self.profile.pods == "insecure":
            if names.parse_ip(ip) is None:
                return [], NO_ITEMS
            return [Entry(ip, self.ttl)], None
        found = [
            Entry(ip, self.ttl)
            for namespace in self.view.pod_namespaces(ip)
            if _match(r.namespace, namespace)
        ]
        return found, (None if found else NO_ITEMS)

    def find_services(self, r: Request, zone: Name) -> tuple[list[Entry], str | None]:
        if not r.service:
            return [], None  # <ns>.svc.<zone>: NODATA
        err: str | None = NO_ITEMS
        found: list[Entry] = []
        service = self.view.service(r.namespace, r.service)
        if service is None:
            return found, err
        base = (_ascii(service.name), _ascii(service.namespace), b"svc") + zone
        if service.external:
            if r.endpoint or r.port or r.protocol or service.external_name is None:
                return found, err
            entry = Entry(service.external_name, self.ttl, domain=base)
            if entry.host_type()[0] == CNAME:
                found.append(entry)
                err = None
            return found, err
        if service.headless or r.endpoint:
            for address in service.addresses:
                if r.endpoint and not _match(r.endpoint, address.hostname):
                    continue
                for port in address.ports:
                    if not _match_port(r.port, port.name, r.protocol, port.protocol):
                        continue
                    domain = (_ascii(address.hostname),) + base
                    found.append(Entry(str(address.ip), self.ttl, port.port, domain))
                    err = None
            return found, err
        for port in service.ports:
            if not _match_port(r.port, port.name, r.protocol, port.protocol):
                continue
            err = None
            for ip in service.cluster_ips:
                found.append(Entry(str(ip), self.ttl, port.port, base))
        return found, err

    def ns_addresses(self, state: State) -> list[tuple[Name, IPv4Address | IPv6Address]]:
        """ns.go nsAddrs: the services whose endpoints hold this CoreDNS pod's own address
        (their ClusterIP, or each endpoint of a headless one); the pod address itself under
        ns.dns.<zone> when there is none. One record per address."""
        found: list[tuple[Name, IPv4Address | IPv6Address]] = []
        for local in self.local_ips:
            for service, _ in self.view.endpoints_with_ip(local):
                svc_name = (_ascii(service.name), _ascii(service.namespace), b"svc")
                svc_name += state.zone
                if service.headless:
                    for address in service.addresses:
                        found.append(((_ascii(address.hostname),) + svc_name, address.ip))
                else:
                    found.extend((svc_name, ip) for ip in service.cluster_ips)
        if not found:
            found = [(DEFAULT_NS + state.zone, ip) for ip in self.local_ips]
        unique = []
        seen = set()
        for name, ip in found:
            if ip not in seen:
                seen.add(ip)
                unique.append((name, ip))
        return unique

    # ------------------------------------------------------------ records (backend_lookup.go)

    def address(
        self, state: State, previous: list[RR], lookup: Lookup, kind: int
    ) -> Generator[Any, Any, tuple[list[RR], bool, str | None]]:
        """plugin.A and plugin.AAAA, CNAME chasing included."""
        found, err = self.services(state)
        if err is not None:
            return [], False, err
        records: list[RR] = []
        truncated = False
        seen: set[str] = set()
        for entry in found:
            what, ip = entry.host_type()
            if what == CNAME:
                target = names.parse_text(entry.host)
                if target is None or names.is_subdomain(target, state.name):
                    continue  # x CNAME x is a direct loop
                new = cname_rr(state.qname, target, entry.ttl)
                if len(previous) > 7 or _duplicate_cname(new, previous):
                    continue
                if names.is_subdomain(target, state.zone):
                    inner = state.with_question(target, state.qtype)
                    more, tc, inner_err = yield from self.address(
                        inner, [*previous, new], lookup, kind
                    )
                    if inner_err is None and more:
                        records += [new, *more]
                    truncated = truncated or tc
                    continue
                reply = yield from lookup(state.req, target, state.qtype)
                if reply is None:
                    continue
                truncated = truncated or reply.tc
                records += [new, *reply.answer]
            elif what == kind and entry.host not in seen:
                seen.add(entry.host)
                records.append(address_rr(state.qname, ip, entry.ttl))
        return records, truncated, None

    def txt(self, state: State) -> tuple[list[RR], str | None]:
        found, err = self.services(state)
        if err is not None:
            return [], err
        seen: set[bytes] = set()
        records = []
        for entry in found:
            if entry.host_type()[0] == TXT and entry.text not in seen:
                seen.add(entry.text)
                records.append(txt_rr(state.qname, entry.text, entry.ttl))
        return records, None

    def cname(self, state: State) -> tuple[list[RR], str | None]:
        found, err = self.services(state)
        if err is not None:
            return [], err
        if found and names.parse_ip(found[0].host) is None:
            target = names.parse_text(found[0].host)
            if target is not None:
                return [cname_rr(state.qname, target, found[0].ttl)], None
        return [], None

    def mx(self, state: State) -> tuple[list[RR], list[RR], str | None]:
        _, err = self.services(state)  # no Kubernetes entry is a mail exchanger
        return [], [], err

    def srv(self, state: State) -> tuple[list[RR], list[RR], str | None]:
        found, err = self.services(state)
        if err is not None:
            return [], [], err
        total = 100 * len(found)  # every entry weighs 100 in priority group 0
        records: list[RR] = []
        extra: list[RR] = []
        seen: set[tuple[Name, int, str]] = set()
        for entry in found:
            if entry.port == -1:  # a portless endpoint
                continue
            share = 100.0 / float(total)
            share *= 100
            weight = math.floor(share) or 1  # "weight should be at least 1"
            what, ip = entry.host_type()
            if what not in (A, AAAA) or ip is None:
                continue
            target = entry.domain
            if (target, entry.port, "") not in seen:
                seen.add((target, entry.port, ""))
                records.append(srv_rr(state.qname, 0, weight, entry.port, target, entry.ttl))
            if (target, 0, entry.host) not in seen:
                seen.add((target, 0, entry.host))
                extra.append(address_rr(target, ip, entry.ttl))
        return records, extra, None

    def ptr(self, state: State) -> tuple[list[RR], str | None]:
        ip = names.address_from_reverse(state.text)
        if ip is None:
            _, err = self.records(state)
            return [], err
        targets = self.targets_for_ip(ip)
        if not targets:
            return [], NO_ITEMS
        records = []
        seen: set[Name] = set()
        for target in targets:
            if target not in seen:
                seen.add(target)
                records.append(ptr_rr(state.qname, target, self.ttl))
        return records, None

    def targets_for_ip(self, ip: IPv4Address | IPv6Address) -> list[Name]:
        """reverse.go serviceRecordForIP: the service with this ClusterIP, else every ready
        endpoint with this address (one name per service selecting it)."""
        service = self.view.service_with_cluster_ip(ip)
        zone = self.primary_zone
        if service is not None:
            return [(_ascii(service.name), _ascii(service.namespace), b"svc") + zone]
        return [
            (_ascii(address.hostname), _ascii(service.name), _ascii(service.namespace), b"svc")
            + zone
            for service, address in self.view.endpoints_with_ip(ip)
        ]

    def ns(self, state: State) -> tuple[list[RR], list[RR]]:
        """plugin.NS at the apex: one NS per name, one address record per address."""
        records: list[RR] = []
        extra: list[RR] = []
        seen: set[Name] = set()
        for name, ip in self.ns_addresses(state):
            extra.append(address_rr(name, ip, self.ttl))
            if name not in seen:
                seen.add(name)
                records.append(ns_rr(state.qname, name, self.ttl))
        return records, extra


def _duplicate_cname(new: RR, previous: list[RR]) -> bool:
    return any(rr.rtype == CNAME and rr.rdata == new.rdata for rr in previous)
