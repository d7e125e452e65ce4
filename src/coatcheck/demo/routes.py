"""The demo's pages and JSON API. Each route reads the Identity the middleware found."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..auth import HybridIssued, HybridStrategy, Identity, require_recent_login
from ..errors import InputError, InvalidCredentials, MissingCredentials, StoreError
from ..redirects import is_safe_redirect, safe_redirect
from . import pages
from .context import (
    DemoContext,
    DemoError,
    client_ip,
    demo_of,
    headers_of,
    identity_of,
    now,
    read_form,
    read_json,
    redirect,
    register_user,
)
from .protection import csrf_field, guarded_login
from .users import User

__all__ = ["hidden_fields", "login_required_page", "require_identity", "routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def hidden_fields(request: Request) -> str:
    """Hidden inputs every form carries: the CSRF token, and for a guest where to go next.

    ``next`` is only ever a same-origin path (:mod:`coatcheck.redirects`): the query's
    ``next``, the one a failed login form sent back, or the guest's current page.
    """
    fields = csrf_field(request)
    if identity_of(request) is None:
        target = getattr(request.state, "next", None) or request.query_params.get("next")
        if target is None and request.method == "GET" and request.url.path != "/":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if target != "/" and is_safe_redirect(target):
            fields += pages.hidden_input("next", str(target))
    return fields


def _name(identity: Identity) -> str:
    return identity.name


def _login_data(user: User) -> dict[str, str]:
    return {"username": user.username, "name": user.name}


async def _details(demo: DemoContext, identity: Identity) -> list[str]:
    lines = [
        f"User id {identity.user_id}, username {identity.claims.get('username', '?')}.",
        f"Authenticated by {identity.mode} via {identity.via}; "
        f"logged in at {pages.when(identity.auth_time)}.",
    ]
    strategy = demo.authenticator.strategy
    if isinstance(strategy, HybridStrategy) and identity.via == "cookie":
        # The access token's expiry changes at every refresh: the panel below shows it
        # live. What stays put is the session, which the refresh cookie stands for.
        record = None
        if demo.manager is not None and identity.session_id:
            record = await demo.manager.get_id(identity.session_id)
        until = pages.when(record.expires_at) if record is not None else "?"
        policy = demo.config.session_policy
        lines.append(
            f"Access token: lives {pages.duration(strategy.access_ttl)} and is renewed "
            "through the refresh cookie (its current expiry is in the panel below)."
        )
        lines.append(
            f"Session and refresh token: valid until {until} unless revoked (a session "
            f"ends after {pages.duration(policy.idle_timeout)} idle or "
            f"{pages.duration(policy.absolute_timeout)} in all)."
        )
        lines.append(
            "Remember me: on. The refresh cookie (and the access cookie) have a Max-Age "
            "until then, so they survive closing the browser."
            if identity.persistent
            else "Remember me: off. The refresh cookie (and the access cookie) are "
            "browser-session cookies: they end when the browser closes."
        )
    else:
        lines.append(
            f"This credential expires at {pages.when(identity.expires_at)}"
            + (" (remember me: on)." if identity.persistent else " (remember me: off).")
        )
    sid = identity.session_id
    if sid:
        slot, _, digest = sid.partition(".")
        lines.append(
            f"Session id {slot}.{digest[:12]}... (<slot>.<SHA-256 hex of your session "
            f"token>). The slot {slot} is the same for all your sessions, so it links "
            "them; it is not secret."
        )
    return lines


# -- pages -----------------------------------------------------------------------------------


async def _home(request: Request, *, status: int = 200, message: str = "", error: str = "",
                username: str = "", register: tuple[str, str] = ("", "")) -> Response:
    demo = demo_of(request)
    identity = identity_of(request)
    panel = ""
    strategy = demo.authenticator.strategy
    if identity is not None and isinstance(strategy, HybridStrategy):
        panel = pages.hybrid_panel(
            expires_at=identity.expires_at,
            now=now(demo),
            leeway=strategy.codec.policy.leeway.total_seconds(),
            ttl=strategy.access_ttl,
            refresh_path=demo.authenticator.refresh_path or "",
            access_cookie=demo.cookie.cookie_name,
        )
    page = pages.home_page(
        mode=demo.config.mode,
        name=_name(identity) if identity else None,
        explainer=demo.explainer,
        details=await _details(demo, identity) if identity else (),
        message=message,
        error=error,
        hidden=hidden_fields(request),
        username=username,
        register=register,
        extra=panel,
    )
    return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})


async def login_required_page(request: Request, message: str) -> Response:
    """401 with the front page's login form, which comes back to this page after login."""
    if request.method != "GET" and is_safe_redirect(request.url.path):
        request.state.next = request.url.path
    return await _home(request, status=401, error=message)


