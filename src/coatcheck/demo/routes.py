"""The demo's pages and JSON API. Each route reads the Identity the middleware found."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..adapters.asgi import auth_error_of, flash, pop_flashes, session_of
from ..adapters.http import error_body, error_headers, error_status
from ..auth import HybridStrategy, Identity, require_recent_login
from ..auth.dpop import key_binding
from ..errors import (
    AuthenticationError,
    InputError,
    InvalidCredentials,
    InvalidDPoPBinding,
    InvalidDPoPProof,
    MissingCredentials,
    StoreError,
)
from ..redirects import is_safe_redirect, safe_redirect
from ..sessions import SessionRecord
from . import pages, visual
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
)
from .protection import csrf_cookies_cleared, csrf_field, guarded_login, guarded_register
from .right_now import right_now, store_survives_restart
from .theft_dbsc import bound_status
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


def _details(demo: DemoContext, identity: Identity, record: SessionRecord | None) -> list[str]:
    lines = [
        f"User id {identity.user_id}, username {identity.claims.get('username', '?')}.",
        f"Authenticated by {identity.mode} via {identity.via}; "
        f"logged in at {pages.when(identity.auth_time)}.",
    ]
    strategy = demo.authenticator.strategy
    if isinstance(strategy, HybridStrategy) and identity.via == "cookie":
        # The access token's expiry changes at every refresh: the panel below shows it
        # live. What stays put is the session, which the refresh cookie stands for.
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
    binding = demo.authenticator.binding
    if binding is not None:
        lines.append(
            "Device binding (DBSC): " + bound_status(identity, demo.config.mode)[1]
            + " See /theft/dbsc for what a copied cookie is worth."
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
    session = session_of(request)
    if identity is None and not message and request.cookies.get(demo.cookie.cookie_name):
        # A credential cookie that no longer logs anyone in: say why, not just "guest".
        message = _ENDED.get(demo.config.mode, _ENDED["session"])
    # The login's session record, read once for the picture, the details and the panel.
    record = None
    if identity is not None and identity.session_id and demo.manager is not None:
        record = await demo.manager.get_id(identity.session_id)
    picture = await right_now(demo, request, identity, session, record)
    if identity is not None and isinstance(strategy, HybridStrategy):
        leeway = strategy.codec.policy.leeway.total_seconds()
        issued = identity.claims.get("iat")
        panel = pages.hybrid_panel(
            expires_at=identity.expires_at,
            now=now(demo),
            leeway=leeway,
            ttl=strategy.access_ttl,
            refresh_path=demo.authenticator.refresh_path or "",
            access_cookie=demo.cookie.cookie_name,
            timeline=visual.hybrid_timeline(
                issued=float(issued) if isinstance(issued, int | float)
                else identity.expires_at - strategy.access_ttl,
                expires=identity.expires_at, leeway=leeway, now=now(demo),
                session_ends=record.expires_at if record is not None else None,
            ),
        )  # fmt: skip
    flashes = pop_flashes(request)
    hidden = hidden_fields(request)
    browser, server = _session_texts(demo, identity, bool(session))
    guest_name = session.get("name")
    page = pages.home_page(
        mode=demo.config.mode,
        name=_name(identity) if identity else None,
        explainer=demo.explainer,
        details=_details(demo, identity, record) if identity else (),
        message=message,
        error=error,
        hidden=hidden,
        username=username,
        register=register,
        extra=panel,
        guest_name=guest_name if isinstance(guest_name, str) else None,
        flashes=flashes,
        session=pages.session_panel(
            data=session, logged_in=identity is not None, hidden=hidden,
            browser=browser, server=server,
        ),
        picture=picture.diagram,
        token=picture.token,
        store_note=store_survives_restart(demo.config.store_url, demo.config.mode),
    )  # fmt: skip
    return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})


def _session_texts(
    demo: DemoContext, identity: Identity | None, has_data: bool
) -> tuple[list[str], list[str]]:
    """What the browser holds and the server keeps for this visitor's session data."""
    cookie = demo.sessions.cookie_name
    policy = demo.config.session_policy
    lifetime = (
        f"It ends after {pages.duration(policy.idle_timeout)} without a visit or "
        f"{pages.duration(policy.absolute_timeout)} in all."
    )
    if identity is not None and identity.session_id and demo.config.mode == "session":
        return (
            ["Nothing more: your login cookie already leads to your session, and the data "
             "rides along (one cookie, one record)."],
            ["Your login session record keeps the data under the key _session, beside your "
             "name: the one store read that checks your login serves both.",
             "At login the guest's cart was carried into this new session (a new id, so a "
             "session id planted before login is worthless); logging out deletes the "
             "record, and the data with it."],
        )  # fmt: skip
    if identity is not None:
        return (
            [f"A cookie {cookie} with a token of its own for your data (HttpOnly, "
             "SameSite=Lax): a signed token cannot hold a cart that changes, shrinks and "
             "must be forgotten at logout."],
            ["A data record with no user of its own (never listed among logins, never a "
             "login itself), marked as yours: no one else is shown it.",
             "At login the guest's data moved to a new id; logging out deletes it. "
             + lifetime],
        )  # fmt: skip
    if not has_data:
        return (
            ["Nothing yet: no session cookie until you store something (your name, or a "
             "cart item)."],
            ["Nothing yet: a visit that stores nothing costs the server nothing, not even "
             "a read."],
        )  # fmt: skip
    return (
        [f"A cookie {cookie}: a session token <slot>.<secret>, the secret 256 random bits; "
         "for a guest the 8-hex-digit slot is random too (it says nothing about you, and "
         "spreads guests over a Redis cluster's nodes).",
         "HttpOnly (scripts cannot read it), SameSite=Lax, with a Max-Age: it survives "
         "closing the browser. " + store_survives_restart(demo.config.store_url, "session")],
        ["A session record keyed by <slot>.<SHA-256 hex of the token>, never the token "
         "itself: no user id, your data as JSON (below), created, last seen and expiry. "
         + lifetime,
         "Reading it costs one store read per request; it is written only when the data "
         "changes, once, at the end of the request. Emptied, it is deleted and the cookie "
         "cleared.",
         "Log in and the data moves, cart and all, to a new id: "
         + ("into your login session." if demo.config.mode == "session"
            else "a data record marked as yours.")],
    )  # fmt: skip


