"""Scale section (issue 15): the cluster read path, PostgreSQL's driver, WAIT, a million
sessions on a Redis Cluster, bytes per session there, and the demo under 1 vs 2 workers.

    .venv/bin/python bench/scale.py [--quick] [--sessions N] [--parts a,b,...]

Needs the Redis Cluster and Sentinel group of ``.ci/services`` (their URLs from
``.ci/state/services.env`` or ``COATCHECK_TEST_REDIS_CLUSTER`` /
``COATCHECK_TEST_REDIS_SENTINEL``), Redis on 6379 and PostgreSQL on 5432. Prints the
Markdown section (``bench/run.py --sections scale`` puts it in the results file).

Parts:

* ``read``: the per-request read, 32 concurrent readers over many distinct sessions:
  one server (lean GET), the cluster through coatcheck's lean path, the same GETs
  through redis-py's ``RedisCluster``, and Sentinel (the lean GET on the master the sentinels name).
* ``postgres``: the lookup through psycopg's async pool (the store before issue 15)
  and through the asyncpg store.
* ``wait``: a session creation with and without ``WAIT 1`` (cluster and Sentinel).
* ``million``: per-request read latency and throughput on the cluster with 10
  thousand live sessions, then with ``--sessions`` (1 million) live ones; and Redis
  bytes per session there (4 sessions per user, the per-user index included).
* ``workers``: ``coatcheck demo --workers N``, N = 1 and 2, under HTTP load (session
  mode on Redis and on the cluster, hybrid on Redis): the throughput ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from coatcheck.sessions.ids import new_token, session_id  # noqa: E402
from coatcheck.sessions.record import SessionRecord  # noqa: E402
from coatcheck.stores import PostgresStore, RedisStore  # noqa: E402

PARTS = ("read", "postgres", "wait", "million", "workers")
REDIS = os.environ.get("COATCHECK_BENCH_REDIS", "redis://127.0.0.1:6379/13")
POSTGRES = os.environ.get(
    "COATCHECK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/coatcheck_bench"
)
PASSWORD = "correct horse battery"


def topology() -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if k.startswith("COATCHECK_TEST_REDIS_")}
    env = ROOT / ".ci" / "state" / "services.env"
    if env.exists():
        for line in env.read_text().splitlines():
            key, _, value = line.partition("=")
            found.setdefault(key, value)
    if "COATCHECK_TEST_REDIS_CLUSTER" not in found:
        raise SystemExit("no Redis Cluster: start it with .ci/services")
    return found


def _record(now: float, user: str, data: dict[str, Any] | None = None) -> SessionRecord:
    sid = session_id(new_token(user))
    assert sid is not None
    return SessionRecord(
        id=sid, user_id=user, created_at=now, last_seen=now, expires_at=now + 7 * 86_400,
        absolute_expires_at=now + 30 * 86_400, auth_time=now,
        data={"cart": [1, 2, 3]} if data is None else data,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ip="203.0.113.7",
    )  # fmt: skip


def _padding(now: float, user: str) -> dict[str, Any]:
    """Data that makes the stored value 300 bytes (as bench/bench_stores.py measures)."""
    from coatcheck.stores.redis import _encode

    overhead = len(_encode(_record(now, user, {"d": ""}), bytes(16)))
    return {"d": "x" * (300 - overhead)}


async def _drive(
    op: Callable[[int], Awaitable[Any]], seconds: float, concurrency: int = 32
) -> dict[str, float]:
    """Run ``op(i)`` from ``concurrency`` tasks for ``seconds``: rate, CPU and latency."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        i = w
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t0)
            i += concurrency

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    n = len(latencies)
    return {
        "ops": n, "rate": n / wall, "cpu_us": 1e6 * cpu / n,
        "p50_ms": 1e3 * latencies[n // 2], "p99_ms": 1e3 * latencies[int(n * 0.99)],
    }  # fmt: skip


async def _fill(store: RedisStore, count: int, per_user: int = 4) -> list[str]:
    """``count`` live sessions, ``per_user`` per user, created concurrently."""
    now = time.time()
    ids: list[str] = []
    run = secrets.token_hex(3)
    data = _padding(now, f"bench-{run}-{0:08d}")
    records = [_record(now, f"bench-{run}-{i // per_user:08d}", data) for i in range(count)]
    sem = asyncio.Semaphore(64)

    async def one(record: SessionRecord) -> None:
        async with sem:
            await store.create(record)

    for start in range(0, count, 20_000):
        batch = records[start : start + 20_000]
        await asyncio.gather(*(one(r) for r in batch))
        ids += [r.id for r in batch]
    return ids


def _reader(store: Any, ids: list[str], now: float) -> Callable[[int], Awaitable[Any]]:
    def read(i: int) -> Awaitable[Any]:
        return store.get(ids[i % len(ids)], now)  # type: ignore[no-any-return]

    return read


def _raw_reader(client: Any, keys: list[bytes]) -> Callable[[int], Awaitable[Any]]:
    def read(i: int) -> Awaitable[Any]:
        return client.get(keys[i % len(keys)])  # type: ignore[no-any-return]

    return read


# -- parts ------------------------------------------------------------------------------


async def part_read(seconds: float, sessions: int) -> list[dict[str, Any]]:
    import redis.asyncio as aioredis

    urls = topology()
    rows = []
    now = time.time()
    for label, url in (
        ("one server, lean GET", REDIS + "?prefix=ccbr:"),
        ("cluster, coatcheck lean path", urls["COATCHECK_TEST_REDIS_CLUSTER"] + "?prefix=ccbr:"),
        ("Sentinel, lean GET", urls["COATCHECK_TEST_REDIS_SENTINEL"] + "?prefix=ccbr:"),
    ):
        store = RedisStore.from_url(url)
        ids = await _fill(store, sessions)
        random.shuffle(ids)
        read = _reader(store, ids, now)
        await _drive(read, 0.3)  # warm
        result = await _drive(read, seconds)
        rows.append({"what": label, **result})
        if label.startswith("cluster"):
            # The same GETs (same keys) through redis-py's own cluster client.
            seeds = urls["COATCHECK_TEST_REDIS_CLUSTER"].split("://")[1].strip("/").split(",")
            host, port = seeds[0].rsplit(":", 1)
            client = aioredis.RedisCluster(host=host, port=int(port))
            await client.initialize()
            keys = [store._session_key(sid)[0] for sid in ids]  # type: ignore[index]
            read = _raw_reader(client, keys)
            await _drive(read, 0.3)
            result = await _drive(read, seconds)
            rows.append({"what": "cluster, redis-py RedisCluster GET", **result})
            await client.aclose()
        await store.close()
    return rows


async def part_postgres(seconds: float, sessions: int) -> list[dict[str, Any]]:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    table = f"ccb_scale_{secrets.token_hex(3)}"
    store = PostgresStore.from_url(f"{POSTGRES}?table={table}")
    now = time.time()
    ids = []
    for i in range(sessions):
        record = _record(now, f"pg-{i}")
        await store.create(record)
        ids.append(record.id)
    random.shuffle(ids)
    rows = []
    await _drive(lambda i: store.get(ids[i % len(ids)], now), 0.3)
    rows.append({"what": "asyncpg store (free-list pool)",
                 **await _drive(lambda i: store.get(ids[i % len(ids)], now), seconds)})  # fmt: skip
    # The lookup as the store made it before: psycopg's async pool, prepared statement.
    pool = AsyncConnectionPool(
        POSTGRES, open=False, kwargs={"autocommit": True}, min_size=1, max_size=10
    )
    await pool.open()
    query = (
        f"SELECT * FROM {table} WHERE id = %s AND expires_at > %s "  # noqa: S608
        "AND absolute_expires_at > %s"
    )

    async def old(i: int) -> Any:
        async with pool.connection() as conn:
            cur = await conn.execute(query, (ids[i % len(ids)], now, now), prepare=True)
            return await cur.fetchone()

    await _drive(old, 0.3)
    rows.append({"what": "psycopg AsyncConnectionPool (before)", **await _drive(old, seconds)})
    await pool.close()
    await store.close()
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}; DROP TABLE {table}_attempts")
        conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))
    return rows