_MESSAGES = {
    "registered": "Your account is ready: log in below.",
    "logged-out": "You are logged out.",
    "revoked": "That session was revoked.",
}


async def home(request: Request) -> Response:
    return await _home(request, message=_MESSAGES.get(request.query_params.get("msg", ""), ""))


async def register_form(request: Request) -> Response:
    demo = demo_of(request)
    fields = await read_form(request)
    # Shown again in the form after a refusal; the password never is.
    kept = (fields.get("username", "")[:64], fields.get("name", "")[:200])
    try:
        await register_user(demo, fields.get("username"), fields.get("password"),
                            fields.get("name"))
    except InputError as exc:
        return await _home(request, status=400, error=exc.message, register=kept)
    except DemoError as exc:
        return await _home(request, status=exc.status, error=exc.message, register=kept)
    return redirect("/?msg=registered")


async def login_form(request: Request) -> Response:
    demo = demo_of(request)
    fields = await read_form(request)
    username, password = fields.get("username", ""), fields.get("password", "")
    # Open redirects: only a same-origin path, whatever the form says (issue 5).
    target = safe_redirect(fields.get("next"))
    request.state.next = target
    if not username or not password:
        return await _home(request, status=400, error="Enter a username and a password.",
                           username=username)
    user = await guarded_login(demo, request, username, password)  # RateLimited: 429
    if user is None:
        return await _home(request, status=401, error="Wrong username or password.",
                           username=username)
    result = await demo.authenticator.login(
        user.user_id,
        headers=headers_of(request),
        data=_login_data(user),
        persistent=fields.get("remember") == "on",
        ip=client_ip(request),
    )
    return redirect(target, result.set_headers)


async def logout_form(request: Request) -> Response:
    demo = demo_of(request)
    set_headers = await demo.authenticator.logout(headers_of(request))
    return redirect("/?msg=logged-out", set_headers)


async def sessions(request: Request) -> Response:
    demo = demo_of(request)
    identity = identity_of(request)
    if identity is None:
        return await login_required_page(request, "Log in to see your sessions.")
    mode = demo.config.mode
    if demo.manager is None:
        note = (
            f"In {mode} mode the server keeps no list of logins: each JWT is valid on its own "
            "until it expires, so there is nothing to revoke one by one and no 'log out "
            "everywhere'. Session mode (or hybrid mode) can do both."
        )
        page = pages.sessions_page(mode=mode, name=_name(identity), rows=None, note=note)
        return HTMLResponse(page)
    records = await demo.manager.list_user(identity.user_id)
    rows = [
        pages.SessionRow(
            session_id=r.id, created_at=r.created_at, last_seen=r.last_seen,
            expires_at=r.expires_at, user_agent=r.user_agent, ip=r.ip,
            current=r.id == identity.session_id,
        )
        for r in records
    ]
    revoked = request.query_params.get("msg") == "revoked"
    note = "That session was revoked." if revoked else ""
    page = pages.sessions_page(
        mode=mode, name=_name(identity), rows=rows, note=note, hidden=hidden_fields(request)
    )
    return HTMLResponse(page, headers={"cache-control": "no-store"})


async def revoke_session(request: Request) -> Response:
    demo = demo_of(request)
    identity = identity_of(request)
    fields = await read_form(request)
    if identity is None or demo.manager is None:
        raise MissingCredentials("log in to manage sessions (session mode only)")
    target = fields.get("session_id", "")
    owned = {r.id for r in await demo.manager.list_user(identity.user_id)}
    # Only the user's own sessions: an id from someone else is "not found", not revoked.
    if target not in owned:
        raise DemoError(404, "unknown_session", "no such session among yours")
    await demo.manager.revoke_id(target)  # published to the feed in hybrid mode
    if target == identity.session_id:
        return redirect("/?msg=logged-out", demo.cookie.clear())
    return redirect("/sessions?msg=revoked")


