"""Session data (issue 13): a visitor's ``request.session``, side by side with the peers.

In-process and interleaved (:mod:`harness`): every app is called directly (ASGI scope,
WSGI environ), so the numbers are the per-request cost of the session layer plus the
framework, without an HTTP server. Two kinds of request on a session holding a name, a
three-item cart and a language:

* **read**: the page reads the session (``request.session["name"]``) and changes nothing;
* **change one key**: the page sets one key to a new value.

ASGI rows run on Starlette: bare (no session), Starlette's ``SessionMiddleware`` (signed
cookie), coatcheck's ``SessionMiddleware`` with ``CookieSessions`` (signed cookie), with
``StoreSessions`` on SQLite and on Redis, and starsessions on Redis. WSGI rows run on
Flask: bare, Flask's default session (signed cookie), Flask-Session on Redis, and
coatcheck's ``CoatCheckSessionInterface`` on synchronous Redis and on SQLite.

Store-backed rows run twice: with one session presented on every request (every cache
hits), and with ``many`` distinct sessions (20,000 in a full run) cycled, more than any
cache holds: the world's load. "share" is the bare app's time over the row's (the share
of the bare endpoint's throughput one CPU keeps). Redis rows also give the commands
Redis ran per request (``INFO commandstats``); coatcheck rows the store calls per
request, counted by a wrapper around the real store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import Budget, Progress, Unavailable, interleave_async, interleave_sync

__all__ = ["markdown", "run_session_data"]

DATA: dict[str, Any] = {"name": "Ada Lovelace", "cart": ["hat", "scarf", "gloves"], "lang": "en"}
_EMPTY_BODY = {"type": "http.request", "body": b"", "more_body": False}


# -- the calls ---------------------------------------------------------------------------------


def _scope(path: str, cookie: str | None) -> dict[str, Any]:
    headers = [(b"host", b"bench")]
    if cookie:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
        "server": ("bench", 443), "state": {},
    }  # fmt: skip


async def _receive() -> dict[str, Any]:
    return _EMPTY_BODY


async def asgi_call(app: Any, path: str, cookie: str | None) -> tuple[int, list[str]]:
    """One request; its status and Set-Cookie values."""
    out: dict[str, Any] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["cookies"] = [
                v.decode("latin-1") for k, v in message.get("headers", []) if k == b"set-cookie"
            ]

    await app(_scope(path, cookie), _receive, send)
    return out["status"], out["cookies"]


def wsgi_call(app: Any, path: str, cookie: str | None) -> tuple[int, list[str]]:
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "bench", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench", "wsgi.version": (1, 0), "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
    }  # fmt: skip
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    out: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        out["status"] = int(status.split()[0])
        out["cookies"] = [v for k, v in headers if k.lower() == "set-cookie"]
        return lambda data: None

    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return out["status"], out["cookies"]


#: coatcheck's data cookie over HTTPS (every request here is https), by default.
DATA_COOKIE = "__Host-coatcheck_data"


def _cookie(set_cookies: list[str], name: str) -> str:
    for value in set_cookies:
        pair = value.partition(";")[0]
        if pair.partition("=")[0] == name and pair.partition("=")[2]:
            return pair
    raise RuntimeError(f"no {name} cookie was set: {set_cookies}")


# -- the apps ----------------------------------------------------------------------------------


def _starlette(middleware: list[Any], *, reads: bool = True) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    counter = itertools.count()

    async def read(request: Any) -> Any:
        name = request.session.get("name") if reads else "guest"
        return PlainTextResponse(str(name))

    async def change(request: Any) -> Any:
        if reads:
            request.session["n"] = next(counter)
        return PlainTextResponse("ok")

    async def start(request: Any) -> Any:
        if reads:
            request.session.update(DATA)
        return PlainTextResponse("ok")

    routes = [Route("/", read), Route("/change", change), Route("/start", start)]
    return Starlette(routes=routes, middleware=middleware)


def _flask(configure: Callable[[Any], None], *, reads: bool = True) -> Any:
    import flask

    app = flask.Flask("bench")
    app.secret_key = "a bench secret key, long enough for everyone"
    configure(app)
    counter = itertools.count()

    @app.get("/")
    def read() -> Any:
        return str(flask.session.get("name") if reads else "guest")

    @app.get("/change")
    def change() -> Any:
        if reads:
            flask.session["n"] = next(counter)
        return "ok"

    @app.get("/start")
    def start() -> Any:
        if reads:
            flask.session.update(DATA)
        return "ok"

    return app


@dataclass(slots=True)
class Row:
    """One app under test."""

    name: str
    label: str
    stack: str  # "asgi" or "wsgi"
    app: Any = None
    cookie: str = "session"
    store_backed: bool = False
    redis: bool = False
    counting: Any = None  # a counting wrapper when coatcheck's store calls are counted
    counted_app: Any = None  # the same app over ``counting`` (timing uses the bare store)
    cookies: list[str] = field(default_factory=list)
    close: Callable[[], Awaitable[None]] | None = None


async def _build(name: str, tmp: Path, redis_url: str) -> Row:
    from starlette.middleware import Middleware

    prefix = f"bench:sd:{secrets.token_hex(3)}:"
    if name == "starlette-bare":
        return Row(name, "Starlette, no session", "asgi", _starlette([], reads=False))
    if name == "starlette-session":
        from starlette.middleware.sessions import SessionMiddleware

        middleware = [Middleware(SessionMiddleware, secret_key="bench secret " * 3)]
        return Row(name, "Starlette SessionMiddleware (signed cookie)", "asgi",
                   _starlette(middleware))  # fmt: skip
    if name == "coatcheck-cookie":
        from coatcheck.adapters.asgi import SessionMiddleware as CC
        from coatcheck.sessions import CookieSessions

        sessions = CookieSessions(["bench secret " * 3])
        return Row(name, "coatcheck CookieSessions (signed cookie)", "asgi",
                   _starlette([Middleware(CC, sessions=sessions)]), cookie=DATA_COOKIE)  # fmt: skip
    if name in ("coatcheck-sqlite", "coatcheck-redis"):
        from coatcheck.adapters.asgi import SessionMiddleware as CC
        from coatcheck.sessions import SessionManager, StoreSessions
        from coatcheck.stores import RedisStore, SQLiteStore

        store: Any = (
            SQLiteStore(tmp / f"{name}.db") if name == "coatcheck-sqlite"
            else RedisStore.from_url(redis_url, prefix=prefix)
        )  # fmt: skip
        counting = _Counting(store)
        timed = StoreSessions(SessionManager(store))
        counted = StoreSessions(SessionManager(counting))
        label = "coatcheck StoreSessions, " + ("SQLite" if "sqlite" in name else "Redis")
        return Row(name, label, "asgi", _starlette([Middleware(CC, sessions=timed)]),
                   cookie=DATA_COOKIE, store_backed=True, redis="redis" in name, counting=counting,
                   counted_app=_starlette([Middleware(CC, sessions=counted)]),
                   close=store.close)  # fmt: skip
    if name == "starsessions-redis":
        try:
            from starsessions import SessionAutoloadMiddleware, SessionMiddleware
            from starsessions.stores.redis import RedisStore as StarRedis
        except ImportError as exc:
            raise Unavailable("starsessions is not installed (pip install -e '.[bench]')") from exc
        star = StarRedis(url=redis_url, prefix=prefix)
        middleware = [
            Middleware(SessionMiddleware, store=star, cookie_https_only=False, lifetime=86400),
            Middleware(SessionAutoloadMiddleware),
        ]

        async def close_star() -> None:
            connection = getattr(star, "_connection", None)
            if connection is not None:
                await connection.aclose()

        return Row(name, "starsessions, Redis", "asgi", _starlette(middleware),
                   store_backed=True, redis=True, close=close_star)  # fmt: skip
    if name == "flask-bare":
        return Row(name, "Flask, no session", "wsgi", _flask(lambda app: None, reads=False))
    if name == "flask-session":
        return Row(name, "Flask's session (signed cookie)", "wsgi", _flask(lambda app: None))
    if name == "flask-session-redis":
        try:
            from flask_session import Session
        except ImportError as exc:
            raise Unavailable("Flask-Session is not installed (pip install -e '.[bench]')") from exc
        import redis

        client = redis.Redis.from_url(redis_url)

        def configure(app: Any) -> None:
            app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client,
                              SESSION_KEY_PREFIX=prefix)  # fmt: skip
            Session(app)

        async def close_fs() -> None:
            client.close()

        return Row(name, "Flask-Session, Redis", "wsgi", _flask(configure),
                   store_backed=True, redis=True, close=close_fs)  # fmt: skip
    if name in ("coatcheck-flask-redis", "coatcheck-flask-sqlite"):
        from coatcheck.adapters.flask import CoatCheckSessionInterface
        from coatcheck.sessions import SessionManager, StoreSessions
        from coatcheck.stores import SQLiteStore, SyncRedisStore
        from coatcheck.sync import run_sync

        sync_store: Any = (
            SQLiteStore(tmp / f"{name}.db") if "sqlite" in name
            else SyncRedisStore.from_url(redis_url, prefix=prefix)
        )  # fmt: skip
        counting = _Counting(sync_store)
        interface = CoatCheckSessionInterface(StoreSessions(SessionManager(sync_store)))
        counted = CoatCheckSessionInterface(StoreSessions(SessionManager(counting)))

        async def close_sync() -> None:
            run_sync(sync_store.close())

        label = "coatcheck CoatCheckSessionInterface, " + (
            "SQLite" if "sqlite" in name else "Redis (sync)"
        )
        return Row(name, label, "wsgi",
                   _flask(lambda app: setattr(app, "session_interface", interface)),
                   cookie=DATA_COOKIE, store_backed=True, redis="redis" in name, counting=counting,
                   counted_app=_flask(lambda app: setattr(app, "session_interface", counted)),
                   close=close_sync)  # fmt: skip
    raise ValueError(name)


class _Counting:
    """A store wrapper counting each method call (what a request costs the store)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method):
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await method(*args, **kwargs)

        return counted


