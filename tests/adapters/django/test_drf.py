"""coatcheck.adapters.django.drf through DRF's APIClient, on real stores."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from coatcheck.auth import (
    Authenticator,
    BearerTransport,
    CookieTransport,
    HybridStrategy,
    JWTStrategy,
    SessionStrategy,
)
from coatcheck.policies import CookiePolicy
from coatcheck.sessions import SessionManager
from coatcheck.stores import open_store
from coatcheck.sync import run_sync
from coatcheck.tokens import JWTCodec, Key

from . import drf_site

PASSWORD = "correct horse battery staple"
COOKIE = CookiePolicy(secure=False)
SECRET = secrets.token_bytes(32)


@pytest.fixture(autouse=True)
def site() -> Iterator[None]:
    from django.test import override_settings

    with override_settings(**drf_site.SETTINGS):
        yield


@pytest.fixture(autouse=True)
def users(site: None) -> None:
    model = get_user_model()
    if not model.objects.filter(username="alice").exists():
        model.objects.create_user("alice", password=PASSWORD)
        model.objects.create_user("carol", password=PASSWORD, is_active=False)


def _codec() -> JWTCodec:
    return JWTCodec(Key.from_secret(SECRET, alg="HS256"))


def _store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    if kind == "redis":
        url: str = request.getfixturevalue("redis_url")
        return f"{url}?prefix=ccdrf{secrets.token_hex(3)}:"
    url = request.getfixturevalue("postgres_store_url")
    return url


def _build(mode: str, kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> Authenticator:
    transports = (CookieTransport(policy=COOKIE), BearerTransport())
    if mode == "jwt":
        return Authenticator(JWTStrategy(_codec()), transports)
    store = open_store(_store_url(kind, request, tmp_path), sync=True)
    request.addfinalizer(lambda: run_sync(store.close()))
    manager = SessionManager(store)
    if mode == "session":
        return Authenticator(SessionStrategy(manager), transports)
    return Authenticator(HybridStrategy(manager, _codec(), secrets.token_bytes(32)), transports)


CASES = [
    pytest.param(("jwt", "none"), id="jwt"),
    pytest.param(("hybrid", "memory"), id="hybrid-memory"),
    pytest.param(("hybrid", "sqlite"), id="hybrid-sqlite"),
    pytest.param(("hybrid", "redis"), id="hybrid-redis", marks=pytest.mark.redis),
    pytest.param(("hybrid", "postgresql"), id="hybrid-postgresql", marks=pytest.mark.postgres),
    pytest.param(("session", "sqlite"), id="session-sqlite"),
    pytest.param(("session", "redis"), id="session-redis", marks=pytest.mark.redis),
    pytest.param(("session", "postgresql"), id="session-postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=CASES)
def mode(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    name, kind = request.param
    drf_site.SITE.authenticator = _build(name, kind, request, tmp_path)
    yield name
    drf_site.SITE.authenticator = None


@pytest.fixture
def hybrid(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Authenticator]:
    drf_site.SITE.authenticator = _build("hybrid", "sqlite", request, tmp_path)
    yield drf_site.SITE.authenticator
    drf_site.SITE.authenticator = None


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def _login(client: APIClient, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/token/", {"username": "alice", "password": PASSWORD, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def test_login_then_bearer_request_in_every_mode(client: APIClient, mode: str) -> None:
    body = _login(client)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert ("refresh" in body) is (mode == "hybrid")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    me = client.get("/api/me/")
    assert me.status_code == 200
    assert me.json() == {"username": "alice", "mode": mode, "via": "bearer"}
    # No CSRF token, and unsafe methods pass: a bearer header is never sent by itself.
    assert APIClient(enforce_csrf_checks=True).post(
        "/api/me/", HTTP_AUTHORIZATION=f"Bearer {body['access']}"
    ).status_code == 200


def test_form_bodies_are_accepted_like_simplejwt(client: APIClient, mode: str) -> None:
    response = client.post("/api/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["access"]


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("nobody", PASSWORD), ("carol", PASSWORD)]
)
def test_a_refused_login_is_one_401_in_drf_format(
    client: APIClient, hybrid: Authenticator, username: str, password: str
) -> None:
    response = client.post(
        "/api/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 401
    refused = {"detail": "wrong username or password", "code": "invalid_credentials"}
    assert response.json() == refused
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("username", ["alice", "nobody-at-all"])
def test_sign_ins_are_throttled_before_the_password_is_checked(
    client: APIClient, hybrid: Authenticator, username: str
) -> None:
    wrong = {"username": username, "password": "wrong"}
    statuses = [client.post("/api/token/", wrong, format="json").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    refused = client.post("/api/token/", {"username": username, "password": PASSWORD})
    # Locked: even the right password is not checked until the back-off has passed.
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1
    # Another account from another address is not locked by it.
    other = client.post(
        "/api/token/", {"username": "carol", "password": "x"}, REMOTE_ADDR="198.51.100.7"
    )
    assert other.status_code == 401


def test_no_credentials_is_401_with_a_challenge(client: APIClient, mode: str) -> None:
    response = client.get("/api/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    [
        "Bearer forged.token.here",
        "Bearer " + "a" * 5000,
        "Bearer",
        "Bearer  ",
        "Basic YWxpY2U6cGFzcw==",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        "Bearer \u00e9\u00e9",
        "Bearer a~b",
    ],
)
def test_bad_bearer_headers_are_401_never_500(client: APIClient, mode: str, header: str) -> None:
    response = client.get("/api/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] in ("invalid_credentials", "not_authenticated")


def test_a_token_of_a_deactivated_user_is_refused(client: APIClient, mode: str) -> None:
    token = _login(client)["access"]
    model = get_user_model()
    model.objects.filter(username="alice").update(is_active=False)
    try:
        response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    finally:
        model.objects.filter(username="alice").update(is_active=True)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_a_token_for_a_user_id_that_is_no_key_is_refused(client: APIClient, mode: str) -> None:
    issued = run_sync(drf_site._current().strategy.issue("not-a-number"))
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {issued.token}")
    assert response.status_code == 401


def test_the_stateless_class_reads_no_user_row_and_grants_nothing(
    client: APIClient, mode: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from coatcheck.adapters.django.token_user import IdentityUser

    token = _login(client)["access"]
    with CaptureQueriesContext(connection) as queries:
        me = client.get("/api/stateless/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert not [q for q in queries.captured_queries if "auth_user" in q["sql"]]
    user = IdentityUser(run_sync(drf_site._current().strategy.verify(token)).identity)  # type: ignore[union-attr]
    assert not user.is_staff
    assert not user.has_perm("auth.delete_user")
    # The key in the user model's own type: comparable with foreign keys to the user.
    assert user.pk == get_user_model().objects.get(username="alice").pk
    assert user == IdentityUser(user.identity)
    with pytest.raises(NotImplementedError):
        user.save()
    forged = client.get("/api/stateless/me/", HTTP_AUTHORIZATION=f"Bearer {token[:-4]}AAAA")
    assert forged.status_code == 401


def test_passthrough_lets_simplejwt_tokens_through_during_a_migration(
    client: APIClient, hybrid: Authenticator
) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    old = str(AccessToken.for_user(get_user_model().objects.get(username="alice")))
    new = _login(client)["access"]
    for token in (old, new):
        me = client.get("/api/migrating/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert me.status_code == 200, me.content
        assert me.json()["username"] == "alice"
    # Without passthrough the coatcheck class answers for every bearer token itself.
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401
    forged = client.get("/api/migrating/me/", HTTP_AUTHORIZATION=f"Bearer {new[:-4]}AAAA")
    assert forged.status_code == 401


# -- the session cookie and CSRF ---------------------------------------------------------


@pytest.fixture
def session_cookie(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    drf_site.SITE.authenticator = _build("session", "sqlite", request, tmp_path)
    yield CookieTransport(policy=COOKIE).cookie_name
    drf_site.SITE.authenticator = None


def _cookie_login(client: APIClient, name: str) -> None:
    user = get_user_model().objects.get(username="alice")
    result = run_sync(drf_site._current().login(str(user.pk), headers={}))
    client.cookies[name] = result.token


def test_cookie_get_needs_no_csrf_token(session_cookie: str) -> None:
    client = APIClient(enforce_csrf_checks=True)
    _cookie_login(client, session_cookie)
    response = client.get("/api/me/")
    assert response.status_code == 200
    assert response.json()["via"] == "cookie"


def test_cookie_post_without_csrf_token_is_403(session_cookie: str) -> None:
    client = APIClient(enforce_csrf_checks=True)
    _cookie_login(client, session_cookie)
    response = client.post("/api/me/", {}, format="json")
    assert response.status_code == 403
    assert "CSRF Failed" in response.json()["detail"]


def test_cookie_post_with_django_csrf_token_passes(session_cookie: str) -> None:
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    client = APIClient(enforce_csrf_checks=True)
    _cookie_login(client, session_cookie)
    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    response = client.post(
        "/api/me/", {}, format="json", HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret)
    )
    assert response.status_code == 200
    assert response.json()["via"] == "cookie"


def test_a_cookie_is_never_read_by_the_bearer_class(session_cookie: str) -> None:
    # The bearer class sees no cookie, so a cookie never passes without its CSRF check.
    class BearerOnly(drf_site.Bearer):
        pass

    from rest_framework.test import APIRequestFactory

    user = get_user_model().objects.get(username="alice")
    token = run_sync(drf_site._current().login(str(user.pk), headers={})).token
    factory = APIRequestFactory()
    raw = factory.post("/api/me/", HTTP_COOKIE=f"{session_cookie}={token}")
    from rest_framework.request import Request

    assert BearerOnly().authenticate(Request(raw)) is None


def test_a_forged_cookie_is_401(session_cookie: str) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.cookies[session_cookie] = "forged-" + "x" * 40
    response = client.get("/api/me/")
    assert response.status_code == 401


# -- refresh, reuse, revoke --------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: APIClient, hybrid: Authenticator
) -> None:
    first = _login(client)
    second = client.post("/api/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh"] != first["refresh"]
    assert second["Cache-Control"] == "no-store"
    # The successor is used: now the retired token coming back is a theft.
    third = client.post("/api/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert third.status_code == 200
    reused = client.post("/api/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    # The whole family is gone: the newest refresh token and its access token too.
    newest = third.json()
    gone = client.post("/api/token/refresh/", {"refresh": newest["refresh"]}, format="json")
    assert gone.status_code == 401
    me = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {newest['access']}")
    assert me.status_code == 401


@pytest.mark.parametrize("name", ["jwt", "session"])
def test_refresh_in_a_mode_without_refresh_tokens_is_404(
    client: APIClient, request: pytest.FixtureRequest, tmp_path: Any, name: str
) -> None:
    drf_site.SITE.authenticator = _build(name, "sqlite", request, tmp_path)
    response = client.post("/api/token/refresh/", {"refresh": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "no_refresh"


def test_revoke_ends_the_session_and_its_access_tokens(
    client: APIClient, hybrid: Authenticator
) -> None:
    pair = _login(client)
    out = client.post("/api/token/revoke/", {"refresh": pair["refresh"]}, format="json")
    assert out.status_code == 204
    assert client.get(
        "/api/me/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}"
    ).status_code == 401
    again = client.post("/api/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 401


def test_revoke_with_the_access_token_alone(client: APIClient, mode: str) -> None:
    pair = _login(client)
    bearer = f"Bearer {pair['access']}"
    assert client.post("/api/token/revoke/", {}, HTTP_AUTHORIZATION=bearer).status_code == 204
    after = client.get("/api/me/", HTTP_AUTHORIZATION=bearer).status_code
    # A plain JWT cannot be taken back before exp (the reason hybrid mode exists).
    assert after == (200 if mode == "jwt" else 401)


# -- hostile bodies ----------------------------------------------------------------------

HOSTILE: list[tuple[str, bytes]] = [
    ("application/json", b'{"username": "alice", "password": "\\ud800"}'),
    ("application/json", b'{"username": "\\u0000", "password": "x"}'),
    ("application/json", b'{"username": "alice", "username": "bob", "password": "x"}'),
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b'{"username": "alice", "password": 1e999}'),
    ("application/json", b'{"username": ["a"], "password": {"x": 1}}'),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b"not json"),
    ("application/json", b"[]"),
    ("application/json", b'"just a string"'),
    ("application/json", b'{"username": "alice", "password": "' + b"x" * 20_000 + b'"}'),
    ("application/json", b'{"username": "alice", "password": "x", "remember": "maybe"}'),
    ("application/x-www-form-urlencoded", b"username=%00&password=%ff%fe"),
    ("application/x-www-form-urlencoded", b"username=alice&password=" + b"%C0" * 300),
    ("text/plain", b"username=alice"),
    ("multipart/form-data; boundary=x", b"--x\r\nbroken"),
]


@pytest.mark.parametrize(("content_type", "body"), HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("url", ["/api/token/", "/api/token/refresh/", "/api/token/revoke/"])
def test_hostile_bodies_are_4xx(
    client: APIClient, hybrid: Authenticator, url: str, content_type: str, body: bytes
) -> None:
    response = client.generic("POST", url, body, content_type=content_type)
    status = response.status_code
    # Revoking takes an optional field, so a body without it is a 204.
    least = 204 if url.endswith("revoke/") else 400
    assert least <= status < 500, (status, response.content[:200])
    assert status != 200


@pytest.mark.parametrize(
    "refresh",
    ["", "~", "a~b", "x" * 300, "\u00e9~" + "a" * 43, "s" * 43 + "~" + "a" * 43, "\x00"],
)
def test_hostile_refresh_tokens_are_4xx(
    client: APIClient, hybrid: Authenticator, refresh: str
) -> None:
    response = client.post("/api/token/refresh/", {"refresh": refresh}, format="json")
    assert response.status_code in (400, 401)
    assert "code" in response.json() or "refresh" in response.json()


def test_a_burst_of_200_concurrent_hostile_requests(hybrid: Authenticator) -> None:
    """200 threads at once, each through the full Django + DRF stack: never a 5xx."""
    pair = _login(APIClient())
    requests: list[tuple[str, str, bytes, str, dict[str, str]]] = []
    for i in range(200):
        content_type, body = HOSTILE[i % len(HOSTILE)]
        kind = i % 5
        if kind == 0:
            requests.append(("POST", "/api/token/", body, content_type, {}))
        elif kind == 1:
            requests.append(("POST", "/api/token/refresh/", body, content_type, {}))
        elif kind == 2:
            bad = "Bearer " + pair["access"][:-3] + "abc"
            requests.append(("GET", "/api/me/", b"", "", {"HTTP_AUTHORIZATION": bad}))
        elif kind == 3:
            # The same retired-then-reused refresh token, all at once: no 5xx either.
            refresh = f'{{"refresh": "{pair["refresh"]}"}}'.encode()
            requests.append(("POST", "/api/token/refresh/", refresh, "application/json", {}))
        else:
            cookie = {"HTTP_COOKIE": "session=\x00\xff; " * 50}
            requests.append(("POST", "/api/me/", body, content_type, cookie))
    statuses: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(requests))

    def send(method: str, url: str, body: bytes, content_type: str, extra: dict[str, str]) -> None:
        from django.db import connection

        try:
            client = APIClient()
            start.wait()
            response = client.generic(method, url, body, content_type=content_type, **extra)
            statuses.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=r) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert len(statuses) == 200
    assert all(s < 500 for s in statuses), sorted(set(statuses))
    assert 401 in statuses
    assert 400 in statuses


# -- settings.COATCHECK ------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_the_classes_use_settings_coatcheck(alg: str) -> None:
    from django.test import override_settings

    key = Key.generate(alg).to_jwk(private=True)
    config = {"STORE": "memory://", "MODE": "hybrid", "SIGNING_KEY": key}
    with override_settings(COATCHECK=config):
        client = APIClient()
        login = client.post(
            "/configured/token/", {"username": "alice", "password": PASSWORD}, format="json"
        )
        assert login.status_code == 200, login.content
        pair = login.json()
        bearer = f"Bearer {pair['access']}"
        me = client.get("/configured/me/", HTTP_AUTHORIZATION=bearer)
        assert me.json() == {"username": "alice", "mode": "hybrid", "via": "bearer"}
        fresh = client.post("/configured/token/refresh/", {"refresh": pair["refresh"]})
        assert fresh.status_code == 200
        revoked = client.post("/configured/token/revoke/", {"refresh": fresh.json()["refresh"]})
        assert revoked.status_code == 204
        again = client.get("/configured/me/", HTTP_AUTHORIZATION=f"Bearer {fresh.json()['access']}")
        assert again.status_code == 401


MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "coatcheck.adapters.django.middleware.AuthenticationMiddleware",
]


def test_with_the_middleware_a_django_login_is_the_drf_cookie_login() -> None:
    """Session mode: Django's own login (the session engine's cookie) authenticates the
    DRF cookie class, from the middleware's one store read, CSRF enforced."""
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
    from django.test import override_settings

    config = {"STORE": "memory://", "MODE": "session", "COOKIE_SECURE": False}
    with override_settings(MIDDLEWARE=MIDDLEWARE, COATCHECK=config):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(get_user_model().objects.get(username="alice"))
        me = client.get("/configured/me/")
        assert me.status_code == 200, me.content
        assert me.json() == {"username": "alice", "mode": "session", "via": "cookie"}
        assert client.post("/configured/me/", {}, format="json").status_code == 403
        secret = _get_new_csrf_string()
        client.cookies["csrftoken"] = secret
        passed = client.post(
            "/configured/me/", {}, format="json", HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret)
        )
        assert passed.status_code == 200
        # A bearer request needs no CSRF token, through the same middleware.
        token = client.cookies["sessionid"].value
        bearer = APIClient(enforce_csrf_checks=True).post(
            "/configured/me/", {}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert bearer.status_code == 200
        assert bearer.json()["via"] == "bearer"
