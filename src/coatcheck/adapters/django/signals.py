"""``login()`` and ``logout()`` in jwt and hybrid mode: Django's signals issue and
revoke the coatcheck credential (session mode needs nothing: the session engine's
record is the credential). A saved password change ends the user's sessions, whatever
changed it (the password-reset view, the admin, ``manage.py changepassword`` call no
``update_session_auth_hash``), except the session of the request that changed it.
Connected by the app and by the middleware, once."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save

from ...sync import run_sync
from .auth import RESULT_ATTR, headers_of
from .conf import get_runtime

__all__ = ["CURRENT_SESSION", "LOGIN_ATTR", "connect"]

#: ``(user id, session id)`` of the request being served (set by the middleware), so a
#: password change in that request keeps its own session (as ``update_session_auth_hash``
#: does) and ends every other one.
CURRENT_SESSION: ContextVar[tuple[str, str | None] | None] = ContextVar(
    "coatcheck_current_session", default=None
)

#: Request attribute: the :class:`~coatcheck.auth.LoginResult` of a login this request
#: (the token and refresh token, for a view that answers a native client).
LOGIN_ATTR = "coatcheck_login"
_COOKIES_ATTR = "_coatcheck_cookies"


def _written(request: Any, set_headers: list[tuple[str, str]], skip: str | None) -> None:
    written = getattr(request, _COOKIES_ATTR, None) or []
    for name, value in set_headers:
        if name.lower() == "set-cookie" and value.partition("=")[0].strip() != skip:
            written.append(value)
    setattr(request, _COOKIES_ATTR, written)


def _on_login(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    # Only requests the middleware saw (not the test client's force_login).
    if request is None or user is None or not hasattr(request, _COOKIES_ATTR):
        return
    runtime = get_runtime()
    if runtime.config.mode == "session":
        return  # login() cycled the session key and stored the user in it
    result = run_sync(
        runtime.sync.authenticator.login(
            str(user.pk),
            headers=headers_of(request),
            persistent=not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE,
            ip=str(request.META.get("REMOTE_ADDR") or ""),
        )
    )
    setattr(request, LOGIN_ATTR, result)
    _written(request, result.set_headers, None)


def _on_logout(sender: Any, request: Any = None, **_: Any) -> None:
    if request is None or not hasattr(request, _COOKIES_ATTR):
        return
    runtime = get_runtime()
    result = getattr(request, RESULT_ATTR, None)
    identity = None if result is None else result.identity
    session_mode = runtime.config.mode == "session"
    if session_mode and (identity is None or identity.via == "cookie"):
        return  # logout() flushes the session: the engine revokes it
    set_headers = run_sync(runtime.sync.authenticator.logout(headers_of(request)))
    # In session mode the session middleware owns the session cookie.
    _written(request, set_headers, runtime.config.cookie_name if session_mode else None)


def _on_user_saved(sender: Any, instance: Any = None, created: bool = False, **_: Any) -> None:
    # AbstractBaseUser.set_password() keeps the raw password in ``_password`` until the
    # save that stores it, which sends this signal before clearing it.
    if created or instance is None or getattr(instance, "_password", None) is None:
        return
    user_id = str(instance.pk)
    current = CURRENT_SESSION.get()
    keep = current[1] if current is not None and current[0] == user_id else None
    run_sync(get_runtime().sync.manager.revoke_user(user_id, keep=keep))


def connect() -> None:
    """Connect the receivers (idempotent)."""
    user_logged_in.connect(_on_login, dispatch_uid="coatcheck.adapters.django.login")
    user_logged_out.connect(_on_logout, dispatch_uid="coatcheck.adapters.django.logout")
    post_save.connect(
        _on_user_saved, sender=settings.AUTH_USER_MODEL,
        dispatch_uid="coatcheck.adapters.django.password",
    )
