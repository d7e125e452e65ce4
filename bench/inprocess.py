"""In-process ASGI section: the CPU each variant adds per request, with no HTTP server.

Every variant is built once in one uvloop loop, with ``users`` distinct users logged in,
and called with raw scope/receive/send. Three regimes, each its own interleaved group:

* ``many``: every request brings the next user's credential, in order, cycling through
  all of them. With more users than any cache holds, every cache misses: the cost of
  serving many users, the headline;
* ``zipf``: users drawn with Zipf popularity (a few users make most requests), the
  regime a real site sees and the one caches are for;
* ``one``: the same credential on every request (a footnote: caches always hit).

"Auth CPU added" is a variant's CPU per request minus its own group's bare app in the
same regime (Starlette or FastAPI): far less noisy than HTTP. The garbage collector
runs as it would in a server (a collection before each batch, so no batch pays for the
previous one's garbage). Cache hit rates are counted by the caches themselves over each
regime's calibration and timed batches.

The gate, before timing: the first, a middle and the last user's credentials get 200
and that user's name, no credential and a forged credential get 401 (bare apps: 200).
While gating, the Set-Cookie headers sent on 20 authenticated requests are counted: an
unchanged session must not be re-signed or re-written on every response.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fixtures import user_name, zipf_sequence
from harness import Budget, Progress, Unavailable, interleave_async
from variants import (
    BARE_OF_GROUP,
    VARIANTS,
    BuildContext,
    Built,
    Variant,
    asgi_request,
    cache_counts,
    make_scope,
)

__all__ = ["REGIMES", "ZIPF_LENGTH", "gate", "regime_sequence", "run_inprocess"]

#: Timed in this order: the headline first.
REGIMES = ("many", "zipf", "one")
#: Requests in one pass of the Zipf regime's sequence (then it repeats).
ZIPF_LENGTH = 1 << 17
#: Untimed requests per variant before a regime's group, so every cache starts the
#: group in that regime's steady state (more than twice the largest cache), bounded in
#: time too; ``run_inprocess(warmup=...)`` overrides both (quick runs).
WARMUP_REQUESTS = 10_000
WARMUP_SECONDS = 1.5

_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


def regime_sequence(regime: str, users: int) -> list[int]:
    """The user indexes one pass of ``regime`` presents, in order."""
    if regime == "one" or users <= 1:
        return [0]
    if regime == "many":
        return list(range(users))
    if regime == "zipf":
        return zipf_sequence(users, ZIPF_LENGTH)
    raise ValueError(f"unknown regime {regime!r}")


async def gate(variant: Variant, built: Built) -> tuple[str | None, int]:
    """(reason it fails, Set-Cookie headers over 20 authenticated requests)."""
    users = len(built.credentials)
    checked = sorted({0, users // 2, users - 1}) if users else [0]
    for i in checked:
        headers = [built.credentials[i]] if built.credentials else []
        status, _, body = await asgi_request(built.app, "GET", "/me", headers)
        if status != 200 or user_name(i if users else 0).encode() not in body:
            return f"user {i}'s credential got {status} {body[:80]!r}", 0
    if variant.role != "limit":
        for what, hdrs in (("no credential", []), ("forged credential", [built.forged])):
            status, _, body = await asgi_request(built.app, "GET", "/me", hdrs)  # type: ignore[list-item]
            if status != 401:
                return f"{what} got {status}, not 401", 0
    set_cookies = 0
    headers = [built.credential] if built.credential else []
    for _ in range(20):
        _, out, _ = await asgi_request(built.app, "GET", "/me", headers)
        set_cookies += sum(1 for k, _ in out if k.lower() == "set-cookie")
    return None, set_cookies


def _caller(
    built: Built, sequence: Sequence[int], failures: list[int]
) -> Callable[[], Awaitable[object]]:
    """One request per call, the next user of ``sequence`` each time (the same work for
    every variant: a cycle step, a list index and a scope copy)."""
    raw = [
        [(name.encode("latin-1"), value.encode("latin-1"))]
        for name, value in (built.credentials or [("", "")])
    ]
    if not built.credentials:
        raw = [[]]
        sequence = [0]
    headers = [raw[i] for i in sequence]
    following = itertools.cycle(headers).__next__
    base = make_scope("GET", "/me", [])
    app = built.app

    async def receive() -> dict[str, Any]:
        return _REQUEST

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failures[0] += 1

    async def call() -> None:
        scope = base.copy()
        scope["headers"] = following()
        scope["state"] = {}
        await app(scope, receive, send)

    return call


async def build_all(
    ctx: BuildContext, names: list[str], progress: Progress, section: str
) -> tuple[dict[str, Built], dict[str, str]]:
    built: dict[str, Built] = {}
    status: dict[str, str] = {}
    for variant in VARIANTS:
        if variant.name not in names:
            continue
        started = time.monotonic()
        try:
            built[variant.name] = await variant.build(ctx)
        except Unavailable as exc:
            status[variant.name] = f"not available yet: {exc}"
            progress.say(f"{section}: {variant.name}: not available yet ({exc})")
            continue
        except Exception as exc:
            status[variant.name] = f"build failed: {exc!r}"
            progress.say(f"{section}: {variant.name}: build failed ({exc!r})")
            continue
        progress.say(
            f"{section}: built {variant.name} with {ctx.users:,} users "
            f"({time.monotonic() - started:.1f} s)"
        )
    return built, status


def _counts(built: Built) -> dict[str, tuple[int, int]]:
    return {label: cache_counts(cache) for label, cache in built.caches().items()}


async def _warm(
    call: Callable[[], Awaitable[object]],
    requests: int = WARMUP_REQUESTS,
    seconds: float = WARMUP_SECONDS,
) -> None:
    deadline = time.monotonic() + seconds
    for n in range(requests):
        await call()
        if n % 256 == 0 and time.monotonic() > deadline:
            break


async def run_inprocess(
    ctx: BuildContext,
    budget: Budget,
    progress: Progress,
    names: list[str],
    *,
    warmup: tuple[int, float] = (WARMUP_REQUESTS, WARMUP_SECONDS),
) -> dict[str, Any]:
    progress.say(f"in-process: building {len(names)} variants, {ctx.users:,} users each")
    built, status = await build_all(ctx, names, progress, "in-process")
    rows: dict[str, dict[str, Any]] = {}
    try:
        live: list[str] = []
        for name, b in built.items():
            variant = next(v for v in VARIANTS if v.name == name)
            reason, set_cookies = await gate(variant, b)
            if reason is not None:
                status[name] = f"failed the gate: {reason}"
                progress.say(f"in-process: {name} failed the gate: {reason}")
                continue
            live.append(name)
            rows[name] = {"set_cookie_per_20": set_cookies, "regimes": {}}
        for regime in REGIMES:
            sequence = regime_sequence(regime, ctx.users)
            candidates: dict[str, Callable[[], Awaitable[object]]] = {}
            failures: dict[str, list[int]] = {}
            for name in live:
                failures[name] = [0]
                candidates[name] = _caller(built[name], sequence, failures[name])
                await _warm(candidates[name], *warmup)
                failures[name][0] = 0
            before = {name: _counts(built[name]) for name in live}
            progress.say(f"in-process: regime {regime}: timing {len(candidates)} variants")
            samples = await interleave_async(
                candidates,
                budget,
                on_round=lambda r, g=regime: progress.say(f"in-process: {g}: round {r + 1}"),
                collect_garbage=True,
            )
            for name, s in samples.items():
                after = _counts(built[name])
                hit_rates: dict[str, dict[str, float]] = {}
                for label, (hits, misses) in after.items():
                    h0, m0 = before[name].get(label, (0, 0))
                    dh, dm = hits - h0, misses - m0
                    hit_rates[label] = {
                        "hits": dh,
                        "misses": dm,
                        "rate": dh / (dh + dm) if dh + dm else float("nan"),
                    }
                rows[name]["regimes"][regime] = {
                    "cpu_us": s.cpu_median,
                    "wall_us": s.wall_median,
                    "non_200": failures[name][0],
                    "caches": hit_rates,
                    "samples": s.to_json(),
                }
    finally:
        for b in built.values():
            try:
                await b.close()
            except Exception as exc:
                progress.say(f"in-process: close failed ({exc!r})")
    for variant in VARIANTS:
        row = rows.get(variant.name)
        if row is None:
            continue
        bare = rows.get(BARE_OF_GROUP[variant.group], {}).get("regimes", {})
        for regime, cell in row["regimes"].items():
            base = bare.get(regime)
            if base is not None:
                cell["added_cpu_us"] = cell["cpu_us"] - base["cpu_us"]
                cell["added_wall_us"] = cell["wall_us"] - base["wall_us"]
    return {"rows": rows, "status": status, "users": ctx.users, "regimes": list(REGIMES)}