async def set_name(request: Request) -> Response:
    """A guest tells us their name: kept in request.session, greeted by it from now on."""
    fields = await read_form(request)
    name = " ".join(fields.get("name", "").split())[:60]
    session = session_of(request)
    if name:
        session["name"] = name
        flash(request, f"Nice to meet you, {name}. This page will remember you.")
    elif session.pop("name", None) is not None:
        flash(request, "Your name is forgotten.")
    return redirect("/")


async def cart_add(request: Request) -> Response:
    fields = await read_form(request)
    item = fields.get("item", "")
    if item not in pages.CART_ITEMS:
        raise InputError(f"there is no {item[:20]!r} in this shop")
    # A change inside a list: found by comparing, saved once at the end of the request.
    session_of(request).setdefault("cart", []).append(item)
    flash(request, f"Added {pages.CART_ITEMS[item]} to your cart.")
    return redirect("/")


async def cart_clear(request: Request) -> Response:
    await read_form(request)
    if session_of(request).pop("cart", None) is not None:
        flash(request, "Your cart is empty.")
    return redirect("/")


async def login_required_page(request: Request, message: str) -> Response:
    """401 with the front page's login form, which comes back to this page after login."""
    if request.method != "GET" and is_safe_redirect(request.url.path):
        request.state.next = request.url.path
    return await _home(request, status=401, error=message)


#: Said to a browser whose credential cookie stopped working since its last request.
_ENDED = {
    "session": "This device was logged out: its session was ended elsewhere (from the "
    "devices page of another device, by 'log out everywhere' or by a password change), or "
    "it expired. Log in again.",
    "jwt": "Your login on this device has expired (or its token is no longer accepted). "
    "Log in again.",
}

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
        await guarded_register(demo, request, fields.get("username"), fields.get("password"),
                               fields.get("name"))  # RateLimited: 429
    except InputError as exc:
        return await _home(request, status=400, error=exc.message, register=kept)
    except DemoError as exc:
        page = await _home(request, status=exc.status, error=exc.message, register=kept)
        if exc.retry_after is not None:
            page.headers["retry-after"] = str(exc.retry_after)
        return page
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
    return redirect("/?msg=logged-out", [*set_headers, *csrf_cookies_cleared(demo)])


