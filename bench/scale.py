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
* ``million``: ``SessionManager.validate`` on a cluster holding 10 thousand live
  sessions and on one holding ``--sessions`` (1 million): two throwaway clusters of
  this part's own (never the shared one), each node capped by ``maxmemory``, filled
  through the store's own create script pipelined per master (``redis-cli --pipe``),
  then measured in alternation (rounds, order rotating): per-call median and p99 one
  call at a time, throughput with 16 in flight, and each round's large / small ratio.
  Then Redis bytes per session (4 sessions per user, the per-user index included) on
  one server and on a cluster, the same records.
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

from coatcheck.sessions import SessionManager  # noqa: E402
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


# -- a million sessions on a cluster of its own ------------------------------------------
#
# The shared test cluster is never filled: the part starts two throwaway clusters (3
# masters, 3 replicas each, a maxmemory cap on every node), one holding the small
# population and one the large, so the two are measured in alternation and whatever
# else the shared machine does lands on both.

DAY = 86_400


def _resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(out)


def _owners(port: int) -> list[int]:
    """Slot -> the port of its master, from ``CLUSTER SLOTS``."""
    import redis as sync_redis

    client = sync_redis.Redis(host="127.0.0.1", port=port)
    owners = [0] * 16384
    for entry in client.execute_command("CLUSTER SLOTS"):
        low, high = int(entry[0]), int(entry[1])
        owners[low : high + 1] = [int(entry[2][1])] * (high - low + 1)
    client.close()
    return owners


def _session_commands(
    store: RedisStore, count: int, per_user: int, keep: set[int], tag: str
) -> Any:
    """``(key, EVALSHA of the store's own create script, token or None)`` per session:
    ``per_user`` sessions per user, each stored value 300 bytes (``_padding``)."""
    from coatcheck.stores.redis import _CREATE

    now = time.time()
    data = _padding(now, f"user-{tag}{0:07d}")
    sha = _CREATE.sha.encode()
    for i in range(count):
        user = f"user-{tag}{i // per_user:07d}"
        token = new_token(user)
        sid = session_id(token)
        assert sid is not None
        record = SessionRecord(
            id=sid, user_id=user, created_at=now, last_seen=now, expires_at=now + 7 * DAY,
            absolute_expires_at=now + 30 * DAY, auth_time=now, data=data,
            user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ip="203.0.113.7",
        )  # fmt: skip
        keys, args = store._create_call(record)
        command = _resp(
            b"EVALSHA", sha, b"2", keys[0], keys[1], args[0], str(args[1]).encode(), args[2],
            str(args[3]).encode(),
        )  # fmt: skip
        yield keys[0], command, token if i in keep else None


def _pipe_load(owners: list[int], commands: Any) -> tuple[list[str], float]:
    """Send every command to the master of its key's slot through ``redis-cli --pipe``
    (one per master, all at once); the kept tokens and the seconds it took."""
    import tempfile

    from coatcheck.stores._redis_io import _slot
    from coatcheck.stores.redis import _CREATE

    masters = sorted(set(owners))
    for port in masters:  # EVALSHA needs the script on every master first
        subprocess.run(["redis-cli", "-p", str(port), "SCRIPT", "LOAD", _CREATE.source],
                       check=True, capture_output=True, timeout=10)  # fmt: skip
    started = time.perf_counter()
    logs = {p: tempfile.TemporaryFile() for p in masters}  # noqa: SIM115 - closed below
    pipes = {
        p: subprocess.Popen(["redis-cli", "-p", str(p), "--pipe"],
                            stdin=subprocess.PIPE, stdout=logs[p], stderr=subprocess.STDOUT)
        for p in masters
    }  # fmt: skip
    buffers: dict[int, list[bytes]] = {p: [] for p in masters}
    sent = dict.fromkeys(masters, 0)
    tokens = []
    for key, command, token in commands:
        port = owners[_slot(key)]
        buffers[port].append(command)
        sent[port] += 1
        if token is not None:
            tokens.append(token)
        if len(buffers[port]) >= 2000:
            pipes[port].stdin.write(b"".join(buffers[port]))  # type: ignore[union-attr]
            buffers[port].clear()
    for port, proc in pipes.items():
        proc.stdin.write(b"".join(buffers[port]))  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    for port, proc in pipes.items():
        proc.wait(600)
        logs[port].seek(0)
        out = logs[port].read().decode(errors="replace")
        logs[port].close()
        if f"errors: 0, replies: {sent[port]}" not in out:
            raise RuntimeError(f"bulk load on {port} failed: {out[-500:]}")
    return tokens, time.perf_counter() - started


