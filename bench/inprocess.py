"""In-process ASGI section: the CPU each variant adds per request, with no HTTP server.

Every variant is built in one uvloop loop and called with raw scope/receive/send, the
variants interleaved in rounds. "Auth CPU added" is a variant's CPU per request minus its
own group's bare app in the same run (Starlette or FastAPI): far less noisy than HTTP.

The gate, before timing: the credential gets 200 and the name, no credential and a forged
credential get 401 (bare apps: 200). While gating, the Set-Cookie headers sent on 20
authenticated requests are counted: an unchanged session must not be re-signed or
re-written on every response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fixtures import USER_NAME
from harness import Budget, Progress, Unavailable, interleave_async
from variants import (
    BARE_OF_GROUP,
    VARIANTS,
    BuildContext,
    Built,
    Variant,
    asgi_request,
    make_scope,
)

__all__ = ["gate", "run_inprocess"]

_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def gate(variant: Variant, built: Built) -> tuple[str | None, int]:
    """(reason it fails, Set-Cookie headers over 20 authenticated requests)."""
    headers = [built.credential] if built.credential else []
    status, _, body = await asgi_request(built.app, "GET", "/me", headers)
    if status != 200 or USER_NAME.encode() not in body:
        return f"credential got {status} {body[:80]!r}", 0
    if variant.role != "limit":
        for what, hdrs in (("no credential", []), ("forged credential", [built.forged])):
            status, _, body = await asgi_request(built.app, "GET", "/me", hdrs)  # type: ignore[list-item]
            if status != 401:
                return f"{what} got {status}, not 401", 0
    set_cookies = 0
    for _ in range(20):
        _, out, _ = await asgi_request(built.app, "GET", "/me", headers)
        set_cookies += sum(1 for k, _ in out if k.lower() == "set-cookie")
    return None, set_cookies


def _caller(built: Built, failures: list[int]) -> Callable[[], Awaitable[object]]:
    raw = (
        [(built.credential[0].encode("latin-1"), built.credential[1].encode("latin-1"))]
        if built.credential
        else []
    )
    base = make_scope("GET", "/me", raw)
    app = built.app

    async def receive() -> dict[str, Any]:
        return _REQUEST

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failures[0] += 1

    async def call() -> None:
        scope = base.copy()
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
        try:
            built[variant.name] = await variant.build(ctx)
        except Unavailable as exc:
            status[variant.name] = f"not available yet: {exc}"
            progress.say(f"{section}: {variant.name}: not available yet ({exc})")
        except Exception as exc:
            status[variant.name] = f"build failed: {exc!r}"
            progress.say(f"{section}: {variant.name}: build failed ({exc!r})")
    return built, status


async def run_inprocess(
    ctx: BuildContext, budget: Budget, progress: Progress, names: list[str]
) -> dict[str, Any]:
    progress.say(f"in-process: building {len(names)} variants")
    built, status = await build_all(ctx, names, progress, "in-process")
    rows: dict[str, dict[str, Any]] = {}
    candidates: dict[str, Callable[[], Awaitable[object]]] = {}
    failures: dict[str, list[int]] = {}
    try:
        for name, b in built.items():
            variant = next(v for v in VARIANTS if v.name == name)
            reason, set_cookies = await gate(variant, b)
            if reason is not None:
                status[name] = f"failed the gate: {reason}"
                progress.say(f"in-process: {name} failed the gate: {reason}")
                continue
            failures[name] = [0]
            candidates[name] = _caller(b, failures[name])
            rows[name] = {"set_cookie_per_20": set_cookies}
        progress.say(f"in-process: timing {len(candidates)} variants, interleaved")
        samples = await interleave_async(
            candidates, budget, on_round=lambda r: progress.say(f"in-process: round {r + 1}")
        )
    finally:
        for b in built.values():
            try:
                await b.close()
            except Exception as exc:
                progress.say(f"in-process: close failed ({exc!r})")
    for name, s in samples.items():
        rows[name].update(
            cpu_us=s.cpu_median, wall_us=s.wall_median, non_200=failures[name][0],
            samples=s.to_json(),
        )
    for variant in VARIANTS:
        row = rows.get(variant.name)
        if row is None or "cpu_us" not in row:
            continue
        bare = rows.get(BARE_OF_GROUP[variant.group], {})
        if "cpu_us" in bare:
            row["added_cpu_us"] = row["cpu_us"] - bare["cpu_us"]
            row["added_wall_us"] = row["wall_us"] - bare["wall_us"]
    return {"rows": rows, "status": status}
