"""Pure-ASGI CSRF protection: :class:`CsrfMiddleware` is glue over :mod:`coatcheck.csrf.rules`.

Install it *inside* :class:`~coatcheck.adapters.asgi.AuthMiddleware` (it reads the
identity that one found), and inside :class:`~coatcheck.adapters.asgi.SessionMiddleware`
when there is one (a guest's tokens then bind to their session once it exists). The
decision table (Fetch Metadata / Origin for every unsafe request, then a token bound to
the session, the login or a pre-session id) lives in
:class:`~coatcheck.csrf.rules.CsrfRules`, shared with the WSGI and Flask adapters; this
module only gathers the inputs, buffers a form body of at most ``max_body`` bytes and
hands the same bytes on to the app, adds the CSRF cookies to the response, and answers
refusals.

Refusals are 403 with the code of the failed check (``csrf_cross_origin``,
``csrf_token_missing``, ``csrf_token_invalid``), as JSON, or HTML when the client
accepts ``text/html``. Pages get the token to embed with :func:`csrf_token`; it sets
the pre-session or double-submit cookie on the response when one is needed.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterable, Mapping

from ..auth.identity import Identity
from ..bodies import content_length
from ..csrf import CsrfProtector, is_safe_method
from ..csrf.rules import CsrfRequest, CsrfRules
from ..errors import ConfigurationError, CsrfError, InputError
from ..policies import CookiePolicy
from ..sessions.mapping import SessionMapping
from .asgi import SESSION_KEY, Message, Receive, Scope, Send, identity_of, request_headers
from .http import error_headers, error_json, error_status

__all__ = ["CSRF_KEY", "CsrfMiddleware", "csrf_token"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Scope key of the per-request CSRF state that :func:`csrf_token` reads.
CSRF_KEY = "coatcheck.csrf"
_SET_COOKIE = b"set-cookie"


def _guest(scope: Scope, identity: Identity | None) -> str:
    """A guest session's id (:class:`~coatcheck.adapters.asgi.SessionMiddleware` outside)."""
    if identity is not None:
        return ""
    session = scope.get(SESSION_KEY)
    return session.binding if isinstance(session, SessionMapping) else ""


def csrf_token(scope: Scope) -> str:
    """The CSRF token for a page rendered for this request (the same one per request).

    Embed it in every form (field ``CsrfPolicy.field_name``) or give it to scripts,
    which send it in the ``CsrfPolicy.header_name`` header. Call it before the
    response starts: it may add a cookie to the response.

    :raises ConfigurationError: when no :class:`CsrfMiddleware` handled this request.
    """
    state = scope.get(CSRF_KEY)
    if not isinstance(state, CsrfRequest):
        raise ConfigurationError("csrf_token() needs CsrfMiddleware around the app")
    identity = identity_of(scope)
    return state.token(identity, guest=_guest(scope, identity))


class CsrfMiddleware:
    """Refuse cross-site unsafe requests, in two layers (:mod:`coatcheck.csrf.rules`).

    ``protector`` and the keyword options are those of
    :class:`~coatcheck.csrf.rules.CsrfRules` (credential cookies, the auth cookie's
    policy, own origin, exempt paths, ``max_body``, ``protect_forms``), the same in
    the WSGI middleware and the Flask extension; ``html_error`` renders the HTML
    refusal page (default: a minimal one).

    :raises ConfigurationError: for a non-positive ``max_body``.
    :raises CookieError: for a cookie name or policy the CSRF cookies cannot use.
    """

    __slots__ = ("_app", "_html_error", "_rules")

    def __init__(
        self,
        app: ASGIApp,
        protector: CsrfProtector,
        *,
        # CookieTransport()'s name over HTTPS and over plain HTTP.
        credential_cookies: Iterable[str] = ("__Host-session", "session"),
        cookie_policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen: sharing is safe)
        own_origin: str = "",
        exempt_paths: Iterable[str] = (),
        max_body: int = 64 * 1024,
        protect_forms: bool = True,
        html_error: Callable[[CsrfError], str] | None = None,
    ) -> None:
        self._app = app
        self._rules = CsrfRules(
            protector,
            credential_cookies=credential_cookies,
            cookie_policy=cookie_policy,
            own_origin=own_origin,
            exempt_paths=exempt_paths,
            max_body=max_body,
            protect_forms=protect_forms,
        )
        self._html_error = html_error or _default_html

    @property
    def protector(self) -> CsrfProtector:
        return self._rules.protector

    @property
    def rules(self) -> CsrfRules:
        return self._rules

    @property
    def cookie_names(self) -> tuple[str, str]:
        """``(pre-session cookie, double-submit cookie)`` names."""
        return self._rules.pre_cookie, self._rules.double_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._rules.exempt(scope.get("path", "")):
            # WebSocket handshakes are GETs; check their Origin in the app (see SECURITY.md).
            await self._app(scope, receive, send)
            return
        state = CsrfRequest(self._rules, request_headers(scope))
        scope[CSRF_KEY] = state
        if not is_safe_method(scope.get("method", "")):
            try:
                receive = await self._check(scope, state, receive)
            except CsrfError as exc:
                await self._refuse(state.headers, exc, send)
                return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                # The app's own Set-Cookie: a logout there clears the CSRF cookies too.
                app_cookies = [
                    v.decode("latin-1") for k, v in headers if k.lower() == _SET_COOKIE
                ]
                extra = state.response_cookies(app_cookies)
                if extra:
                    headers += [(_SET_COOKIE, value.encode("latin-1")) for value in extra]
                    message["headers"] = headers
            await send(message)

        await self._app(scope, receive, send_with_cookies)

    async def _check(self, scope: Scope, state: CsrfRequest, receive: Receive) -> Receive:
        identity = identity_of(scope)
        check = state.decide(scope["method"], identity, guest=_guest(scope, identity))
        if check is None:
            return receive
        body = None
        if check.read_form:
            body, receive = await self._buffer(state.headers, receive)
        self._rules.verify(check, body)
        return receive

    async def _buffer(
        self, headers: Mapping[str, str], receive: Receive
    ) -> tuple[bytes | None, Receive]:
        limit = self._rules.max_body
        if _declared_length(headers) > limit:
            return None, receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app will see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None, receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        return body, replayed

    async def _refuse(self, headers: Mapping[str, str], exc: CsrfError, send: Send) -> None:
        if "text/html" in headers.get("accept", ""):
            body = self._html_error(exc).encode("utf-8")
            out = [(k, v) for k, v in error_headers(exc) if k != "content-type"]
            out.append(("content-type", "text/html; charset=utf-8"))
        else:
            body = error_json(exc)
            out = error_headers(exc)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": error_status(exc), "headers": raw})
        await send({"type": "http.response.body", "body": body})

    def __repr__(self) -> str:
        return f"CsrfMiddleware({self._app!r}, {self.protector!r})"


def _declared_length(headers: Mapping[str, str]) -> int:
    # A malformed Content-Length declares nothing: the body is read up to the limit.
    try:
        return content_length(headers.get("content-length")) or 0
    except InputError:
        return 0


def _default_html(exc: CsrfError) -> str:
    return (
        "<!doctype html><meta charset=utf-8><title>403 Forbidden</title>"
        f"<h1>403: {html.escape(exc.code)}</h1><p>{html.escape(exc.message)}</p>"
        "<p>Reload the page you came from and try again.</p>"
    )