async def part_wait(count: int) -> list[dict[str, Any]]:
    urls = topology()
    rows = []
    for label, base in (
        ("cluster", urls["COATCHECK_TEST_REDIS_CLUSTER"]),
        ("Sentinel", urls["COATCHECK_TEST_REDIS_SENTINEL"]),
    ):
        for wait in (0, 1):
            store = RedisStore.from_url(f"{base}?prefix=ccbw:&wait={wait}")
            now = time.time()
            records = [_record(now, f"w-{i}") for i in range(count)]
            await store.create(records[0])
            times = []
            for record in records[1:]:
                t0 = time.perf_counter()
                await store.create(record)
                times.append(time.perf_counter() - t0)
            times.sort()
            rows.append({
                "what": f"{label}, wait={wait}", "p50_ms": 1e3 * statistics.median(times),
                "p99_ms": 1e3 * times[int(len(times) * 0.99)],
            })  # fmt: skip
            await store.close()
    return rows


async def _used_memory(url: str) -> int:
    import redis.asyncio as aioredis

    total = 0
    for seed in url.split("://")[1].strip("/").split(","):
        host, port = seed.rsplit(":", 1)
        client = aioredis.Redis(host=host, port=int(port))
        nodes = await client.cluster("slots")
        await client.aclose()
        for entry in nodes:
            master = aioredis.Redis(host=entry[2][0], port=entry[2][1])
            total += int((await master.info("memory"))["used_memory"])
            await master.aclose()
        break
    return total


