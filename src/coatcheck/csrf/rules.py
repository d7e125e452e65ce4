"""The CSRF decision for one request, the same in every adapter (ASGI, WSGI, Flask).

:class:`CsrfRules` holds the configuration and makes every decision; adapters only
gather the inputs (method, headers, parsed cookies, the identity, a buffered form
body when asked for one), set the cookies it names and turn its errors into a 403.
For every unsafe request (anything but GET, HEAD, OPTIONS, RFC 9110 §9.2.1):

1. **Layer 1**, :meth:`~coatcheck.csrf.protector.CsrfProtector.check_origin` (Go 1.25's
   ``CrossOriginProtection``): a browser that says, through ``Sec-Fetch-Site`` or
   ``Origin``, that the request comes from another origin is refused. Every unsafe
   request goes through it, bearer or not, as in Go.
2. **Layer 2**, a token, for requests a browser could have sent on its own:

   ==========================================  ==========================================
   request                                      token
   ==========================================  ==========================================
   authenticated by ``Authorization: Bearer``   none (a page cannot make a browser add it,
   or ``DPoP``                                  RFC 6750 §2.1, RFC 9449 §7)
   a session (session and hybrid modes)         synchronizer token bound to the session id
   a JWT in a cookie (jwt mode)                 signed double-submit cookie, bound to the
                                                login (``sub`` and ``auth_time``)
   a guest with a session (the session          synchronizer token bound to the guest
   mapping's guest session exists)              session's id (or, for pages rendered
                                                before it existed, the pre-session id)
   a guest carrying a credential cookie, or     synchronizer token bound to a random
   posting a form (login CSRF)                  pre-session id in an HttpOnly cookie
   a guest with no credential cookie sending    none (no ambient credential to abuse, and
   anything but a form type (JSON from a        the browser would have needed a CORS
   native client)                               preflight to send it cross-site)
   ==========================================  ==========================================

   The token comes from the ``CsrfPolicy.header_name`` header or, when that is
   absent, the ``CsrfPolicy.field_name`` field of an urlencoded or multipart body of
   at most ``max_body`` bytes (:attr:`TokenCheck.read_form` tells the adapter to read
   it; the adapter hands the same bytes on to the app).

Pages get their token from :meth:`CsrfRequest.token`, which names the pre-session or
double-submit cookie to set when one is needed. Over HTTPS (``CookiePolicy.secure``)
both cookies carry the ``__Host-`` prefix (RFC 6265bis §4.1.3.2), so a sibling
subdomain cannot toss its own in.

Why the jwt-mode binding is the login and not the ``jti``: a sliding re-issue gives
the browser a new JWT (new ``jti``) in the very response that renders a page, whose
forms would then carry tokens bound to the old ``jti`` and fail. ``sub`` with
``auth_time`` stays the same across re-issues of one login and changes at the next,
like the session id in session mode. Each kind of binding is prefixed so that none
can pass for another: without that, a client could send a victim's session id as its
own pre-session cookie and get a valid token for the victim's session.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .._forms import FORM_MEDIA_TYPES, form_field, media_type
from ..auth.identity import Identity
from ..cookies import check_distinct_names, dump_cookie, expire_cookie, parse_cookie
from ..errors import ConfigurationError, CsrfError, CsrfTokenMismatch, MissingCsrfToken
from ..events import CsrfRefused, emit, note_cookie, observed
from ..policies import CookiePolicy, validate_origin
from .protector import CsrfProtector, is_safe_method

__all__ = ["CsrfRequest", "CsrfRules", "TokenCheck", "binding_of"]

_PRESESSION_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_READABLE = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Transports whose credential a page cannot make a browser send: Authorization: Bearer
# (RFC 6750 §2.1) and Authorization: DPoP with its proof header (RFC 9449 §7).
_HEADER_TRANSPORTS = frozenset({"bearer", "dpop"})


def binding_of(identity: Identity | None) -> tuple[str, bool] | None:
    """``(binding, double submit?)`` for a logged-in ``identity``; ``None`` for a guest.

    A session binds to its id (synchronizer token); a JWT with no session to its
    login (``sub`` and ``auth_time``), or its ``jti`` when it has no ``auth_time``,
    through a double-submit cookie.
    """
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


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Layer 2 for one request: the binding, and where the token is to be found.

    ``binding`` is "" for a guest without a valid pre-session cookie (every token
    fails). ``read_form``: the header carried no token and the body is a form that
    may hold one, so the adapter must buffer it for :meth:`CsrfRules.verify`.
    ``fallback``: a second binding also accepted (a guest session's page rendered while
    only the pre-session cookie existed), "" for none.
    """

    binding: str
    double_submit: bool
    cookie_token: str | None
    header_token: str | None
    content_type: str
    read_form: bool
    fallback: str = ""


