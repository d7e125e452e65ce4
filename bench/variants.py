"""The apps under test: one ASGI app per variant, each with GET /me returning the user's name.

Both the in-process section (raw scope/receive/send) and the HTTP section (uvicorn in a
child process, ``serve.py``) build variants from here, so both measure the same code.

A variant's ``build`` runs inside the event loop that will serve it, makes the app, logs
``ctx.users`` distinct users in (through the app's own login route, or the strategy's own
issue call: a real credential each, in the store each uses) and returns the header that
carries each user's credential (user ``i`` at index ``i``), a forged one for the gate, and
the variant's caches so that the runners can count their hits.

Hooks for modules that have not landed raise :class:`~harness.Unavailable`; the runners
show them as "not available yet" rows.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jwt as pyjwt
from fastapi import Request as FastAPIRequest
from fixtures import (
    AUDIENCE,
    ISSUER,
    KID,
    USER_NAME,
    BenchKeys,
    Services,
    ensure_postgres_database,
    need,
    user_id,
    user_name,
    verify_claims,
)
from floors import JWTFloor, verify_hs256_bearer
from harness import Unavailable

__all__ = [
    "BARE_OF_GROUP",
    "CONTROLS",
    "VARIANTS",
    "BuildContext",
    "Built",
    "Variant",
    "asgi_request",
    "by_name",
    "cache_counts",
    "make_scope",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")
#: Logins run this many at a time while a variant is built (network stores overlap).
_CONCURRENT_LOGINS = 16
#: A login that finds the store unreachable (20 servers log 20,000 users in each at
#: once on a 2-core machine) is tried again this many times, after a pause.
_LOGIN_TRIES = 5


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a build needs: keys, services, a temporary folder and how many users to log in.

    ``tag`` makes the Redis prefixes and PostgreSQL tables of one build its own, so
    builds running at once (the HTTP servers) never share or delete each other's keys.
    """

    keys: BenchKeys
    services: Services
    tmp: Path
    users: int = 1
    tag: str = field(default_factory=lambda: secrets.token_hex(3))


async def _nothing() -> None:
    return None


def _no_caches() -> dict[str, Any]:
    return {}


@dataclass(slots=True)
class Built:
    """A ready app and, per bench user, the request header that authenticates them.

    ``caches`` names the caches on the variant's request path (objects with ``hits``
    and ``misses`` counters, see :func:`cache_counts`): coatcheck's, since the peers
    keep none.
    """

    app: ASGIApp
    credentials: list[tuple[str, str]]
    forged: tuple[str, str] | None
    close: Callable[[], Awaitable[None]] = field(default=_nothing)
    caches: Callable[[], dict[str, Any]] = field(default=_no_caches)

    @property
    def credential(self) -> tuple[str, str] | None:
        """User 0's header (the one-credential regime), ``None`` for a bare app."""
        return self.credentials[0] if self.credentials else None


def cache_counts(cache: Any) -> tuple[int, int]:
    """``(hits, misses)`` counted by one of coatcheck's caches so far."""
    return int(getattr(cache, "hits", 0)), int(getattr(cache, "misses", 0))


async def _for_users(ctx: BuildContext, make: Callable[[int], Awaitable[T]]) -> list[T]:
    """``make(i)`` for every bench user, a bounded number at a time, in user order."""

    async def patient(i: int) -> T:
        for attempt in range(_LOGIN_TRIES):
            try:
                return await make(i)
            except Exception as exc:
                # A store timing out under the build's own load: wait, try again.
                if type(exc).__name__ != "StoreUnavailable" or attempt == _LOGIN_TRIES - 1:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    out: list[T] = []
    for start in range(0, ctx.users, _CONCURRENT_LOGINS):
        stop = min(ctx.users, start + _CONCURRENT_LOGINS)
        out += await asyncio.gather(*(patient(i) for i in range(start, stop)))
    return out


def _redis_url(ctx: BuildContext, prefix: str) -> str:
    url = ctx.services.redis_url
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


