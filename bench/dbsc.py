"""DBSC section: what a device-bound browser session costs, side by side with an unbound one.

Issue 16's promise: "A DBSC-bound browser session adds no store read to requests between
refreshes". Measured in process (raw ASGI calls through ``AuthMiddleware`` to a one-line
app), session and hybrid mode, each with and without a ``DeviceBinding``, over a store
that counts its reads and writes. Many distinct browsers (more than the strategies'
identity and token caches hold), cycled: each request is another browser's. Bound
browsers carry the bound cookie their registration (a real ES256 proof) gave them.

Also timed: one DBSC refresh (a proof verified with the stored key, the challenge
checked, one compare-and-set, a new bound cookie), and what it costs the store.

Run alone: ``.venv/bin/python bench/dbsc.py [--quick]``; ``bench/run.py`` includes it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from harness import Budget, Progress, interleave_async

from coatcheck.adapters.asgi import AuthMiddleware, identity_of
from coatcheck.auth import (
    Authenticator,
    CookieTransport,
    HybridCookieTransport,
    HybridStrategy,
    SessionStrategy,
)
from coatcheck.auth.dbsc import DeviceBinding, ReplyKind
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager, SessionRecord
from coatcheck.sessions.dbsc import DbscPolicy
from coatcheck.stores import MemoryStore
from coatcheck.tokens import JWTCodec, Key
from coatcheck.tokens.dbsc import make_proof

__all__ = ["run_dbsc"]

_SECRET = "bench-dbsc-secret-" + "x" * 32
_CACHE_BEATING = 5000  # browsers: more than the identity (1024) and token (4096) caches


class CountingStore(MemoryStore):
    """The memory store (no I/O, so the CPU of the rules shows), counting reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        self.reads += 1
        return await super().get(session_id, now)

    async def update(self, record: SessionRecord) -> bool:
        self.writes += 1
        return await super().update(record)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        self.writes += 1
        await super().touch(session_id, last_seen, expires_at)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    identity = identity_of(scope)
    body = identity.user_id.encode() if identity is not None else b"guest"
    await send({"type": "http.response.start", "status": 200 if identity else 401,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class _Setup:
    def __init__(self, mode: str, dbsc: bool) -> None:
        self.store = CountingStore()
        manager = SessionManager(self.store)
        policy = CookiePolicy(secure=True)
        self.cookie: CookieTransport
        if mode == "hybrid":
            codec = JWTCodec([Key.generate("ES256")])
            self.strategy: SessionStrategy | HybridStrategy = HybridStrategy(
                manager, codec, "r" * 32, access_ttl=timedelta(minutes=5)
            )
            self.cookie = HybridCookieTransport("__Secure-access", policy,
                                                refresh_name="__Secure-refresh")  # fmt: skip
        else:
            self.strategy = SessionStrategy(manager)
            self.cookie = CookieTransport("__Host-session", policy)
        self.binding = (
            DeviceBinding(self.strategy, self.cookie, _SECRET, policy=DbscPolicy())
            if dbsc
            else None
        )
        self.authenticator = Authenticator(self.strategy, (self.cookie,), binding=self.binding)
        self.app = AuthMiddleware(_app, self.authenticator)
        self.browsers: list[list[tuple[bytes, bytes]]] = []
        self.keys: list[tuple[Key, str, dict[str, str]]] = []

    async def add_browser(self, index: int) -> None:
        login = await self.authenticator.login(f"user{index}", headers={})
        jar = _jar(login.set_headers)
        if self.binding is not None:
            challenge = dict(login.set_headers)["secure-session-registration"]
            challenge = challenge.split('challenge="')[1].rstrip('"')
            key = Key.generate("ES256")
            reply = await self.binding.register({
                "cookie": _header(jar),
                "secure-session-response": make_proof(key, challenge, registration=True),
            })  # fmt: skip
            if reply.kind is not ReplyKind.OK or reply.body is None:
                raise RuntimeError(f"registration failed: {reply.error}")
            jar.update(_jar(reply.headers))
            self.keys.append((key, reply.body["session_identifier"], jar))
        self.browsers.append([(b"cookie", _header(jar).encode())])


def _jar(headers: list[tuple[str, str]]) -> dict[str, str]:
    jar = {}
    for name, value in headers:
        if name == "set-cookie":
            key, _, rest = value.partition("=")
            jar[key] = rest.partition(";")[0]
    return jar


def _header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _caller(setup: _Setup, failures: list[int]) -> Callable[[], Awaitable[object]]:
    browsers = setup.browsers
    count = len(browsers)
    app = setup.app
    position = 0
    message = {"type": "http.request", "body": b"", "more_body": False}
    status = [0]

    async def receive() -> dict[str, Any]:
        return message

    async def send(out: dict[str, Any]) -> None:
        if out["type"] == "http.response.start":
            status[0] = out["status"]

    async def call() -> None:
        nonlocal position
        headers = browsers[position]
        position = (position + 1) % count
        scope = {"type": "http", "method": "GET", "path": "/me", "headers": headers,
                 "query_string": b""}  # fmt: skip
        await app(scope, receive, send)
        if status[0] != 200:
            failures.append(status[0])

    return call


async def run_dbsc(budget: Budget, progress: Progress, *, browsers: int = _CACHE_BEATING
                   ) -> dict[str, Any]:  # fmt: skip
    """Per-request cost and store reads, bound vs unbound, and the cost of one refresh."""
    rows: list[dict[str, Any]] = []
    refresh: dict[str, Any] = {}
    for mode in ("session", "hybrid"):
        setups = {dbsc: _Setup(mode, dbsc) for dbsc in (False, True)}
        for setup in setups.values():
            for index in range(browsers):
                await setup.add_browser(index)
        failures: list[int] = []
        callers = {f"{mode}/{'bound' if dbsc else 'unbound'}": _caller(setup, failures)
                   for dbsc, setup in setups.items()}  # fmt: skip
        # Counted first, on one full cycle of browsers, with nothing else running.
        counts = {}
        for dbsc, setup in setups.items():
            before = (setup.store.reads, setup.store.writes)
            call = _caller(setup, failures)
            for _ in range(browsers):
                await call()
            counts[dbsc] = ((setup.store.reads - before[0]) / browsers,
                            (setup.store.writes - before[1]) / browsers)  # fmt: skip
        if failures:
            raise RuntimeError(f"{mode}: {len(failures)} requests were refused")
        progress.say(f"dbsc {mode}: timing bound and unbound requests over {browsers} browsers")
        samples = await interleave_async(callers, budget)
        if failures:
            raise RuntimeError(f"{mode}: {len(failures)} requests were refused while timing")
        unbound = samples[f"{mode}/unbound"].cpu_median
        bound = samples[f"{mode}/bound"].cpu_median
        rows.append({
            "mode": mode, "browsers": browsers,
            "unbound_us": unbound, "bound_us": bound, "ratio": bound / unbound,
            "reads_unbound": counts[False][0], "reads_bound": counts[True][0],
            "writes_unbound": counts[False][1], "writes_bound": counts[True][1],
        })  # fmt: skip
        refresh[mode] = await _refreshes(setups[True], min(browsers, 500))
    return {"rows": rows, "refresh": refresh}


async def _refreshes(setup: _Setup, count: int) -> dict[str, Any]:
    """One refresh per browser, the proof signed beforehand (the browser's cost)."""
    binding = setup.binding
    assert binding is not None
    requests = []
    for key, sid, jar in setup.keys[:count]:
        asked = await binding.refresh({"cookie": _header(jar), "sec-secure-session-id": sid})
        challenge = dict(asked.headers)["secure-session-challenge"].split('"')[1]
        requests.append({"cookie": _header(jar), "sec-secure-session-id": sid,
                         "secure-session-response": make_proof(key, challenge,
                                                               registration=False)})  # fmt: skip
    before = (setup.store.reads, setup.store.writes)
    c0, t0 = time.process_time(), time.perf_counter()
    for headers in requests:
        reply = await binding.refresh(headers)
        if reply.kind is not ReplyKind.OK:
            raise RuntimeError(f"refresh failed: {reply.error}")
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {
        "count": count,
        "cpu_us": cpu / count * 1e6,
        "wall_us": wall / count * 1e6,
        "reads": (setup.store.reads - before[0]) / count,
        "writes": (setup.store.writes - before[1]) / count,
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """The section for bench/results/<date>.md."""
    lines = [
        "## Device Bound Session Credentials (issue 16)",
        "",
        "In process, raw ASGI through `AuthMiddleware`, memory store that counts its calls; "
        f"{result['rows'][0]['browsers']} distinct browsers cycled (more than any cache "
        "holds). Bound: each browser registered a real ES256 key and sends its bound cookie. "
        "CPU µs per request, medians of interleaved rounds.",
        "",
        "| mode | unbound µs | DBSC-bound µs | bound / unbound | store reads per request "
        "(unbound → bound) | store writes per request |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['mode']} | {row['unbound_us']:.1f} | {row['bound_us']:.1f} | "
            f"{row['ratio']:.2f} | {row['reads_unbound']:.2f} → {row['reads_bound']:.2f} | "
            f"{row['writes_unbound']:.2f} → {row['writes_bound']:.2f} |"
        )
    lines += ["", "| one DBSC refresh | CPU µs | wall µs | store reads | store writes |",
              "|---|---:|---:|---:|---:|"]  # fmt: skip
    for mode, r in result["refresh"].items():
        lines.append(f"| {mode} mode ({r['count']} refreshes) | {r['cpu_us']:.0f} | "
                     f"{r['wall_us']:.0f} | {r['reads']:.2f} | {r['writes']:.2f} |")  # fmt: skip
    lines.append("")
    return lines


def _main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    budget = (
        Budget(rounds=3, batch_seconds=0.02, group_seconds=3.0)
        if args.quick
        else Budget(rounds=10, batch_seconds=0.1, group_seconds=40.0, min_rounds=5)
    )
    result = asyncio.run(run_dbsc(budget, Progress(), browsers=500 if args.quick else 5000))
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
