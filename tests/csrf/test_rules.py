"""CsrfRules, the one CSRF decision every adapter runs: the whole table, without I/O.

``CASES`` is the decision table; the ASGI, WSGI and Flask tests run the same rows
through their adapters (tests/adapters/), so every side decides alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from coatcheck.auth import Identity
from coatcheck.cookies import parse_cookie
from coatcheck.csrf import CsrfProtector
from coatcheck.csrf.rules import CsrfRequest, CsrfRules, TokenCheck, binding_of
from coatcheck.errors import ConfigurationError, CookieError, CsrfError, MissingCsrfToken
from coatcheck.policies import CookiePolicy, CsrfPolicy

SECRET = "s" * 32
PROTECTOR = CsrfProtector(SECRET, policy=CsrfPolicy(trusted_origins=["https://admin.example"]))
SESSION = Identity(user_id="u1", mode="session", session_id="aaaa.0123", via="cookie")
JWT = Identity(user_id="u1", mode="jwt", auth_time=1_700_000_000.0, claims={"jti": "j1"})
BEARER = Identity(user_id="u1", mode="session", session_id="aaaa.0123", via="bearer")
PRE = "P" * 43
FORM = "application/x-www-form-urlencoded"


def session_token() -> str:
    return PROTECTOR.issue("session\x00" + SESSION.session_id)  # type: ignore[operator]


def pre_token() -> str:
    return PROTECTOR.issue("pre\x00" + PRE)


def jwt_token() -> str:
    return PROTECTOR.issue(f"login\x00u1\x00{JWT.auth_time!r}")


# -- the decision table: (name, method, headers, identity, body, expected error or None) ----

CASES: list[tuple[str, str, dict[str, str], Identity | None, bytes, str | None]] = [
    # Layer 1 (Go CrossOriginProtection), whatever the credential
    ("get passes", "GET", {"sec-fetch-site": "cross-site"}, SESSION, b"", None),
    ("head passes", "HEAD", {"origin": "https://evil.example"}, SESSION, b"", None),
    ("options passes", "OPTIONS", {"sec-fetch-site": "cross-site"}, None, b"", None),
    ("cross-site post", "POST", {"sec-fetch-site": "cross-site"}, None, b"", "csrf_cross_origin"),
    ("same-site post", "POST", {"sec-fetch-site": "same-site"}, None, b"", "csrf_cross_origin"),
    ("cross-site bearer", "POST", {"sec-fetch-site": "cross-site"}, BEARER, b"",
     "csrf_cross_origin"),
    ("foreign origin", "POST", {"origin": "https://evil.example", "host": "app.example"}, None,
     b"", "csrf_cross_origin"),
    ("origin null", "POST", {"origin": "null", "host": "app.example"}, None, b"",
     "csrf_cross_origin"),
    ("cross-site put", "PUT", {"sec-fetch-site": "cross-site"}, None, b"", "csrf_cross_origin"),
    ("cross-site delete", "DELETE", {"sec-fetch-site": "cross-site"}, None, b"",
     "csrf_cross_origin"),
    ("lower-case get is unsafe", "get", {"sec-fetch-site": "cross-site"}, None, b"",
     "csrf_cross_origin"),
    ("trusted origin", "POST", {"sec-fetch-site": "cross-site", "origin": "https://admin.example"},
     None, b"", None),
    ("origin equals host", "POST", {"origin": "http://app.example", "host": "app.example"}, None,
     b"", None),
    # Layer 2 skipped: bearer, or no cookie credential and not a form
    ("bearer, no token", "POST", {"sec-fetch-site": "same-origin"}, BEARER, b"", None),
    ("json guest, no cookie", "POST", {"content-type": "application/json"}, None, b"{}", None),
    ("bare post, no cookie", "POST", {}, None, b"", None),
    # Layer 2 required: cookie identity
    ("session, no token", "POST", {"cookie": "sid=x"}, SESSION, b"", "csrf_token_missing"),
    ("session, same-origin but no token", "POST", {"sec-fetch-site": "same-origin"}, SESSION, b"",
     "csrf_token_missing"),
    ("session, garbage token", "POST", {"x-csrf-token": "garbage"}, SESSION, b"",
     "csrf_token_invalid"),
    ("session, token of another session", "POST",
     {"x-csrf-token": PROTECTOR.issue("session\x00bbbb.9999")}, SESSION, b"",
     "csrf_token_invalid"),
    ("session, pre-session token", "POST", {"x-csrf-token": "@pre", "cookie": f"csrf_pre={PRE}"},
     SESSION, b"", "csrf_token_invalid"),
    ("session, raw-binding token", "POST",
     {"x-csrf-token": PROTECTOR.issue(SESSION.session_id or "")}, SESSION, b"",
     "csrf_token_invalid"),
    ("session, header token", "POST", {"x-csrf-token": "@session"}, SESSION, b"", None),
    ("session, form token", "POST", {"content-type": FORM}, SESSION, b"a=1&csrf_token=@session",
     None),
    ("session, form token in wrong field", "POST", {"content-type": FORM}, SESSION,
     b"csrf=@session", "csrf_token_missing"),
    # Layer 2: jwt double submit, bound to the login
    ("jwt, header but no cookie", "POST", {"x-csrf-token": "@jwt"}, JWT, b"", "csrf_token_missing"),
    ("jwt, cookie but no echo", "POST", {"cookie": "csrf=@jwt"}, JWT, b"", "csrf_token_missing"),
    ("jwt, cookie and echo differ", "POST",
     {"cookie": "csrf=@jwt", "x-csrf-token": PROTECTOR.issue(f"login\x00u1\x00{JWT.auth_time!r}")},
     JWT, b"", "csrf_token_invalid"),
    ("jwt, naive double submit (attacker's pair)", "POST",
     {"cookie": "csrf=" + "A" * 64, "x-csrf-token": "A" * 64}, JWT, b"", "csrf_token_invalid"),
    ("jwt, pair bound to another login", "POST",
     {"cookie": "csrf=@other", "x-csrf-token": "@other"}, JWT, b"", "csrf_token_invalid"),
    ("jwt, matching pair", "POST", {"cookie": "csrf=@jwt", "x-csrf-token": "@jwt"}, JWT, b"", None),
    ("jwt, matching pair in form", "POST", {"cookie": "csrf=@jwt", "content-type": FORM}, JWT,
     b"csrf_token=@jwt", None),
    # Layer 2: guests (login CSRF)
    ("guest form, no cookie", "POST", {"content-type": FORM}, None, b"username=a",
     "csrf_token_missing"),
    ("guest text/plain form", "POST", {"content-type": "text/plain"}, None, b"csrf_token=x",
     "csrf_token_missing"),
    ("guest form, token but no pre-session", "POST", {"content-type": FORM}, None,
     b"csrf_token=@pre", "csrf_token_invalid"),
    ("guest form, pre-session token", "POST",
     {"content-type": FORM, "cookie": f"csrf_pre={PRE}"}, None, b"csrf_token=@pre", None),
    ("guest form, malformed pre-session", "POST",
     {"content-type": FORM, "cookie": "csrf_pre=short"}, None, b"csrf_token=@pre",
     "csrf_token_invalid"),
    ("guest with dead credential cookie, json", "POST",
     {"content-type": "application/json", "cookie": "sid=dead"}, None, b"{}",
     "csrf_token_missing"),
    ("guest, victim's session id as pre-session", "POST",
     {"x-csrf-token": "@victim", "cookie": "sid=dead; csrf_pre=aaaa.0123"}, None, b"",
     "csrf_token_invalid"),
    # Multipart
    ("multipart token", "POST", {"content-type": "multipart/form-data; boundary=XyZ"}, SESSION,
     b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
     b'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n@session\r\n--XyZ--\r\n',
     None),
    ("multipart token as a file", "POST", {"content-type": "multipart/form-data; boundary=XyZ"},
     SESSION,
     b'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"; filename="t"\r\n\r\n'
     b"@session\r\n--XyZ--\r\n", "csrf_token_missing"),
    ("multipart without boundary", "POST", {"content-type": "multipart/form-data"}, SESSION,
     b"csrf_token=@session", "csrf_token_missing"),
]


def fill(text: str) -> str:
    """The table's placeholders (``@session``, ``@pre`` ...) replaced by real tokens."""
    return (
        text.replace("@session", session_token())
        .replace("@pre", pre_token())
        .replace("@jwt", JWT_PAIR)
        .replace("@other", OTHER_PAIR)
        .replace("@victim", PROTECTOR.issue("aaaa.0123"))
    )


