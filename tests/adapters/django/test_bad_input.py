"""Malformed cookies, tokens and bodies get the 4xx every coatcheck adapter answers (a
guest, 400, 401, 413), never a 500: one by one, then a burst of 200 from threads."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections
from django.test import Client, override_settings

from .test_middleware import MODES, coatcheck_settings


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


NONE_ALG = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': '1', 'exp': 9999999999})}."
BAD_COOKIES = [
    "sessionid=",
    "sessionid=abcdef12.",
    "sessionid=" + "A" * 4000,
    "sessionid=abcdef12." + "A" * 43 + "; sessionid=ffffffff." + "B" * 43,
    'sessionid="abcdef12.quoted"',
    "sessionid=\\x00\\xff; coatcheck_token=a.b.c",
    "coatcheck_token=" + NONE_ALG,
    "coatcheck_access=e30.e30.e30; coatcheck_refresh=zzz",
    "coatcheck_token=" + "ey" * 3000,
    "=; ;;; =x; sessionid",
    "csrftoken=" + "x" * 100,
]
BAD_TOKENS = [
    "Bearer",
    "Bearer ",
    "Bearer a.b.c",
    "Bearer " + NONE_ALG,
    "Bearer " + "A" * 9000,
    "Basic dXNlcjpwYXNz",
    "Bearer abcdef12." + "A" * 43,
    "bearer ..",
    "Bearer \u00e9t\u00e9",
    "DPoP x.y.z",
]
# (body, content type, expected status)
BAD_BODIES: list[tuple[bytes, str, int]] = [
    (b"not json", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b'{"a": "\\ud800"}', "application/json", 400),
    (b'{"a": "\\u0000"}', "application/json", 400),
    (b'{"a": 1e999}', "application/json", 400),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),
    (b'{"a": 1, "a": 2}', "application/json", 400),
    (b"[]", "application/json", 400),
    (b"", "application/json", 400),
    (b'{"a": 1}', "text/plain", 400),
    (b'{"a": "' + b"x" * 70_000 + b'"}', "application/json", 413),
]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    with override_settings(COATCHECK=coatcheck_settings(request.param)):
        yield request.param


def _cookie_request(cookie: str) -> Callable[[Client], Any]:
    return lambda client: client.get("/api/me", HTTP_COOKIE=cookie)


def _token_request(header: str) -> Callable[[Client], Any]:
    return lambda client: client.post("/unsafe", HTTP_AUTHORIZATION=header)


def _body_request(body: bytes, media: str) -> Callable[[Client], Any]:
    return lambda client: client.post("/api/echo", data=body, content_type=media)


def test_each_bad_cookie_is_a_guest(mode: str) -> None:
    for cookie in BAD_COOKIES:
        response = Client().get("/api/me", HTTP_COOKIE=cookie)
        assert response.status_code == 401, cookie
        assert response.json()["error"] in ("missing_credentials", "invalid_credentials")
        page = Client().get("/whoami", HTTP_COOKIE=cookie)
        assert (page.status_code, page.json()) == (200, {"user": None}), cookie


def test_each_bad_token_is_refused_with_401_or_csrf(mode: str) -> None:
    for header in BAD_TOKENS:
        api = Client().get("/api/me", HTTP_AUTHORIZATION=header)
        assert api.status_code == 401, header
        # Not a valid bearer credential, so no CSRF exemption either.
        unsafe = Client(enforce_csrf_checks=True).post("/unsafe", HTTP_AUTHORIZATION=header)
        assert unsafe.status_code == 403, header


def test_each_bad_body_gets_its_status(mode: str) -> None:
    for body, media, status in BAD_BODIES:
        response = Client().post("/api/echo", data=body, content_type=media)
        assert response.status_code == status, body[:40]
        assert response.json()["error"] in ("bad_request", "invalid_text", "payload_too_large")


def test_a_refresh_with_garbage_is_a_redirect_not_an_error() -> None:
    with override_settings(COATCHECK=coatcheck_settings("hybrid")):
        for cookie in BAD_COOKIES:
            response = Client().get("/auth/refresh?next=//evil.example/", HTTP_COOKIE=cookie)
            assert response.status_code == 307
            assert response["Location"] == "/"


def test_a_burst_of_200_bad_requests_from_threads(mode: str) -> None:
    requests: list[Callable[[Client], Any]] = (
        [_cookie_request(c) for c in BAD_COOKIES]
        + [_token_request(t) for t in BAD_TOKENS]
        + [_body_request(b, m) for b, m, _ in BAD_BODIES]
    )
    work = [requests[i % len(requests)] for i in range(200)]

    def send(call: Callable[[Client], Any]) -> int:
        try:
            return int(call(Client(enforce_csrf_checks=True)).status_code)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, work))
    assert len(statuses) == 200
    assert all(400 <= status < 500 for status in statuses), sorted(set(statuses))
