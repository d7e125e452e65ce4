"""express-session cookie signing and session documents (no Node needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck.errors import ConfigurationError, SignatureError
from coatcheck.interop.express import (
    ExpressSessionCookie,
    format_js_date,
    new_express_session,
    new_session_id,
    parse_js_date,
    session_expires,
    sign_value,
    unsign_value,
)
from coatcheck.policies import CookiePolicy


def test_cookie_signature_readme_vector() -> None:
    # From tj/node-cookie-signature's README.
    assert sign_value("hello", "tobiiscool") == "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
    signed = "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
    assert unsign_value(signed, "tobiiscool") == "hello"
    with pytest.raises(SignatureError):
        unsign_value("hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI", "luna")
    with pytest.raises(SignatureError):
        unsign_value("no-dot", "tobiiscool")


def test_first_secret_signs_all_verify() -> None:
    cookie = ExpressSessionCookie(["new", "old"])
    assert cookie.sign("sid") == "s:" + sign_value("sid", "new")
    assert cookie.unsign("s:" + sign_value("sid", "old")) == "sid"
    assert cookie.unsign("s%3A" + sign_value("sid", "new").replace("+", "%2B")) == "sid"
    with pytest.raises(SignatureError):
        cookie.unsign(sign_value("sid", "new"))  # no s: prefix
    assert cookie.read({"cookie": "connect.sid=garbage"}) is None
    assert cookie.read({}) is None
    assert "new" not in repr(cookie)


def test_set_cookie_is_url_encoded() -> None:
    cookie = ExpressSessionCookie("k", policy=CookiePolicy(secure=False))
    line = cookie.set_cookie("a/b+c", max_age=60, now=0)
    assert line.startswith("connect.sid=s%3Aa%2Fb%2Bc.")
    assert "Max-Age=60" in line


@pytest.mark.parametrize("secrets", [[], "", [""]])
def test_needs_secrets(secrets: list[str] | str) -> None:
    with pytest.raises(ConfigurationError):
        ExpressSessionCookie(secrets)


def test_session_document_shape() -> None:
    doc = new_express_session({"userId": 1}, now=1_700_000_000.5, max_age=timedelta(days=1))
    assert doc["cookie"] == {
        "originalMaxAge": 86_400_000, "expires": "2023-11-15T22:13:20.500Z", "secure": True,
        "httpOnly": True, "path": "/", "sameSite": "lax",
    }
    assert doc["userId"] == 1
    assert session_expires(doc) == 1_700_086_400.5
    browser = new_express_session(now=0, max_age=None)
    assert browser["cookie"]["expires"] is None
    assert session_expires(browser) is None
    with pytest.raises(ConfigurationError):
        new_express_session({"cookie": 1}, now=0)


def test_dates_and_ids() -> None:
    assert format_js_date(0) == "1970-01-01T00:00:00.000Z"
    assert parse_js_date("1970-01-01T00:00:01.000Z") == 1.0
    assert parse_js_date("not a date") is None
    assert parse_js_date(12) is None
    assert len(new_session_id()) == 32


def test_a_session_cookie_sent_twice_is_ambiguous() -> None:
    # Issue 12, item 1: a sibling subdomain can toss its own connect.sid beside ours.
    cookie = ExpressSessionCookie("k")
    mine, theirs = "s:" + sign_value("mine", "k"), "s:" + sign_value("theirs", "k")
    assert cookie.read({"cookie": f"connect.sid={mine}"}) == "mine"
    assert cookie.read({"cookie": f"connect.sid={theirs}; connect.sid={mine}"}) is None