async def _drop_redis_keys(url: str, prefixes: Iterable[str]) -> None:
    """Delete every key under ``prefixes`` (SCAN, never KEYS: the server never blocks)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        for prefix in prefixes:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=prefix + "*", count=5000):
                batch.append(key)
                if len(batch) >= 5000:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
    finally:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class Variant:
    """One row of the HTTP and in-process tables.

    ``role``: "limit" (bare, no auth), "coatcheck", "peer" (what users pick instead),
    "floor" (hand-written checks: the yardsticks). ``http`` False: in-process only
    (the "token cache off" controls, which answer whether the verified-token cache
    pays; the JWS header cache stays on in them, as it hits for every user).
    """

    name: str
    group: str
    role: str
    label: str
    build: Callable[[BuildContext], Awaitable[Built]]
    http: bool = True


# -- raw ASGI calls -----------------------------------------------------------------


def make_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request through ``app`` with no server; (status, headers, body)."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    path, _, query = path.partition("?")
    scope = make_scope(method, path, raw)
    scope["query_string"] = query.encode("latin-1")
    sent = False
    out: dict[str, Any] = {"status": 0, "headers": [], "body": b""}

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
            ]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]


def _cookie_from(set_cookies: list[tuple[str, str]], name: str | None = None) -> tuple[str, str]:
    for key, value in set_cookies:
        if key.lower() == "set-cookie":
            pair = value.split(";", 1)[0].strip()
            if name is None or pair.split("=", 1)[0] == name:
                return ("cookie", pair)
    raise RuntimeError("the login sent no session cookie")


def _forged_cookie(credential: tuple[str, str]) -> tuple[str, str]:
    name, _, value = credential[1].partition("=")
    fake = base64.urlsafe_b64encode(secrets.token_bytes(max(8, len(value) * 3 // 4))).decode()
    return ("cookie", f"{name}={fake[: len(value)]}")


def _forged_bearer(token: str) -> tuple[str, str]:
    head, _, sig = token.rpartition(".")
    middle = len(sig) // 2
    flipped = "A" if sig[middle] != "A" else "B"
    return ("authorization", f"Bearer {head}.{sig[:middle]}{flipped}{sig[middle + 1 :]}")


# -- app shapes ---------------------------------------------------------------------


def _starlette_app(
    name_of: Callable[[Any], str | None],
    *,
    middleware: list[Any] = (),  # type: ignore[assignment]
    login: Callable[[Any], Awaitable[Any]] | None = None,
) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def me(request: Any) -> Any:
        name = name_of(request)
        if name is None:
            return PlainTextResponse("unauthorized", status_code=401)
        return PlainTextResponse(name)

    routes = [Route("/me", me)]
    if login is not None:
        routes.append(Route("/login", login, methods=["POST"]))
    return Starlette(routes=routes, middleware=list(middleware))


def _fastapi_app(name_of: Callable[[Any], str | None]) -> Any:
    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.get("/me")
    async def me(request: FastAPIRequest) -> dict[str, str]:
        name = name_of(request)
        if name is None:
            raise HTTPException(status_code=401, detail="unauthorized")
        return {"name": name}

    return app


class _BearerCheck:
    """A hand-written pure-ASGI check: Authorization: Bearer -> verify -> scope["claims"].

    The shape a developer writes around PyJWT/joserfc/the floor, and the same shape as
    coatcheck's AuthMiddleware, so the difference is the verify.
    """

    def __init__(self, app: ASGIApp, verify: Callable[[str], dict[str, Any] | None]) -> None:
        self.app = app
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            claims = None
            for key, value in scope["headers"]:
                if key == b"authorization":
                    if value[:7].lower() == b"bearer ":
                        claims = self.verify(value[7:].decode("latin-1"))
                    break
            scope["bench.claims"] = claims
        await self.app(scope, receive, send)


def _claims_name(request: Any) -> str | None:
    claims = request.scope.get("bench.claims")
    return None if claims is None else str(claims.get("name", ""))


# -- bare -----------------------------------------------------------------------------


async def _bare(ctx: BuildContext) -> Built:
    return Built(_starlette_app(lambda request: USER_NAME), [], None)


async def _fastapi_bare(ctx: BuildContext) -> Built:
    return Built(_fastapi_app(lambda request: USER_NAME), [], None)


# -- hand-written JWT checks ----------------------------------------------------------


def _bench_token(ctx: BuildContext, user: int) -> str:
    return pyjwt.encode(
        verify_claims(ttl=86400, user=user), ctx.keys.secret, algorithm="HS256",
        headers={"kid": KID},
    )


def _bearer_built(ctx: BuildContext, verify: Callable[[str], dict[str, Any] | None]) -> Built:
    tokens = [_bench_token(ctx, i) for i in range(ctx.users)]
    app = _BearerCheck(_starlette_app(_claims_name), verify)
    credentials = [("authorization", f"Bearer {token}") for token in tokens]
    return Built(app, credentials, _forged_bearer(tokens[0]))


async def _floor_hs256(ctx: BuildContext) -> Built:
    floor = JWTFloor("HS256", ctx.keys.secret, issuer=ISSUER, audience=AUDIENCE, kid=KID)
    return _bearer_built(ctx, lambda token: verify_hs256_bearer(floor, token))


async def _pyjwt(ctx: BuildContext) -> Built:
    secret = ctx.keys.secret

    def verify(token: str) -> dict[str, Any] | None:
        try:
            return pyjwt.decode(  # type: ignore[no-any-return]
                token, secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except pyjwt.PyJWTError:
            return None

    return _bearer_built(ctx, verify)


async def _joserfc(ctx: BuildContext) -> Built:
    from joserfc import jwt as jose_jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import OctKey

    key = OctKey.import_key(ctx.keys.secret)
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}
    )

    def verify(token: str) -> dict[str, Any] | None:
        try:
            claims = jose_jwt.decode(token, key, algorithms=["HS256"]).claims
            registry.validate(claims)
        except (JoseError, ValueError):
            return None
        return claims

    return _bearer_built(ctx, verify)


# -- hand-written Redis lookup ----------------------------------------------------------


async def _manual_redis(ctx: BuildContext) -> Built:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(ctx.services.redis_url)
    prefix = f"bench:manual:{ctx.tag}:"
    tokens = [secrets.token_urlsafe(32) for _ in range(ctx.users)]
    for start in range(0, ctx.users, 2000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(ctx.users, start + 2000)):
            pipe.set(f"{prefix}{tokens[i]}", json.dumps({"name": user_name(i)}), ex=86400)
        await pipe.execute()

    class _CookieLookup:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                data = None
                for key, value in scope["headers"]:
                    if key == b"cookie":
                        for part in value.decode("latin-1").split(";"):
                            name, _, val = part.strip().partition("=")
                            if name == "sid" and val:
                                raw = await client.get(prefix + val)
                                data = json.loads(raw) if raw else None
                        break
                scope["bench.claims"] = data
            await self.app(scope, receive, send)

    async def close() -> None:
        await client.aclose()
        await _drop_redis_keys(ctx.services.redis_url, [prefix])

    credentials = [("cookie", f"sid={token}") for token in tokens]
    app = _CookieLookup(_starlette_app(_claims_name))
    return Built(app, credentials, _forged_cookie(credentials[0]), close)


# -- Starlette SessionMiddleware and starsessions -----------------------------------


async def _login_session(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    request.session["name"] = user_name(int(request.query_params.get("user", "0")))
    return PlainTextResponse("ok")


async def _session_logins(ctx: BuildContext, app: Any) -> list[tuple[str, str]]:
    """Each bench user logs in through the app's own POST /login; their cookies."""

    async def login(i: int) -> tuple[str, str]:
        _, headers, _ = await asgi_request(app, "POST", f"/login?user={i}")
        return _cookie_from(headers, "session")

    return await _for_users(ctx, login)