async def revoke_all(request: Request) -> Response:
    demo = demo_of(request)
    identity = identity_of(request)
    await read_form(request)
    if identity is None or demo.manager is None:
        raise MissingCredentials("log in to manage sessions (session mode only)")
    # Fresh authentication (issue 4): logging out everywhere needs a recent login, so a
    # stolen, long-lived cookie cannot lock the real owner out of their other devices.
    require_recent_login(identity, demo.config.fresh_login, clock=demo.config.clock)
    await demo.manager.revoke_user(identity.user_id)  # published to the feed in hybrid mode
    return redirect("/?msg=logged-out", demo.cookie.clear())


# -- JSON API --------------------------------------------------------------------------------


def require_identity(request: Request) -> Identity:
    """The caller's Identity. Raises MissingCredentials or InvalidCredentials (401)."""
    identity = identity_of(request)
    if identity is not None:
        return identity
    demo = demo_of(request)
    headers = headers_of(request)
    if demo.cookie.read(headers) is not None or demo.bearer.read(headers) is not None:
        raise InvalidCredentials("the session or token is invalid, expired or revoked")
    if headers.get("authorization"):
        raise InvalidCredentials("the Authorization header is not 'Bearer <token>'")
    raise MissingCredentials("send the session cookie or 'Authorization: Bearer <token>'")


async def api_register(request: Request) -> Response:
    demo = demo_of(request)
    body = await read_json(request)
    for key in ("username", "password", "name"):
        if key not in body:
            raise InputError(f"'{key}' is required")
    user = await register_user(demo, body["username"], body["password"], body["name"])
    return JSONResponse(
        {"user_id": user.user_id, "username": user.username, "name": user.name}, status_code=201
    )


async def api_login(request: Request) -> Response:
    demo = demo_of(request)
    body = await read_json(request)
    remember = body.get("remember", True)
    if not isinstance(remember, bool):
        raise InputError("'remember' must be true or false")
    user = await guarded_login(demo, request, body.get("username"), body.get("password"))
    if user is None:
        # One answer for an unknown user and a wrong password (no user enumeration).
        raise InvalidCredentials("wrong username or password")
    result = await demo.authenticator.login(
        user.user_id,
        headers=headers_of(request),
        data=_login_data(user),
        persistent=remember,
        ip=client_ip(request),
        # A native client has no previous credential to take over: never end another one.
        revoke_previous=False,
    )
    answer: dict[str, object] = {
        "token": result.token,
        "token_type": "Bearer",
        "expires_in": max(0, int(result.expires_at - now(demo))),
        "mode": demo.config.mode,
    }
    if isinstance(result.issued, HybridIssued):
        answer["refresh_token"] = result.issued.refresh_token
    return JSONResponse(answer, headers={"cache-control": "no-store"})  # RFC 6749 §5.1


async def api_refresh(request: Request) -> Response:
    """Native apps: trade a refresh token for a new pair (hybrid mode)."""
    demo = demo_of(request)
    strategy = demo.authenticator.strategy
    if not isinstance(strategy, HybridStrategy):
        raise DemoError(404, "no_refresh", f"{demo.config.mode} mode has no refresh tokens")
    body = await read_json(request)
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise InputError("'refresh_token' is required")
    pair = await strategy.refresh(token)
    return JSONResponse(
        {
            "token": pair.token,
            "token_type": "Bearer",
            "refresh_token": pair.refresh_token,
            "expires_in": max(0, int(pair.expires_at - now(demo))),
        },
        headers={"cache-control": "no-store"},
    )


async def api_refresh_status(request: Request) -> Response:
    """What the browser holds, for the demo page (whose JavaScript cannot read it)."""
    demo = demo_of(request)
    identity = require_identity(request)
    strategy = demo.authenticator.strategy
    # The server accepts an access token until exp + leeway (RFC 7519 §4.1.4); the
    # first request after ``refresh_after`` is the one the middleware refreshes.
    leeway = (
        strategy.codec.policy.leeway.total_seconds()
        if isinstance(strategy, HybridStrategy)
        else None
    )
    return JSONResponse(
        {
            "mode": demo.config.mode,
            "session_id": identity.session_id,
            "access_expires_at": identity.expires_at,
            "access_token_id": identity.claims.get("jti"),
            "issued_at": identity.claims.get("iat"),
            "leeway": leeway,
            "refresh_after": None if leeway is None else identity.expires_at + leeway,
            "now": now(demo),
        },
        headers={"cache-control": "no-store"},
    )


