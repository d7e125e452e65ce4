"""Changing the password (issue 4): a recent login, the current password, then the
user's other sessions end.

The order of the checks matters: the login's age first (a stolen cookie alone must
not be enough, :func:`~coatcheck.auth.require_recent_login`), then the new
password's shape (cheap), then the current password through the same throttle as
the login form (:func:`~coatcheck.demo.protection.guarded_login`), so this form
cannot be used to guess passwords faster than the login form can.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..auth import Identity, require_recent_login
from ..errors import InputError, InvalidCredentials, StaleAuthentication
from . import pages
from .context import (
    DemoContext,
    DemoError,
    demo_of,
    hash_work,
    identity_of,
    read_form,
    read_json,
    redirect,
)
from .protection import guarded_login
from .routes import hidden_fields, login_required_page, require_identity
from .users import validate_password

__all__ = ["api_change_password", "change_password", "password_page", "routes"]

_NO_STORE = {"cache-control": "no-store"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True, slots=True)
class _Changed:
    revoked: int | None  # None: this mode keeps no sessions to end
    note: str


def _jwt_note(demo: DemoContext) -> str:
    return (
        "In jwt mode the server keeps no list of logins: JWTs already held by your other "
        "devices stay valid until they expire (they are issued for "
        f"{pages.duration(demo.config.jwt_ttl)}). Session or hybrid mode would log them "
        "out now."
    )


async def _change(request: Request, identity: Identity, current: object, new: object) -> _Changed:
    """Check and store the new password, end the other sessions.

    Raises StaleAuthentication (401), InputError (400), DemoError (403 wrong password),
    RateLimited (429), InvalidCredentials when the account is gone.
    """
    demo = demo_of(request)
    require_recent_login(identity, demo.config.fresh_login, clock=demo.config.clock)
    if not isinstance(current, str) or not current:
        raise InputError("the current password is required")
    validate_password(new)
    if new == current:
        raise InputError("the new password must differ from the current one")
    user = demo.users.get(identity.user_id)
    if user is None:
        raise InvalidCredentials("this account no longer exists")
    checked = await guarded_login(demo, request, user.username, current)
    if checked is None or checked.user_id != user.user_id:
        raise DemoError(403, "wrong_password", "the current password is wrong")
    await hash_work(demo, demo.users.set_password, user.user_id, new)
    if demo.manager is not None:
        # In hybrid mode the manager also publishes them on the revocation feed, so
        # every process refuses their access tokens within the stated bound.
        ids = await demo.manager.revoke_user(user.user_id, keep=identity.session_id)
    else:
        return _Changed(None, _jwt_note(demo))
    count = len(ids)
    plural = "session was" if count == 1 else "sessions were"
    return _Changed(count, f"Your other {count} {plural} logged out; this one stays.")


# -- HTML ------------------------------------------------------------------------------------


def _relogin(request: Request, identity: Identity, message: str) -> str:
    demo = demo_of(request)
    user = demo.users.get(identity.user_id)
    username = user.username if user else ""
    recent = pages.duration(demo.config.fresh_login)
    return (
        f'<div class="box err" role=alert>{_e(message)}</div>'
        f"<p>Changing the password needs a login within the last {_e(recent)}; yours "
        f"was at {_e(pages.when(identity.auth_time))}. "
        '<a href="#relogin">Log in again</a> to change your password.</p>'
        '<h2 id="relogin">Log in again</h2>'
        + pages.form(
            "/login",
            pages.hidden_input("next", "/password")
            + f'<label>Username <input type=text name=username value="{_e(username)}" '
            "autocomplete=username required></label>"
            "<label>Password <input type=password name=password "
            "autocomplete=current-password required></label>"
            + "<label><input type=checkbox name=remember value=on"
            + (" checked" if identity.persistent else "")
            + "> Remember me</label>",
            "Log in",
            hidden=hidden_fields(request),
        )
    )


def _form(request: Request, identity: Identity, *, noted: bool = False) -> str:
    """The form; ``noted``: the jwt-mode caveat is already on the page (said once)."""
    demo = demo_of(request)
    until = identity.auth_time + demo.config.fresh_login.total_seconds()
    if demo.manager is None:
        effect = "" if noted else _jwt_note(demo)
    else:
        effect = "Your other sessions (other browsers, devices, API tokens) will be logged out."
    return (
        f"<p>You logged in at {_e(pages.when(identity.auth_time))}; this form accepts "
        f"your password until {_e(pages.when(until))}.{' ' if effect else ''}{_e(effect)}</p>"
        + pages.form(
            "/password",
            "<label>Current password <input type=password name=current_password "
            "autocomplete=current-password required></label>"
            "<label>New password <input type=password name=new_password minlength=8 "
            "autocomplete=new-password required></label>",
            "Change password",
            hidden=hidden_fields(request),
        )
    )


def _page(request: Request, body: str, *, status: int = 200) -> Response:
    demo = demo_of(request)
    html_page = pages.page(
        "change password", "<h1>Change your password</h1>" + body, mode=demo.config.mode
    )
    return HTMLResponse(html_page, status_code=status, headers=_NO_STORE)


async def _guest(request: Request) -> Response:
    # The login form, as /sessions shows it; it comes back here after the login.
    return await login_required_page(request, "Log in to change your password.")


def _done_message(request: Request) -> str:
    done = request.query_params.get("done", "")
    if done == "jwt":
        return "Your password is changed. " + _jwt_note(demo_of(request))
    if done.isdigit() and len(done) < 6:
        count = int(done)
        plural = "session was" if count == 1 else "sessions were"
        return f"Your password is changed. Your other {count} {plural} logged out."
    return ""


async def password_page(request: Request) -> Response:
    """GET /password: the form, or why it cannot be used yet."""
    demo = demo_of(request)
    identity = identity_of(request)
    if identity is None:
        return await _guest(request)
    message = _done_message(request)
    notice = f'<div class="box msg">{_e(message)}</div>' if message else ""
    try:
        require_recent_login(identity, demo.config.fresh_login, clock=demo.config.clock)
    except StaleAuthentication:
        return _page(request, notice + _relogin(
            request, identity, "Log in again to change your password."))
    noted = request.query_params.get("done") == "jwt"
    return _page(request, notice + _form(request, identity, noted=noted))


async def change_password(request: Request) -> Response:
    """POST /password (form): change it, then back to GET /password with the outcome."""
    identity = identity_of(request)
    fields = await read_form(request)
    if identity is None:
        return await _guest(request)
    try:
        changed = await _change(
            request, identity, fields.get("current_password"), fields.get("new_password")
        )
    except StaleAuthentication:
        body = _relogin(request, identity, "Log in again to change your password.")
        return _page(request, body, status=401)
    except (InputError, DemoError) as exc:
        status = exc.status if isinstance(exc, DemoError) else 400
        error = f'<div class="box err" role=alert>{_e(exc.message)}</div>'
        return _page(request, error + _form(request, identity), status=status)
    done = "jwt" if changed.revoked is None else str(changed.revoked)
    return redirect(f"/password?done={done}")


async def api_change_password(request: Request) -> Response:
    """POST /api/password ``{"current_password", "new_password"}``.

    200 ``{"ok", "mode", "revoked_sessions", "note"}``; 401 ``reauthentication_required``
    when the login is too old; 403 ``wrong_password``; 400; 429.
    """
    demo = demo_of(request)
    identity = require_identity(request)
    body = await read_json(request)
    changed = await _change(
        request, identity, body.get("current_password"), body.get("new_password")
    )
    return JSONResponse(
        {
            "ok": True,
            "mode": demo.config.mode,
            "revoked_sessions": changed.revoked or 0,
            "note": changed.note,
        },
        headers=_NO_STORE,
    )


routes = [
    ("/password", password_page, ["GET"]),
    ("/password", change_password, ["POST"]),
    ("/api/password", api_change_password, ["POST"]),
]
