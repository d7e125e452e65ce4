"""The results file: the machine described, the tables, the targets, a PNG chart, raw JSON."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import shutil
import sqlite3
import ssl
import subprocess
from pathlib import Path
from typing import Any

from profiles import profile_markdown
from stores_section import stores_markdown
from targets import compute_targets, targets_markdown, targets_summary
from variants import CONTROLS, VARIANTS

__all__ = ["PACKAGES", "load_now", "machine", "write_chart", "write_markdown"]

REGIME_TITLES = {
    "many": "many users, in turn",
    "zipf": "many users, Zipf",
    "one": "one credential",
}

PACKAGES = (
    "coatcheck", "PyJWT", "joserfc", "cryptography", "starlette", "fastapi", "fastapi-users",
    "starsessions", "itsdangerous", "uvicorn", "uvloop", "httptools", "redis", "hiredis",
    "psycopg", "psycopg-pool", "orjson", "pydantic", "matplotlib",
)


def _cpu() -> tuple[str, str]:
    model, flags = platform.processor() or "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = ", ".join(f for f in ("sha_ni", "avx2", "aes", "hypervisor") if f in have)
    except OSError:
        pass
    return model, flags


def _mem() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _redis_version(url: str) -> str:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def _postgres_version(url: str) -> str:
    try:
        import psycopg

        base = url.rpartition("/")[0]
        with psycopg.connect(f"{base}/postgres", connect_timeout=2) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def _wrk_version() -> str:
    if not shutil.which("wrk"):
        return "not installed (Python load client used)"
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False, timeout=5)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "wrk"


def load_now() -> dict[str, Any]:
    """The machine's load averages (1, 5, 15 min) and the busiest other processes now."""
    one, five, fifteen = os.getloadavg()
    busy: list[str] = []
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu=,comm=", "--sort=-pcpu"],
            capture_output=True, text=True, check=False, timeout=5,
        ).stdout.splitlines()
        busy = [" ".join(line.split()) for line in out[:4]]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"load": [round(one, 2), round(five, 2), round(fifteen, 2)], "busiest": busy}


def machine(redis_url: str, postgres_url: str) -> dict[str, Any]:
    model, flags = _cpu()
    try:
        from cryptography.hazmat.backends.openssl import backend

        crypto_ssl = backend.openssl_version_text()
    except Exception:
        crypto_ssl = "unknown"
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": model,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "memory": _mem(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl_stdlib": ssl.OPENSSL_VERSION,
        "openssl_cryptography": crypto_ssl,
        "sqlite": sqlite3.sqlite_version,
        "redis_server": _redis_version(redis_url),
        "postgresql_server": _postgres_version(postgres_url),
        "load_tool": _wrk_version(),
        "packages": versions,
    }