async def api_me(request: Request) -> Response:
    demo = demo_of(request)
    identity = require_identity(request)
    claims = identity.claims
    return JSONResponse(
        {
            "user_id": identity.user_id,
            "username": claims.get("username"),
            "name": identity.name,
            "mode": demo.config.mode,
            "via": identity.via,
            "session_id": identity.session_id,
            "auth_time": identity.auth_time,
            "expires_at": identity.expires_at,
            "persistent": identity.persistent,
        },
        headers={"cache-control": "no-store"},
    )


async def api_logout(request: Request) -> Response:
    demo = demo_of(request)
    require_identity(request)
    set_headers = await demo.authenticator.logout(headers_of(request))
    body = {"ok": True, "mode": demo.config.mode}
    if demo.manager is None:
        body["note"] = "the cookie is cleared, but a JWT stays valid until its exp"
    response = JSONResponse(body)
    for name, value in set_headers:
        response.headers.append(name, value)
    return response


async def api_sessions(request: Request) -> Response:
    demo = demo_of(request)
    identity = require_identity(request)
    if demo.manager is None:
        raise DemoError(404, "no_sessions", f"{demo.config.mode} mode keeps no sessions")
    records = await demo.manager.list_user(identity.user_id)
    return JSONResponse(
        {
            "sessions": [
                {
                    "id": r.id,
                    "created_at": r.created_at,
                    "last_seen": r.last_seen,
                    "expires_at": r.expires_at,
                    "user_agent": r.user_agent,
                    "ip": r.ip,
                    "current": r.id == identity.session_id,
                }
                for r in records
            ]
        }
    )


async def jwks(request: Request) -> Response:
    demo = demo_of(request)
    if demo.keys is None:
        raise DemoError(404, "no_jwks", f"{demo.config.mode} mode signs no tokens")
    return JSONResponse(demo.keys.jwks(), headers={"cache-control": "public, max-age=300"})


async def favicon(request: Request) -> Response:
    # The pages carry an inline icon; this only keeps browsers' logs free of 404s.
    return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})


#: A session id no session has: reading it is one round trip that finds nothing.
_PROBE_ID = "00000000." + "0" * 64
_PROBE_TIMEOUT = 2.0


async def _store_up(demo: DemoContext) -> bool:
    try:
        await asyncio.wait_for(demo.store.get(_PROBE_ID, now(demo)), _PROBE_TIMEOUT)
    except (StoreError, TimeoutError):
        return False
    return True


async def healthz(request: Request) -> Response:
    """Which parts are up, with a status a load balancer can act on.

    ``store`` down: 503 (every login and, outside jwt mode, every authenticated request
    fails; take this instance out). ``feed`` down: 200 ``"degraded"``: requests are
    still answered correctly, each access token checked in the store until the feed is
    back (slower, never wrong), and every instance shares the feed, so failing them
    all would not help. ``feed`` is ``"none"`` when no feed is configured.
    """
    demo = demo_of(request)
    store = await _store_up(demo)
    feed = "none" if demo.feed is None else "up" if demo.feed.healthy else "down"
    status = "down" if not store else "degraded" if feed == "down" else "ok"
    body = {"ok": store, "status": status, "store": "up" if store else "down", "feed": feed}
    headers = {"cache-control": "no-store"}
    if not store:
        headers["retry-after"] = "5"
    return JSONResponse(body, status_code=200 if store else 503, headers=headers)


routes: list[tuple[str, Endpoint, list[str]]] = [
    ("/", home, ["GET"]),
    ("/register", register_form, ["POST"]),
    ("/login", login_form, ["POST"]),
    ("/logout", logout_form, ["POST"]),
    ("/sessions", sessions, ["GET"]),
    ("/sessions/revoke", revoke_session, ["POST"]),
    ("/sessions/revoke-all", revoke_all, ["POST"]),
    ("/api/register", api_register, ["POST"]),
    ("/api/login", api_login, ["POST"]),
    ("/api/me", api_me, ["GET"]),
    ("/api/logout", api_logout, ["POST"]),
    ("/api/sessions", api_sessions, ["GET"]),
    ("/api/refresh", api_refresh, ["POST"]),
    ("/api/refresh-status", api_refresh_status, ["GET", "POST"]),
    ("/.well-known/jwks.json", jwks, ["GET"]),
    ("/healthz", healthz, ["GET"]),
    ("/favicon.ico", favicon, ["GET"]),
]
