"""The demo's /inspect page: the inspector's report as escaped HTML, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest
from starlette.testclient import TestClient

from coatcheck.clock import FrozenClock
from coatcheck.demo.inspect_page import MAX_VALUE
from coatcheck.signing import Signer
from coatcheck.tokens import JWTCodec, Key

from .conftest import MakeClient, page_token, register_and_login

NOW = 1_700_000_000.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _inspect(client: TestClient, value: str, **fields: str) -> tuple[int, str]:
    response = client.post("/inspect", data={"value": value, **fields})
    return response.status_code, response.text


def _report(page: str) -> str:
    """The part of the page after the form: the report only."""
    return page.partition("<h2>Report</h2>")[2]


def test_form_explains_and_is_linked_from_home(make_client: MakeClient) -> None:
    client = make_client("session")
    assert 'href="/inspect"' in client.get("/").text
    page = client.get("/inspect")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "<textarea name=value" in page.text
    assert 'name="csrf_token"' in page.text
    assert "nothing is sent anywhere" in page.text
    assert "HttpOnly" in page.text
    assert "coatcheck_session" in page.text  # which cookie to copy, for this mode


def test_page_never_shows_the_visitors_own_cookie(make_client: MakeClient) -> None:
    client = make_client("jwt")
    register_and_login(client)
    token = client.cookies["coatcheck_token"]
    assert token not in client.get("/inspect").text
    status, page = _inspect(client, "Set-Cookie: a=b; Secure")
    assert status == 200
    assert token not in page


def test_jwt_cookie_is_verified_with_the_demo_key(make_client: MakeClient) -> None:
    client = make_client("jwt")
    register_and_login(client)
    token = client.cookies["coatcheck_token"]
    kid = client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    status, page = _inspect(client, token, demo_keys="on")
    report = _report(page)
    assert status == 200
    assert "JSON Web Signature" in report
    assert "<code>jws</code>" in report
    assert "Alice Example" in report  # the payload, shown
    assert '"alg": "ES256"'.replace('"', "&quot;") in report
    assert f"kid={kid}" in report
    assert 'class="verified"' in report
    assert re.search(r"<th>exp</th><td>[^<]+ \(<b>in \d+ days?</b>\)", report)
    # Without the demo's key nothing is verified, it says so, and no key is claimed to match.
    unchecked = _report(_inspect(client, token)[1])
    assert 'class="not_checked"' in unchecked
    assert "signature not verified (no key given)" in unchecked
    assert 'class="verified"' not in unchecked
    assert "kid=" not in unchecked


def test_secret_verifies_and_wrong_secret_fails(make_client: MakeClient) -> None:
    client = make_client("session")
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = _b64(json.dumps({"sub": "42", "exp": 4_000_000_000}).encode())
    secret = "s" * 40
    signing_input = f"{header}.{payload}".encode()
    signature = _b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    token = f"{header}.{payload}.{signature}"
    good = _report(_inspect(client, token, secret=secret)[1])
    assert 'class="verified"' in good
    assert "<code>k1</code>" in good  # the kid
    bad = _report(_inspect(client, token, secret="t" * 40)[1])
    assert 'class="failed"' in bad
    assert secret not in _inspect(client, token, secret=secret)[1]  # never echoed back


def test_set_cookie_line_is_linted(make_client: MakeClient) -> None:
    client = make_client("session")
    status, page = _inspect(client, "Set-Cookie: __Host-id=abc; Path=/docs; SameSite=None")
    report = _report(page)
    assert status == 200
    assert "<code>set-cookie</code>" in report
    assert "host_prefix_secure" in report
    assert 'class="error"' in report


def test_cookie_header_lists_each_cookie(make_client: MakeClient) -> None:
    client = make_client("session")
    signed = Signer("x" * 32, namespace="demo").sign("hello")
    status, page = _inspect(client, f"Cookie: a=1234567890abcdef1234567890abcdef; b={signed}")
    report = _report(page)
    assert status == 200
    assert "Cookie header (2 cookies)" in report
    assert report.count('class="box report"') == 3


def test_times_are_relative_to_the_demo_clock(make_client: MakeClient) -> None:
    client = make_client("session", clock=FrozenClock(NOW))
    header = _b64(b'{"alg":"HS256"}')
    payload = _b64(json.dumps({"iat": NOW - 7200, "exp": NOW - 60}).encode())
    report = _report(_inspect(client, f"{header}.{payload}.c2ln")[1])
    assert "2 hours ago" in report
    assert "1 minute ago" in report
    assert "expired" in report


def test_hostile_values_are_escaped(make_client: MakeClient) -> None:
    client = make_client("session")
    script = "<script>alert(1)</script>"
    header = _b64(json.dumps({"alg": "HS256", "kid": script}).encode())
    payload = _b64(json.dumps({"name": script, script: 1}).encode())
    for value in (f"{header}.{payload}.sig", f"Cookie: {script}=x", f"Set-Cookie: x={script}",
                  script):
        status, page = _inspect(client, value)
        assert status == 200
        assert "<script>alert" not in page
        assert "&lt;script&gt;" in page


# A spread of garbage: none of it may produce a 500 or an unescaped tag.
_DEEP = _b64(("[" * 3000 + "]" * 3000).encode())
_GARBAGE = [
    "x",
    "=",
    ";;;;",
    "\x00\x01\x02\x7f",
    "é" * 1000,
    "eyJ",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
    f"eyJhbGciOiJIUzI1NiJ9.{_DEEP}.sig",
    "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0....",
    "eyJlbmMiOjF9.a.b.c.d",
    "s%3Aabc.def",
    "s:" + "A" * 5000 + ".x",
    ".eJyrVkrLz1eyUkpKLFKqBQAbqwQx.ZqT0Fg.abc",
    "Cookie: " + "a=b; " * 500,
    "Set-Cookie: " + "a=b;" + " Max-Age=99999999999999999999999;" * 10,
    "Set-Cookie: a=b; Expires=Thu, 99 Foo 99999 99:99:99 GMT",
    "Set-Cookie: =; ;",
    "Authorization: Bearer ",
    "Bearer " + "A" * 10_000,
    "\ufeff\u202eeyJ",
    "{" * 5000,
    "x" * MAX_VALUE,
]


@pytest.mark.parametrize("mode", ["session", "jwt"])
def test_garbage_never_500s(make_client: MakeClient, mode: str) -> None:
    client = make_client(mode)
    for value in _GARBAGE:
        status, page = _inspect(client, value, secret="some secret", demo_keys="on")
        assert status in (200, 413), (value[:40], status)
        assert "Report" in page or status == 413


def test_empty_oversized_and_bad_forms_are_4xx(make_client: MakeClient) -> None:
    client = make_client("session")
    assert _inspect(client, "   ")[0] == 400
    too_long = client.post("/inspect", data={"value": "x" * (MAX_VALUE + 1)})
    assert too_long.status_code == 413
    assert "too long" in too_long.text
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    raw = client.post("/inspect", content=b"\xff\xfe", headers=form_type)
    assert raw.status_code == 400
    wrong_type = client.post("/inspect", content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415


def test_the_forms_own_csrf_token_is_what_lets_it_post(make_client: MakeClient) -> None:
    client = make_client("session")
    token = page_token(client, "/inspect")
    ok = client.post("/inspect", data={"value": "abc.def", "csrf_token": token}, csrf=False)
    assert ok.status_code == 200
    refused = client.post("/inspect", data={"value": "abc.def"}, csrf=False)
    assert refused.status_code == 403


def test_a_pasted_jwt_is_shown_in_jwt_io_colours(make_client: MakeClient) -> None:
    client = make_client("jwt")
    token = JWTCodec(Key.generate("HS256")).encode({"sub": "u1"})
    page = client.post("/inspect", data={"value": token}).text
    header, payload, signature = token.split(".")
    assert f'<span class="jwt-h">{header}</span>' in page
    assert f'<span class="jwt-p">{payload}</span>' in page
    assert f'<span class="jwt-s">{signature}</span>' in page  # pasted: shown whole
    assert "expires in 15 minutes" in page
