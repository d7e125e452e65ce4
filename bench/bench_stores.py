"""Session-store cost: validation per request, Redis bytes per session, 10k vs large.

Standalone::

    .venv/bin/python bench/bench_stores.py --quick          # about a minute
    .venv/bin/python bench/bench_stores.py                  # 10k vs 200k
    .venv/bin/python bench/bench_stores.py --scale 1000000  # 10k vs 1M
    .venv/bin/python bench/bench_stores.py --skip validate --skip scale  # bytes only

1. ``SessionManager.validate`` (one store read, no renewal due) for memory, SQLite,
   Redis and PostgreSQL, interleaved: each round runs a batch on every store, in a
   rotated order; per-call latencies are pooled, and the median and p99 reported.
2. Redis bytes per session: a private ``redis-server`` on a free port (so other
   clients cannot move ``used_memory``), ``used_memory`` delta / n over n sessions
   written with the store's own layout and index.
3. 10k live sessions against ``--scale`` live sessions, for Redis (two databases of
   the private server) and PostgreSQL (two tables), interleaved the same way. The
   large set is bulk-loaded (pipelines / COPY) and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import psycopg  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from coatcheck.sessions.ids import new_token, session_id  # noqa: E402
from coatcheck.sessions.manager import SessionManager  # noqa: E402
from coatcheck.sessions.record import SessionRecord  # noqa: E402
from coatcheck.sessions.store import SessionStore  # noqa: E402
from coatcheck.stores.memory import MemoryStore  # noqa: E402
from coatcheck.stores.postgres import PostgresStore  # noqa: E402
from coatcheck.stores.redis import RedisStore, _encode  # noqa: E402
from coatcheck.stores.sqlite import SQLiteStore  # noqa: E402

DAY = 86_400.0


# -- helpers ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A throwaway redis-server: nothing else moves its used_memory."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the private redis-server did not start")

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _record(user: str, now: float, data: dict[str, Any]) -> tuple[str, SessionRecord]:
    token = new_token(user)
    sid = session_id(token)
    assert sid is not None
    return token, SessionRecord(
        id=sid,
        user_id=user,
        created_at=now,
        last_seen=now,
        expires_at=now + 7 * DAY,
        absolute_expires_at=now + 30 * DAY,
        auth_time=now,
        data=data,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ip="203.0.113.7",
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _interleaved(
    ops: dict[str, Callable[[], Awaitable[Any]]], rounds: int, batch: int
) -> dict[str, dict[str, float]]:
    """Run each op ``batch`` times per round, rotating the order; per-call µs stats."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    names = list(ops)
    for name in names:  # warm-up: connections, prepared statements, caches
        for _ in range(min(200, batch)):
            await ops[name]()
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            op = ops[name]
            out = samples[name]
            for _ in range(batch):
                t0 = time.perf_counter_ns()
                await op()
                out.append((time.perf_counter_ns() - t0) / 1000)
    return {
        name: {"median_us": statistics.median(v), "p99_us": _pct(v, 0.99), "n": len(v)}
        for name, v in samples.items()
    }


def _validator(manager: SessionManager, tokens: list[str]) -> Callable[[], Awaitable[Any]]:
    cycle = itertools.cycle(random.sample(tokens, len(tokens)))

    async def op() -> None:
        if await manager.validate(next(cycle)) is None:
            raise RuntimeError("a benchmark session was not found")

    return op


# -- bulk loads (the store's own layout, written in pipelines / COPY) ---------------------


async def _redis_bulk(store: RedisStore, records: list[SessionRecord], chunk: int = 2000) -> None:
    """Write sessions with RedisStore's own create script, pipelined (same layout)."""
    from coatcheck.stores._redis_io import NodeIO
    from coatcheck.stores.redis import _CREATE

    io = store._io
    assert isinstance(io, NodeIO), "one server only (bench/scale.py loads a cluster)"
    client: aioredis.Redis = io.client
    await client.script_load(_CREATE.source)
    for start in range(0, len(records), chunk):
        pipe = client.pipeline(transaction=False)
        for record in records[start : start + chunk]:
            keys, args = store._create_call(record)
            pipe.evalsha(_CREATE.sha, len(keys), *keys, *args)
        await pipe.execute()