ASGI_ROWS = (
    "starlette-bare", "starlette-session", "coatcheck-cookie", "coatcheck-sqlite",
    "starsessions-redis", "coatcheck-redis",
)  # fmt: skip
WSGI_ROWS = (
    "flask-bare", "flask-session", "flask-session-redis", "coatcheck-flask-redis",
    "coatcheck-flask-sqlite",
)  # fmt: skip


async def _request(
    row: Row, path: str, cookie: str | None, *, counted: bool = False
) -> tuple[int, list[str]]:
    app = row.counted_app if counted and row.counted_app is not None else row.app
    if row.stack == "asgi":
        return await asgi_call(app, path, cookie)
    return wsgi_call(app, path, cookie)


async def _sessions(row: Row, count: int) -> list[str]:
    """``count`` distinct sessions holding DATA, each made by the app itself."""
    cookies = []
    for _ in range(count):
        status, set_cookies = await _request(row, "/start", None)
        if status != 200:
            raise RuntimeError(f"{row.name}: /start answered {status}")
        cookies.append(_cookie(set_cookies, row.cookie))
    return cookies


def _redis_commands(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


async def _per_request(row: Row, path: str, cookie: str | None, redis_url: str) -> dict[str, Any]:
    """Redis commands and coatcheck store calls per request of one kind (50 requests)."""
    n = 50
    before = _redis_commands(redis_url) if row.redis else 0
    if row.counting is not None:
        row.counting.calls.clear()
    for _ in range(n):
        await _request(row, path, cookie, counted=True)
    out: dict[str, Any] = {}
    if row.redis:
        out["redis_commands"] = (_redis_commands(redis_url) - before) / n
    if row.counting is not None:
        out["store_calls"] = {k: v / n for k, v in sorted(row.counting.calls.items())}
    return out


@contextlib.contextmanager
def _private_redis(fallback: str, folder: Path) -> Iterator[tuple[str, bool]]:
    """A redis-server of this section's own (so INFO commandstats counts only its rows),
    or ``fallback`` (shared: counts may include other clients) without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield fallback, False
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", True
    finally:
        process.terminate()
        process.wait(timeout=10)


async def run_session_data(
    redis_url: str, budget: Budget, progress: Progress, *, many: int
) -> dict[str, Any]:
    """Build every row, check it, time read and change with one and ``many`` sessions."""
    with (
        tempfile.TemporaryDirectory(prefix="coatcheck-sessiondata-") as folder,
        _private_redis(redis_url, Path(folder)) as (url, private),
    ):
        results = await _run(url, Path(folder), budget, progress, many=many)
        results["redis"] = "a private redis-server" if private else "the shared Redis"
        return results


async def _run(
    redis_url: str, folder: Path, budget: Budget, progress: Progress, *, many: int
) -> dict[str, Any]:
    rows: dict[str, Row] = {}
    status: dict[str, str] = {}
    results: dict[str, Any] = {"many": many, "rows": {}, "status": status}
    try:
        for name in (*ASGI_ROWS, *WSGI_ROWS):
            try:
                rows[name] = await _build(name, folder, redis_url)
            except Unavailable as exc:
                status[name] = f"not available: {exc}"
                progress.say(f"session data: {name}: not available ({exc})")
        for row in rows.values():
            one = (await _sessions(row, 1))[0] if row.name not in _BARE else ""
            row.cookies = [one]
            if row.store_backed:
                progress.say(f"session data: {row.name}: making {many} sessions")
                row.cookies += await _sessions(row, many)
            # The gate: the session is read back, and a read-only request sends no cookie.
            status_code, set_cookies = await _request(row, "/", one or None)
            if status_code != 200:
                raise RuntimeError(f"{row.name}: / answered {status_code}")
            results["rows"][row.name] = {
                "label": row.label, "stack": row.stack,
                "set_cookie_on_read": len(set_cookies),
                "read_calls": await _per_request(row, "/", one or None, redis_url),
                "change_calls": await _per_request(row, "/change", one or None, redis_url),
            }  # fmt: skip
        progress.say("session data: timing, interleaved")
        await _time(rows, budget, results, progress)
    finally:
        for row in rows.values():
            if row.close is not None:
                await row.close()
        _forget(redis_url)
    return results


def _forget(url: str) -> None:
    """Delete the sessions this section made in Redis."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match="bench:sd:*", count=1000):
            client.delete(key)
    finally:
        client.close()


_BARE = ("starlette-bare", "flask-bare")


async def _time(
    rows: dict[str, Row], budget: Budget, results: dict[str, Any], progress: Progress
) -> None:
    for kind, path in (("read", "/"), ("change", "/change")):
        for spread in ("one", "many"):
            asgi: dict[str, Callable[[], Awaitable[object]]] = {}
            wsgi: dict[str, Callable[[], object]] = {}
            for row in rows.values():
                if spread == "many" and not row.store_backed and row.name not in _BARE:
                    continue
                cookies = row.cookies[1:] if spread == "many" and row.store_backed else row.cookies
                cycle: Iterator[str] = itertools.cycle(cookies)
                if row.stack == "asgi":
                    asgi[row.name] = _asgi_caller(row.app, path, cycle)
                else:
                    wsgi[row.name] = _wsgi_caller(row.app, path, cycle)
            progress.say(f"session data: {kind}, {spread} session(s)")
            timed = await interleave_async(asgi, budget)
            timed.update(interleave_sync(wsgi, budget))
            for name, samples in timed.items():
                results["rows"][name][f"{kind}_{spread}_us"] = samples.wall_median
                results["rows"][name][f"{kind}_{spread}_cpu_us"] = samples.cpu_median


def _asgi_caller(app: Any, path: str, cookies: Iterator[str]) -> Callable[[], Awaitable[object]]:
    async def call() -> object:
        return await asgi_call(app, path, next(cookies) or None)

    return call


def _wsgi_caller(app: Any, path: str, cookies: Iterator[str]) -> Callable[[], object]:
    def call() -> object:
        return wsgi_call(app, path, next(cookies) or None)

    return call


# -- the report --------------------------------------------------------------------------------


def _us(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else "n/a"


def _share(bare: Any, value: Any) -> str:
    if isinstance(bare, float) and isinstance(value, float) and value > 0:
        return f"{bare / value:.2f}"
    return "n/a"


def _calls(entry: dict[str, Any]) -> str:
    parts = []
    if "store_calls" in entry:
        calls = entry["store_calls"]
        parts.append(", ".join(f"{k} {v:g}" for k, v in calls.items()) or "no store call")
    if "redis_commands" in entry:
        parts.append(f"Redis commands {entry['redis_commands']:g}")
    return "; ".join(parts) or "-"


def _cell(row: dict[str, Any], bare: dict[str, Any], key: str, share: bool) -> str:
    cpu, wall = row.get(f"{key}_cpu_us"), row.get(f"{key}_us")
    if not isinstance(cpu, float):
        return "n/a"
    text = f"{cpu:.1f}"
    if share:
        text += f" ({_share(bare.get(f'{key}_cpu_us'), cpu)})"
    return text + f" / {_us(wall)}"


def markdown(results: dict[str, Any]) -> list[str]:
    """The section's tables, as markdown lines."""
    many = results["many"]
    lines = [
        "## Session data (issue 13): `request.session`, in process",
        "",
        "Per request: CPU µs of this process (share of the bare app's throughput that one "
        "CPU keeps, bare CPU / row CPU) / wall µs; medians of interleaved rounds. CPU is the "
        "steadier figure on a shared machine; wall adds the wait for Redis. \"one\": the "
        f"same session on every request; \"many\": {many:,} distinct sessions cycled, more "
        "than any cache holds. A session holds a name, a 3-item cart and a language. The "
        "costs count what one request asks of the store: coatcheck's store methods (a "
        "counting wrapper around the real store) and the commands Redis ran (INFO "
        f"commandstats on {results.get('redis', 'Redis')}; a Lua script's own commands "
        "count too).",
        "",
    ]
    rows = results["rows"]
    for stack, bare_name, title in (("asgi", "starlette-bare", "Starlette (ASGI)"),
                                    ("wsgi", "flask-bare", "Flask (WSGI)")):  # fmt: skip
        bare = rows.get(bare_name, {})
        lines += [
            f"### {title}",
            "",
            "| | read, one | read, many | change one key, one | change one key, many "
            "| read costs | change costs | Set-Cookie on a read |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in rows.values():
            if row["stack"] != stack:
                continue
            lines.append(
                f"| {row['label']} | {_cell(row, bare, 'read_one', True)} "
                f"| {_cell(row, bare, 'read_many', True)} "
                f"| {_cell(row, bare, 'change_one', False)} "
                f"| {_cell(row, bare, 'change_many', False)} "
                f"| {_calls(row['read_calls'])} | {_calls(row['change_calls'])} "
                f"| {row['set_cookie_on_read']} |"
            )
        lines.append("")
    for name, why in results["status"].items():
        lines.append(f"- {name}: {why}")
    return lines


def main() -> None:  # pragma: no cover - for running this section alone
    import argparse
    import json

    from fixtures import Services

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    budget = (
        Budget(rounds=3, batch_seconds=0.02, group_seconds=3.0)
        if args.quick
        else Budget(rounds=8, batch_seconds=0.1, group_seconds=30.0, min_rounds=5)
    )
    many = 2_000 if args.quick else 20_000
    results = asyncio.run(
        run_session_data(Services.from_env().redis_url, budget, Progress(), many=many)
    )
    print("\n".join(markdown(results)))
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