class CsrfRules:
    """Every CSRF decision of an adapter, made once (see the module docstring).

    :param protector: the :class:`~coatcheck.csrf.protector.CsrfProtector` (secrets, policy).
    :param credential_cookies: names of the cookies that carry a credential (the
        auth cookie); a request with one of them always needs a token.
    :param cookie_policy: the auth cookie's policy; the CSRF cookies follow its
        ``secure`` and ``same_site`` (and get ``__Host-`` when secure).
    :param own_origin: this app's ``scheme://host[:port]`` when known (behind a
        proxy); otherwise ``Origin`` is compared with the ``Host`` header, as Go does.
        When given, an ``Origin`` with this host but another scheme is refused.
    :param exempt_paths: paths (or prefixes at a ``/`` boundary) never checked,
        e.g. a webhook authenticated by its own signature.
    :param max_body: largest form body searched for the token field, bytes.
    :param protect_forms: also demand a token from a guest posting a form without
        any credential cookie (login CSRF in browsers too old for Layer 1).
    :raises ConfigurationError: for a non-positive ``max_body``, an ``own_origin``
        that is not ``scheme://host[:port]`` (a trailing ``/`` or a path is an error),
        or a CSRF cookie named like a credential cookie (``policy.cookie_name``).
    :raises CookieError: for a cookie name or policy the CSRF cookies cannot use.
    """

    __slots__ = (
        "_credential_cookies",
        "_double_policy",
        "_exact",
        "_field",
        "_header",
        "_own_origin",
        "_pre_policy",
        "_prefixes",
        "_protect_forms",
        "_protector",
        "double_cookie",
        "max_body",
        "pre_cookie",
    )

    def __init__(
        self,
        protector: CsrfProtector,
        *,
        # CookieTransport()'s name over HTTPS and over plain HTTP.
        credential_cookies: Iterable[str] = ("__Host-session", "session"),
        cookie_policy: CookiePolicy = CookiePolicy(),  # noqa: B008  (frozen: sharing is safe)
        own_origin: str = "",
        exempt_paths: Iterable[str] = (),
        max_body: int = 64 * 1024,
        protect_forms: bool = True,
    ) -> None:
        if max_body < 1:
            raise ConfigurationError("max_body must be at least 1 byte")
        policy = protector.policy
        prefix = "__Host-" if cookie_policy.secure else ""
        secure, same_site = cookie_policy.secure, cookie_policy.same_site
        self._pre_policy = CookiePolicy(secure=secure, same_site=same_site)
        # Readable by scripts: they echo it in the header (that is the double submit).
        self._double_policy = CookiePolicy(secure=secure, same_site=same_site, http_only=False)
        self.pre_cookie = f"{prefix}{policy.cookie_name}_pre"
        self.double_cookie = prefix + policy.cookie_name
        # Fails now (CookieError) rather than on the first page, for an illegal name.
        dump_cookie(self.pre_cookie, "x", self._pre_policy)
        dump_cookie(self.double_cookie, "x", self._double_policy)
        credentials = tuple(credential_cookies)
        check_distinct_names(
            [
                *(("login", name) for name in credentials),
                ("CSRF pre-session", self.pre_cookie),
                ("CSRF double-submit", self.double_cookie),
            ]
        )
        self._protector = protector
        self._credential_cookies = credentials
        self._own_origin = validate_origin(own_origin) if own_origin else ""
        paths = [p.rstrip("/") or "/" for p in exempt_paths]
        self._exact = frozenset(paths)
        self._prefixes = tuple(p + "/" for p in paths if p != "/")
        self.max_body = max_body
        self._protect_forms = protect_forms
        self._header = policy.header_name.lower()
        self._field = policy.field_name

    @property
    def protector(self) -> CsrfProtector:
        return self._protector

    @property
    def credential_cookies(self) -> tuple[str, ...]:
        return self._credential_cookies

    @property
    def pre_policy(self) -> CookiePolicy:
        """The pre-session cookie's attributes."""
        return self._pre_policy

    @property
    def double_policy(self) -> CookiePolicy:
        """The double-submit cookie's attributes."""
        return self._double_policy

    def exempt(self, path: str) -> bool:
        """Whether ``path`` is one of ``exempt_paths`` (or below one)."""
        return bool(self._exact) and (path in self._exact or path.startswith(self._prefixes))

    def request(self, headers: Mapping[str, str]) -> CsrfRequest:
        """The per-request state for a request with ``headers`` (cheap: parses nothing)."""
        return CsrfRequest(self, headers)

    def decide(
        self,
        method: str,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        identity: Identity | None,
        guest: str = "",
    ) -> TokenCheck | None:
        """Layers 1 and 2 up to the token: ``None`` lets the request through.

        ``headers`` has lower-case names; ``cookies`` is the parsed Cookie header;
        ``guest`` the id of a guest's session (the session mapping's ``binding``), "" when
        there is none.

        :raises CrossOriginRequest: when Sec-Fetch-Site or Origin says another origin.
        """
        if is_safe_method(method):
            return None
        try:
            self._protector.check_origin(method, headers, own_origin=self._own_origin)
        except CsrfError as exc:
            _refused(exc)
            raise
        if identity is not None and identity.via in _HEADER_TRANSPORTS:
            return None
        content_type = headers.get("content-type", "")
        media = media_type(content_type)
        if (
            identity is None
            and not guest
            and not any(name in cookies for name in self._credential_cookies)
            and not (self._protect_forms and media in FORM_MEDIA_TYPES)
        ):
            return None
        binding, double = self._binding(identity, cookies, guest) or ("", False)
        fallback = ""
        if identity is None and guest:
            fallback = self._pre_binding(cookies) or ""
        submitted = headers.get(self._header) or None
        return TokenCheck(
            binding=binding,
            double_submit=double,
            cookie_token=cookies.get(self.double_cookie) if double else None,
            header_token=submitted,
            content_type=content_type,
            read_form=submitted is None and media in _READABLE,
            fallback=fallback,
        )

    def verify(self, check: TokenCheck, form_body: bytes | None = None) -> None:
        """Layer 2: the token of ``check`` (or of ``form_body`` when it says ``read_form``).

        Give ``form_body=None`` when ``read_form`` is set but the body is over
        ``max_body`` bytes.

        :raises MissingCsrfToken: no token (or the double-submit cookie) was sent.
        :raises CsrfTokenMismatch: the token is forged or bound to something else.
        """
        try:
            self._verify(check, form_body)
        except CsrfError as exc:
            _refused(exc)
            raise

    def _verify(self, check: TokenCheck, form_body: bytes | None) -> None:
        submitted = check.header_token
        if check.read_form:
            if form_body is None:
                raise MissingCsrfToken(
                    f"the form is over {self.max_body} bytes; send the CSRF token in the "
                    f"{self._header} header"
                )
            submitted = form_field(form_body, check.content_type, self._field)
        if check.double_submit:
            self._protector.verify_double_submit(check.cookie_token, submitted, check.binding)
        elif check.fallback:
            try:
                self._protector.verify_token(submitted, check.binding)
            except CsrfTokenMismatch:
                self._protector.verify_token(submitted, check.fallback)
        else:
            self._protector.verify_token(submitted, check.binding)

    def page_token(
        self, identity: Identity | None, cookies: Mapping[str, str], guest: str = ""
    ) -> tuple[str, str | None]:
        """``(token for a page's forms, Set-Cookie value to send or None)``.

        A guest with a session (``guest``, its id) gets a token bound to it; one without
        a valid pre-session cookie gets a new one; in jwt mode the double-submit cookie
        is reused while it fits the login, and replaced otherwise.
        """
        found = self._binding(identity, cookies, guest)
        if found is None:
            pre = secrets.token_urlsafe(32)
            token = self._protector.issue("pre\x00" + pre)
            cookie = dump_cookie(self.pre_cookie, pre, self._pre_policy)
            note_cookie("csrf", cookie)
            return token, cookie
        binding, double = found
        if not double:
            return self._protector.issue(binding), None
        current = cookies.get(self.double_cookie)
        if current is not None:
            try:
                self._protector.verify_token(current, binding)
            except CsrfError:
                pass  # stale (another login) or forged: replaced below
            else:
                return current, None
        token = self._protector.issue(binding)
        cookie = dump_cookie(self.double_cookie, token, self._double_policy)
        note_cookie("csrf", cookie)
        return token, cookie

    def _binding(
        self, identity: Identity | None, cookies: Mapping[str, str], guest: str = ""
    ) -> tuple[str, bool] | None:
        found = binding_of(identity)
        if found is not None or identity is not None:
            return found
        if guest:
            return "guest\x00" + guest, False
        pre = self._pre_binding(cookies)
        return None if pre is None else (pre, False)

    def _pre_binding(self, cookies: Mapping[str, str]) -> str | None:
        pre = cookies.get(self.pre_cookie, "")
        return "pre\x00" + pre if _PRESESSION_RE.fullmatch(pre) else None

    def __repr__(self) -> str:
        return f"CsrfRules({self._protector!r})"