def _session_name(request: Any) -> str | None:
    value = request.session.get("name")
    return value if isinstance(value, str) else None


async def _starlette_session(ctx: BuildContext) -> Built:
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware

    secret = base64.urlsafe_b64encode(ctx.keys.secret).decode()
    app = _starlette_app(
        _session_name,
        middleware=[Middleware(SessionMiddleware, secret_key=secret, https_only=False)],
        login=_login_session,
    )
    credentials = await _session_logins(ctx, app)
    return Built(app, credentials, _forged_cookie(credentials[0]))


async def _starsessions_redis(ctx: BuildContext) -> Built:
    from starlette.middleware import Middleware
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    prefix = f"bench:starsessions:{ctx.tag}:"
    store = RedisStore(url=ctx.services.redis_url, prefix=prefix)
    app = _starlette_app(
        _session_name,
        middleware=[
            Middleware(SessionMiddleware, store=store, cookie_https_only=False, lifetime=86400),
            Middleware(SessionAutoloadMiddleware),
        ],
        login=_login_session,
    )
    credentials = await _session_logins(ctx, app)

    async def close() -> None:
        connection = getattr(store, "_connection", None)
        if connection is not None:
            await connection.aclose()
        await _drop_redis_keys(ctx.services.redis_url, [prefix])

    return Built(app, credentials, _forged_cookie(credentials[0]), close)