async def _pg_bulk(store: PostgresStore, conninfo: str, records: list[SessionRecord]) -> None:
    await store.open()
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = conn.cursor()
        columns = (
            "id, user_id, created_at, last_seen, expires_at, absolute_expires_at, auth_time, "
            "data, user_agent, ip, version"
        )
        async with cur.copy(f"COPY {store._qualified} ({columns}) FROM STDIN") as copy:
            for r in records:
                await copy.write_row(
                    (r.id, r.user_id, r.created_at, r.last_seen, r.expires_at,
                     r.absolute_expires_at, r.auth_time, json.dumps(dict(r.data)),
                     r.user_agent, r.ip, r.version)
                )
        await conn.execute(f"ANALYZE {store._qualified}")


def _sessions(
    n: int, per_user: int, data_bytes: int, now: float
) -> tuple[list[str], list[SessionRecord]]:
    tokens, records = [], []
    users = max(1, n // per_user)
    for i in range(n):
        token, record = _record(f"user-{i % users:07d}", now, {"blob": "x" * data_bytes})
        tokens.append(token)
        records.append(record)
    return tokens, records


# -- the three parts ----------------------------------------------------------------------


async def part_validate(args: argparse.Namespace, now: float) -> dict[str, Any]:
    n = args.sessions
    tokens, records = _sessions(n, 4, 200, now)
    tmp = tempfile.mkdtemp(prefix="cc-bench-")
    stores: dict[str, SessionStore] = {
        "memory": MemoryStore(),
        "sqlite": SQLiteStore(os.path.join(tmp, "bench.db")),
        "redis": RedisStore.from_url(args.redis, prefix=f"ccbench:{os.getpid()}:"),
        "postgres": PostgresStore.from_url(f"{args.postgres}?table=ccbench_{os.getpid()}"),
    }
    try:
        for name, store in stores.items():
            if name == "redis":
                await _redis_bulk(store, records)  # type: ignore[arg-type]
            elif name == "postgres":
                await _pg_bulk(store, args.postgres, records)  # type: ignore[arg-type]
            else:
                for record in records:
                    await store.create(record)
        ops = {
            name: _validator(SessionManager(store), tokens) for name, store in stores.items()
        }
        ops["store.get (redis)"] = _getter(stores["redis"], records, now)
        ops["store.get (postgres)"] = _getter(stores["postgres"], records, now)
        return await _interleaved(ops, args.rounds, args.batch)
    finally:
        await _drop_redis_prefix(args.redis, f"ccbench:{os.getpid()}:")
        await _drop_pg(args.postgres, f"ccbench_{os.getpid()}")
        for store in stores.values():
            await store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _getter(
    store: SessionStore, records: list[SessionRecord], now: float
) -> Callable[[], Awaitable[Any]]:
    ids = itertools.cycle([r.id for r in random.sample(records, len(records))])

    async def op() -> None:
        await store.get(next(ids), now)

    return op


async def _drop_redis_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    batch: list[bytes] = []
    async for key in client.scan_iter(match=prefix + "*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await client.delete(*batch)
            batch = []
    if batch:
        await client.delete(*batch)
    await client.aclose()


async def _drop_pg(conninfo: str, table: str) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"DROP TABLE IF EXISTS {table}_attempts")
        await conn.execute("DELETE FROM coatcheck_schema_version WHERE name = %s", (table,))


async def part_memory(args: argparse.Namespace, now: float) -> list[dict[str, Any]]:
    server = PrivateRedis()
    rows = []
    try:
        client = aioredis.Redis.from_url(server.url(0))
        store = RedisStore.from_url(server.url(0))
        n = args.memory_sessions
        # Stored record of 300 bytes (as connect-redis' 300-B JSON) and data of 300 bytes.
        _, probe = _sessions(1, 1, 0, now)
        overhead = len(_encode(probe[0], bytes(16)))
        for label, data_bytes, per_user in [
            ("record 300 B, 4 sessions/user", 300 - overhead, 4),
            ("record 300 B, 1 session/user", 300 - overhead, 1),
            ("data 300 B (+ metadata), 4 sessions/user", 300 - 11, 4),
        ]:
            await client.flushall()
            await asyncio.sleep(0.2)
            before = int((await client.info("memory"))["used_memory"])
            _, records = _sessions(n, per_user, data_bytes, now)
            value_len = len(_encode(records[0], bytes(16)))
            await _redis_bulk(store, records)
            after = int((await client.info("memory"))["used_memory"])
            rows.append(
                {"layout": label, "sessions": n, "value_bytes": value_len,
                 "bytes_per_session": round((after - before) / n, 1)}
            )
        await client.flushall()
        await client.aclose()
        await store.close()
    finally:
        server.stop()
    return rows


async def part_scale(args: argparse.Namespace, now: float) -> dict[str, Any]:
    small_n, large_n = 10_000 if not args.quick else 2_000, args.scale
    server = PrivateRedis()
    table_small, table_large = f"ccbench_s_{os.getpid()}", f"ccbench_l_{os.getpid()}"
    stores: dict[str, Any] = {}
    timings: dict[str, float] = {}
    try:
        small_tokens, small = _sessions(small_n, 4, 200, now)
        large_tokens, large = _sessions(large_n, 4, 200, now)
        stores = {
            "redis 10k": RedisStore.from_url(server.url(0)),
            f"redis {large_n // 1000}k": RedisStore.from_url(server.url(1)),
            "postgres 10k": PostgresStore.from_url(f"{args.postgres}?table={table_small}"),
            f"postgres {large_n // 1000}k": PostgresStore.from_url(
                f"{args.postgres}?table={table_large}"
            ),
        }
        names = list(stores)
        t0 = time.perf_counter()
        await _redis_bulk(stores[names[0]], small)
        await _redis_bulk(stores[names[1]], large)
        timings["redis load s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        await _pg_bulk(stores[names[2]], args.postgres, small)
        await _pg_bulk(stores[names[3]], args.postgres, large)
        timings["postgres load s"] = round(time.perf_counter() - t0, 1)
        sample = random.sample(large_tokens, min(len(large_tokens), 50_000))
        ops = {
            names[0]: _validator(SessionManager(stores[names[0]]), small_tokens),
            names[1]: _validator(SessionManager(stores[names[1]]), sample),
            names[2]: _validator(SessionManager(stores[names[2]]), small_tokens),
            names[3]: _validator(SessionManager(stores[names[3]]), sample),
        }
        result = await _interleaved(ops, args.rounds, args.batch)
        result["load"] = timings  # type: ignore[assignment]
        return result
    finally:
        for store in stores.values():
            await store.close()
        server.stop()
        await _drop_pg(args.postgres, table_small)
        await _drop_pg(args.postgres, table_large)


def _table(title: str, stats: dict[str, Any]) -> str:
    lines = [title, f"  {'':28} {'median µs':>10} {'p99 µs':>10} {'n':>8}"]
    for name, s in stats.items():
        if "median_us" in s:
            lines.append(f"  {name:28} {s['median_us']:10.1f} {s['p99_us']:10.1f} {s['n']:8d}")
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--scale", type=int, default=None, help="large live-session count")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--memory-sessions", type=int, default=None,
        help="sessions per Redis bytes-per-session row (default 100k; 20k with --quick)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["validate", "memory", "scale"]
    )
    args = parser.parse_args(argv)
    args.sessions = 2_000 if args.quick else 10_000
    args.rounds = 5 if args.quick else 15
    args.batch = 200 if args.quick else 400
    if args.memory_sessions is None:
        args.memory_sessions = 20_000 if args.quick else 100_000
    if args.scale is None:
        args.scale = 50_000 if args.quick else 200_000
    now = time.time()
    results: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "json"}}

    if "validate" not in args.skip:
        stats = await part_validate(args, now)
        results["validate"] = stats
        print(_table("1. SessionManager.validate / store.get, no renewal (interleaved)", stats))
        base = stats["memory"]["median_us"]
        for name in ("sqlite", "redis", "postgres"):
            print(f"  {name} validate median = {stats[name]['median_us'] / base:.1f}x memory")
    if "memory" not in args.skip:
        rows = await part_memory(args, now)
        results["memory"] = rows
        print("2. Redis used_memory per session (private redis-server)")
        for row in rows:
            print(f"  {row['layout']:44} value {row['value_bytes']:4d} B -> "
                  f"{row['bytes_per_session']:6.1f} B/session (n={row['sessions']})")
    if "scale" not in args.skip:
        stats = await part_scale(args, now)
        results["scale"] = stats
        print(_table(f"3. validate with 10k vs {args.scale // 1000}k live sessions", stats))
        names = [n for n in stats if n != "load"]
        for small, large in ((names[0], names[1]), (names[2], names[3])):
            ratio = stats[large]["median_us"] / stats[small]["median_us"]
            p99 = stats[large]["p99_us"] / stats[small]["p99_us"]
            print(f"  {large} / {small}: median {ratio:.2f}x, p99 {p99:.2f}x")
        print(f"  bulk load: {stats['load']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
