"""The demo's defences: CSRF middleware, login throttling, the ``next`` redirect.

Kept apart from the routes so each defence reads in one place:

* :func:`csrf_middleware` wires :class:`~coatcheck.adapters.csrf.CsrfMiddleware`
  (Fetch Metadata / Origin, then a token bound to the session, the login, or a
  pre-session cookie for the login and register forms);
* :func:`guarded_login` reserves the attempt in
  :class:`~coatcheck.ratelimit.LoginLimiter` before the password is checked (and gives
  it back on success), with the same work for unknown users and wrong passwords;
  :func:`guarded_register` counts registrations against the same per-address limit;
  both hash within the demo's bound on concurrent argon2 work (demo/users.py);
* :func:`load_secret` keeps the demo's HMAC secrets (CSRF, rate-limit keys) in the
  demo's SQLite file, so tokens in open forms survive a restart. A real deployment
  loads its secrets from a secret store.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import TYPE_CHECKING

from starlette.middleware import Middleware

from ..adapters.csrf import CsrfMiddleware, csrf_token
from ..auth import HybridCookieTransport
from ..clock import Clock, SystemClock
from ..cookies import expire_cookie
from ..csrf import CsrfProtector
from ..errors import CsrfError, RateLimited
from ..policies import CookiePolicy, CsrfPolicy
from ..ratelimit import AttemptCounter, LoginLimiter
from ..secret import Secret
from . import pages
from .users import check_password_length, validate_registration

if TYPE_CHECKING:
    from starlette.requests import Request

    from .context import DemoContext
    from .users import User

__all__ = [
    "csrf_cookies_cleared",
    "csrf_field",
    "csrf_middleware",
    "guarded_login",
    "guarded_register",
    "load_secret",
    "login_limiter",
]

_SCHEMA = """CREATE TABLE IF NOT EXISTS demo_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at REAL NOT NULL
)"""


def load_secret(conn: sqlite3.Connection, name: str) -> Secret:
    """The demo secret called ``name``, made (256 random bits) on first use."""
    conn.execute(_SCHEMA)
    # INSERT OR IGNORE, then read: demo processes starting together agree on one value.
    conn.execute(
        "INSERT OR IGNORE INTO demo_secrets (name, value, created_at) VALUES (?, ?, ?)",
        (name, secrets.token_urlsafe(32), time.time()),
    )
    row = conn.execute("SELECT value FROM demo_secrets WHERE name = ?", (name,)).fetchone()
    return Secret(row[0])


def csrf_middleware(demo: DemoContext) -> Middleware:
    """The CSRF middleware for the demo; it must sit inside AuthMiddleware."""
    cookie = demo.cookie
    names = [cookie.cookie_name]
    if cookie.renamed_from is not None:
        names.append(cookie.renamed_from)
    if isinstance(cookie, HybridCookieTransport):
        names.append(cookie.refresh_name)
    mode = demo.config.mode

    def html_error(exc: CsrfError) -> str:
        return pages.error_page(mode=mode, status=403, code=exc.code, message=exc.message)

    return Middleware(
        CsrfMiddleware,
        protector=CsrfProtector(
            load_secret(demo.users.connection, "csrf"), clock=demo.config.clock
        ),
        credential_cookies=names,
        cookie_policy=CookiePolicy(secure=demo.config.https),
        # Behind a proxy the Host header is the proxy's idea, not the browser's origin:
        # --public-origin names it (and a malformed one fails at start-up here).
        own_origin=demo.config.public_origin or "",
        # The OAuth token endpoint takes no cookie: its credential is the refresh token
        # in the body (and its DPoP proof), nothing a browser would send by itself.
        exempt_paths=("/api/token",),
        html_error=html_error,
    )


def csrf_cookies_cleared(demo: DemoContext) -> list[tuple[str, str]]:
    """``Set-Cookie`` headers deleting the CSRF cookies, for logout.

    In jwt mode the double-submit cookie holds a token for the login; it must not
    outlive it (the walkthrough found it kept after logout).
    """
    policy = CookiePolicy(secure=demo.config.https)
    prefix = "__Host-" if demo.config.https else ""
    name = CsrfPolicy().cookie_name  # the protector is built with the default policy
    return [
        ("set-cookie", expire_cookie(prefix + name, policy)),
        ("set-cookie", expire_cookie(f"{prefix}{name}_pre", policy)),
    ]


def csrf_field(request: Request) -> str:
    """The hidden input carrying this request's CSRF token."""
    # The default CsrfPolicy is used, so its field name is the default one.
    return pages.hidden_input("csrf_token", csrf_token(request.scope))


def login_limiter(
    store: object, conn: sqlite3.Connection, *, clock: Clock | None = None
) -> LoginLimiter | None:
    """5 failures per account, 50 per IP in 15 minutes, then 1 s, 2 s, 4 s ... up to 15 min.

    The counts live in the session store (so they hold across processes); their keys
    are HMACs, so reading the store does not tell who failed to log in. ``None`` for a
    store that cannot count attempts (every coatcheck store can).
    """
    if not isinstance(store, AttemptCounter):
        return None
    return LoginLimiter(
        store, secret=load_secret(conn, "ratelimit"), clock=clock or SystemClock()
    )


async def guarded_login(
    demo: DemoContext, request: Request, username: object, password: object
) -> User | None:
    """The user if the password matches, else ``None``.

    The attempt is reserved in the limiter *before* the password is checked (one atomic
    store operation), so a burst of any size gets at most the limit's number of password
    checks; the rest are refused with RateLimited (429) without any hashing. Unknown
    user and wrong password take the same path: one argon2 verification
    (:meth:`~coatcheck.demo.users.UserDirectory.check` verifies a dummy hash for an
    unknown name), the attempt stays counted, one answer. A good password gives the
    reservation back. Raises PasswordTooLong (400) before counting anything, and
    DemoError 503 when the hashing queue is full (the reservation is given back: no
    password was checked).
    """
    from .context import check_password, client_ip

    check_password_length(password)
    limiter = demo.limiter
    if limiter is None:
        return await check_password(demo, username, password)
    name = username if isinstance(username, str) else ""
    async with limiter.attempt(name, client_ip(request)) as attempt:
        user = await check_password(demo, username, password)
        if user is not None:
            await attempt.succeeded()
    return user


async def guarded_register(
    demo: DemoContext, request: Request, username: object, password: object, name: object
) -> User:
    """Register an account, behind the login limiter's per-address count.

    A registration hashes a password like a login checks one, so it counts as an
    attempt of the client's address (a successful one too: each costs a hash). Fields
    are checked first (InputError 400 counts nothing); RateLimited (429) comes before
    any hashing; DemoError 409 when the name is taken, 503 when the hashing queue is
    full (then nothing is counted).
    """
    from .context import DemoError, client_ip, register_user

    validate_registration(username, password, name)
    limiter = demo.limiter
    if limiter is None:
        return await register_user(demo, username, password, name)
    try:
        attempt = await limiter.reserve(None, client_ip(request))
    except RateLimited as exc:
        raise RateLimited(
            "too many registrations from this address; try again later",
            retry_after=exc.retry_after,
        ) from None
    try:
        return await register_user(demo, username, password, name)
    except DemoError as exc:
        if exc.status == 503:
            await attempt.cancel()  # nothing was hashed
        raise