# -- coatcheck ------------------------------------------------------------------------


def _coatcheck_names() -> dict[str, Any]:
    auth = need("coatcheck.auth", "Authenticator", "JWTStrategy", "SessionStrategy")
    transports = need("coatcheck.auth", "CookieTransport", "BearerTransport")
    asgi = need("coatcheck.adapters.asgi", "AuthMiddleware", "identity_of")
    return {
        "Authenticator": auth[0],
        "JWTStrategy": auth[1],
        "SessionStrategy": auth[2],
        "CookieTransport": transports[0],
        "BearerTransport": transports[1],
        "AuthMiddleware": asgi[0],
        "identity_of": asgi[1],
    }


def _identity_name(names: dict[str, Any]) -> Callable[[Any], str | None]:
    identity_of = names["identity_of"]

    def name_of(request: Any) -> str | None:
        identity = identity_of(request.scope)
        return None if identity is None else str(identity.name)

    return name_of


def _caches_of(strategy: Any) -> Callable[[], dict[str, Any]]:
    """The caches on a coatcheck strategy's request path, found where each one lives."""

    def caches() -> dict[str, Any]:
        codec = getattr(strategy, "codec", None)
        places = (
            ("verified tokens", strategy, "_cache"),
            ("JWS headers", getattr(codec, "_verifier", None), "_cache"),
        )
        found: dict[str, Any] = {}
        for label, owner, attr in places:
            cache = getattr(owner, attr, None) if owner is not None else None
            if cache is not None and hasattr(cache, "hits"):
                found[label] = cache
        return found

    return caches


async def _coatcheck_jwt_strategy(
    ctx: BuildContext, *, caches: bool = True
) -> tuple[Any, list[tuple[str, str]], tuple[str, str]]:
    from micro import coatcheck_codec

    names = _coatcheck_names()
    codec = coatcheck_codec(ctx.keys, "HS256")
    strategy = names["JWTStrategy"](codec, **({} if caches else {"cache_size": 0}))

    async def issue(i: int) -> Any:
        return await strategy.issue(user_id(i), data={"name": user_name(i)})

    issued = await _for_users(ctx, issue)
    credentials = [("authorization", f"Bearer {x.token}") for x in issued]
    return strategy, credentials, _forged_bearer(issued[0].token)


async def _session_manager(
    ctx: BuildContext, kind: str
) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """A SessionManager on a store of ``kind`` of this build's own, and what removes it."""
    from micro import open_bench_store, store_urls

    manager_cls = need("coatcheck.sessions", "SessionManager")
    url = store_urls(ctx.services, ctx.tmp)[kind]
    drop: Callable[[], Awaitable[None]] = _nothing
    if kind == "redis":
        prefix = f"bench:cc:{ctx.tag}:"
        url = _redis_url(ctx, prefix)

        async def drop() -> None:
            await _drop_redis_keys(ctx.services.redis_url, [prefix])

    elif kind == "postgresql":
        table = f"bench_sessions_{ctx.tag}"
        base = url
        url = f"{url}{'&' if '?' in url else '?'}table={table}"
        await asyncio.to_thread(ensure_postgres_database, base)

        async def drop() -> None:
            from micro import drop_postgres_table

            await asyncio.to_thread(drop_postgres_table, base, table)

    elif kind == "sqlite":
        url = f"sqlite:///{ctx.tmp / f'bench-sessions-{ctx.tag}.db'}"
    manager = manager_cls(await open_bench_store(kind, url))

    async def close() -> None:
        await manager.store.close()
        await drop()

    return manager, close


async def _coatcheck_session_strategy(
    ctx: BuildContext, kind: str
) -> tuple[Any, list[tuple[str, str]], tuple[str, str], Callable[[], Awaitable[None]]]:
    names = _coatcheck_names()
    manager, close = await _session_manager(ctx, kind)
    strategy = names["SessionStrategy"](manager)
    cookie = names["CookieTransport"]()

    async def login(i: int) -> tuple[str, str]:
        issued = await strategy.issue(
            user_id(i), data={"name": user_name(i)}, user_agent="bench"
        )
        return _cookie_from(cookie.write(issued, persistent=True), cookie.cookie_name)

    credentials = await _for_users(ctx, login)
    return strategy, credentials, _forged_cookie(credentials[0]), close