def _n(x: Any, fmt: str = "{:,.1f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


def _label(name: str) -> str:
    for variant in VARIANTS:
        if variant.name == name:
            return f"{variant.label} (`{name}`)"
    return name


def _jwt_tables(jwt: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for op in ("verify", "sign"):
        groups = jwt.get(op, {})
        algs = list(groups)
        if not algs:
            continue
        lines += [
            f"### JWT {op}: µs per op (median), ratio to the floor of the same run",
            "",
            "| candidate | " + " | ".join(algs) + " |",
            "|---|" + "---|" * len(algs),
        ]
        names = sorted({n for g in groups.values() for n in g}, key=_candidate_order)
        for name in names:
            cells = []
            for alg in algs:
                row = groups[alg].get(name)
                cells.append(
                    "not run" if row is None else f"{row['median_us']:.1f} µs, {row['ratio']:.2f}x"
                )
            label = "**floor** (stdlib/cryptography, complete)" if name == "floor" else name
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _candidate_order(name: str) -> tuple[int, str]:
    order = {"floor": 0, "coatcheck": 1, "PyJWT": 2, "joserfc": 3}
    return order.get(name, 9), name


def _hits(caches: dict[str, Any] | None) -> str:
    """"verified tokens 12%, JWS headers 100%" from a cache counter dict."""
    if not caches:
        return ""
    parts = []
    for label, c in caches.items():
        looked = c.get("hits", 0) + c.get("misses", 0)
        if looked:
            parts.append(f"{label} {100 * c['hits'] / looked:.0f}%")
    return ", ".join(parts)


def _load_line(meta: dict[str, Any]) -> list[str]:
    loads = meta.get("load") or {}
    if not loads:
        return []
    cells = [
        f"{when} {'/'.join(f'{x:.2f}' for x in v['load'])}"
        for when, v in loads.items()
        if isinstance(v, dict) and "load" in v
    ]
    peak = max((v["load"][0] for v in loads.values() if isinstance(v, dict) and "load" in v),
               default=0.0)
    verdict = (
        "quiet" if peak < 0.8 else "busy: other processes shared the 2 cores; read the ratios"
    )
    lines = [
        f"Load averages (1/5/15 min) at each section's start: {'; '.join(cells)}. "
        f"Verdict: {verdict}.",
        "",
    ]
    start = loads.get("start", {})
    if start.get("busiest"):
        lines += [f"Busiest processes at the start: {'; '.join(start['busiest'])}.", ""]
    return lines


def _inprocess_tables(inproc: dict[str, Any]) -> list[str]:
    rows = inproc.get("rows", {})
    regimes = inproc.get("regimes", ["many", "zipf", "one"])
    floor = {r: rows.get("floor-hs256", {}).get("regimes", {}).get(r, {}).get("added_cpu_us")
             for r in regimes}
    lines = [
        "## In-process ASGI (no server; raw scope/receive/send on uvloop)",
        "",
        f"{inproc.get('users', 0):,} users logged in per variant. Auth CPU added = the "
        "variant's CPU per request minus its group's bare app (Starlette or FastAPI) in the "
        "same regime of the same run; the garbage collector runs. \"vs HS256\" divides by the "
        "hand-written HS256 check's. Hit rates are counted by coatcheck's caches over the "
        "regime's batches (the peers keep no cache). \"token cache off\" rows are controls: "
        "the same coatcheck code with its verified-token cache off (`cache_size=0`).",
        "",
        "| variant | " + " | ".join(
            f"{REGIME_TITLES.get(r, r)}: auth CPU µs | vs HS256 | cache hits" for r in regimes
        ) + " | Set-Cookie per 20 |",
        "|---|" + "---|---|---|" * len(regimes) + "---|",
    ]
    for variant in VARIANTS:
        row = rows.get(variant.name)
        if row is None:
            reason = inproc.get("status", {}).get(variant.name)
            if reason:
                lines.append(f"| {_label(variant.name)} | {reason} |" + " |" * (3 * len(regimes)))
            continue
        cells = []
        for r in regimes:
            cell = row.get("regimes", {}).get(r, {})
            added = cell.get("added_cpu_us")
            if variant.role == "limit":
                cells += [f"(baseline, {_n(cell.get('cpu_us'))} total)", "", ""]
                continue
            rel = _n(added / floor[r], "{:.2f}x") if added is not None and floor[r] else "n/a"
            cells += [_n(added, "{:+,.1f}"), rel, _hits(cell.get("caches"))]
        lines.append(
            f"| {_label(variant.name)} | " + " | ".join(cells)
            + f" | {row.get('set_cookie_per_20', 'n/a')} |"
        )
    lines.append("")
    return lines


def _http_tables(http: dict[str, Any]) -> list[str]:
    rows = http.get("rows", {})
    regimes = http.get("regimes", ["many", "zipf", "one"])
    lines = [
        "## HTTP (uvicorn, 1 worker, uvloop + httptools; GET /me returns the name)",
        "",
        f"{http.get('users', 0):,} users logged in per server. Load: {http.get('tool')} -t1 "
        f"-c{http.get('connections', 32)} with `bench/wrk_cycle.lua` (every request the next "
        "user's credential in the regime's order, each request string built once: the same "
        f"client work for every variant), {http.get('duration')} s per variant per round "
        f"after a {http.get('warmup')} s warm-up, {http.get('rounds')} interleaved round(s) "
        "per regime. Ratios are to the group's bare app in the same round and regime "
        "(FastAPI variants to bare FastAPI), then the median. Hit rates are the server's own "
        "cache counters over the measured runs.",
        "",
        "| variant | " + " | ".join(
            f"{REGIME_TITLES.get(r, r)}: req/s | ratio to bare | p99 ms | cache hits"
            for r in regimes
        ) + " |",
        "|---|" + "---|---|---|---|" * len(regimes),
    ]
    for variant in VARIANTS:
        if not variant.http:
            continue
        row = rows.get(variant.name)
        if row is None:
            reason = http.get("status", {}).get(variant.name)
            if reason:
                lines.append(f"| {_label(variant.name)} | {reason} |" + " |" * (4 * len(regimes)))
            continue
        cells = []
        for r in regimes:
            cell = row.get(r, {})
            rng = cell.get("ratio_range")
            ratio = _n(cell.get("ratio"), "{:.2f}")
            if rng and rng[0] != rng[1]:
                ratio += f" ({rng[0]:.2f}-{rng[1]:.2f})"
            cells += [_n(cell.get("rps"), "{:,.0f}"), ratio, _n(cell.get("p99_ms"), "{:.2f}"),
                      _hits(cell.get("caches"))]
        lines.append(f"| {_label(variant.name)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Who was the bottleneck: the CPU each server and the load client used during the "
        "measured runs, as a share of one core (median over rounds). A server near 1.00 is "
        "saturated, as intended; a client far below 1.00 was not the limit.",
        "",
        "| variant | " + " | ".join(f"{REGIME_TITLES.get(r, r)}: server / client CPU"
                                   for r in regimes) + " | non-2xx / errors |",
        "|---|" + "---|" * len(regimes) + "---|",
    ]
    for variant in VARIANTS:
        row = rows.get(variant.name)
        if row is None or not variant.http:
            continue
        cells = [
            f"{_n(row.get(r, {}).get('server_cpu'), '{:.2f}')} / "
            f"{_n(row.get(r, {}).get('client_cpu'), '{:.2f}')}"
            for r in regimes
        ]
        bad = sum(row.get(r, {}).get("non2xx", 0) for r in regimes)
        errors = sum(row.get(r, {}).get("errors", 0) for r in regimes)
        lines.append(f"| `{variant.name}` | " + " | ".join(cells) + f" | {bad} / {errors} |")
    lines.append("")
    return lines


def _cell(results: dict[str, Any], section: str, name: str, regime: str) -> Any:
    if section == "http":
        return (((results.get("http") or {}).get("rows") or {}).get(name) or {}).get(regime)
    rows = ((results.get("inprocess") or {}).get("rows") or {})
    return ((rows.get(name) or {}).get("regimes") or {}).get(regime)


def summary_table(results: dict[str, Any]) -> list[str]:
    """The README's table: many users first, one credential after (the same run)."""
    ours = [("jwt", "coatcheck-jwt"), ("hybrid", "coatcheck-hybrid"),
            ("session on SQLite", "coatcheck-session-sqlite"),
            ("on Redis", "coatcheck-session-redis"),
            ("on PostgreSQL", "coatcheck-session-postgresql")]
    theirs = [("hand-written HS256", "floor-hs256"), ("joserfc", "joserfc"), ("PyJWT", "pyjwt"),
              ("SessionMiddleware", "starlette-session"),
              ("hand-written Redis lookup", "manual-redis"),
              ("starsessions", "starsessions-redis")]

    def http(names: list[tuple[str, str]], regime: str) -> str:
        parts = []
        for label, name in names:
            cell = _cell(results, "http", name, regime) or {}
            if cell.get("ratio") is not None and not math.isnan(cell["ratio"]):
                parts.append(f"{label} {cell['ratio']:.2f}")
        return ", ".join(parts) or "n/a"

    def cpu(names: list[tuple[str, str]], regime: str) -> str:
        parts = []
        for label, name in names:
            cell = _cell(results, "inprocess", name, regime) or {}
            if cell.get("added_cpu_us") is not None:
                parts.append(f"{label} {cell['added_cpu_us']:.1f} µs")
        return ", ".join(parts) or "n/a"

    def hits(regime: str) -> str:
        cell = _cell(results, "inprocess", "coatcheck-jwt", regime) or {}
        return _hits(cell.get("caches")) or "n/a"

    users = (results.get("meta") or {}).get("users", 0)
    lines = [
        "| | coatcheck | the alternatives |",
        "|---|---|---|",
        f"| **{users:,} users, each request the next one's credential**: HTTP throughput, "
        f"share of a bare Starlette endpoint | {http(ours, 'many')} | {http(theirs, 'many')} |",
        f"| same users, auth CPU added per request, in-process | {cpu(ours, 'many')} | "
        f"{cpu(theirs, 'many')} |",
        f"| same users, Zipf popularity: HTTP share of bare | {http(ours, 'zipf')} | "
        f"{http(theirs, 'zipf')} |",
        f"| cache hits, jwt: many users / Zipf / one credential | {hits('many')} / "
        f"{hits('zipf')} / {hits('one')} | (no cache) |",
        f"| one credential repeated: HTTP share of bare | {http(ours, 'one')} | "
        f"{http(theirs, 'one')} |",
    ]
    return lines


def write_markdown(path: Path, results: dict[str, Any], chart: Path | None) -> None:
    m = results["machine"]
    meta = results["meta"]
    targets = compute_targets(results)
    lines = [
        f"# coatcheck benchmarks, {meta['date']}"
        + (" (quick mode: noisy, for checking only)" if meta["quick"] else ""),
        "",
        f"Command: `{meta['command']}`. Took {meta['seconds']:.0f} s.",
        "",
        "Method: candidates interleaved in rounds (order rotated each round), each op batched "
        "to a fixed time, medians kept; every ratio compares numbers of this same run. "
        "Absolute figures drift 20-60% between runs on a shared VM; read the ratios.",
        "",
        f"Regimes: **many users, in turn** ({meta.get('users', 0):,} users, every request the "
        "next one's credential: more users than any cache holds; the headline), **many "
        "users, Zipf** (the same users, user of popularity rank r seen in proportion to 1/r) "
        "and **one credential** (the same one on every request: caches always hit; a "
        "footnote).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']} ({m['cores']} logical cores; {m['cpu_flags']}) |",
        f"| memory | {m['memory']} |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} |",
        f"| OpenSSL | stdlib: {m['openssl_stdlib']}; cryptography: {m['openssl_cryptography']} |",
        f"| SQLite / Redis / PostgreSQL | {m['sqlite']} / {m['redis_server']} / "
        f"{m['postgresql_server']} |",
        f"| load client | {m['load_tool']} |",
        "",
        *_load_line(meta),
        "| package | version |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in m["packages"].items()),
        "",
        "## Summary (the README's table)",
        "",
        *summary_table(results),
        "",
        "## Targets (issues 7 and 18), computed from this run",
        "",
        f"{targets_summary(targets)}.",
        "",
        targets_markdown(targets),
        "",
    ]
    if chart is not None:
        lines += [f"![chart]({chart.name})", ""]
    inproc = results.get("inprocess")
    if inproc:
        lines += _inprocess_tables(inproc)
    http = results.get("http")
    if http:
        lines += _http_tables(http)
    profile = results.get("profile")
    if profile:
        lines += profile_markdown(profile)
    jwt = results.get("jwt")
    if jwt:
        lines += [
            "## JWT micro-benchmarks",
            "",
            "Every library verifies the same token (12 claims, minted by PyJWT) with its key "
            "parsed once (PyJWK, joserfc key objects, coatcheck `Key`). Verify = signature, "
            "header alg, exp/nbf/iat with leeway, iss, aud, required exp/iat/jti. Sign adds "
            "iss/aud/iat/exp/jti to the same claims. Before timing, each verify must refuse a "
            "flipped signature and an expired token; each signed token must pass the floor.",
            "",
            *_jwt_tables(jwt),
        ]
        lines += [f"- {note}" for note in jwt.get("notes", [])]
        lines.append("")
    dbsc = results.get("dbsc")
    if dbsc:
        from dbsc import markdown as dbsc_markdown

        lines += dbsc_markdown(dbsc)
    sessions = results.get("sessions")
    if sessions:
        lines += [
            "## Session validation per store (`SessionManager.validate`)",
            "",
            f"{sessions.get('sessions', '?')} live sessions per store, ids cycled; one call at a "
            "time. CPU is this process's (the client's) CPU; wall adds the wait for the server.",
            "",
            "| store | validate wall µs | validate CPU µs | store.get wall µs | store.get CPU µs | "
            "manager CPU on top | store writes per validate |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind, row in sessions.get("stores", {}).items():
            if "validate" not in row:
                lines.append(f"| {kind} | {row.get('status', 'not run')} | | | | | |")
                continue
            v, g = row["validate"], row.get("store.get", {})
            lines.append(
                f"| {kind} | {_n(v['wall_us'])} | {_n(v['cpu_us'])} | {_n(g.get('wall_us'))} | "
                f"{_n(g.get('cpu_us'))} | {_n(v['cpu_us'] - g.get('cpu_us', math.nan))} | "
                f"{row.get('writes_per_validate', 'n/a')} |"
            )
        lines += [f"- {note}" for note in sessions.get("notes", [])]
        lines.append("")
    stores = results.get("stores")
    if stores:
        lines += ["## Stores and scale (bench/bench_stores.py)", ""]
        lines.append(stores_markdown(stores))
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def write_chart(path: Path, results: dict[str, Any]) -> bool:
    """HTTP ratio to bare and in-process auth CPU per regime, and JWT verify vs the floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    regimes = ("many", "zipf", "one")
    shades = {"many": 1.0, "zipf": 0.65, "one": 0.35}
    colors = {"limit": "#9e9e9e", "coatcheck": "#1565c0", "peer": "#ef6c00", "floor": "#2e7d32"}
    roles = {v.name: v.role for v in VARIANTS}
    fig, axes = plt.subplots(1, 3, figsize=(21, 9))

    def grouped(ax: Any, names: list[str], value: Any, title: str) -> None:
        height = 0.8 / len(regimes)
        for i, regime in enumerate(regimes):
            ys = [n + i * height for n in range(len(names))]
            ax.barh(ys, [value(name, regime) for name in names], height,
                    color=[colors[roles[name]] for name in names], alpha=shades[regime],
                    label=REGIME_TITLES[regime])
        ax.set_yticks([n + 0.4 - height / 2 for n in range(len(names))], names)
        ax.invert_yaxis()
        ax.set_title(title)
        ax.legend(loc="lower right")

    http_rows = (results.get("http") or {}).get("rows", {})
    names = [v.name for v in VARIANTS if v.name in http_rows and v.role != "limit"]
    grouped(axes[0], names,
            lambda n, r: http_rows[n].get(r, {}).get("ratio") or 0.0,
            "HTTP req/s, ratio to bare (FastAPI rows: to bare FastAPI)")
    axes[0].axvline(1.0, color="#616161", linewidth=0.8)

    in_rows = (results.get("inprocess") or {}).get("rows", {})
    names = [v.name for v in VARIANTS if v.name in in_rows and v.role != "limit"
             and v.name not in CONTROLS]
    grouped(axes[1], names,
            lambda n, r: in_rows[n].get("regimes", {}).get(r, {}).get("added_cpu_us") or 0.0,
            "In-process auth CPU added per request (µs)")

    ax = axes[2]
    verify = (results.get("jwt") or {}).get("verify", {})
    algs = list(verify)
    cands = ["floor", "coatcheck", "PyJWT", "joserfc"]
    width = 0.2
    palette = {"floor": "#2e7d32", "coatcheck": "#1565c0", "PyJWT": "#ef6c00", "joserfc": "#8e24aa"}
    for i, cand in enumerate(cands):
        ax.bar([a + i * width for a in range(len(algs))],
               [verify[alg].get(cand, {}).get("ratio", 0) for alg in algs],
               width, label=cand, color=palette[cand])
    ax.set_xticks([a + 1.5 * width for a in range(len(algs))], algs)
    ax.axhline(1.0, color="#616161", linewidth=0.8)
    ax.set_title("JWT verify, ratio to the floor")
    ax.legend()
    meta = results["meta"]
    fig.suptitle(f"coatcheck benchmarks {meta['date']}{' (quick)' if meta['quick'] else ''}: "
                 f"{results['machine']['cpu']}, {results['machine']['cores']} cores, "
                 f"{meta.get('users', 0):,} users")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
