"""Issue 7's targets, computed from the results of this run (never written by hand).

Each target reads numbers measured in the same run and says "met", "NOT met" or "not
measured" (the variant did not run: its module has not landed, or a gate refused it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness import median
from micro import OTHER_ALGS

__all__ = ["PEERS", "Target", "compute_targets"]

#: Which peers do "the same job" as each coatcheck HTTP variant (issue 7: "every mode
#: ahead of each peer doing the same job in the same run").
PEERS: dict[str, tuple[str, ...]] = {
    "coatcheck-jwt": ("pyjwt", "joserfc"),
    "coatcheck-hybrid": ("pyjwt", "joserfc"),
    "coatcheck-session-memory": ("starlette-session",),
    "coatcheck-session-sqlite": ("starlette-session",),
    "coatcheck-session-redis": ("starsessions-redis",),
}


@dataclass(frozen=True, slots=True)
class Target:
    source: str
    what: str
    threshold: str
    measured: str
    status: str


def _fmt(x: float, unit: str = "x") -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}{unit}"


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT met")


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fastapi_cc(results: dict[str, Any], mode: str) -> tuple[str, dict[str, Any] | None]:
    rows = _get(results, "http", "rows") or {}
    for name in (f"coatcheck-fastapi-{mode}", f"coatcheck-mw-fastapi-{mode}"):
        if name in rows:
            return name, rows[name]
    return f"coatcheck-fastapi-{mode}", None


def _per_round_ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    pairs = [
        x["rps"] / y["rps"]
        for x, y in zip(a.get("rounds", []), b.get("rounds", []), strict=False)
        if x.get("rps") and y.get("rps")
    ]
    return median(pairs)


def compute_targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []

    def add(
        source: str,
        what: str,
        threshold: str,
        value: float | None,
        check: Callable[[float], bool],
        unit: str = "x",
    ) -> None:
        ok = None if value is None or math.isnan(value) else check(value)
        shown = _fmt(math.nan if value is None else value, unit)
        out.append(Target(source, what, threshold, shown, _status(ok)))

    # -- micro: JWT verify / sign against the floor of the same run ----------------------
    for alg, limit in (("HS256", 1.3), ("ES256", 1.15), ("EdDSA", 1.15)):
        ratio = _get(results, "jwt", "verify", alg, "coatcheck", "ratio")
        add("issue 7", f"{alg} verify vs floor", f"<= {limit}x", ratio,
            lambda v, lim=limit: v <= lim)
    for alg in OTHER_ALGS:
        ratio = _get(results, "jwt", "verify", alg, "coatcheck", "ratio")
        add("issue 11", f"{alg} verify vs floor", "<= 1.15x", ratio, lambda v: v <= 1.15)
    for alg, limit in (("HS256", 1.5), ("ES256", 1.1), ("EdDSA", 1.1)):
        ratio = _get(results, "jwt", "sign", alg, "coatcheck", "ratio")
        add("baseline goal 3", f"{alg} sign vs floor", f"<= {limit}x", ratio,
            lambda v, lim=limit: v <= lim)
    for op in ("verify", "sign"):
        for alg in ("HS256", "ES256", "EdDSA"):
            group = _get(results, "jwt", op, alg) or {}
            cc = _get(group, "coatcheck", "median_us")
            peers = [group[p]["median_us"] for p in ("PyJWT", "joserfc") if p in group]
            value = None if cc is None or not peers else min(peers) / cc
            add("issue 7", f"{alg} {op}: fastest peer / coatcheck", "> 1.00x", value,
                lambda v: v > 1.0)

    # -- HTTP: ratio to bare and head-to-head with the peers -----------------------------
    rows = _get(results, "http", "rows") or {}
    for name, limit in (
        ("coatcheck-jwt", 0.60),
        ("coatcheck-hybrid", 0.60),
        ("coatcheck-session-sqlite", 0.55),
        ("coatcheck-session-redis", 0.35),
    ):
        add("issue 7", f"HTTP {name} / bare", f">= {limit:.2f}", _get(rows, name, "ratio"),
            lambda v, lim=limit: v >= lim)
    for name, peers in PEERS.items():
        for peer in peers:
            a, b = rows.get(name), rows.get(peer)
            value = None if a is None or b is None else _per_round_ratio(a, b)
            add("issue 7", f"HTTP {name} / {peer} (req/s, per round)", "> 1.00x", value,
                lambda v: v > 1.0)
    for mode in ("jwt", "redis"):
        cc_name, cc = _fastapi_cc(results, mode)
        peer = rows.get(f"fastapi-users-{mode}")
        value = None if cc is None or peer is None else _per_round_ratio(cc, peer)
        add("issue 7", f"FastAPI {cc_name} / fastapi-users-{mode}", ">= 2.00x", value,
            lambda v: v >= 2.0)
    for name in ("coatcheck-jwt", "coatcheck-hybrid"):
        add("baseline goal 14", f"HTTP {name} p99 / bare p99", "<= 1.50x",
            _get(rows, name, "p99_ratio"), lambda v: v <= 1.5)

    # -- in-process: auth CPU per request against the hand-written HS256 check ------------
    inproc = _get(results, "inprocess", "rows") or {}
    floor = _get(inproc, "floor-hs256", "added_cpu_us")
    for name, limit in (
        ("coatcheck-jwt", 1.3),
        ("coatcheck-hybrid", 1.3),
        ("coatcheck-session-sqlite", 2.0),
    ):
        added = _get(inproc, name, "added_cpu_us")
        value = None if added is None or not floor else added / floor
        add("issue 7", f"in-process {name} auth CPU / hand-written HS256's", f"<= {limit}x", value,
            lambda v, lim=limit: v <= lim)
    for name, peers in PEERS.items():
        for peer in peers:
            a = _get(inproc, name, "added_cpu_us")
            b = _get(inproc, peer, "added_cpu_us")
            value = None if a is None or b is None or a <= 0 else b / a
            add("issue 7", f"in-process {peer} auth CPU / {name}'s", "> 1.00x", value,
                lambda v: v > 1.0)

    # -- unchanged sessions: no re-sign, no re-write ----------------------------------------
    cookies = [
        row["set_cookie_per_20"]
        for name, row in inproc.items()
        if name.startswith("coatcheck-") and "set_cookie_per_20" in row
    ]
    writes = [
        s["writes_per_validate"]
        for s in (_get(results, "sessions", "stores") or {}).values()
        if isinstance(s, dict) and "writes_per_validate" in s
    ]
    seen = cookies + writes
    out.append(
        Target(
            "issue 7",
            "unchanged sessions never re-signed or re-written (Set-Cookie per 20 requests, "
            "store writes per validate)",
            "0",
            "n/a"
            if not seen
            else f"{max(seen):g} (max over {len(cookies)} apps, {len(writes)} stores)",
            _status(None if not seen else max(seen) == 0),
        )
    )
    # -- Redis: coatcheck's own CPU on top of the store GET ----------------------------------
    redis = _get(results, "sessions", "stores", "redis") or {}
    v, g = _get(redis, "validate", "cpu_us"), _get(redis, "store.get", "cpu_us")
    add("baseline goal 6", "Redis validate CPU - store.get CPU", "<= 20 µs",
        None if v is None or g is None else v - g, lambda x: x <= 20, " µs")
    return out


def targets_markdown(targets: Sequence[Target]) -> str:
    lines = ["| target | source | threshold | measured | status |", "|---|---|---|---|---|"]
    for t in targets:
        status = f"**{t.status}**" if t.status == "NOT met" else t.status
        lines.append(f"| {t.what} | {t.source} | {t.threshold} | {t.measured} | {status} |")
    return "\n".join(lines)