def _memory(ports: list[int]) -> tuple[int, int]:
    """``(used_memory, keys)`` summed over ``ports``, once the numbers settle (a dict
    still rehashing holds two tables)."""
    import redis as sync_redis

    def read() -> tuple[int, int]:
        used = keys = 0
        for port in ports:
            client = sync_redis.Redis(host="127.0.0.1", port=port)
            info = client.info("memory")
            # Not the sessions': the replication stream (backlog and replicas' buffers,
            # a fixed 1 MB a master once written to) and client buffers.
            used += int(info["used_memory"]) - sum(
                int(info.get(f, 0))
                for f in ("mem_total_replication_buffers", "mem_clients_slaves",
                          "mem_clients_normal")
            )  # fmt: skip
            keys += int(client.dbsize())
            client.close()
        return used, keys

    last = read()
    for _ in range(40):
        time.sleep(0.25)
        now = read()
        if abs(now[0] - last[0]) < 4096:
            return now
        last = now
    return last


def _bytes_per_session(
    ports: list[int], owners: list[int], count: int, tag: str
) -> dict[str, float]:
    store = RedisStore.from_url("redis://127.0.0.1:1/0")  # layout only: never connects
    before, _ = _memory(ports)
    _pipe_load(owners, _session_commands(store, count, 4, set(), tag))
    after, keys = _memory(ports)
    return {"sessions": count, "bytes": (after - before) / count, "keys": keys / count}


async def _validate_rounds(
    populations: dict[str, tuple[SessionManager, list[str]]],
    rounds: int, batch: int, concurrency: int,
) -> dict[str, Any]:
    """Alternate the populations round by round (order rotating): per round, ``batch``
    validations one at a time (per-call latency) and ``batch`` with ``concurrency`` in
    flight (throughput). Every call is a distinct session of the large population."""
    names = list(populations)
    cursor = dict.fromkeys(names, 0)
    latencies: dict[str, list[float]] = {n: [] for n in names}
    rates: dict[str, list[float]] = {n: [] for n in names}
    medians: dict[str, list[float]] = {n: [] for n in names}
    p99s: dict[str, list[float]] = {n: [] for n in names}

    def next_token(name: str) -> str:
        tokens = populations[name][1]
        token = tokens[cursor[name] % len(tokens)]
        cursor[name] += 1
        return token

    async def check(manager: SessionManager, token: str) -> None:
        if await manager.validate(token) is None:
            raise RuntimeError("a benchmark session was not found")

    for name in names:  # warm-up: connections, slot tables, scripts
        for _ in range(200):
            await check(populations[name][0], next_token(name))
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            manager = populations[name][0]
            own = []
            for _ in range(batch):
                token = next_token(name)
                t0 = time.perf_counter_ns()
                await check(manager, token)
                own.append((time.perf_counter_ns() - t0) / 1000)
            latencies[name] += own
            medians[name].append(statistics.median(own))
            p99s[name].append(sorted(own)[int(0.99 * len(own))])
            tokens = [next_token(name) for _ in range(batch)]

            async def worker(w: int, m: SessionManager = manager, t: list[str] = tokens) -> None:
                for i in range(w, len(t), concurrency):
                    await check(m, t[i])

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(concurrency)))
            rates[name].append(batch / (time.perf_counter() - t0))
    out: dict[str, Any] = {}
    for name in names:
        values = sorted(latencies[name])
        out[name] = {
            "median_us": statistics.median(values),
            "p99_us": values[int(0.99 * len(values))],
            "rate": statistics.median(rates[name]),
            "calls": len(values),
            "round_medians": medians[name],
            "round_rates": rates[name],
        }
    small, large = names
    out["paired"] = {
        # Each round's large / small, then the median over rounds: noise that hits one
        # round hits both populations of it.
        "median": statistics.median(
            b / a for a, b in zip(medians[small], medians[large], strict=True)
        ),
        "p99": statistics.median(b / a for a, b in zip(p99s[small], p99s[large], strict=True)),
        "rate": statistics.median(
            b / a for a, b in zip(rates[small], rates[large], strict=True)
        ),
    }
    return out


