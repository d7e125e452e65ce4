"""Pure-ASGI CSRF protection: :class:`CsrfMiddleware` runs both layers of :mod:`coatcheck.csrf`.

Install it *inside* :class:`~coatcheck.adapters.asgi.AuthMiddleware` (it reads the
identity that one found). For every unsafe request (anything but GET, HEAD, OPTIONS):

1. **Layer 1**, :meth:`~coatcheck.csrf.CsrfProtector.check_origin` (Go 1.25's
   ``CrossOriginProtection``): a browser that says, through ``Sec-Fetch-Site`` or
   ``Origin``, that the request comes from another origin is refused. Every unsafe
   request goes through it, bearer or not, as in Go.
2. **Layer 2**, a token, for requests a browser could have sent on its own:

   ==========================================  ==========================================
   request                                      token
   ==========================================  ==========================================
   authenticated by ``Authorization: Bearer``   none (a page cannot make a browser add it)
   a session (session and hybrid modes)         synchronizer token bound to the session id
   a JWT in a cookie (jwt mode)                 signed double-submit cookie, bound to the
                                                login (``sub`` and ``auth_time``)
   a guest carrying a credential cookie, or     synchronizer token bound to a random
   posting a form (login CSRF)                  pre-session id in an HttpOnly cookie
   a guest with no credential cookie sending    none (no ambient credential to abuse, and
   anything but a form type (JSON from a        the browser would have needed a CORS
   native client)                               preflight to send it cross-site)
   ==========================================  ==========================================

   The token comes from the ``CsrfPolicy.header_name`` header (fetch and JSON clients)
   or the ``CsrfPolicy.field_name`` form field; to read the field the middleware
   buffers an urlencoded or multipart body of at most ``max_body`` bytes and hands
   the same bytes on to the app.

Refusals are 403 with the code of the failed check (``csrf_cross_origin``,
``csrf_token_missing``, ``csrf_token_invalid``), as JSON, or HTML when the client
accepts ``text/html``.

Pages get the token to embed with :func:`csrf_token`; it sets the pre-session or
double-submit cookie on the response when one is needed. Over HTTPS
(``CookiePolicy.secure``) both cookies carry the ``__Host-`` prefix (RFC 6265bis
§4.1.3.2), so a sibling subdomain cannot toss its own in (cookie tossing).

Why the jwt-mode binding is the login and not the ``jti``: a sliding re-issue gives
the browser a new JWT (new ``jti``) in the very response that renders a page, whose
forms would then carry tokens bound to the old ``jti`` and fail. ``sub`` with
``auth_time`` stays the same across re-issues of one login and changes at the next
login, like the session id in session mode; an attacker still cannot obtain a token
bound to someone else's login, which is all the binding is for.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable

from ..auth.identity import Identity
from ..cookies import dump_cookie, parse_cookie
from ..csrf import CsrfProtector, is_safe_method
from ..errors import ConfigurationError, CsrfError, MissingCsrfToken
from ..policies import CookiePolicy
from ._forms import FORM_MEDIA_TYPES, form_field, media_type
from .asgi import Message, Receive, Scope, Send, identity_of, request_headers
from .http import error_headers, error_json, error_status

__all__ = ["CSRF_KEY", "CsrfMiddleware", "csrf_token"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Scope key of the per-request CSRF state that :func:`csrf_token` reads.
CSRF_KEY = "coatcheck.csrf"
_PRESESSION_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_READABLE = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_SET_COOKIE = b"set-cookie"


def csrf_token(scope: Scope) -> str:
    """The CSRF token for a page rendered for this request (the same one per request).

    Embed it in every form (field ``CsrfPolicy.field_name``) or give it to scripts,
    which send it in the ``CsrfPolicy.header_name`` header. Call it before the
    response starts: it may add a cookie to the response.

    :raises ConfigurationError: when no :class:`CsrfMiddleware` handled this request.
    """
    state = scope.get(CSRF_KEY)
    if not isinstance(state, _State):
        raise ConfigurationError("csrf_token() needs CsrfMiddleware around the app")
    return state.token()


class CsrfMiddleware:
    """Refuse cross-site unsafe requests, in two layers (see the module docstring).

    :param protector: the :class:`~coatcheck.csrf.CsrfProtector` (secrets, policy).
    :param credential_cookies: names of the cookies that carry a credential (the
        auth cookie); a request with one of them always needs a token.
    :param cookie_policy: the auth cookie's policy; the CSRF cookies follow its
        ``secure`` and ``same_site`` (and get ``__Host-`` when secure).
    :param own_origin: this app's ``scheme://host[:port]`` when known (behind a
        proxy); otherwise ``Origin`` is compared with the ``Host`` header, as Go does.
    :param exempt_paths: paths (or prefixes at a ``/`` boundary) never checked,
        e.g. a webhook authenticated by its own signature.
    :param max_body: largest form body searched for the token field, bytes.
    :param protect_forms: also demand a token from a guest posting a form without
        any credential cookie (login CSRF in browsers too old for Layer 1).
    :param html_error: renders the HTML refusal page (default: a minimal one).
    :raises ConfigurationError: for a non-positive ``max_body`` or a bad cookie policy.
    """

    __slots__ = (
        "_app",
        "_credential_cookies",
        "_double_name",
        "_double_policy",
        "_exact",
        "_field",
        "_header",
        "_html_error",
        "_max_body",
        "_own_origin",
        "_pre_name",
        "_pre_policy",
        "_prefixes",
        "_protect_forms",
        "_protector",
    )

    def __init__(
        self,
        app: ASGIApp,
        protector: CsrfProtector,
        *,
        credential_cookies: Iterable[str] = ("session",),
        cookie_policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen: sharing is safe)
        own_origin: str = "",
        exempt_paths: Iterable[str] = (),
        max_body: int = 64 * 1024,
        protect_forms: bool = True,
        html_error: Callable[[CsrfError], str] | None = None,
    ) -> None:
        if max_body < 1:
            raise ConfigurationError("max_body must be at least 1 byte")
        policy = protector.policy
        prefix = "__Host-" if cookie_policy.secure else ""
        same_site = cookie_policy.same_site
        self._pre_policy = CookiePolicy(secure=cookie_policy.secure, same_site=same_site)
        # Readable by scripts: they echo it in the header (that is the double submit).
        self._double_policy = CookiePolicy(
            secure=cookie_policy.secure, same_site=same_site, http_only=False
        )
        self._pre_name = f"{prefix}{policy.cookie_name}_pre"
        self._double_name = prefix + policy.cookie_name
        # Fails now (CookieError) rather than on the first page, for an illegal name.
        dump_cookie(self._pre_name, "x", self._pre_policy)
        dump_cookie(self._double_name, "x", self._double_policy)
        self._app = app
        self._protector = protector
        self._credential_cookies = tuple(credential_cookies)
        self._own_origin = own_origin.rstrip("/").lower()
        paths = [p.rstrip("/") or "/" for p in exempt_paths]
        self._exact = frozenset(paths)
        self._prefixes = tuple(p + "/" for p in paths if p != "/")
        self._max_body = max_body
        self._protect_forms = protect_forms
        self._header = policy.header_name.lower()
        self._field = policy.field_name
        self._html_error = html_error or _default_html

    @property
    def protector(self) -> CsrfProtector:
        return self._protector

    @property
    def cookie_names(self) -> tuple[str, str]:
        """``(pre-session cookie, double-submit cookie)`` names."""
        return self._pre_name, self._double_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # WebSocket handshakes are GETs; check their Origin in the app (see SECURITY.md).
            await self._app(scope, receive, send)
            return
        if self._exact:
            path = scope.get("path", "")
            if path in self._exact or path.startswith(self._prefixes):
                await self._app(scope, receive, send)
                return
        state = _State(self, scope)
        scope[CSRF_KEY] = state
        if not is_safe_method(scope.get("method", "")):
            try:
                receive = await self._check(scope, state, receive)
            except CsrfError as exc:
                await self._refuse(state.headers, exc, send)
                return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start" and state.pending:
                headers = list(message.get("headers") or ())
                headers += [(_SET_COOKIE, value.encode("latin-1")) for value in state.pending]
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, send_with_cookies)

    async def _check(self, scope: Scope, state: _State, receive: Receive) -> Receive:
        headers = state.headers
        self._protector.check_origin(scope["method"], headers, own_origin=self._own_origin)
        identity = identity_of(scope)
        if identity is not None and identity.via == "bearer":
            return receive
        content_type = headers.get("content-type", "")
        media = media_type(content_type)
        if (
            identity is None
            and not any(name in state.cookies for name in self._credential_cookies)
            and not (self._protect_forms and media in FORM_MEDIA_TYPES)
        ):
            return receive
        submitted = headers.get(self._header)
        if not submitted and media in _READABLE:
            body, receive = await self._buffer(headers, receive)
            if body is None:
                raise MissingCsrfToken(
                    f"the form is over {self._max_body} bytes; send the CSRF token in the "
                    f"{self._header} header"
                )
            submitted = form_field(body, content_type, self._field)
        binding, double = state.binding(create=False)
        if double:
            cookie = state.cookies.get(self._double_name)
            self._protector.verify_double_submit(cookie, submitted, binding)
        else:
            self._protector.verify_token(submitted, binding)
        return receive

    async def _buffer(
        self, headers: dict[str, str], receive: Receive
    ) -> tuple[bytes | None, Receive]:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            return None, receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app will see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
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

    async def _refuse(self, headers: dict[str, str], exc: CsrfError, send: Send) -> None:
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
        return f"CsrfMiddleware({self._app!r}, {self._protector!r})"


class _State:
    """What one request needs: its headers and cookies, binding, token, cookies to set."""

    __slots__ = ("_binding", "_cookies", "_mw", "_token", "headers", "pending", "scope")

    def __init__(self, middleware: CsrfMiddleware, scope: Scope) -> None:
        self._mw = middleware
        self.scope = scope
        self.headers = request_headers(scope)
        self.pending: list[str] = []
        self._cookies: dict[str, str] | None = None
        self._binding: tuple[str, bool] | None = None
        self._token: str | None = None

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookie(self.headers.get("cookie"))
        return self._cookies

    def binding(self, *, create: bool) -> tuple[str, bool]:
        """``(binding, double submit?)``; kinds are prefixed so none can pass for another.

        Without the prefixes a client could send a victim's session id as its own
        pre-session cookie and get a valid token for the victim's session.
        """
        if self._binding is not None:
            return self._binding
        found = _identity_binding(identity_of(self.scope))
        if found is None:
            mw = self._mw
            pre = self.cookies.get(mw._pre_name, "")
            if not _PRESESSION_RE.fullmatch(pre):
                if not create:
                    return "", False
                pre = secrets.token_urlsafe(32)
                self.pending.append(dump_cookie(mw._pre_name, pre, mw._pre_policy))
            found = ("pre\x00" + pre, False)
        self._binding = found
        return found

    def token(self) -> str:
        if self._token is not None:
            return self._token
        mw = self._mw
        binding, double = self.binding(create=True)
        protector = mw._protector
        token = None
        if double:
            current = self.cookies.get(mw._double_name)
            try:
                protector.verify_token(current, binding)
                token = current
            except CsrfError:
                token = None
        if token is None:
            token = protector.issue(binding)
            if double:
                self.pending.append(dump_cookie(mw._double_name, token, mw._double_policy))
        self._token = token
        return token


def _identity_binding(identity: Identity | None) -> tuple[str, bool] | None:
    if identity is None:
        return None
    if identity.session_id:
        return "session\x00" + identity.session_id, False
    if identity.auth_time > 0:
        return f"login\x00{identity.user_id}\x00{identity.auth_time!r}", True
    jti = identity.claims.get("jti")
    if isinstance(jti, str) and jti:
        return "jti\x00" + jti, True
    return None


def _default_html(exc: CsrfError) -> str:
    return (
        "<!doctype html><meta charset=utf-8><title>403 Forbidden</title>"
        f"<h1>403: {html.escape(exc.code)}</h1><p>{html.escape(exc.message)}</p>"
        "<p>Reload the page you came from and try again.</p>"
    )
