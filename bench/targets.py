"""The targets of issues 7, 16 and 18, computed from the results of this run (never typed).

Each target reads numbers measured in the same run and says "met", "NOT met" or "not
measured" (the variant did not run: its module has not landed, or a gate refused it).
Issue 18's targets are judged on the many-users regimes (``many``: every user in turn,
more users than any cache holds; ``zipf``: skewed popularity); "ahead of every peer"
is judged in every regime, the one-credential one included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness import median
from micro import OTHER_ALGS

__all__ = ["MANY_USERS", "PEERS", "Target", "compute_targets", "targets_markdown"]

#: The regimes issue 18's targets are judged in (the headline first).
MANY_USERS = ("many", "zipf")
ALL_REGIMES = ("many", "zipf", "one")

#: Which peers do "the same job" as each coatcheck variant ("ahead of every peer row").
PEERS: dict[str, tuple[str, ...]] = {
    "coatcheck-jwt": ("pyjwt", "joserfc"),
    "coatcheck-hybrid": ("pyjwt", "joserfc"),
    "coatcheck-session-memory": ("starlette-session",),
    "coatcheck-session-sqlite": ("starlette-session",),
    "coatcheck-session-redis": ("starsessions-redis",),
    "coatcheck-fastapi-jwt": ("fastapi-users-jwt",),
    "coatcheck-mw-fastapi-jwt": ("fastapi-users-jwt",),
    "coatcheck-fastapi-redis": ("fastapi-users-redis",),
    "coatcheck-mw-fastapi-redis": ("fastapi-users-redis",),
}

_REGIME_LABEL = {"many": "many users", "zipf": "many users, Zipf", "one": "one credential"}


@dataclass(frozen=True, slots=True)
class Target:
    source: str
    what: str
    threshold: str
    measured: str
    status: str
    regime: str = ""


def _fmt(x: float | None, unit: str = "x") -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}{unit}"


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT met")


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _per_round_ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """Median over rounds of a's req/s over b's (same round, same regime)."""
    if a is None or b is None:
        return None
    pairs = [
        x["rps"] / y["rps"]
        for x, y in zip(a.get("rounds", []), b.get("rounds", []), strict=False)
        if x.get("rps") and y.get("rps")
    ]
    return median(pairs) if pairs else None


def compute_targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []

    def add(
        source: str,
        what: str,
        threshold: str,
        value: float | None,
        check: Callable[[float], bool],
        unit: str = "x",
        regime: str = "",
    ) -> None:
        ok = None if value is None or math.isnan(value) else check(value)
        out.append(Target(source, what, threshold, _fmt(value, unit), _status(ok), regime))

    inproc = _get(results, "inprocess", "rows") or {}
    http = _get(results, "http", "rows") or {}

    def added(name: str, regime: str) -> float | None:
        value = _get(inproc, name, "regimes", regime, "added_cpu_us")
        return None if value is None else float(value)

    def ratio_over(name: str, other: str, regime: str) -> float | None:
        a, b = added(name, regime), added(other, regime)
        return None if a is None or b is None or b <= 0 else a / b

    # -- issue 18: in-process auth CPU, many-users regimes ----------------------------
    for regime in MANY_USERS:
        label = _REGIME_LABEL[regime]
        for name in ("coatcheck-jwt", "coatcheck-hybrid"):
            add("issue 18", f"in-process {name} auth CPU / hand-written HS256's", "<= 1.30x",
                ratio_over(name, "floor-hs256", regime), lambda v: v <= 1.3, regime=label)
        add("issue 18", "in-process coatcheck-session-sqlite auth CPU / SessionMiddleware's",
            "<= 1.00x", ratio_over("coatcheck-session-sqlite", "starlette-session", regime),
            lambda v: v <= 1.0, regime=label)
        add("issue 18", "in-process coatcheck-session-redis auth CPU / hand-written Redis GET's",
            "<= 1.00x", ratio_over("coatcheck-session-redis", "manual-redis", regime),
            lambda v: v <= 1.0, regime=label)
    # -- issue 18: a cache never costs more than no cache (the JWS header cache hits for
    # every user: its hit rate is in the tables) -----------------------------------------
    for regime in ALL_REGIMES:
        for name in ("coatcheck-jwt", "coatcheck-hybrid"):
            add("issue 18", f"in-process {name} auth CPU, token cache on / off", "<= 1.00x",
                ratio_over(name, f"{name}-nocache", regime), lambda v: v <= 1.0,
                regime=_REGIME_LABEL[regime])
    # -- issue 18: HTTP share of bare, many-users regimes ---------------------------------
    for regime in MANY_USERS:
        label = _REGIME_LABEL[regime]
        for name, limit in (
            ("coatcheck-jwt", 0.60), ("coatcheck-hybrid", 0.60), ("coatcheck-session-redis", 0.40)
        ):
            add("issue 18", f"HTTP {name} / bare", f">= {limit:.2f}",
                _get(http, name, regime, "ratio"), lambda v, lim=limit: v >= lim, regime=label)
        add("issue 18", "HTTP coatcheck-session-sqlite / SessionMiddleware (req/s, per round)",
            ">= 1.00x",
            _per_round_ratio(_get(http, "coatcheck-session-sqlite", regime),
                             _get(http, "starlette-session", regime)),
            lambda v: v >= 1.0, regime=label)
    # -- issues 7 and 18: ahead of every peer, every regime -------------------------------
    for regime in ALL_REGIMES:
        label = _REGIME_LABEL[regime]
        for name, peers in PEERS.items():
            for peer in peers:
                a, b = added(name, regime), added(peer, regime)
                value = None if a is None or b is None or a <= 0 else b / a
                add("issue 18", f"in-process {peer} auth CPU / {name}'s", "> 1.00x", value,
                    lambda v: v > 1.0, regime=label)
        for name, peers in PEERS.items():
            for peer in peers:
                value = _per_round_ratio(_get(http, name, regime), _get(http, peer, regime))
                threshold = 2.0 if "fastapi" in name else 1.0
                add("issue 7", f"HTTP {name} / {peer} (req/s, per round)",
                    f">= {threshold:.2f}x" if threshold > 1 else "> 1.00x", value,
                    (lambda v, t=threshold: v >= t) if threshold > 1 else (lambda v: v > 1.0),
                    regime=label)
    # -- issue 7: p99 against bare, many users --------------------------------------------
    for name in ("coatcheck-jwt", "coatcheck-hybrid"):
        add("baseline goal 14", f"HTTP {name} p99 / bare p99", "<= 1.50x",
            _get(http, name, "many", "p99_ratio"), lambda v: v <= 1.5, regime="many users")

    # -- micro: JWT verify / sign against the floor of the same run ----------------------
    for alg, limit in (("HS256", 1.3), ("ES256", 1.15), ("EdDSA", 1.15)):
        ratio = _get(results, "jwt", "verify", alg, "coatcheck", "ratio")
        add("issue 7", f"{alg} verify vs floor", f"<= {limit}x", ratio,
            lambda v, lim=limit: v <= lim, regime="micro")
    for alg in OTHER_ALGS:
        ratio = _get(results, "jwt", "verify", alg, "coatcheck", "ratio")
        add("issue 11", f"{alg} verify vs floor", "<= 1.15x", ratio, lambda v: v <= 1.15,
            regime="micro")
    for alg, limit in (("HS256", 1.5), ("ES256", 1.1), ("EdDSA", 1.1)):
        ratio = _get(results, "jwt", "sign", alg, "coatcheck", "ratio")
        add("baseline goal 3", f"{alg} sign vs floor", f"<= {limit}x", ratio,
            lambda v, lim=limit: v <= lim, regime="micro")
    for op in ("verify", "sign"):
        for alg in ("HS256", "ES256", "EdDSA"):
            group = _get(results, "jwt", op, alg) or {}
            cc = _get(group, "coatcheck", "median_us")
            peers = [group[p]["median_us"] for p in ("PyJWT", "joserfc") if p in group]
            value = None if cc is None or not peers else min(peers) / cc
            add("issue 7", f"{alg} {op}: fastest peer / coatcheck", "> 1.00x", value,
                lambda v: v > 1.0, regime="micro")

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
            "one credential",
        )
    )
    # -- issue 16: a DPoP-bound request over a bearer one, per replay store -----------------
    clients = _get(results, "dpop", "clients")
    for clock in ("cpu", "wall"):
        for kind, row in (_get(results, "dpop", "rows", clock) or {}).items():
            add("issue 16", f"DPoP extra over bearer / (ES256 verify + {kind} replay write), "
                f"{clock} time", "<= 1.00x", row.get("extra_over_allowed"),
                lambda v: v <= 1.0, regime=f"{clients:,} DPoP clients")
    # -- Redis: coatcheck's own CPU on top of the store GET ----------------------------------
    redis = _get(results, "sessions", "stores", "redis") or {}
    v, g = _get(redis, "validate", "cpu_us"), _get(redis, "store.get", "cpu_us")
    add("baseline goal 6", "Redis validate CPU - store.get CPU", "<= 20 µs",
        None if v is None or g is None else v - g, lambda x: x <= 20, " µs", regime="micro")
    # -- issue 14: Django and DRF (bench/django_bench.py, its own ratios) -------------------
    for t in _get(results, "django", "targets") or []:
        limit = float(t["threshold"])
        sign = "> " if t["strict"] else ">= "
        add("issue 14", t["what"], f"{sign}{limit:.2f}x", t["ratio"],
            (lambda x, lim=limit: x > lim) if t["strict"] else (lambda x, lim=limit: x >= lim),
            regime=_REGIME_LABEL.get(t["regime"], t["regime"]))
    return out


def targets_markdown(targets: Sequence[Target]) -> str:
    lines = [
        "| regime | target | source | threshold | measured | status |",
        "|---|---|---|---|---|---|",
    ]
    for t in targets:
        status = f"**{t.status}**" if t.status == "NOT met" else t.status
        lines.append(
            f"| {t.regime} | {t.what} | {t.source} | {t.threshold} | {t.measured} | {status} |"
        )
    return "\n".join(lines)


def targets_summary(targets: Sequence[Target]) -> str:
    """One line: how many targets are met, not met and not measured."""
    counts = {s: sum(1 for t in targets if t.status == s) for s in ("met", "NOT met",
                                                                    "not measured")}
    return (
        f"{counts['met']} met, {counts['NOT met']} not met, "
        f"{counts['not measured']} not measured"
    )