async def part_million(small: int, large: int, quick: bool) -> dict[str, Any]:
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests._topology import _free_port, _server, start_cluster, stop_pids

    rounds, batch, concurrency = (6, 1000, 16) if quick else (20, 4000, 16)
    # About 530 B a session on the masters (replicas as much): cap every node at twice
    # its share, so a runaway load fails with OOM errors instead of eating the machine.
    cap = max(64, 2 * large * 600 // 3 // 2**20)
    folder = Path(tempfile.mkdtemp(prefix="cc-bench-million-"))
    clusters = []
    results: dict[str, Any] = {"sizes": {"small": small, "large": large}, "cap_mb": cap}
    stores = []
    try:
        taken: set[int] = set()
        limit = ("--maxmemory", f"{cap}mb", "--maxmemory-policy", "noeviction")
        clusters.append(start_cluster(folder / "small", taken=taken, extra=limit))
        clusters.append(start_cluster(folder / "large", taken=taken, extra=limit))
        loaded = {}
        for cluster, count, tag in ((clusters[0], small, "s"), (clusters[1], large, "l")):
            owners = _owners(cluster.masters[0])
            store = RedisStore.from_url(cluster.url)
            stores.append(store)
            keep = set(random.sample(range(count), min(count, 2 * rounds * batch + 400)))
            before, _ = _memory(cluster.masters)
            tokens, seconds = _pipe_load(owners, _session_commands(store, count, 4, keep, tag))
            after, keys = _memory(cluster.masters)
            random.shuffle(tokens)
            loaded[f"{count:,} live"] = (SessionManager(store), tokens)
            results[f"load_{tag}"] = {"seconds": seconds, "bytes": (after - before) / count,
                                      "keys": keys / count}  # fmt: skip
        results["validate"] = await _validate_rounds(loaded, rounds, batch, concurrency)
        for store in stores:
            await store.close()
        stores = []
        stop_pids([pid for c in clusters for pid in c.pids.values()])
        clusters = []
        # Bytes per session, one server vs a cluster, the very same kind of records.
        n = 20_000 if quick else 100_000
        port = _free_port(taken)
        pid = _server(folder / "single", port, *limit)
        try:
            results["bytes_single"] = _bytes_per_session([port], [port] * 16384, n, "b")
        finally:
            stop_pids([pid])
        cluster = start_cluster(folder / "bytes", taken=taken, extra=limit)
        clusters.append(cluster)
        results["bytes_cluster"] = _bytes_per_session(
            cluster.masters, _owners(cluster.masters[0]), n, "b"
        )
    finally:
        for store in stores:
            await store.close()
        stop_pids([pid for c in clusters for pid in c.pids.values()])
        shutil.rmtree(folder, ignore_errors=True)
    return results


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
    import tempfile

    # loadgen.py takes one header line per user and the order to send them in: one user.
    with tempfile.TemporaryDirectory(prefix="cc-bench-load-") as tmp:
        credentials, order = Path(tmp) / "credentials", Path(tmp) / "order"
        credentials.write_text(header + "\n")
        order.write_text("0\n")
        out = subprocess.run(
            [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--path", "/api/me",
             "--duration", str(seconds), "--connections", "32",
             "--credentials", str(credentials), "--order", str(order)],
            capture_output=True, text=True, timeout=seconds + 30, check=False,
        )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"bench/loadgen.py failed: {out.stderr[-500:]}")
    return float(json.loads(lines[-1])["rps"])


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


def _render_million(m: dict[str, Any]) -> list[str]:
    v = m["validate"]
    small, large = (k for k in v if k != "paired")
    a, b = v[small], v[large]
    out = ["", f"### Redis Cluster: {small} vs {large} sessions, `SessionManager.validate`", "",
           "Two throwaway clusters (3 masters, 3 replicas, `maxmemory` "
           f"{m['cap_mb']} MB a node), filled through the store's own create script, "
           "pipelined per master (`redis-cli --pipe`); then measured in alternation, "
           f"{len(a['round_medians'])} rounds, the order rotating. Latency: "
           f"{a['calls']:,} calls one at a time per population; throughput: as many with "
           "16 in flight. Every call of the large population is a distinct session.", "",
           "| live sessions | load s | validate/s | median µs | p99 µs |", "|---|---|---|---|---|"]
    for name, tag, r in ((small, "s", a), (large, "l", b)):
        out.append(f"| {name} | {m['load_' + tag]['seconds']:.1f} | {r['rate']:,.0f} | "
                   f"{r['median_us']:.1f} | {r['p99_us']:.1f} |")
    out += ["", f"{large} / {small}: median {b['median_us'] / a['median_us']:.2f}x, "
            f"p99 {b['p99_us'] / a['p99_us']:.2f}x, throughput {b['rate'] / a['rate']:.2f}x "
            f"over all calls; paired by round (each round's ratio, the median over rounds): "
            f"median {v['paired']['median']:.2f}x, p99 {v['paired']['p99']:.2f}x, "
            f"throughput {v['paired']['rate']:.2f}x. Target: within 1.2x.", ""]
    one, many = m["bytes_single"], m["bytes_cluster"]
    out += ["Redis bytes per session (the masters' `used_memory` growth; stored value 300 B, "
            "4 sessions per user, the per-user index included; prefix `cc:`):", "",
            "| where | sessions | keys per session | bytes per session |", "|---|---|---|---|",
            f"| one server (cluster off) | {one['sessions']:,} | {one['keys']:.2f} | "
            f"{one['bytes']:.0f} |",
            f"| cluster, 3 masters | {many['sessions']:,} | {many['keys']:.2f} | "
            f"{many['bytes']:.0f} |"]
    load = m["load_l"]  # (the small population's figure is mostly fixed costs)
    out.append(f"| cluster, 3 masters | {large.split()[0]} | {load['keys']:.2f} | "
               f"{load['bytes']:.0f} |")
    out += ["", "The replication stream (backlog, replicas' buffers: about 1 MB a master) and "
            "client buffers are left out: they do not grow with the sessions. Target: <= 520 B. "
            "Redis 7.0 in cluster mode adds 16 bytes to every key's dictionary entry (the "
            "slot's key list) and splits the key tables over the masters; see "
            "docs/deployment.md."]
    return out



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
        out += _render_million(results["million"])
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
        out["million"] = await part_million(
            2_000 if quick else 10_000, 50_000 if quick else args.sessions, quick
        )
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
