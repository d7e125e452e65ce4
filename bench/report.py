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

from stores_section import stores_markdown
from targets import compute_targets, targets_markdown
from variants import VARIANTS

__all__ = ["PACKAGES", "machine", "write_chart", "write_markdown"]

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


def write_markdown(path: Path, results: dict[str, Any], chart: Path | None) -> None:
    m = results["machine"]
    meta = results["meta"]
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
        "| package | version |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in m["packages"].items()),
        "",
        "## Targets (issue 7), computed from this run",
        "",
        targets_markdown(compute_targets(results)),
        "",
    ]
    if chart is not None:
        lines += [f"![chart]({chart.name})", ""]
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
    inproc = results.get("inprocess")
    if inproc:
        lines += [
            "## In-process ASGI (no server; raw scope/receive/send on uvloop)",
            "",
            "Auth CPU added = the variant's CPU per request minus its group's bare app "
            "(Starlette or FastAPI) in the same run.",
            "",
            "| variant | CPU µs/request | wall µs/request | auth CPU added µs | "
            "vs hand-written HS256 | Set-Cookie per 20 requests |",
            "|---|---|---|---|---|---|",
        ]
        floor = inproc["rows"].get("floor-hs256", {}).get("added_cpu_us")
        for variant in VARIANTS:
            row = inproc["rows"].get(variant.name)
            if row is None or "cpu_us" not in row:
                reason = inproc["status"].get(variant.name)
                if reason:
                    lines.append(f"| {_label(variant.name)} | {reason} | | | | |")
                continue
            added = row.get("added_cpu_us")
            rel = _n(added / floor, "{:.2f}x") if added is not None and floor else "n/a"
            if variant.role == "limit":
                added_s, rel = "(baseline)", ""
            else:
                added_s = _n(added, "{:+,.1f}")
            lines.append(
                f"| {_label(variant.name)} | {_n(row['cpu_us'])} | {_n(row['wall_us'])} | "
                f"{added_s} | {rel} | {row.get('set_cookie_per_20', 'n/a')} |"
            )
        lines.append("")
    http = results.get("http")
    if http:
        lines += [
            "## HTTP (uvicorn, 1 worker, uvloop + httptools; GET /me returns the name)",
            "",
            f"Load: {http.get('tool')} -t1 -c{http.get('connections', 32)}, "
            f"{http.get('duration')} s per variant per round after a {http.get('warmup')} s "
            f"warm-up, {http.get('rounds')} interleaved round(s). Ratios are to the group's bare "
            "app in the same round (FastAPI variants to bare FastAPI), then the median.",
            "",
            "| variant | req/s | p50 ms | p99 ms | ratio to bare | ratio range | p99 / bare p99 "
            "| non-2xx / errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for variant in VARIANTS:
            row = http["rows"].get(variant.name)
            if row is None:
                reason = http["status"].get(variant.name)
                if reason:
                    lines.append(f"| {_label(variant.name)} | {reason} | | | | | | |")
                continue
            rng = row.get("ratio_range")
            lines.append(
                f"| {_label(variant.name)} | {_n(row.get('rps'), '{:,.0f}')} | "
                f"{_n(row.get('p50_ms'), '{:.2f}')} | {_n(row.get('p99_ms'), '{:.2f}')} | "
                f"{_n(row.get('ratio'), '{:.2f}')} | "
                f"{'' if not rng else f'{rng[0]:.2f}-{rng[1]:.2f}'} | "
                f"{_n(row.get('p99_ratio'), '{:.2f}')} | "
                f"{row.get('non2xx', 0)} / {row.get('errors', 0)} |"
            )
        lines.append("")
    stores = results.get("stores")
    if stores:
        lines += ["## Stores and scale (bench/bench_stores.py)", ""]
        lines.append(stores_markdown(stores))
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def write_chart(path: Path, results: dict[str, Any]) -> bool:
    """Three panels: HTTP ratio to bare, in-process auth CPU, JWT verify vs the floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"limit": "#9e9e9e", "coatcheck": "#1565c0", "peer": "#ef6c00", "floor": "#2e7d32"}
    fig, axes = plt.subplots(1, 3, figsize=(19, 7))
    roles = {v.name: v.role for v in VARIANTS}

    http_rows = (results.get("http") or {}).get("rows", {})
    names = [v.name for v in VARIANTS if v.name in http_rows and v.role != "limit"]
    ax = axes[0]
    ax.barh(names, [http_rows[n].get("ratio", 0) for n in names],
            color=[colors[roles[n]] for n in names])
    ax.invert_yaxis()
    ax.set_title("HTTP req/s, ratio to bare (FastAPI rows: to bare FastAPI)")
    ax.axvline(1.0, color="#616161", linewidth=0.8)

    in_rows = (results.get("inprocess") or {}).get("rows", {})
    names = [
        v.name
        for v in VARIANTS
        if "added_cpu_us" in in_rows.get(v.name, {}) and v.role != "limit"
    ]
    ax = axes[1]
    ax.barh(names, [in_rows[n]["added_cpu_us"] for n in names],
            color=[colors[roles[n]] for n in names])
    ax.invert_yaxis()
    ax.set_title("In-process auth CPU added per request (µs)")

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
                 f"{results['machine']['cpu']}, {results['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
