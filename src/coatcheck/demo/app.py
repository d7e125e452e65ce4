"""The demo app: sessions or JWTs side by side, on Starlette, using only coatcheck's public API.

``create_app(DemoConfig(...))`` builds it; ``coatcheck demo`` runs it under uvicorn.
The mode switch is :data:`MODES` (one builder per mode, so hybrid mode adds an entry);
every form is rendered with :func:`_hidden_fields`, where the CSRF token goes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..adapters.asgi import AuthMiddleware, SessionMiddleware
from ..adapters.http import error_body, error_headers, error_status
from ..auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    DPoPPolicy,
    DPoPTransport,
    HybridCookieTransport,
    HybridStrategy,
    JWTStrategy,
    SessionStrategy,
    Strategy,
)
from ..auth.dbsc import DeviceBinding
from ..errors import CoatcheckError, ConfigurationError, RateLimited
from ..policies import CookiePolicy
from ..revocation import RevocationFeed, RevocationSet
from ..sessions import ReplayCache, SessionManager, SessionStore, StoreSessions
from ..sessions.dbsc import DbscPolicy
from ..stores import SQLiteStore, observe_store, open_store
from ..stores.feeds import default_feed_url, open_feed
from ..tokens import JWTCodec, KeyRing
from ..tokens.dpop_nonce import DPoPNonces
from . import inspect_page, pages, password, theft, theft_dbsc
from .context import (
    MAX_BODY,
    DemoConfig,
    DemoContext,
    DemoError,
    wants_json,
)
from .protection import csrf_middleware, load_secret, login_limiter
from .routes import routes as core_routes
from .signing_key import load_signing_keys
from .users import UserDirectory

if TYPE_CHECKING:  # prometheus_client is imported only when --metrics asks for it
    from ..observe.prometheus import PrometheusObserver

__all__ = [
    "MAX_BODY",
    "MODES",
    "DemoConfig",
    "DemoContext",
    "DemoError",
    "check_workers",
    "create_app",
    "create_app_from_environment",
    "describe_store",
    "listen",
    "serve",
]

_USERS_FILE = "coatcheck-demo-users.db"
_PUBLIC_PATHS = ("/healthz", "/.well-known/jwks.json", "/static", "/favicon.ico", "/metrics")


# -- the mode switch -------------------------------------------------------------------------


@dataclass(slots=True)
class _Parts:
    strategy: Strategy
    cookie_name: str
    manager: SessionManager | None = None
    keys: KeyRing | None = None
    feed: RevocationFeed | None = None


def _session_mode(config: DemoConfig, users: UserDirectory, store: SessionStore) -> _Parts:
    manager = SessionManager(store, policy=config.session_policy, clock=config.clock)
    strategy = SessionStrategy(manager, clock=config.clock)
    return _Parts(strategy, "coatcheck_session", manager=manager)


def _jwt_mode(config: DemoConfig, users: UserDirectory, store: SessionStore) -> _Parts:
    keys = load_signing_keys(users.connection, config.alg)
    codec = JWTCodec(keys, algorithms=[config.alg], clock=config.clock)
    strategy = JWTStrategy(codec, ttl=config.jwt_ttl, clock=config.clock)
    return _Parts(strategy, "coatcheck_token", keys=keys)


def _hybrid_mode(config: DemoConfig, users: UserDirectory, store: SessionStore) -> _Parts:
    keys = load_signing_keys(users.connection, config.alg)
    codec = JWTCodec(keys, algorithms=[config.alg], clock=config.clock)
    # Demo only: the refresh secret is derived from the stored signing key, so every
    # demo process sharing the users file derives the same one. Use a real secret.
    material = json.dumps(keys.signing_key().to_jwk(private=True), sort_keys=True).encode()
    refresh_secret = hashlib.sha256(b"coatcheck demo refresh secret\x00" + material).digest()
    revocations = RevocationSet(
        retention=config.access_ttl + codec.policy.leeway, clock=config.clock
    )
    feed = _feed(config, revocations)
    # The manager publishes every revocation (logout, the devices page, a password
    # change, reuse detection) to the feed: no route has to remember it.
    manager = SessionManager(
        store, policy=config.session_policy, clock=config.clock,
        revocations=feed if feed is not None else revocations,
    )  # fmt: skip
    strategy = HybridStrategy(
        manager, codec, refresh_secret, access_ttl=config.access_ttl, clock=config.clock
    )
    return _Parts(strategy, "coatcheck_access", manager=manager, keys=keys, feed=feed)


def _feed(config: DemoConfig, revocations: RevocationSet) -> RevocationFeed | None:
    url = config.feed_url
    if url is None:
        url = default_feed_url(config.store_url)
    if not url or url == "none":
        return None
    return open_feed(url, revocations)


#: mode name -> builder of its strategy and cookie name.
MODES: dict[str, Callable[[DemoConfig, UserDirectory, SessionStore], _Parts]] = {
    "session": _session_mode,
    "jwt": _jwt_mode,
    "hybrid": _hybrid_mode,
}


def _explainer(config: DemoConfig, cookie: CookieTransport, parts: _Parts) -> pages.Explainer:
    policy = cookie.policy
    flags = f"HttpOnly, SameSite={policy.same_site.capitalize()}, Path={policy.path}, " + (
        "Secure (served over HTTPS, so the __Host- prefix pins it to this host)"
        if policy.secure
        else "not Secure: this is plain HTTP, and browsers drop Secure cookies over HTTP on "
        "any host but localhost (run with --https-proxy behind TLS to get Secure and __Host-)"
    )
    # What a server restart keeps depends on the store: the home page says it apart.
    lifetime = (
        "With 'remember me' it has Max-Age (it survives closing the browser); without, it "
        "is a browser-session cookie (no Max-Age or Expires)."
    )
    if config.mode == "hybrid":
        return _hybrid_explainer(config, cookie, parts, flags)
    if config.mode == "jwt":
        alg = config.alg
        return pages.Explainer(
            browser=[
                f"A cookie named {cookie.cookie_name}: {flags}.",
                f"Inside: a JWT signed with {alg}, header.payload.signature. The payload "
                "is only base64url, not encrypted: sub (your user id), username, name, "
                "auth_time, per (remember me), iat, exp, jti.",
                lifetime,
                "API clients send the same kind of token as 'Authorization: Bearer ...'.",
            ],
            server=[
                "Nothing per user: no session record. The token proves itself with its "
                f"signature, checked against the public key in /.well-known/jwks.json ({alg}).",
                "The signing key is kept in the demo's SQLite file, so tokens survive a restart.",
                "Logging out clears the cookie, but the token itself stays valid until its "
                "exp: a copy taken earlier still works. Hybrid mode fixes that.",
                "Past half its lifetime the token is re-issued in the cookie (sliding expiry).",
            ],
        )
    return pages.Explainer(
        browser=[
            f"A cookie named {cookie.cookie_name}: {flags}.",
            "Inside: a session token <slot>.<secret>. The secret is 256 random bits from "
            "the secrets module (base64url). The slot is 8 hex digits: the start of the "
            "SHA-256 of your user id, so it is the same for all your sessions (it links "
            "them) and is not secret; it lets a Redis Cluster keep one user's keys on one "
            "node. The token says nothing else by itself; only the server can look it up.",
            lifetime,
            "API clients send the same kind of token as 'Authorization: Bearer ...'.",
        ],
        server=[
            "A session record keyed by the session id <slot>.<SHA-256 hex of the token> "
            "(never the token): your user id, username and name, created / last seen, "
            "user agent, IP.",
            f"Store: {describe_store(config.store_url)}. Sessions end after "
            f"{pages.duration(config.session_policy.idle_timeout)} idle or "
            f"{pages.duration(config.session_policy.absolute_timeout)} in all.",
            "Logging out deletes the record: the token stops working at once, everywhere.",
        ],
    )


def _hybrid_explainer(
    config: DemoConfig, cookie: CookieTransport, parts: _Parts, flags: str
) -> pages.Explainer:
    ttl = int(config.access_ttl.total_seconds())
    strategy = parts.strategy
    leeway = (
        int(strategy.codec.policy.leeway.total_seconds())
        if isinstance(strategy, HybridStrategy)
        else 0
    )
    refresh = cookie.refresh_name if isinstance(cookie, HybridCookieTransport) else "?"
    path = cookie.refresh_path if isinstance(cookie, HybridCookieTransport) else "?"
    feed = (
        f"A revocation feed ({describe_store(config.feed_url or config.store_url)}) tells "
        "every app process within about a second; while it is down each process checks "
        "the store for every request instead."
        if parts.feed is not None
        else "No revocation feed (SQLite or memory store): other processes would accept a "
        f"revoked access token until it expires plus the {leeway} s leeway, at most "
        f"{ttl + leeway} s (this process refuses it at once)."
    )
    return pages.Explainer(
        browser=[
            f"An access cookie {cookie.cookie_name}: {flags}. Inside: a JWT ({config.alg}) "
            f"valid {ttl} s with sub, sid (your session id), auth_time, name. Requests are "
            "checked with it alone: no store round trip.",
            f"A refresh cookie {refresh}: HttpOnly, Path={path}, so the browser sends it "
            "to that path only. Inside: your session token <slot>.<256 random bits> (the "
            "slot, 8 hex digits of the SHA-256 of your user id, is the same for all your "
            "sessions and not secret) and a generation secret. 'Remember me' gives it "
            "(and the access cookie) a Max-Age until the session ends; without, both end "
            "when the browser closes. It is only used together with an access cookie of "
            "the same session, so a refresh cookie planted by another site is refused.",
            f"The server accepts the access token until its exp plus a {leeway} s leeway for "
            "clock skew. Once it is past exp + leeway, the next request is sent (307) to "
            "the refresh path, which rotates the refresh token and sends you back (307) "
            "with both cookies renewed. Neither cookie is readable by this page's "
            "JavaScript.",
            "API clients: POST /api/login returns token and refresh_token; POST "
            "/api/refresh {refresh_token} returns a new pair.",
        ],
        server=[
            "A session record keyed by the session id <slot>.<SHA-256 hex of the session "
            "token>, holding only SHA-256 hashes of the current and previous refresh "
            "generations.",
            "A retired refresh token whose successor was never used (the answer was "
            "lost) gets that same successor again, for up to 10 minutes. Once the "
            "successor has been used, presenting the retired one revokes the whole "
            "session: a copied token was used.",
            feed,
            f"Store: {describe_store(config.store_url)}.",
        ],
    )


def describe_store(url: str) -> str:
    """A store URL fit to show: a network URL loses its user, password, path and query."""
    scheme, _, rest = url.partition("://")
    if scheme in ("sqlite", "memory"):
        return url
    # Network URLs may carry a password: show only the scheme and host part.
    host = rest.rpartition("@")[2].partition("/")[0]
    return f"{scheme}://{host}"


def _users_path(config: DemoConfig) -> str:
    if config.users_path is not None:
        return config.users_path
    if config.store_url.startswith("sqlite:"):
        path = SQLiteStore.from_url(config.store_url).path
        if path != ":memory:":
            return path
    return os.path.join(os.getcwd(), _USERS_FILE)


def create_app(config: DemoConfig | None = None) -> Starlette:
    """The demo as an ASGI app. Raises ConfigurationError for a bad store URL or mode."""
    config = config or DemoConfig()
    # Opened in every mode, so a bad --store fails at start-up even where it is unused.
    store = open_store(config.store_url)
    metrics = _metrics(config)
    if metrics is not None:
        # Timed everywhere it is used: sessions, the login limiter, DPoP's replay cache.
        store = observe_store(store)
    users_path = _users_path(config)
    if users_path != ":memory:":
        Path(users_path).parent.mkdir(parents=True, exist_ok=True)
    users = UserDirectory(users_path, hasher=config.hasher)
    parts = MODES[config.mode](config, users, store)
    cookie: CookieTransport
    if config.mode == "hybrid":
        # The access cookie is __Host- over HTTPS (no sibling subdomain can set it); the
        # refresh cookie needs a narrow Path, so it is __Secure- and bound to the access
        # cookie's session (issue 12). Demos before that had a __Secure- access cookie:
        # its logins keep working (see CookieTransport's renamed_from).
        secure = "__Secure-" if config.https else ""
        cookie = HybridCookieTransport(
            ("__Host-" if config.https else "") + parts.cookie_name,
            CookiePolicy(secure=config.https),
            refresh_name=secure + "coatcheck_refresh",
            renamed_from=secure + parts.cookie_name if config.https else None,
            clock=config.clock,
        )
    else:
        name = ("__Host-" if config.https else "") + parts.cookie_name
        cookie = CookieTransport(name, CookiePolicy(secure=config.https), clock=config.clock)
    bearer = BearerTransport()
    dpop = _dpop(config, users, store)
    transports = (cookie, dpop, bearer) if dpop is not None else (cookie, bearer)
    # request.session for every visitor. In session mode the data lives in the login
    # session itself; jwt mode has no server session, so the data gets its own record
    # (hybrid mode's sessions are only read at refresh, so likewise).
    data_manager = parts.manager or SessionManager(
        store, policy=config.session_policy, clock=config.clock
    )
    sessions = StoreSessions(
        data_manager,
        cookie_name=("__Host-" if config.https else "") + "coatcheck_data",
        cookie_policy=CookiePolicy(secure=config.https),
    )
    demo = DemoContext(
        config=config,
        users=users,
        authenticator=Authenticator(
            parts.strategy, transports, binding=_binding(config, users, parts, cookie)
        ),
        cookie=cookie,
        bearer=bearer,
        store=store,
        manager=parts.manager,
        keys=parts.keys,
        explainer=_explainer(config, cookie, parts),
        feed=parts.feed,
        limiter=login_limiter(store, users.connection, clock=config.clock),
        sessions=sessions,
        dpop=dpop,
        metrics=metrics,
    )
    return _build(demo)


def _metrics(config: DemoConfig) -> PrometheusObserver | None:
    """The Prometheus metrics of ``--metrics`` (subscribed while the app runs)."""
    if not config.metrics:
        return None
    try:
        from ..observe.prometheus import PrometheusObserver, new_registry
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"--metrics needs {exc.name}: pip install 'coatcheck[prometheus]'"
        ) from exc
    # A registry of its own: two demo apps in one process never share metric names.
    return PrometheusObserver(registry=new_registry())


def _binding(
    config: DemoConfig, users: UserDirectory, parts: _Parts, cookie: CookieTransport
) -> DeviceBinding | None:
    """DBSC for browsers that support it, in session and hybrid mode."""
    strategy = parts.strategy
    if not config.dbsc or not isinstance(strategy, SessionStrategy | HybridStrategy):
        return None
    policy = DbscPolicy(
        bound_ttl=config.bound_ttl,
        # Never hold these back for a refresh: they answer without a login.
        exclude_paths=_PUBLIC_PATHS,
        cookie_name=("__Host-" if config.https else "") + "coatcheck_bound",
    )
    secret = load_secret(users.connection, "dbsc")
    return DeviceBinding(strategy, cookie, secret, policy=policy, clock=config.clock)


def _dpop(config: DemoConfig, users: UserDirectory, store: SessionStore) -> DPoPTransport | None:
    """DPoP on the API (on by default): proof ids are remembered in the session store."""
    if not config.dpop:
        return None
    if not isinstance(store, ReplayCache):
        raise ConfigurationError("DPoP needs a store that can remember proof ids")
    policy = DPoPPolicy(required=config.dpop_required, public_origin=config.public_origin)
    # The nonce secret is kept with the users, so nonces survive a restart.
    nonces = DPoPNonces(load_secret(users.connection, "dpop-nonce")) if config.dpop_nonce else None
    return DPoPTransport(store, policy=policy, nonces=nonces, clock=config.clock)


def _build(demo: DemoContext) -> Starlette:
    # Each page module lists its own routes.
    routes = (
        core_routes + password.routes + inspect_page.routes + theft.routes
        + theft_dbsc.routes
    )
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Events are process-wide: counted while this app runs (the feed's first "up" too).
        subscription = demo.metrics.subscribe() if demo.metrics is not None else None
        if demo.feed is not None:
            # Until it is connected the strategy checks the store: safe either way.
            await demo.feed.start(wait=2.0)
        try:
            yield
        finally:
            if demo.feed is not None:
                await demo.feed.stop()
            await demo.store.close()
            demo.users.close()
            if subscription is not None:
                from ..observe.prometheus import mark_process_dead

                subscription.close()
                mark_process_dead()

    async def on_coatcheck_error(request: Request, exc: Exception) -> Response:
        return _error_response(demo, request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        return _http_error_response(demo, request, exc)

    app = Starlette(
        routes=[Route(path, endpoint, methods=methods) for path, endpoint, methods in routes],
        middleware=[
            Middleware(
                AuthMiddleware, authenticator=demo.authenticator, exclude_paths=_PUBLIC_PATHS
            ),
            # Inside AuthMiddleware: the visitor decides where the data lives.
            Middleware(
                SessionMiddleware, sessions=demo.sessions, authenticator=demo.authenticator,
                exclude_paths=_PUBLIC_PATHS,
            ),
            # Inside both: it binds tokens to the login or the guest's session.
            csrf_middleware(demo),
        ],
        exception_handlers={
            CoatcheckError: on_coatcheck_error,
            DemoError: on_coatcheck_error,
            # Starlette's own refusals (unknown path, wrong method), in the demo's layout.
            HTTPException: on_http_error,
        },
        lifespan=lifespan,
    )
    app.state.demo = demo
    return app


def _error_response(demo: DemoContext, request: Request, exc: Exception) -> Response:
    if isinstance(exc, DemoError):
        status, code, message = exc.status, exc.code, exc.message
        body: dict[str, Any] = {"error": code, "message": message}
        headers: dict[str, str] = {"cache-control": "no-store"}
        if exc.retry_after is not None:
            headers["retry-after"] = str(exc.retry_after)
            body["retry_after"] = exc.retry_after
    else:
        status = error_status(exc)
        body = error_body(exc)
        code, message = body["error"], body["message"]
        # API clients learn that DPoP is spoken here, and with which keys (RFC 9449 §7.2).
        algs = demo.dpop.algorithms if demo.dpop is not None and wants_json(request) else ()
        headers = {k: v for k, v in error_headers(exc, dpop_algs=algs) if k != "content-type"}
        if isinstance(exc, RateLimited) and "retry-after" in headers:
            # The same number as Retry-After (RFC 9110 §10.2.3), in words.
            wait = int(headers["retry-after"])
            what = exc.message.removesuffix("; try again later")
            message = f"{what}; try again in {wait} second{'' if wait == 1 else 's'}"
            body = {**body, "message": message}
    if wants_json(request):
        return JSONResponse(body, status_code=status, headers=headers)
    page = pages.error_page(mode=demo.config.mode, status=status, code=code, message=message)
    return HTMLResponse(page, status_code=status, headers=headers)


def _http_error_response(demo: DemoContext, request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if status == 404:
        code, message = "not_found", f"there is nothing at {request.url.path}"
    elif status == 405:
        code, message = "method_not_allowed", f"{request.method} is not allowed here"
    else:
        code, message = "http_error", str(exc.detail if isinstance(exc, HTTPException) else exc)
    if wants_json(request):
        return JSONResponse(
            {"error": code, "message": message}, status_code=status, headers=headers
        )
    mode = demo.config.mode
    if status == 404:
        page = pages.not_found_page(mode=mode, path=request.url.path)
    else:
        page = pages.error_page(mode=mode, status=status, code=code, message=message)
    return HTMLResponse(page, status_code=status, headers=headers)



# How `coatcheck demo --workers N` hands its configuration to worker processes: uvicorn
# starts each worker afresh and builds the app there with create_app_from_environment.
_CONFIG_ENV = "COATCHECK_DEMO_CONFIG"
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _config_to_env(config: DemoConfig) -> str:
    # Every plain field (what the CLI can set), so a new option cannot be forgotten here;
    # the policy, hasher and clock are objects only code passes, and workers use defaults.
    plain: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if isinstance(value, timedelta):
            plain[item.name] = {"seconds": value.total_seconds()}
        elif value is None or isinstance(value, (str, bool, int, float)):
            plain[item.name] = value
    return json.dumps(plain)


def _config_from_env(raw: str) -> DemoConfig:
    given = json.loads(raw)
    known = {item.name for item in dataclasses.fields(DemoConfig)}
    values: dict[str, Any] = {
        name: timedelta(seconds=value["seconds"]) if isinstance(value, dict) else value
        for name, value in given.items()
        if name in known
    }
    return DemoConfig(**values)


def create_app_from_environment() -> Any:
    """The demo app for one worker of ``coatcheck demo --workers N`` (a uvicorn factory).

    Raises ConfigurationError when the configuration the parent process left in the
    environment is missing or unreadable.
    """
    try:
        config = _config_from_env(os.environ.get(_CONFIG_ENV) or "")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{_CONFIG_ENV} is missing or unreadable: start workers with coatcheck demo --workers"
        ) from exc
    app = create_app(config)
    worker = str(os.getpid()).encode()

    # Says which worker answered, for people (and tests) watching requests spread.
    async def tagged(scope: Any, receive: Any, send: Any) -> None:
        async def send_tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-coatcheck-worker", worker)]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_tagged)

    return tagged


def check_workers(config: DemoConfig, workers: int) -> None:
    """Refuse a store that several worker processes cannot share.

    Raises ConfigurationError for ``workers`` below 1, or above 1 with a memory store
    (it lives in one process).
    """
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if workers > 1 and (
        config.store_url.startswith("memory:") or config.store_url.endswith(":memory:")
    ):
        raise ConfigurationError(
            "a memory store lives in one process: with --workers use sqlite:///file.db, "
            "redis://... or postgresql://..."
        )


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` and listening, to hand to uvicorn.

    Bound here, before anything is announced, so that "serving on ..." is printed only
    once a client can connect. Raises ConfigurationError when the port is taken (or the
    address cannot be used), saying so.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is taken: another program (another demo?) is "
                "listening there; stop it or choose another port with --port"
            ) from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)  # the worker processes serve this same socket
    return sock


def serve(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    forwarded_allow_ips: Sequence[str] = (),
    workers: int = 1,
    config: DemoConfig | None = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Run ``app`` under uvicorn until interrupted (blocking).

    ``X-Forwarded-For`` / ``-Proto`` are trusted only from the proxies in
    ``forwarded_allow_ips`` (addresses or networks, ``*`` for any); by default from
    none, so a client cannot choose the IP the login limiter counts. (uvicorn's own
    default trusts loopback peers, and any local client is one.)

    With ``workers`` above 1, uvicorn runs that many processes on one socket, each
    building its own app from ``config`` (``app`` only served to check it).
    ``announce`` is called once the socket listens, before serving starts.

    :raises ConfigurationError: for a store the workers cannot share, or a port that is
        taken (see :func:`listen`).
    """
    import uvicorn

    proxies: dict[str, Any] = {
        "proxy_headers": bool(forwarded_allow_ips),
        "forwarded_allow_ips": list(forwarded_allow_ips) or None,
    }
    if workers == 1:
        sock = listen(host, port)
        server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, **proxies,
        ))  # fmt: skip
        if announce is not None:
            announce()
        server.run(sockets=[sock])
        return
    shared: DemoConfig = config or app.state.demo.config
    check_workers(shared, workers)
    # uvicorn binds the workers' socket itself: find a taken port here, with our message.
    listen(host, port).close()
    os.environ[_CONFIG_ENV] = _config_to_env(shared)
    folder = None
    if shared.metrics and not os.environ.get(_MULTIPROC_ENV):
        # prometheus_client's multiprocess mode: each worker (a fresh interpreter, so it
        # reads this before importing prometheus_client) writes its metrics to files
        # here, and whichever worker answers /metrics sums them all.
        folder = tempfile.mkdtemp(prefix="coatcheck-metrics-")
        os.environ[_MULTIPROC_ENV] = folder
    if announce is not None:
        _announce_when_listening(host, port, announce)
    try:
        uvicorn.run(
            "coatcheck.demo.app:create_app_from_environment", factory=True, workers=workers,
            host=host, port=port, log_level="warning", access_log=False, **proxies,
        )  # fmt: skip
    finally:
        if folder is not None:
            del os.environ[_MULTIPROC_ENV]
            shutil.rmtree(folder, ignore_errors=True)


def _announce_when_listening(host: str, port: int, announce: Callable[[], None]) -> None:
    """Call ``announce`` from a thread once a connection to the port succeeds (a worker
    listens), or give up quietly after a minute."""

    def wait() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    announce()
                    return
            except OSError:
                time.sleep(0.05)

    threading.Thread(target=wait, name="coatcheck-demo-announce", daemon=True).start()