async def login_page(request: Request) -> Response:
    """GET /login: the login form (the front page's), or home for a logged-in visitor."""
    if identity_of(request) is not None:
        return redirect(safe_redirect(request.query_params.get("next")))
    return await _home(request)


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
        return redirect("/?msg=logged-out", [*demo.cookie.clear(), *csrf_cookies_cleared(demo)])
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
    return redirect("/?msg=logged-out", [*demo.cookie.clear(), *csrf_cookies_cleared(demo)])


# -- JSON API --------------------------------------------------------------------------------


def require_identity(request: Request) -> Identity:
    """The caller's Identity. Raises MissingCredentials or InvalidCredentials (401)."""
    identity = identity_of(request)
    if identity is not None:
        return identity
    refused = auth_error_of(request.scope)
    if refused is not None:
        raise refused  # a DPoP proof or binding: a 401 with the DPoP challenge
    demo = demo_of(request)
    headers = headers_of(request)
    if any(t.read(headers) is not None for t in demo.authenticator.transports):
        raise InvalidCredentials("the session or token is invalid, expired or revoked")
    if headers.get("authorization"):
        raise InvalidCredentials(
            "the Authorization header is not 'Bearer <token>' or 'DPoP <token>'"
        )
    raise MissingCredentials("send the session cookie or 'Authorization: Bearer <token>'")


def token_endpoint_error(exc: InvalidDPoPProof | InvalidDPoPBinding) -> Response:
    """A refused DPoP proof where tokens are issued: 400 and the nonce (RFC 9449 §5, §8)."""
    headers = {k: v for k, v in error_headers(exc, token_endpoint=True) if k != "content-type"}
    return JSONResponse(
        error_body(exc), status_code=error_status(exc, token_endpoint=True), headers=headers
    )


async def api_register(request: Request) -> Response:
    demo = demo_of(request)
    body = await read_json(request)
    for key in ("username", "password", "name"):
        if key not in body:
            raise InputError(f"'{key}' is required")
    user = await guarded_register(demo, request, body["username"], body["password"], body["name"])
    return JSONResponse(
        {"user_id": user.user_id, "username": user.username, "name": user.name}, status_code=201
    )


async def api_login(request: Request) -> Response:
    """Native apps: a token for a password; with a DPoP proof, bound to its key."""
    demo = demo_of(request)
    body = await read_json(request)
    remember = body.get("remember", True)
    if not isinstance(remember, bool):
        raise InputError("'remember' must be true or false")
    proof = None
    if demo.dpop is not None:
        try:
            # Before the password: a bad proof costs no argon2 and no attempt.
            proof = await demo.dpop.token_request(headers_of(request))
        except InvalidDPoPProof as exc:
            return token_endpoint_error(exc)
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
        proof=proof,
    )
    answer: dict[str, object] = {
        "token": result.token,
        "token_type": result.token_type,
        "expires_in": max(0, int(result.expires_at - now(demo))),
        "mode": demo.config.mode,
    }
    if result.refresh_token is not None:
        answer["refresh_token"] = result.refresh_token
    return JSONResponse(answer, headers={"cache-control": "no-store"})  # RFC 6749 §5.1


async def api_refresh(request: Request) -> Response:
    """Native apps: trade a refresh token for a new pair (hybrid mode).

    A pair bound to a DPoP key is renewed only with a proof of that key.
    """
    demo = demo_of(request)
    _hybrid_only(demo)
    body = await read_json(request)
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise InputError("'refresh_token' is required")
    try:
        result = await demo.authenticator.refresh_bearer(token, headers=headers_of(request))
    except (InvalidDPoPProof, InvalidDPoPBinding) as exc:
        return token_endpoint_error(exc)
    return JSONResponse(
        {
            "token": result.token,
            "token_type": result.token_type,
            "refresh_token": result.refresh_token,
            "expires_in": max(0, int(result.expires_at - now(demo))),
        },
        headers={"cache-control": "no-store"},
    )


