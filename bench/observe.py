"""What metrics cost on the per-request path (issue 15 item 7), in-process, side by side.

    .venv/bin/python bench/observe.py            # about a minute
    .venv/bin/python bench/observe.py --quick    # a few seconds, noisy

A Starlette app behind coatcheck's ``AuthMiddleware`` in session mode answers
``GET /me`` with the user's name; every request presents one of ``SESSIONS`` distinct
session tokens (more than any cache on the path holds: the world's load), and reads
its session from the store: Redis (127.0.0.1:6379 db 13, the lean GET) or the memory
store. The rows differ only in what observes:

* **baseline**: no observer, the store as it is;
* **observers, plain store**: Prometheus subscribed to every event (the per-request
  path emits none, so this must cost nothing);
* **ObservedStore, nobody listening**: the wrapper's two clock reads and a set lookup;
* **ObservedStore + Prometheus**: each read timed and put in a histogram;
* **ObservedStore + OpenTelemetry**: the same through the OpenTelemetry SDK.

Rows are interleaved in rounds (the order rotated), each a batch of requests timed in
process CPU; the median per row is kept and compared with the baseline of the same
store in the same run: "added" is nanoseconds per request, "share" the baseline's time
over the row's. A second table times one memory-store ``get`` alone the same ways (no
app around it, so far less noise): the wrapper's own cost, and each observer's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
sys.path.insert(0, SRC)

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from coatcheck import events  # noqa: E402
from coatcheck.adapters.asgi import AuthMiddleware, identity_of  # noqa: E402
from coatcheck.auth import Authenticator, BearerTransport, SessionStrategy  # noqa: E402
from coatcheck.observe.otel import OpenTelemetryObserver  # noqa: E402
from coatcheck.observe.prometheus import PrometheusObserver, new_registry  # noqa: E402
from coatcheck.sessions import SessionManager, SessionStore  # noqa: E402
from coatcheck.stores import MemoryStore, RedisStore, observe_store  # noqa: E402

REDIS = os.environ.get("COATCHECK_BENCH_REDIS", "redis://127.0.0.1:6379/13")
_BODY = {"type": "http.request", "body": b"", "more_body": False}


async def _me(request: Request) -> PlainTextResponse:
    identity = identity_of(request.scope)
    return PlainTextResponse(identity.user_id if identity else "guest")


async def _app(store: SessionStore, sessions: int) -> tuple[Any, list[bytes]]:
    manager = SessionManager(store)
    auth = Authenticator(SessionStrategy(manager), (BearerTransport(),))
    app = Starlette(
        routes=[Route("/me", _me)], middleware=[Middleware(AuthMiddleware, authenticator=auth)]
    )
    tokens = []
    for i in range(sessions):
        token, _ = await manager.create(f"user-{i}", data={"name": f"User {i}"})
        tokens.append(b"Bearer " + token.encode())
    return app, tokens


def _caller(app: Any, tokens: list[bytes]) -> Callable[[], Awaitable[None]]:
    cycle = itertools.cycle(tokens)
    failures = [0]

    async def receive() -> dict[str, Any]:
        return _BODY

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failures[0] += 1
            raise RuntimeError(f"status {message['status']}")

    async def call() -> None:
        scope = {
            "type": "http", "method": "GET", "path": "/me", "raw_path": b"/me",
            "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
            "headers": [(b"authorization", next(cycle))], "state": {},
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        await app(scope, receive, send)

    return call


class Row:
    """One row: a request caller and what observes while it runs."""

    def __init__(self, name: str, call: Callable[[], Awaitable[None]], observer: Any) -> None:
        self.name = name
        self.call = call
        self.observer = observer
        self.cpu_ns: list[float] = []


async def _batch(row: Row, n: int) -> float:
    subscription = row.observer.subscribe() if row.observer is not None else None
    try:
        gc.collect()
        gc.disable()
        c0 = time.process_time_ns()
        for _ in itertools.repeat(None, n):
            await row.call()
        c1 = time.process_time_ns()
    finally:
        gc.enable()
        if subscription is not None:
            subscription.close()
    return (c1 - c0) / n


async def run(quick: bool) -> list[tuple[str, str, float, float]]:
    sessions = 2_000 if quick else 20_000
    rounds, batch = (3, 1_000) if quick else (9, 4_000)
    out: list[tuple[str, str, float, float]] = []
    stores: list[tuple[str, Callable[[], SessionStore]]] = [
        ("memory", MemoryStore),
        ("redis", lambda: RedisStore.from_url(REDIS, prefix=f"ccbo:{secrets.token_hex(3)}:")),
    ]
    for label, make in stores:
        plain = make()
        observed = observe_store(make() if label == "memory" else plain)
        # The memory stores must hold the same sessions: one app per store object.
        plain_app, plain_tokens = await _app(plain, sessions)
        if label == "memory":
            observed_app, observed_tokens = await _app(observed, sessions)
        else:
            observed_app, observed_tokens = await _app(observed, 0)
            observed_tokens = plain_tokens  # the same Redis keys
        prometheus = PrometheusObserver(registry=new_registry())
        provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        otel = OpenTelemetryObserver(meter_provider=provider)
        rows = [
            Row("baseline", _caller(plain_app, plain_tokens), None),
            Row("observers, plain store", _caller(plain_app, plain_tokens), prometheus),
            Row("ObservedStore, nobody listening", _caller(observed_app, observed_tokens), None),
            Row("ObservedStore + Prometheus", _caller(observed_app, observed_tokens), prometheus),
            Row("ObservedStore + OpenTelemetry", _caller(observed_app, observed_tokens), otel),
        ]
        for row in rows:  # warm every path (and the caches' misses) once
            await _batch(row, min(batch, sessions))
        for r in range(rounds):
            order = rows[r % len(rows) :] + rows[: r % len(rows)]
            for row in order:
                row.cpu_ns.append(await _batch(row, batch))
        base = statistics.median(rows[0].cpu_ns)
        for row in rows:
            cpu = statistics.median(row.cpu_ns)
            out.append((label, row.name, cpu, cpu - base))
        await plain.close()
        await observed.close()
    return out


async def run_calls(quick: bool) -> list[tuple[str, str, float, float]]:
    """One memory-store ``get`` alone: plain, wrapped, wrapped and observed."""
    rounds, batch = (3, 20_000) if quick else (9, 100_000)
    plain = MemoryStore()
    observed = observe_store(plain)
    _, record = await SessionManager(plain).create("user")
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otel = OpenTelemetryObserver(meter_provider=provider)
    prometheus = PrometheusObserver(registry=new_registry())

    def getter(store: SessionStore) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            await store.get(record.id, 1.0)

        return call

    rows = [
        Row("baseline", getter(plain), None),
        Row("ObservedStore, nobody listening", getter(observed), None),
        Row("ObservedStore + Prometheus", getter(observed), prometheus),
        Row("ObservedStore + OpenTelemetry", getter(observed), otel),
    ]
    for r in range(rounds):
        for row in rows[r % len(rows) :] + rows[: r % len(rows)]:
            row.cpu_ns.append(await _batch(row, batch))
    base = statistics.median(rows[0].cpu_ns)
    return [
        ("memory get", row.name, statistics.median(row.cpu_ns),
         statistics.median(row.cpu_ns) - base)
        for row in rows
    ]  # fmt: skip


def markdown(results: list[tuple[str, str, float, float]], quick: bool) -> str:
    lines = [
        f"Per-request CPU, session mode, GET /me, in-process ({'quick' if quick else 'full'} run)",
        "",
        "| store | row | CPU µs/request | added ns/request | share of baseline |",
        "|---|---|---:|---:|---:|",
    ]
    bases = {store: cpu for store, name, cpu, _ in results if name == "baseline"}
    for store, name, cpu, added in results:
        lines.append(
            f"| {store} | {name} | {cpu / 1000:.2f} | {added:+.0f} | {bases[store] / cpu:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - the bench extra has it
        runner = asyncio.run
    results = runner(run(args.quick))
    print(markdown(results, args.quick))
    print()
    print(markdown(runner(run_calls(args.quick)), args.quick).replace(
        "session mode, GET /me, in-process", "one store call alone"
    ).replace("µs/request", "µs/call").replace("ns/request", "ns/call"))
    if events.observed(events.StoreCalled):  # every subscription was closed
        raise SystemExit("a subscription was left open")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