def _coatcheck_starlette(names: dict[str, Any], strategy: Any) -> Any:
    from starlette.middleware import Middleware

    authenticator = names["Authenticator"](strategy)
    return _starlette_app(
        _identity_name(names), middleware=[Middleware(names["AuthMiddleware"], authenticator)]
    )


def _coatcheck_fastapi_mw(names: dict[str, Any], strategy: Any) -> Any:
    app = _fastapi_app(_identity_name(names))
    app.add_middleware(names["AuthMiddleware"], names["Authenticator"](strategy))
    return app


async def _cc_jwt(ctx: BuildContext) -> Built:
    strategy, credentials, forged = await _coatcheck_jwt_strategy(ctx)
    app = _coatcheck_starlette(_coatcheck_names(), strategy)
    return Built(app, credentials, forged, caches=_caches_of(strategy))


async def _cc_jwt_nocache(ctx: BuildContext) -> Built:
    strategy, credentials, forged = await _coatcheck_jwt_strategy(ctx, caches=False)
    return Built(_coatcheck_starlette(_coatcheck_names(), strategy), credentials, forged)


def _cc_session(kind: str) -> Callable[[BuildContext], Awaitable[Built]]:
    async def build(ctx: BuildContext) -> Built:
        strategy, credentials, forged, close = await _coatcheck_session_strategy(ctx, kind)
        app = _coatcheck_starlette(_coatcheck_names(), strategy)
        return Built(app, credentials, forged, close, _caches_of(strategy))

    return build


async def _hybrid_strategy(
    ctx: BuildContext, *, caches: bool = True
) -> tuple[Any, list[tuple[str, str]], tuple[str, str], Callable[[], Awaitable[None]]]:
    """Hybrid mode (issue 4): access JWT in the bearer header, refresh sessions on Redis.

    The access token lives 30 minutes here instead of the default 5 so that it cannot
    expire in the middle of a run; verifying it costs the same either way.
    """
    try:
        hybrid_cls = need("coatcheck.auth", "HybridStrategy")
    except Unavailable:
        hybrid_cls = need("coatcheck.auth.hybrid", "HybridStrategy")
    from datetime import timedelta

    from micro import coatcheck_codec

    manager, close = await _session_manager(ctx, "redis")
    try:
        strategy = hybrid_cls(
            manager,
            coatcheck_codec(ctx.keys, "HS256"),
            secrets.token_bytes(32),
            access_ttl=timedelta(minutes=30),
            **({} if caches else {"cache_size": 0}),
        )
    except TypeError as exc:
        await close()
        raise Unavailable(f"HybridStrategy's constructor differs from this hook's: {exc}") from exc

    async def issue(i: int) -> Any:
        return await strategy.issue(user_id(i), data={"name": user_name(i)}, user_agent="bench")

    issued = await _for_users(ctx, issue)
    credentials = [("authorization", f"Bearer {x.token}") for x in issued]
    return strategy, credentials, _forged_bearer(issued[0].token), close


async def _cc_hybrid(ctx: BuildContext) -> Built:
    strategy, credentials, forged, close = await _hybrid_strategy(ctx)
    app = _coatcheck_starlette(_coatcheck_names(), strategy)
    return Built(app, credentials, forged, close, _caches_of(strategy))


async def _cc_hybrid_nocache(ctx: BuildContext) -> Built:
    strategy, credentials, forged, close = await _hybrid_strategy(ctx, caches=False)
    app = _coatcheck_starlette(_coatcheck_names(), strategy)
    return Built(app, credentials, forged, close)


# -- FastAPI ------------------------------------------------------------------------------


async def _cc_fastapi_mw_jwt(ctx: BuildContext) -> Built:
    strategy, credentials, forged = await _coatcheck_jwt_strategy(ctx)
    app = _coatcheck_fastapi_mw(_coatcheck_names(), strategy)
    return Built(app, credentials, forged, caches=_caches_of(strategy))


async def _cc_fastapi_mw_redis(ctx: BuildContext) -> Built:
    strategy, credentials, forged, close = await _coatcheck_session_strategy(ctx, "redis")
    app = _coatcheck_fastapi_mw(_coatcheck_names(), strategy)
    return Built(app, credentials, forged, close, _caches_of(strategy))


