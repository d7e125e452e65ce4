"""Set-Cookie lint rules (RFC 6265bis)."""

from __future__ import annotations

import pytest

from coatcheck.cookies import dump_cookie
from coatcheck.inspect import inspect_value, lint_set_cookie, parse_set_cookie, render_json
from coatcheck.policies import CookiePolicy


def _codes(line: str) -> set[str]:
    cookie = parse_set_cookie(line)
    assert cookie is not None
    return {f.code for f in lint_set_cookie(cookie)}


def test_coatcheck_defaults_lint_clean() -> None:
    line = dump_cookie("__Host-session", "abc", CookiePolicy(), max_age=60, now=0)
    assert {c for c in _codes(line)} == set()


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("sid=1; Path=/; Secure; SameSite=Lax", "missing_httponly"),
        ("sid=1; Path=/; HttpOnly; SameSite=Lax", "missing_secure"),
        ("sid=1; HttpOnly; SameSite=None", "samesite_none_insecure"),
        ("__Host-sid=1; Secure; HttpOnly; Path=/app", "host_prefix_path"),
        ("__Host-sid=1; Secure; HttpOnly; Path=/; Domain=example.com", "host_prefix_domain"),
        ("__host-sid=1; HttpOnly; Path=/", "host_prefix_secure"),
        ("__Secure-sid=1; HttpOnly", "secure_prefix"),
        ("big=" + "x" * 4100 + "; Secure; HttpOnly", "too_large"),
        ("sid=1; Secure; HttpOnly; Max-Age=soon", "bad_max_age"),
        ("sid=1; Secure; HttpOnly; Expires=tomorrow", "bad_expires"),
        ("sid=1; Secure; HttpOnly; SameSite=Maybe", "bad_samesite"),
        ("sid=1; Secure; HttpOnly; Partitioned; Max-Age=99999999", "max_age_capped"),
        ("sid=1; HttpOnly; Partitioned", "partitioned_insecure"),
        ("sid=1; Secure; HttpOnly; Frobnicate", "unknown_attribute"),
        ("sid=a b; Secure; HttpOnly", "bad_value"),
    ],
)
def test_lint_rule(line: str, code: str) -> None:
    assert code in _codes(line)


def test_parse() -> None:
    cookie = parse_set_cookie("Set-Cookie: a=b=c; path=/x; SECURE; max-age=1; max-age=2")
    assert cookie is not None
    assert (cookie.name, cookie.value) == ("a", "b=c")
    assert cookie.attributes == {"path": "/x", "secure": None, "max-age": "2"}
    assert parse_set_cookie("novalue") is None
    assert parse_set_cookie("=x") is None


def test_set_cookie_report_inspects_the_value() -> None:
    report = inspect_value("Set-Cookie: connect.sid=s%3Aabc.def; Path=/; HttpOnly")
    assert report.kind == "set-cookie"
    assert report.name == "connect.sid"
    assert report.children
    assert report.children[0].name == "connect.sid"
    bare = inspect_value("sid=abc; Path=/; HttpOnly")
    assert bare.kind == "set-cookie"


def test_flag_attributes_show_as_true() -> None:
    report = inspect_value("sid=1; Secure; HttpOnly; Partitioned; SameSite=Lax; Path=/")
    assert report.fields["attributes"] == {
        "secure": True, "httponly": True, "partitioned": True, "samesite": "Lax", "path": "/"
    }
    assert '"httponly": true' in render_json(report)


def test_lint_errors_mark_the_report() -> None:
    assert inspect_value("sid=1; HttpOnly; SameSite=None").lint_failed
    assert not inspect_value("sid=1; HttpOnly; SameSite=Lax").lint_failed  # warnings only
    assert not inspect_value("Cookie: sid=1").lint_failed