async def part_million(seconds: float, small: int, large: int) -> list[dict[str, Any]]:
    url = topology()["COATCHECK_TEST_REDIS_CLUSTER"]
    prefix = f"ccbm{secrets.token_hex(2)}:"
    store = RedisStore.from_url(f"{url}?prefix={prefix}")
    now = time.time()
    rows = []
    before = await _used_memory(url)
    ids = await _fill(store, small)
    grown = await _used_memory(url)
    bytes_small = (grown - before) / small
    for label, population in ((f"{small:,} live", small), (f"{large:,} live", large)):
        if population > len(ids):
            ids += await _fill(store, population - len(ids))
        # As many distinct sessions either way (far more than the decoded-record cache
        # holds), so the client does the same work and only the population differs.
        sample = random.sample(ids, min(len(ids), small))
        read = _reader(store, sample, now)
        await _drive(read, 0.5)
        # Three rounds, the median of each figure: the machine is shared.
        runs = [await _drive(read, seconds) for _ in range(3)]
        result = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append({"what": label, **result})
    bytes_large = (await _used_memory(url) - before) / len(ids)
    rows.append({"what": "bytes", "small": bytes_small, "large": bytes_large})
    # Tidy up: the sessions go with the prefix (SCAN + DEL on every master).
    from coatcheck.stores._redis_io import ClusterIO

    io = store._io
    assert isinstance(io, ClusterIO)
    batch: list[bytes] = []
    async for key in io.scan(prefix.encode() + b"*"):
        batch.append(key)
    for key in batch:
        await io.call(b"UNLINK", key)
    await store.close()
    return rows


def _load(port: int, token: str, seconds: int) -> float:
    header = f"Authorization: Bearer {token}"
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{seconds}s", "-H", header,
             f"http://127.0.0.1:{port}/api/me"],
            capture_output=True, text=True, timeout=seconds + 30, check=False,
        )  # fmt: skip
        for line in out.stdout.splitlines():
            if line.startswith("Requests/sec:"):
                return float(line.split()[1])
        return float("nan")
    import json

    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--path", "/api/me",
         "--duration", str(seconds), "--connections", "32", "--header", header],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    )  # fmt: skip
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rps"])