def _fastapi_integration() -> Any:
    """HOOK (issue 8): coatcheck's FastAPI integration module, when it lands."""
    for module in ("coatcheck.adapters.fastapi", "coatcheck.fastapi"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise Unavailable("coatcheck's FastAPI integration not available yet")


def _coatcheck_fastapi_dependency(strategy: Any) -> Any:
    """FastAPI with coatcheck's ``current_user`` dependency (no middleware) on GET /me."""
    from fastapi import Depends, FastAPI

    integration = _fastapi_integration()
    names = _coatcheck_names()
    app = FastAPI()
    cc = integration.CoatCheck(app, authenticator=names["Authenticator"](strategy))

    @app.get("/me")
    async def me(user: Any = Depends(cc.current_user)) -> dict[str, str]:  # noqa: B008
        return {"name": user.name}

    return app


async def _cc_fastapi_integration_jwt(ctx: BuildContext) -> Built:
    strategy, credentials, forged = await _coatcheck_jwt_strategy(ctx)
    app = _coatcheck_fastapi_dependency(strategy)
    return Built(app, credentials, forged, caches=_caches_of(strategy))


async def _cc_fastapi_integration_redis(ctx: BuildContext) -> Built:
    strategy, credentials, forged, close = await _coatcheck_session_strategy(ctx, "redis")
    app = _coatcheck_fastapi_dependency(strategy)
    return Built(app, credentials, forged, close, _caches_of(strategy))


def _fastapi_users_app(backend: Any, users: Any) -> Any:
    from fastapi import Depends, FastAPI

    app = FastAPI()
    current_user = users.current_user(active=True)

    @app.get("/me")
    async def me(user: Any = Depends(current_user)) -> dict[str, str]:  # noqa: B008
        return {"name": user.name}

    return app


async def _fastapi_users(ctx: BuildContext, kind: str) -> Built:
    """fastapi-users as its docs set it up, with an in-memory user table (its best case)."""
    import uuid

    from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
    from fastapi_users.authentication import (
        AuthenticationBackend,
        BearerTransport,
        JWTStrategy,
        RedisStrategy,
    )
    from fastapi_users.db import BaseUserDatabase

    @dataclass
    class User:
        id: uuid.UUID
        email: str
        hashed_password: str
        name: str
        is_active: bool = True
        is_superuser: bool = False
        is_verified: bool = True

    class MemoryUserDatabase(BaseUserDatabase[User, uuid.UUID]):
        def __init__(self) -> None:
            self.users: dict[uuid.UUID, User] = {}

        async def get(self, id: uuid.UUID) -> User | None:
            return self.users.get(id)

        async def get_by_email(self, email: str) -> User | None:
            return next((u for u in self.users.values() if u.email == email), None)

        async def create(self, create_dict: dict[str, Any]) -> User:
            user = User(id=uuid.uuid4(), **create_dict)
            self.users[user.id] = user
            return user

        async def update(self, user: User, update_dict: dict[str, Any]) -> User:
            for key, value in update_dict.items():
                setattr(user, key, value)
            return user

        async def delete(self, user: User) -> None:
            self.users.pop(user.id, None)

    secret = base64.urlsafe_b64encode(ctx.keys.secret).decode()

    class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
        reset_password_token_secret = secret
        verification_token_secret = secret

    db = MemoryUserDatabase()
    people = [
        User(id=uuid.uuid4(), email=f"{user_id(i)}@example.com", hashed_password="x",
             name=user_name(i))
        for i in range(ctx.users)
    ]
    for person in people:
        db.users[person.id] = person

    async def get_user_db() -> Any:
        yield db

    from fastapi import Depends

    async def get_user_manager(user_db: Any = Depends(get_user_db)) -> Any:  # noqa: B008
        yield UserManager(user_db)

    closers: list[Callable[[], Awaitable[None]]] = []
    if kind == "jwt":
        strategy: Any = JWTStrategy(secret=secret, lifetime_seconds=86400)

        def get_strategy() -> Any:
            return JWTStrategy(secret=secret, lifetime_seconds=86400)
    else:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(ctx.services.redis_url, decode_responses=True)
        prefix = f"bench:fu:{ctx.tag}:"
        strategy = RedisStrategy(client, lifetime_seconds=86400, key_prefix=prefix)

        def get_strategy() -> Any:
            return RedisStrategy(client, lifetime_seconds=86400, key_prefix=prefix)

        async def drop() -> None:
            await _drop_redis_keys(ctx.services.redis_url, [prefix])

        closers += [client.aclose, drop]

    backend = AuthenticationBackend(
        name=kind, transport=BearerTransport(tokenUrl="auth/login"), get_strategy=get_strategy
    )
    users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])

    async def write(i: int) -> str:
        return str(await strategy.write_token(people[i]))

    tokens = await _for_users(ctx, write)

    async def close() -> None:
        for closer in closers:
            await closer()

    app = _fastapi_users_app(backend, users)
    credentials = [("authorization", f"Bearer {token}") for token in tokens]
    token = tokens[0]
    forged = (
        _forged_bearer(token) if kind == "jwt" else ("authorization", "Bearer " + "x" * len(token))
    )
    return Built(app, credentials, forged, close)