JWT_PAIR = jwt_token()
OTHER_PAIR = PROTECTOR.issue("login\x00u2\x001.0")


def rules(**options: object) -> CsrfRules:
    options.setdefault("credential_cookies", ["sid"])
    options.setdefault("cookie_policy", CookiePolicy(secure=False))
    return CsrfRules(PROTECTOR, **options)  # type: ignore[arg-type]


def outcome(
    r: CsrfRules, method: str, headers: Mapping[str, str], identity: Identity | None, body: bytes
) -> str | None:
    """The error code the rules give (None: the request passes)."""
    try:
        check = r.decide(method, headers, parse_cookie(headers.get("cookie")), identity)
        if check is not None:
            r.verify(check, body if check.read_form else None)
    except CsrfError as exc:
        return exc.code
    return None


#: Parametrizes a test over ``CASES`` (here and in each adapter's test).
TABLE = pytest.mark.parametrize(
    ("method", "headers", "identity", "body", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)


@TABLE
def test_decision_table(
    method: str, headers: dict[str, str], identity: Identity | None, body: bytes, expected: Any
) -> None:
    filled = {k: fill(v) for k, v in headers.items()}
    assert outcome(rules(), method, filled, identity, fill(body.decode()).encode()) == expected


def test_case_count() -> None:
    refused = [c for c in CASES if c[5] is not None]
    assert len(CASES) == 42
    assert len(refused) == 28


def test_what_the_check_asks_for() -> None:
    r = rules()
    cookies = {"csrf": JWT_PAIR}
    check = r.decide("POST", {"content-type": FORM + "; charset=utf-8"}, cookies, JWT)
    assert check == TokenCheck(
        binding=f"login\x00u1\x00{JWT.auth_time!r}", double_submit=True, cookie_token=JWT_PAIR,
        header_token=None, content_type=FORM + "; charset=utf-8", read_form=True,
    )  # fmt: skip
    header = r.decide("POST", {"content-type": FORM, "x-csrf-token": "t"}, {}, SESSION)
    assert header is not None
    assert (header.header_token, header.read_form, header.double_submit) == ("t", False, False)
    assert r.decide("POST", {"content-type": "application/json"}, {"sid": "x"}, SESSION) == (
        TokenCheck("session\x00aaaa.0123", False, None, None, "application/json", False)
    )


def test_an_oversized_form_is_a_missing_token() -> None:
    r = rules(max_body=10)
    check = r.decide("POST", {"content-type": FORM}, {}, SESSION)
    assert check is not None
    with pytest.raises(MissingCsrfToken, match="over 10 bytes"):
        r.verify(check, None)


def test_protect_forms_off_lets_a_cookieless_guest_form_through() -> None:
    r = rules(protect_forms=False)
    assert r.decide("POST", {"content-type": FORM}, {}, None) is None
    assert r.decide("POST", {"content-type": FORM}, {"sid": "dead"}, None) is not None


def test_own_origin_is_trusted() -> None:
    r = rules(own_origin="https://App.example")
    headers = {"origin": "https://app.example", "host": "internal:8000"}
    assert outcome(r, "POST", headers, None, b"") is None
    assert outcome(rules(), "POST", headers, None, b"") == "csrf_cross_origin"


def test_own_origin_scheme_is_compared() -> None:
    # Regression (issue 12, item 9): over HTTPS, a page on http://<host> (which a network
    # attacker can write) passed Layer 1 because only the host was compared.
    headers = {"origin": "http://app.example", "host": "app.example"}
    assert outcome(rules(), "POST", headers, None, b"") is None  # unknown: Go's rule
    r = rules(own_origin="https://app.example")
    assert outcome(r, "POST", headers, None, b"") == "csrf_cross_origin"
    assert outcome(r, "POST", {**headers, "origin": "https://app.example"}, None, b"") is None


@pytest.mark.parametrize(
    "origin", ["https://app.example/", "https://app.example/app", "app.example", "https://"]
)
def test_own_origin_is_validated_like_a_trusted_origin(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid origin"):
        rules(own_origin=origin)


def test_exempt_paths() -> None:
    r = rules(exempt_paths=["/hooks/", "/one"])
    assert [r.exempt(p) for p in ("/hooks", "/hooks/github", "/hooksy", "/one", "/one/x", "/")] == [
        True, True, False, True, True, False]  # fmt: skip
    assert not rules().exempt("/anything")


def test_bindings_are_kind_prefixed() -> None:
    assert binding_of(None) is None
    assert binding_of(SESSION) == ("session\x00aaaa.0123", False)
    assert binding_of(JWT) == (f"login\x00u1\x00{JWT.auth_time!r}", True)
    assert binding_of(Identity(user_id="u", mode="jwt", claims={"jti": "j"})) == ("jti\x00j", True)
    assert binding_of(Identity(user_id="u", mode="jwt")) is None


# -- page tokens -----------------------------------------------------------------------------


def test_guest_page_token_sets_a_pre_session_cookie_once() -> None:
    r = rules()
    token, cookie = r.page_token(None, {})
    assert cookie is not None
    assert cookie.startswith("csrf_pre=")
    assert "HttpOnly" in cookie
    pre = cookie.split(";")[0].split("=", 1)[1]
    PROTECTOR.verify_token(token, "pre\x00" + pre)
    again, none = r.page_token(None, {"csrf_pre": pre})
    assert none is None
    PROTECTOR.verify_token(again, "pre\x00" + pre)
    # A malformed pre-session cookie (here a victim's session id) is replaced.
    _, replaced = r.page_token(None, {"csrf_pre": "aaaa.0123"})
    assert replaced is not None


def test_session_page_token_needs_no_cookie() -> None:
    token, cookie = rules().page_token(SESSION, {})
    assert cookie is None
    PROTECTOR.verify_token(token, "session\x00aaaa.0123")


def test_jwt_page_token_reuses_a_fitting_cookie_and_replaces_a_stale_one() -> None:
    r = rules()
    token, cookie = r.page_token(JWT, {})
    assert cookie is not None
    assert cookie.startswith(f"csrf={token};")
    assert "HttpOnly" not in cookie  # scripts echo it
    assert r.page_token(JWT, {"csrf": JWT_PAIR}) == (JWT_PAIR, None)
    stale = PROTECTOR.issue("login\x00u1\x001.0")
    fresh, replaced = r.page_token(JWT, {"csrf": stale})
    assert replaced is not None
    assert fresh != stale


def test_https_cookies_get_the_host_prefix() -> None:
    secure = CsrfRules(PROTECTOR)
    assert (secure.pre_cookie, secure.double_cookie) == ("__Host-csrf_pre", "__Host-csrf")
    _, cookie = secure.page_token(None, {})
    assert cookie is not None
    assert cookie.startswith("__Host-csrf_pre=")
    assert "Secure" in cookie
    assert "Domain" not in cookie


def test_bad_configuration_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        rules(max_body=0)
    with pytest.raises(CookieError):
        CsrfRules(CsrfProtector(SECRET, policy=CsrfPolicy(cookie_name="bad name")))
    assert SECRET not in repr(rules())


# -- per-request state -----------------------------------------------------------------------


class Watched(dict[str, str]):
    """Headers that record which names were read."""

    def __init__(self, *args: object, **kwargs: str) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.read: list[str] = []

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.append(key)
        return super().get(key, default)

    def __iter__(self) -> Iterator[str]:
        self.read.append("*")
        return super().__iter__()


def test_safe_requests_read_no_header_and_parse_no_cookie() -> None:
    headers = Watched({"cookie": "sid=x; csrf_pre=" + PRE})
    state = rules().request(headers)
    for method in ("GET", "HEAD", "OPTIONS"):
        assert state.decide(method, SESSION) is None
    assert headers.read == []


def test_one_token_per_request_and_identity() -> None:
    state = CsrfRequest(rules(), {})
    first = state.token(None)
    assert state.token(None) == first
    [cookie] = state.set_cookies
    pre = cookie.split(";")[0].split("=", 1)[1]
    # A login during the request: a new token, bound to the new session; the
    # pre-session cookie is still set (harmless) and not made twice.
    after = state.token(SESSION)
    assert after != first
    PROTECTOR.verify_token(after, "session\x00aaaa.0123")
    assert state.token(None) != first  # identity changed again: re-derived, same pre-session
    PROTECTOR.verify_token(state.token(None), "pre\x00" + pre)
    assert len(state.set_cookies) == 1
    jwt = CsrfRequest(rules(), {"cookie": "csrf=stale"})
    jwt.token(JWT)
    jwt.token(Identity(user_id="u1", mode="jwt", auth_time=JWT.auth_time))
    assert [c.split("=")[0] for c in jwt.set_cookies] == ["csrf"]  # replaced, not doubled


# -- guests with a session (the session mapping's guest session) ------------------------------

GUEST_ID = "0f1e2d3c." + "ab" * 32


def test_a_guest_with_a_session_binds_to_it_and_needs_no_cookie() -> None:
    r = rules()
    token, cookie = r.page_token(None, {}, guest=GUEST_ID)
    assert cookie is None
    PROTECTOR.verify_token(token, "guest\x00" + GUEST_ID)
    check = r.decide("POST", {"x-csrf-token": token}, {}, None, guest=GUEST_ID)
    assert check is not None
    assert check.binding == "guest\x00" + GUEST_ID
    r.verify(check)
    # Kind-prefixed: a guest id is never a session binding, and a login's wins over it.
    with pytest.raises(CsrfError):
        PROTECTOR.verify_token(token, "session\x00" + GUEST_ID)
    assert r.page_token(SESSION, {}, guest=GUEST_ID)[1] is None
    login_check = r.decide("POST", {"x-csrf-token": token}, {"sid": "x"}, SESSION, guest=GUEST_ID)
    assert login_check is not None
    assert login_check.binding == "session\x00aaaa.0123"


def test_a_guest_session_demands_a_token_and_keeps_older_pages_working() -> None:
    r = rules()
    assert r.decide("POST", {"content-type": "application/json"}, {}, None) is None
    missing = r.decide("POST", {"content-type": "application/json"}, {}, None, guest=GUEST_ID)
    assert missing is not None
    with pytest.raises(MissingCsrfToken):
        r.verify(missing)
    # A page rendered before the session existed carries a pre-session token.
    old = pre_token()
    check = r.decide("POST", {"x-csrf-token": old}, {"csrf_pre": PRE}, None, guest=GUEST_ID)
    assert check is not None
    assert check.fallback == "pre\x00" + PRE
    r.verify(check)
    no_pre = r.decide("POST", {"x-csrf-token": old}, {}, None, guest=GUEST_ID)
    assert no_pre is not None
    with pytest.raises(CsrfError, match="invalid"):
        r.verify(no_pre)
    other_guest = PROTECTOR.issue("guest\x00" + "1" * 8 + "." + "cd" * 32)
    forged = r.decide("POST", {"x-csrf-token": other_guest}, {"csrf_pre": PRE}, None,
                      guest=GUEST_ID)  # fmt: skip
    assert forged is not None
    with pytest.raises(CsrfError):
        r.verify(forged)


def test_a_csrf_cookie_named_like_a_credential_cookie_fails_at_construction() -> None:
    protector = CsrfProtector(SECRET, policy=CsrfPolicy(cookie_name="auth"))
    with pytest.raises(ConfigurationError, match="'auth'"):
        CsrfRules(protector, credential_cookies=["auth"], cookie_policy=CookiePolicy(secure=False))
    with pytest.raises(ConfigurationError, match="login cookie and the CSRF pre-session"):
        CsrfRules(CsrfProtector(SECRET), credential_cookies=["__Host-csrf_pre"])


def test_a_logout_response_expires_the_csrf_cookies_once() -> None:
    plain = CookiePolicy(secure=False)
    rules = CsrfRules(PROTECTOR, credential_cookies=["auth"], cookie_policy=plain)
    state = rules.request({"cookie": "auth=x; csrf=t; csrf_pre=p"})
    assert state.response_cookies(["auth=x; Path=/"]) == []  # not a logout
    logout = "auth=; Max-Age=0; Path=/"
    cleared = state.response_cookies([logout])
    assert [c.partition("=")[0] for c in cleared] == ["csrf", "csrf_pre"]
    assert all("Max-Age=0" in c for c in cleared)
    # The app expired one itself: not a second time.
    assert state.response_cookies([logout, "csrf=; Max-Age=0"]) == [cleared[1]]
    # Only what the request carried.
    assert rules.request({"cookie": "auth=x"}).response_cookies([logout]) == []
