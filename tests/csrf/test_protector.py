"""coatcheck.csrf: the Fetch Metadata / Origin layer (Go 1.25's table) and bound tokens."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from coatcheck import csrf
from coatcheck.clock import FrozenClock
from coatcheck.csrf import CsrfProtector, is_safe_method
from coatcheck.errors import (
    ConfigurationError,
    CrossOriginRequest,
    CsrfError,
    CsrfTokenMismatch,
    MissingCsrfToken,
)
from coatcheck.policies import CsrfPolicy
from coatcheck.signing import Signer

SECRET = "s" * 32
OLD = "o" * 32
SESSION = "0a1b2c3d." + "f" * 64
PASS, FAIL = True, False


def headers(
    *, site: str = "", origin: str = "", host: str = "example.com"
) -> dict[str, str]:
    h = {"host": host} if host else {}
    if site:
        h["sec-fetch-site"] = site
    if origin:
        h["origin"] = origin
    return h


def allowed(
    protector: CsrfProtector, method: str, h: dict[str, str], own_origin: str
) -> bool:
    try:
        protector.check_origin(method, h, own_origin=own_origin)
    except CrossOriginRequest:
        return False
    return True


def test_all_is_sorted() -> None:
    assert csrf.__all__ == sorted(csrf.__all__)


@pytest.mark.parametrize(
    ("method", "safe"),
    [
        ("GET", True),
        ("HEAD", True),
        ("OPTIONS", True),
        ("POST", False),
        ("PUT", False),
        ("PATCH", False),
        ("DELETE", False),
        ("TRACE", False),  # Go's list has only GET, HEAD, OPTIONS
        ("CONNECT", False),
        ("get", False),  # methods are case-sensitive (RFC 9110 §9.1), as in Go
        ("", False),
        ("GET ", False),
    ],
)
def test_is_safe_method(method: str, safe: bool) -> None:
    assert is_safe_method(method) is safe


# Go 1.25 src/net/http/csrf_test.go, TestCrossOriginProtectionSecFetchSite: every row,
# requests to https://example.com/ (so Host: example.com), default protection.
GO_SEC_FETCH_SITE = [
    ("same-origin allowed", "POST", "same-origin", "", PASS),
    ("none allowed", "POST", "none", "", PASS),
    ("cross-site blocked", "POST", "cross-site", "", FAIL),
    ("same-site blocked", "POST", "same-site", "", FAIL),
    ("no header with no origin", "POST", "", "", PASS),
    ("no header with matching origin", "POST", "", "https://example.com", PASS),
    ("no header with mismatched origin", "POST", "", "https://attacker.example", FAIL),
    ("no header with null origin", "POST", "", "null", FAIL),
    ("GET allowed", "GET", "cross-site", "", PASS),
    ("HEAD allowed", "HEAD", "cross-site", "", PASS),
    ("OPTIONS allowed", "OPTIONS", "cross-site", "", PASS),
    ("PUT blocked", "PUT", "cross-site", "", FAIL),
]


@pytest.mark.parametrize("own_origin", ["https://example.com", "https://unrelated.invalid"])
@pytest.mark.parametrize(
    ("name", "method", "site", "origin", "ok"),
    GO_SEC_FETCH_SITE,
    ids=[r[0] for r in GO_SEC_FETCH_SITE],
)
def test_go_sec_fetch_site_table(
    name: str, method: str, site: str, origin: str, ok: bool, own_origin: str
) -> None:
    protector = CsrfProtector(SECRET)
    assert allowed(protector, method, headers(site=site, origin=origin), own_origin) is ok


# TestCrossOriginProtectionTrustedOriginBypass: every row.
GO_TRUSTED = [
    ("trusted origin without sec-fetch-site", "https://trusted.example", "", PASS),
    ("trusted origin with cross-site", "https://trusted.example", "cross-site", PASS),
    ("untrusted origin without sec-fetch-site", "https://attacker.example", "", FAIL),
    ("untrusted origin with cross-site", "https://attacker.example", "cross-site", FAIL),
]


@pytest.mark.parametrize(
    ("name", "origin", "site", "ok"), GO_TRUSTED, ids=[r[0] for r in GO_TRUSTED]
)
def test_go_trusted_origin_table(name: str, origin: str, site: str, ok: bool) -> None:
    protector = CsrfProtector(SECRET, policy=CsrfPolicy(trusted_origins=["https://trusted.example"]))
    h = headers(site=site, origin=origin)
    assert allowed(protector, "POST", h, "https://example.com") is ok


# TestCrossOriginProtectionServer (a real server at http://127.0.0.1:PORT): every row
# except "bypass path" (coatcheck has no path bypass patterns; routes opt out instead).
SERVER = "http://127.0.0.1:54321"
GO_SERVER = [
    ("cross-site", "https://attacker.example", "cross-site", FAIL),
    ("same-origin", "", "same-origin", PASS),
    ("origin matches host", SERVER, "", PASS),
    ("trusted origin", "https://trusted.example", "", PASS),
    ("untrusted origin", "https://attacker.example", "", FAIL),
]


@pytest.mark.parametrize(("name", "origin", "site", "ok"), GO_SERVER, ids=[r[0] for r in GO_SERVER])
def test_go_server_table(name: str, origin: str, site: str, ok: bool) -> None:
    protector = CsrfProtector(SECRET, policy=CsrfPolicy(trusted_origins=["https://trusted.example"]))
    h = headers(site=site, origin=origin, host="127.0.0.1:54321")
    assert allowed(protector, "POST", h, SERVER) is ok


# TestCrossOriginProtectionAddTrustedOriginErrors, as CsrfPolicy validation, with the
# error Go names (net/http/csrf.go AddTrustedOrigin).
@pytest.mark.parametrize(
    ("origin", "error"),
    [
        ("https://example.com", ""),
        ("https://example.com:8080", ""),
        ("http://example.com", ""),
        ("chrome-extension://abcdefghijklmnop", ""),  # Go takes any scheme
        ("example.com", "scheme is required"),
        ("https://", "host is required"),
        ("https://example.com/path", "path, query, and fragment are not allowed"),
        ("https://example.com/", "path, query, and fragment are not allowed"),
        ("https://example.com?query=value", "path, query, and fragment are not allowed"),
        ("https://example.com#fragment", "path, query, and fragment are not allowed"),
        ("", "scheme is required"),
        ("null", "scheme is required"),
        ("://example.com", "scheme is required"),
        ("1https://example.com", "scheme is required"),
    ],
)
def test_go_trusted_origin_validation(origin: str, error: str) -> None:
    if not error:
        assert CsrfPolicy(trusted_origins=[origin]).trusted_origins == {origin}
    else:
        with pytest.raises(ConfigurationError, match=error):
            CsrfPolicy(trusted_origins=[origin])


@pytest.mark.parametrize(
    "origin",
    [
        # Values Go accepts although no Origin header can ever equal them: refused, so
        # the mistake shows at start-up instead of as a silent 403.
        "https://example.com?",
        "https://example.com#",
        "https://ex ample.com",
        "https://user@example.com",
        "https://example.com:",
        "https://example.com:https",
        "https://exa\tmple.com",
    ],
)
def test_values_no_browser_sends_are_refused_too(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid origin"):
        CsrfPolicy(trusted_origins=[origin])


def test_trailing_slash_is_a_configuration_error_not_stripped() -> None:
    # Regression (issue 12, item 9): "https://Example.com/" used to be stripped to
    # "https://example.com"; Go refuses it, and so does coatcheck now, saying how to fix it.
    with pytest.raises(ConfigurationError, match="without a trailing '/'"):
        CsrfPolicy(trusted_origins=["https://Example.com/"])
    assert CsrfPolicy(trusted_origins=["https://Example.com"]).trusted_origins == {
        "https://example.com"
    }
    with pytest.raises(ConfigurationError, match="not one string"):
        CsrfPolicy(trusted_origins="https://example.com")


# Rows beyond Go's tests: allow_same_site, own_origin, hostile and odd headers.
def row(
    name: str,
    ok: bool,
    *,
    method: str = "POST",
    site: str = "",
    origin: str = "",
    host: str = "example.com",
    own: str = "https://example.com",
    **policy: Any,
) -> Any:
    return pytest.param(policy, method, site, origin, host, own, ok, id=name)


TRUSTED: dict[str, Any] = {"trusted_origins": ["https://trusted.example"]}
ATTACKER = "https://attacker.example"
EXTRA = [
    row("same-site allowed by policy", PASS, site="same-site", allow_same_site=True),
    row("cross-site refused with allow_same_site", FAIL, site="cross-site", allow_same_site=True),
    row(
        "same-site with trusted origin",
        PASS,
        site="same-site",
        origin="https://a.example.com",
        trusted_origins=["https://a.example.com"],
    ),
    row("cross-site with own origin", FAIL, site="cross-site", origin="https://example.com"),
    row("unknown Sec-Fetch-Site value", FAIL, site="bogus"),
    row("Sec-Fetch-Site is case-sensitive", FAIL, site="Same-Origin"),
    row(
        "own origin behind a proxy that rewrites Host",
        PASS,
        origin="https://app.example.com",
        host="10.0.0.7:8000",
        own="https://app.example.com",
    ),
    row(
        "origin host matches Host with port",
        PASS,
        origin="https://example.com:8443",
        host="example.com:8443",
        own="https://x.invalid",
    ),
    row("origin port differs from Host", FAIL, origin="https://example.com:8443"),
    row(
        "http origin, same host, own origin unknown: passes as in Go (use HSTS)",
        PASS,
        origin="http://example.com",
        own="",
    ),
    # Regression (issue 12, item 9): the own origin is https, so http://<host> is not us.
    row("http origin, same host, own origin https", FAIL, origin="http://example.com"),
    row(
        "http origin, same host, own origin elsewhere but https",
        FAIL,
        origin="http://example.com",
        own="https://x.invalid",
    ),
    row(
        "http origin, same host, own origin http",
        PASS,
        origin="http://example.com",
        own="http://x.invalid",
    ),
    row(
        "https origin, same host, own origin https elsewhere",
        PASS,
        origin="https://example.com",
        own="https://x.invalid",
    ),
    row("sibling subdomain, no Sec-Fetch-Site", FAIL, origin="https://evil.example.com"),
    row("suffix trick", FAIL, origin="https://example.com.evil.example"),
    row("userinfo trick", FAIL, origin="https://example.com@evil.example"),
    row("null origin, no Host header", FAIL, origin="null", host=""),
    row("empty-host origin, no Host header", FAIL, origin="https://", host=""),
    row("origin with a tab (Go refuses it)", FAIL, origin="https://exa\tmple.com"),
    row("broken IPv6 origin", FAIL, origin="https://[::1", host="[::1"),
    row(
        "upper-case origin host (hosts are case-insensitive)",
        PASS,
        origin="https://EXAMPLE.com",
        own="https://x.invalid",
    ),
    row("lower-case method is unsafe", FAIL, method="get", site="cross-site"),
    row("DELETE cross-site", FAIL, method="DELETE", site="cross-site", origin=ATTACKER),
    row("same-origin beats Origin", PASS, method="PATCH", site="same-origin", origin=ATTACKER),
    row(
        "trusted origin compared case-insensitively",
        PASS,
        site="cross-site",
        origin="https://TRUSTED.example",
        **TRUSTED,
    ),
    row(
        "trusted origin with another port",
        FAIL,
        site="cross-site",
        origin="https://trusted.example:444",
        **TRUSTED,
    ),
]


@pytest.mark.parametrize(("kwargs", "method", "site", "origin", "host", "own_origin", "ok"), EXTRA)
def test_extra_origin_rows(
    kwargs: dict[str, Any],
    method: str,
    site: str,
    origin: str,
    host: str,
    own_origin: str,
    ok: bool,
) -> None:
    protector = CsrfProtector(SECRET, policy=CsrfPolicy(**kwargs))
    h = headers(site=site, origin=origin, host=host)
    assert allowed(protector, method, h, own_origin) is ok


def test_empty_header_values_count_as_absent() -> None:
    protector = CsrfProtector(SECRET)
    h = {"host": "example.com", "sec-fetch-site": "", "origin": ""}
    protector.check_origin("POST", h, own_origin="https://example.com")
    h["origin"] = "https://attacker.example"
    with pytest.raises(CrossOriginRequest):
        protector.check_origin("POST", h, own_origin="https://example.com")


def test_refusal_message_names_the_check_but_not_the_origin() -> None:
    protector = CsrfProtector(SECRET)
    with pytest.raises(CrossOriginRequest) as info:
        protector.check_origin(
            "POST", headers(origin="https://attacker.example"), own_origin="https://example.com"
        )
    assert "attacker" not in str(info.value)
    assert str(info.value).startswith("csrf_cross_origin: ")


# --- tokens --------------------------------------------------------------------------


@pytest.fixture
def protector(clock: FrozenClock) -> CsrfProtector:
    return CsrfProtector(SECRET, clock=clock)


def test_token_round_trip(protector: CsrfProtector) -> None:
    token = protector.issue(SESSION)
    assert len(token) == 64
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    protector.verify_token(token, SESSION)


def test_tokens_are_fresh_each_time(protector: CsrfProtector) -> None:
    tokens = {protector.issue(SESSION) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        protector.verify_token(token, SESSION)


def test_token_is_bound_to_its_session(protector: CsrfProtector) -> None:
    token = protector.issue(SESSION)
    for other in (SESSION[:-1] + "e", SESSION + "x", SESSION.upper(), "jti-1", " " + SESSION):
        with pytest.raises(CsrfTokenMismatch) as info:
            protector.verify_token(token, other)
        assert info.value.code == "csrf_token_invalid"


@pytest.mark.parametrize("submitted", [None, ""])
def test_missing_token(protector: CsrfProtector, submitted: str | None) -> None:
    with pytest.raises(MissingCsrfToken) as info:
        protector.verify_token(submitted, SESSION)
    assert info.value.code == "csrf_token_missing"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: ("A" if t[0] != "A" else "B") + t[1:],
        lambda t: t[:30] + ("A" if t[30] != "A" else "B") + t[31:],
        lambda t: t[:-2] + "==",
        lambda t: "+" + t[1:],
        lambda t: t[:-1] + "/",
        lambda t: "\u00e9" * 64,
        lambda t: " " * 64,
        lambda t: "A" * 64,
        lambda t: "x",
        lambda t: t + t,
        lambda t: base64.urlsafe_b64encode(base64.urlsafe_b64decode(t)[:16] + bytes(32)).decode(),
    ],
)
def test_forged_tokens_are_refused(protector: CsrfProtector, mangle: Any) -> None:
    token = protector.issue(SESSION)
    forged = mangle(token)
    assert forged != token
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_token(forged, SESSION)


@pytest.mark.parametrize("submitted", [b"token", 42, ["x"]])
def test_non_str_token_is_refused(protector: CsrfProtector, submitted: Any) -> None:
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_token(submitted, SESSION)


def test_other_secret_is_refused(protector: CsrfProtector) -> None:
    token = CsrfProtector("x" * 32).issue(SESSION)
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_token(token, SESSION)


def test_rotation(clock: FrozenClock) -> None:
    old = CsrfProtector(OLD, clock=clock)
    rotated = CsrfProtector([OLD, SECRET], clock=clock)
    new = CsrfProtector(SECRET, clock=clock)
    rotated.verify_token(old.issue(SESSION), SESSION)
    new.verify_token(rotated.issue(SESSION), SESSION)
    with pytest.raises(CsrfTokenMismatch):
        old.verify_token(rotated.issue(SESSION), SESSION)


def test_a_signer_value_in_the_csrf_namespace_is_not_a_token(protector: CsrfProtector) -> None:
    signed = Signer(SECRET, namespace="csrf").sign(SESSION)
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_token(signed, SESSION)


def test_empty_binding_is_refused(protector: CsrfProtector) -> None:
    with pytest.raises(ConfigurationError):
        protector.issue("")
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_token(protector.issue(SESSION), "")


def test_bindings_with_any_characters(protector: CsrfProtector) -> None:
    for binding in ("\u00e9", "a\ud800", "\x00", "x" * 10_000):
        protector.verify_token(protector.issue(binding), binding)
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_token(protector.issue("a\ud800"), "a\ud801")


def test_bad_secret_configuration() -> None:
    with pytest.raises(ConfigurationError):
        CsrfProtector("short")
    with pytest.raises(ConfigurationError):
        CsrfProtector([])


# --- signed double submit (jwt mode) --------------------------------------------------

JTI = "01J9Z6W8K3M2Q7R5T4V0X1Y2Z3"


def test_double_submit_passes_when_both_copies_match_and_fit_the_jti(
    protector: CsrfProtector,
) -> None:
    token = protector.issue(JTI)
    protector.verify_double_submit(token, token, JTI)


@pytest.mark.parametrize(("cookie", "echo"), [(None, "t"), ("t", None), ("", ""), (None, None)])
def test_double_submit_missing_parts(
    protector: CsrfProtector, cookie: str | None, echo: str | None
) -> None:
    token = protector.issue(JTI)
    with pytest.raises(MissingCsrfToken):
        protector.verify_double_submit(
            token if cookie else cookie, token if echo else echo, JTI
        )


def test_double_submit_copies_must_be_equal(protector: CsrfProtector) -> None:
    # Two valid tokens for the same jti, but not the same token: refused.
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_double_submit(protector.issue(JTI), protector.issue(JTI), JTI)


def test_double_submit_refuses_a_tossed_attacker_cookie(protector: CsrfProtector) -> None:
    # The attacker plants their own valid token (bound to their jti) in both places.
    attacker_token = protector.issue("attacker-jti")
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_double_submit(attacker_token, attacker_token, JTI)


def test_double_submit_refuses_forged_equal_copies(protector: CsrfProtector) -> None:
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_double_submit("A" * 64, "A" * 64, JTI)
    with pytest.raises(CsrfTokenMismatch):
        protector.verify_double_submit("\u00e9", "\u00e9", JTI)


def test_every_refusal_is_a_csrf_error(protector: CsrfProtector) -> None:
    for exc in (CrossOriginRequest, MissingCsrfToken, CsrfTokenMismatch):
        assert issubclass(exc, CsrfError)


def test_repr_shows_no_secret(protector: CsrfProtector) -> None:
    assert SECRET not in repr(protector)
    assert protector.policy == CsrfPolicy()