async def api_token(request: Request) -> Response:
    """An OAuth 2.0 token endpoint for the refresh grant (RFC 6749 §6, RFC 9449 §5).

    ``grant_type=refresh_token&refresh_token=...`` as a form, so that OAuth clients
    (oauth4webapi) refresh as they would against any authorization server; errors
    are RFC 6749 §5.2 ``{"error": ...}`` with status 400.
    """
    demo = demo_of(request)
    _hybrid_only(demo)
    form = await read_form(request)
    if form.get("grant_type") != "refresh_token":
        return _oauth_error("unsupported_grant_type", "only grant_type=refresh_token is served")
    token = form.get("refresh_token")
    if not token:
        return _oauth_error("invalid_request", "'refresh_token' is required")
    try:
        result = await demo.authenticator.refresh_bearer(token, headers=headers_of(request))
    except (InvalidDPoPProof, InvalidDPoPBinding) as exc:
        return token_endpoint_error(exc)
    except AuthenticationError as exc:
        return _oauth_error("invalid_grant", exc.message)
    return JSONResponse(
        {
            "access_token": result.token,
            "token_type": result.token_type,
            "refresh_token": result.refresh_token,
            "expires_in": max(0, int(result.expires_at - now(demo))),
        },
        headers={"cache-control": "no-store", "pragma": "no-cache"},
    )


def _oauth_error(code: str, message: str) -> Response:
    return JSONResponse(
        {"error": code, "error_description": message},
        status_code=400,
        headers={"cache-control": "no-store"},
    )


def _hybrid_only(demo: DemoContext) -> None:
    if not isinstance(demo.authenticator.strategy, HybridStrategy):
        raise DemoError(404, "no_refresh", f"{demo.config.mode} mode has no refresh tokens")


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
            # The thumbprint of the DPoP key the credential is bound to (None: a bearer).
            "dpop_jkt": key_binding(identity.claims) or None,
        },
        headers={"cache-control": "no-store"},
    )


async def api_logout(request: Request) -> Response:
    demo = demo_of(request)
    require_identity(request)
    identity = identity_of(request)
    set_headers = await demo.authenticator.logout(headers_of(request))
    body = {"ok": True, "mode": demo.config.mode}
    by_cookie = identity is not None and identity.via == "cookie"
    if by_cookie:
        set_headers = [*set_headers, *csrf_cookies_cleared(demo)]
    if demo.manager is None:
        # A bearer client has no cookie to clear: say only what is true for it.
        body["note"] = (
            "the cookie is cleared, but a JWT stays valid until its exp" if by_cookie
            else "nothing is stored to revoke: this JWT stays valid until its exp; "
            "discard it on the client"
        )  # fmt: skip
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


async def metrics(request: Request) -> Response:
    """Prometheus metrics (``coatcheck demo --metrics``): every worker's, summed.

    Counts only, never a token, id, user or address. Public here, as /healthz is; in
    production serve it where only the scraper reaches (another port, a network policy).
    """
    demo = demo_of(request)
    if demo.metrics is None:
        page = pages.not_found_page(mode=demo.config.mode, path=request.url.path)
        return HTMLResponse(page, status_code=404)
    from ..observe.prometheus import scrape

    body, content_type = scrape(demo.metrics.registry)
    return Response(body, headers={"content-type": content_type, "cache-control": "no-store"})


routes: list[tuple[str, Endpoint, list[str]]] = [
    ("/", home, ["GET"]),
    ("/register", register_form, ["POST"]),
    ("/login", login_form, ["POST"]),
    ("/login", login_page, ["GET"]),
    ("/logout", logout_form, ["POST"]),
    ("/name", set_name, ["POST"]),
    ("/cart/add", cart_add, ["POST"]),
    ("/cart/clear", cart_clear, ["POST"]),
    ("/sessions", sessions, ["GET"]),
    ("/sessions/revoke", revoke_session, ["POST"]),
    ("/sessions/revoke-all", revoke_all, ["POST"]),
    ("/api/register", api_register, ["POST"]),
    ("/api/login", api_login, ["POST"]),
    ("/api/me", api_me, ["GET"]),
    ("/api/logout", api_logout, ["POST"]),
    ("/api/sessions", api_sessions, ["GET"]),
    ("/api/refresh", api_refresh, ["POST"]),
    ("/api/token", api_token, ["POST"]),
    ("/api/refresh-status", api_refresh_status, ["GET", "POST"]),
    ("/.well-known/jwks.json", jwks, ["GET"]),
    ("/healthz", healthz, ["GET"]),
    ("/metrics", metrics, ["GET"]),
    ("/favicon.ico", favicon, ["GET"]),
]