def _demo(mode: str, store: str, workers: int, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    sys.path.insert(0, str(ROOT))
    from tests._net import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coatcheck", "demo", "--mode", mode, "--store", store,
         "--workers", str(workers), "--port", str(port), "--alg", "HS256"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(1.0 if workers > 1 else 0.2)  # every worker up
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the demo did not start")


def part_workers(seconds: int, rounds: int) -> list[dict[str, Any]]:
    import tempfile

    import httpx

    cluster = topology()["COATCHECK_TEST_REDIS_CLUSTER"]
    cases = [
        ("session, Redis", "session", f"{REDIS}?prefix=ccbd:"),
        ("session, cluster", "session", f"{cluster}?prefix=ccbd:"),
        ("hybrid, Redis", "hybrid", f"{REDIS}?prefix=ccbd:"),
    ]
    rows = []
    for label, mode, store in cases:
        rates: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for workers in (1, 2):
                with tempfile.TemporaryDirectory(prefix="cc-bench-workers-") as tmp:
                    proc, port = _demo(mode, store, workers, Path(tmp))
                    try:
                        base = f"http://127.0.0.1:{port}"
                        user = f"bench{secrets.token_hex(3)}"
                        httpx.post(base + "/api/register",
                                   json={"username": user, "password": PASSWORD, "name": "B"})
                        token = httpx.post(
                            base + "/api/login", json={"username": user, "password": PASSWORD}
                        ).json()["token"]
                        _load(port, token, 1)  # warm-up
                        rates[workers].append(_load(port, token, seconds))
                    finally:
                        proc.terminate()
                        proc.wait(15)
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        rows.append({"what": label, "one": one, "two": two, "ratio": two / one})
    return rows


# -- report ---------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    out = ["## Scale (issue 15)", ""]
    meta = results.get("meta", {})
    out.append(
        f"`bench/scale.py`; {meta.get('note', '')} Shared 2-core machine: absolute numbers "
        "are noisy, compare rows of one table."
    )
    if "read" in results:
        out += ["", "### Per-request read (32 concurrent readers, distinct sessions)", "",
                "| path | reads/s | client CPU µs/read | p50 ms | p99 ms |",
                "|---|---|---|---|---|"]
        for r in results["read"]:
            out.append(f"| {r['what']} | {r['rate']:,.0f} | {r['cpu_us']:.1f} | "
                       f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    if "postgres" in results:
        out += ["", "### PostgreSQL lookup (32 concurrent, distinct sessions)", "",
                "| driver | lookups/s | client CPU µs/lookup | p50 ms | p99 ms |",
                "|---|---|---|---|---|"]
        for r in results["postgres"]:
            out.append(f"| {r['what']} | {r['rate']:,.0f} | {r['cpu_us']:.1f} | "
                       f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    if "wait" in results:
        out += ["", "### Session creation with WAIT 1 (sequential)", "",
                "| store | p50 ms | p99 ms |", "|---|---|---|"]
        for r in results["wait"]:
            out.append(f"| {r['what']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    if "million" in results:
        rows = [r for r in results["million"] if r["what"] != "bytes"]
        size = next(r for r in results["million"] if r["what"] == "bytes")
        out += ["", "### Redis Cluster: live sessions vs per-request read", "",
                "| live sessions | reads/s | client CPU µs/read | p50 ms | p99 ms |",
                "|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r['what']} | {r['rate']:,.0f} | {r['cpu_us']:.1f} | "
                       f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
        if len(rows) == 2:
            out.append("")
            out.append(f"Large / small: median {rows[1]['p50_ms'] / rows[0]['p50_ms']:.2f}x, "
                       f"p99 {rows[1]['p99_ms'] / rows[0]['p99_ms']:.2f}x (target <= 1.2x).")
        out.append("")
        out.append("Redis bytes per session on the cluster (masters' used_memory growth, "
                   "300-byte stored records, 4 sessions per user, index included): "
                   f"{size['small']:.0f} B at {rows[0]['what'].split()[0]}, "
                   f"{size['large']:.0f} B at {rows[-1]['what'].split()[0]} (target <= 520 B).")
    if "workers" in results:
        out += ["", "### Demo under `--workers 2` vs 1 (HTTP /api/me, 32 connections)", "",
                "| mode, store | 1 worker req/s | 2 workers req/s | ratio |", "|---|---|---|---|"]
        for r in results["workers"]:
            out.append(f"| {r['what']} | {r['one']:,.0f} | {r['two']:,.0f} | {r['ratio']:.2f} |")
    return "\n".join(out) + "\n"


async def _async_parts(args: argparse.Namespace, wanted: set[str]) -> dict[str, Any]:
    quick = args.quick
    seconds = 1.0 if quick else 3.0
    out: dict[str, Any] = {}
    if "read" in wanted:
        out["read"] = await part_read(seconds, 2_000 if quick else 20_000)
    if "postgres" in wanted:
        out["postgres"] = await part_postgres(seconds, 1_000 if quick else 10_000)
    if "wait" in wanted:
        out["wait"] = await part_wait(200 if quick else 1_000)
    if "million" in wanted:
        out["million"] = await part_million(seconds, 10_000, args.sessions)
    return out


def run_scale(
    quick: bool, sessions: int = 1_000_000, parts: tuple[str, ...] = PARTS
) -> dict[str, Any]:
    """Run the chosen parts; the results (``render`` makes the Markdown)."""
    args = argparse.Namespace(quick=quick, sessions=sessions if not quick else 100_000)
    wanted = set(parts)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(_async_parts(args, wanted))
    if "workers" in wanted:
        results["workers"] = part_workers(2 if quick else 4, 1 if quick else 3)
    tool = "wrk" if shutil.which("wrk") else "bench/loadgen.py (Python, shares the 2 cores)"
    results["meta"] = {"note": f"HTTP load: {tool}.", "quick": quick, "sessions": sessions}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--parts", default=",".join(PARTS))
    args = parser.parse_args()
    parts = tuple(p for p in args.parts.split(",") if p)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    print(render(run_scale(args.quick, args.sessions, parts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