async def _fu_jwt(ctx: BuildContext) -> Built:
    return await _fastapi_users(ctx, "jwt")


async def _fu_redis(ctx: BuildContext) -> Built:
    return await _fastapi_users(ctx, "redis")


VARIANTS: tuple[Variant, ...] = (
    Variant("bare", "starlette", "limit", "Starlette bare, no auth", _bare),
    Variant("coatcheck-jwt", "starlette", "coatcheck", "coatcheck jwt (bearer)", _cc_jwt),
    Variant("coatcheck-hybrid", "starlette", "coatcheck", "coatcheck hybrid (bearer)", _cc_hybrid),
    Variant("coatcheck-session-memory", "starlette", "coatcheck", "coatcheck session, memory",
            _cc_session("memory")),
    Variant("coatcheck-session-sqlite", "starlette", "coatcheck", "coatcheck session, SQLite",
            _cc_session("sqlite")),
    Variant("coatcheck-session-redis", "starlette", "coatcheck", "coatcheck session, Redis",
            _cc_session("redis")),
    Variant("coatcheck-session-postgresql", "starlette", "coatcheck",
            "coatcheck session, PostgreSQL", _cc_session("postgresql")),
    Variant("floor-hs256", "starlette", "floor", "hand-written HS256 check (stdlib)", _floor_hs256),
    Variant("pyjwt", "starlette", "peer", "hand-written PyJWT check", _pyjwt),
    Variant("joserfc", "starlette", "peer", "hand-written joserfc check", _joserfc),
    Variant("starlette-session", "starlette", "peer", "Starlette SessionMiddleware",
            _starlette_session),
    Variant("starsessions-redis", "starlette", "peer", "starsessions + RedisStore",
            _starsessions_redis),
    Variant("manual-redis", "starlette", "floor", "hand-written Redis GET by cookie",
            _manual_redis),
    Variant("fastapi-bare", "fastapi", "limit", "FastAPI bare, no auth", _fastapi_bare),
    Variant("coatcheck-fastapi-jwt", "fastapi", "coatcheck",
            "coatcheck FastAPI integration, jwt", _cc_fastapi_integration_jwt),
    Variant("coatcheck-fastapi-redis", "fastapi", "coatcheck",
            "coatcheck FastAPI integration, session on Redis", _cc_fastapi_integration_redis),
    Variant("coatcheck-mw-fastapi-jwt", "fastapi", "coatcheck",
            "coatcheck AuthMiddleware on FastAPI, jwt", _cc_fastapi_mw_jwt),
    Variant("coatcheck-mw-fastapi-redis", "fastapi", "coatcheck",
            "coatcheck AuthMiddleware on FastAPI, session on Redis", _cc_fastapi_mw_redis),
    Variant("fastapi-users-jwt", "fastapi", "peer", "fastapi-users JWTStrategy", _fu_jwt),
    Variant("fastapi-users-redis", "fastapi", "peer", "fastapi-users RedisStrategy", _fu_redis),
    # Controls, in process only: the verified-token cache turned off (cache_size=0).
    Variant("coatcheck-jwt-nocache", "starlette", "coatcheck",
            "coatcheck jwt, token cache off", _cc_jwt_nocache, http=False),
    Variant("coatcheck-hybrid-nocache", "starlette", "coatcheck",
            "coatcheck hybrid, token cache off", _cc_hybrid_nocache, http=False),
)

#: Each "token cache off" control and the variant it controls.
CONTROLS = {
    "coatcheck-jwt-nocache": "coatcheck-jwt",
    "coatcheck-hybrid-nocache": "coatcheck-hybrid",
}

BARE_OF_GROUP = {"starlette": "bare", "fastapi": "fastapi-bare"}


def by_name(name: str) -> Variant:
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise KeyError(name)
