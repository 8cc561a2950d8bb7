"""A synchronous driver for the stub resolvers: the tests answer each query with a function."""

from __future__ import annotations

from collections.abc import Callable

from kpkt.dns.stub import Query, Result, StubResolver

Responder = Callable[[Query], "bytes | None"]


def run(
    resolver: StubResolver, respond: Responder, now_ns: int = 0, rtt_ns: int = 1_000_000
) -> Result:
    """Run a lookup against `respond(query) -> reply bytes | None` (None: no reply). Replies come
    back `rtt_ns` after their query, in the order the queries went out; when nothing is pending,
    time jumps to the resolver's deadline."""
    pending: list[tuple[int, int, Query]] = []  # (due, order, query)
    order = 0

    def queue(queries: list[Query], at: int) -> None:
        nonlocal order
        for query in queries:
            order += 1
            pending.append((at + rtt_ns, order, query))

    queue(resolver.start(now_ns), now_ns)
    now = now_ns
    while not resolver.done:
        pending.sort(key=lambda item: (item[0], item[1]))
        deadline = resolver.deadline_ns
        if pending and (deadline is None or pending[0][0] < deadline):
            due, _, query = pending.pop(0)
            now = max(now, due)
            if query.socket not in resolver.open_sockets:
                continue
            reply = respond(query)
            if reply is not None:
                queue(resolver.on_reply(query.socket, reply, now), now)
            continue
        if deadline is None:
            raise RuntimeError("the resolver waits forever (glibc over TCP) and nothing is pending")
        now = max(now, deadline)
        queue(resolver.on_timeout(now), now)
    assert resolver.result is not None
    return resolver.result