def _expires_one_of(set_cookies: Iterable[str], names: Iterable[str]) -> bool:
    """Whether one of ``set_cookies`` deletes a cookie named in ``names`` (a logout)."""
    wanted = frozenset(names)
    for value in set_cookies:
        name, eq, rest = value.partition("=")
        if not eq or name.strip() not in wanted:
            continue
        token, _, attributes = rest.partition(";")
        if not token.strip() or "max-age=0" in attributes.lower().replace(" ", ""):
            return True
    return False


def _refused(exc: CsrfError) -> None:
    if observed(CsrfRefused):
        emit(CsrfRefused(reason=exc.code))


class CsrfRequest:
    """One request's CSRF state: cookies parsed on first use, one page token.

    ``set_cookies`` holds the ``Set-Cookie`` values the adapter must add to the
    response (a new pre-session or double-submit cookie); :meth:`response_cookies`
    adds, at a logout, the ones that expire the CSRF cookies.
    """

    __slots__ = ("_cookies", "_for", "_rules", "_token", "headers", "set_cookies")

    def __init__(self, rules: CsrfRules, headers: Mapping[str, str]) -> None:
        self._rules = rules
        self.headers = headers
        self.set_cookies: list[str] = []
        self._cookies: dict[str, str] | None = None
        self._token: str | None = None
        self._for: Identity | None = None

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookie(self.headers.get("cookie"))
        return self._cookies

    def decide(
        self, method: str, identity: Identity | None, guest: str = ""
    ) -> TokenCheck | None:
        """:meth:`CsrfRules.decide` for this request. Raises CrossOriginRequest."""
        if is_safe_method(method):
            return None  # before touching the cookies: safe requests cost nothing
        return self._rules.decide(method, self.headers, self.cookies, identity, guest)

    def response_cookies(self, app_cookies: Iterable[str]) -> list[str]:
        """The ``Set-Cookie`` values to add to a response that sets ``app_cookies``.

        :attr:`set_cookies`, and at a logout (``app_cookies`` expire a credential
        cookie) the expiry of each CSRF cookie the request carried that this response
        does not set anew: the double-submit token was made for the login and must not
        outlive it, and the next visitor of a shared browser starts from nothing.
        """
        rules = self._rules
        out = list(self.set_cookies)
        app_cookies = list(app_cookies)
        if not _expires_one_of(app_cookies, rules.credential_cookies):
            return out
        # Not twice, and never over what the app or this request set itself.
        fresh = {value.partition("=")[0].strip() for value in [*out, *app_cookies]}
        for name, policy in (
            (rules.double_cookie, rules.double_policy),
            (rules.pre_cookie, rules.pre_policy),
        ):
            if name in self.cookies and name not in fresh:
                out.append(expire_cookie(name, policy))
        return out

    def token(self, identity: Identity | None, guest: str = "") -> str:
        """The page token for ``identity`` (``guest``: a guest session's id), the same
        one for the whole request.

        A login or logout during the request (a new identity) gets a new token.
        """
        if self._token is not None and self._for is identity:
            return self._token
        token, cookie = self._rules.page_token(identity, self.cookies, guest)
        if cookie is not None:
            name = cookie.partition("=")[0]
            self.set_cookies = [c for c in self.set_cookies if c.partition("=")[0] != name]
            self.set_cookies.append(cookie)
            # Later calls in this request (after a login, say) reuse what was just set.
            self.cookies[name] = cookie.partition("=")[2].partition(";")[0]
        self._token, self._for = token, identity
        return token
