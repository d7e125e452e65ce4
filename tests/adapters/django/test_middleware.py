"""``request.user`` from coatcheck in Django: every mode, cookie and bearer, with
django.contrib.auth's login(), logout(), signals, login_required, password changes,
the admin and Django's own CSRF middleware; through Django's test client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.test import Client, override_settings

from coatcheck.adapters.django.conf import get_runtime
from coatcheck.adapters.django.devices import devices, log_out_everywhere
from coatcheck.clock import FrozenClock
from coatcheck.tokens import Key

PASSWORD = "correct horse battery staple"
_KEY = Key.generate("ES256").to_jwk(private=True)
MODES = ("session", "jwt", "hybrid")


def coatcheck_settings(mode: str, **more: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"STORE": "memory://", "MODE": mode, "COOKIE_SECURE": False}
    if mode != "session":
        config["SIGNING_KEY"] = _KEY
    config.update(more)
    return config


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    with override_settings(COATCHECK=coatcheck_settings(request.param)):
        yield request.param


@pytest.fixture
def user(db_clean: None) -> User:
    return User.objects.create_user("ada", password=PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def db_clean() -> Iterator[None]:
    User.objects.all().delete()
    yield
    User.objects.all().delete()


def log_in(client: Client, username: str = "ada") -> dict[str, Any]:
    response = client.post("/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def who(client: Client, path: str = "/whoami", **headers: Any) -> Any:
    response = client.get(path, **headers)
    assert response.status_code == 200, response.content
    return response.json()["user"]


def test_login_then_logout_in_every_mode(mode: str, user: User) -> None:
    client = Client()
    assert who(client) is None
    log_in(client)
    assert who(client) == "ada"
    assert who(client, "/awhoami") == "ada"
    copied = {name: morsel.value for name, morsel in client.cookies.items()}
    assert client.post("/logout").json() == {"user": None}
    assert who(client) is None
    # A copy of the cookies taken before the logout: revoked in session and hybrid mode;
    # a plain JWT cannot be revoked before it expires (why hybrid mode exists).
    thief = Client()
    for name, value in copied.items():
        thief.cookies[name] = value
    assert who(thief) == ("ada" if mode == "jwt" else None)


def test_signals_fire(mode: str, user: User) -> None:
    seen: list[str] = []

    def on_in(**kwargs: Any) -> None:
        seen.append("in")

    def on_out(**kwargs: Any) -> None:
        seen.append("out")

    user_logged_in.connect(on_in)
    user_logged_out.connect(on_out)
    try:
        client = Client()
        log_in(client)
        client.post("/logout")
    finally:
        user_logged_in.disconnect(on_in)
        user_logged_out.disconnect(on_out)
    assert seen == ["in", "out"]


def test_login_required(mode: str, user: User) -> None:
    client = Client()
    response = client.get("/private")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    log_in(client)
    assert client.get("/private").content == b"private"


def test_bearer_in_every_mode(mode: str, user: User) -> None:
    client = Client()
    body = log_in(client)
    token = body["token"] if mode != "session" else client.cookies["sessionid"].value
    api = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert api.get("/api/me", **headers).json() == {"user": "ada"}
    assert api.get("/api/ame", **headers).json() == {"user": "ada"}
    refused = api.get("/api/me", HTTP_AUTHORIZATION="Bearer " + token[:-4] + "AAAA")
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_credentials"
    assert refused["WWW-Authenticate"].startswith("Bearer")
    missing = api.get("/api/me")
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_credentials")


def test_bearer_only_transport_ignores_cookies(user: User) -> None:
    with override_settings(COATCHECK=coatcheck_settings("jwt", TRANSPORTS=["bearer"])):
        client = Client()
        body = log_in(client)
        assert "coatcheck_token" not in client.cookies
        assert who(client) is None
        assert who(Client(), HTTP_AUTHORIZATION=f"Bearer {body['token']}") == "ada"


# -- CSRF: Django's own middleware, no hole and no double check --------------------------------


def csrf_token(client: Client) -> str:
    token: str = client.get("/csrf").json()["csrf"]
    return token


def test_csrf_checks_cookie_requests_not_bearer_ones(mode: str, user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    body = log_in(client)
    # Cookie-authenticated unsafe request without a token: Django refuses it.
    assert client.post("/unsafe").status_code == 403
    # With Django's token: accepted, once (no second coatcheck check).
    token = csrf_token(client)
    ok = client.post("/unsafe", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200
    assert ok.json() == {"user": "ada", "done": True}
    # A bearer credential needs no CSRF token...
    bearer = body["token"] if mode != "session" else client.cookies["sessionid"].value
    api = Client(enforce_csrf_checks=True)
    response = api.post("/unsafe", HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert response.status_code == 200
    assert response.json()["user"] == "ada"
    # ...but an invalid one is no exemption,
    forged = api.post("/unsafe", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert forged.status_code == 403
    # and a cookie with a bearer header is a cookie request (the cookie is tried first).
    both = client.post("/unsafe", HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert both.status_code == 403


def test_a_guest_post_is_checked_too(mode: str) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/unsafe").status_code == 403
    assert client.post("/unsafe", HTTP_X_CSRFTOKEN=csrf_token(client)).status_code == 200


# -- sessions of a user: password change, devices, log out everywhere ----------------------


@pytest.mark.parametrize("mode_name", ["session", "hybrid"])
def test_password_change_ends_the_other_sessions(mode_name: str, user: User) -> None:
    with override_settings(COATCHECK=coatcheck_settings(mode_name)):
        here, laptop, phone = Client(), Client(), Client()
        for client in (here, laptop, phone):
            log_in(client)
        assert len(devices(user)) == 3
        response = here.post("/change-password", {"password": "a new long passphrase"})
        assert response.status_code == 200
        assert who(here) == "ada"
        assert who(laptop) is None
        assert who(phone) is None
        assert len(devices(user)) == 1


@pytest.mark.parametrize("mode_name", ["session", "hybrid"])
def test_devices_and_log_out_everywhere(mode_name: str, user: User) -> None:
    with override_settings(COATCHECK=coatcheck_settings(mode_name)):
        clients = [Client(HTTP_USER_AGENT=f"agent {n}") for n in range(3)]
        for client in clients:
            log_in(client)
        listed = devices(user)
        assert [record.user_agent for record in listed] == ["agent 0", "agent 1", "agent 2"]
        ended = log_out_everywhere(user)
        assert sorted(ended) == sorted(record.id for record in listed)
        assert all(who(client) is None for client in clients)
        # Published to the revocation feed (this process's set, here).
        runtime = get_runtime()
        now = runtime.config.clock.now()
        assert all(runtime.revocations.is_revoked(sid, now) for sid in ended)


# -- the test client's own helpers (session mode: the engine is the credential) ---------------


def test_force_login_and_client_session(user: User) -> None:
    client = Client()
    client.force_login(user)
    assert who(client) == "ada"
    session = client.session
    session["n"] = 41
    session.save()
    assert client.get("/counter").json() == {"n": 42}
    assert who(client) == "ada"


def test_session_save_every_request(user: User) -> None:
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        client = Client()
        client.get("/counter")
        key = client.cookies["sessionid"].value
        response = client.get("/whoami")
        assert response.cookies["sessionid"].value == key


def test_clearsessions_command_runs(user: User) -> None:
    from django.core.management import call_command

    client = Client()
    log_in(client)
    call_command("clearsessions")
    assert who(client) == "ada"


# -- the admin --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode_name", MODES)
def test_the_admin_logs_in(mode_name: str, user: User) -> None:
    with override_settings(COATCHECK=coatcheck_settings(mode_name)):
        client = Client(enforce_csrf_checks=True)
        page = client.get("/admin/login/")
        assert page.status_code == 200
        token = client.cookies["csrftoken"].value
        response = client.post(
            "/admin/login/?next=/admin/",
            {"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 302, response.content[:500]
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/auth/user/").status_code == 200


# -- hybrid mode's browser refresh ------------------------------------------------------------


def test_hybrid_refresh_rotates_and_comes_back(user: User) -> None:
    clock = FrozenClock(1_800_000_000.0)
    with override_settings(COATCHECK=coatcheck_settings("hybrid", CLOCK=clock, ACCESS_TTL=60)):
        client = Client()
        log_in(client)
        old_refresh = client.cookies["coatcheck_refresh"].value
        clock.advance(600)  # the access token is long expired
        response = client.get("/whoami?x=1")
        assert response.status_code == 307
        assert response["Location"].startswith("/auth/refresh?next=")
        back = client.get(response["Location"])
        assert back.status_code == 307
        assert back["Location"] == "/whoami?x=1"
        assert client.cookies["coatcheck_refresh"].value != old_refresh
        assert who(client, "/whoami?x=1") == "ada"
        # A second refresh uses the successor; then the first refresh token again is a
        # copy in use (reuse detection), so the whole session is revoked.
        clock.advance(600)
        client.get(client.get("/whoami").headers["Location"])
        assert who(client) == "ada"
        thief = Client()
        thief.cookies["coatcheck_refresh"] = old_refresh
        thief.cookies["coatcheck_access"] = client.cookies["coatcheck_access"].value
        thief.get("/auth/refresh?next=/")
        clock.advance(600)
        assert client.get("/whoami").status_code == 307
        client.get("/auth/refresh?next=/whoami")
        assert who(client) is None


def test_a_store_outage_is_503_never_a_guest(user: User) -> None:
    with override_settings(COATCHECK={"STORE": "redis://127.0.0.1:9/0", "COOKIE_SECURE": False}):
        client = Client()
        client.cookies["sessionid"] = "abcdef12." + "A" * 43
        response = client.get("/whoami")
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"
        assert response["Retry-After"]


@pytest.mark.parametrize("mode_name", ["session", "hybrid"])
def test_a_password_set_outside_any_request_ends_every_session(
    mode_name: str, user: User
) -> None:
    """The password-reset view, the admin's form and ``manage.py changepassword`` call no
    update_session_auth_hash: the saved password change itself ends the sessions (DRF's
    classes, which read no Django session hash, included)."""
    with override_settings(COATCHECK=coatcheck_settings(mode_name)):
        laptop, phone = Client(), Client()
        for client in (laptop, phone):
            log_in(client)
        native = Client()
        body = log_in(native)
        token = body["token"] if mode_name != "session" else native.cookies["sessionid"].value
        assert who(Client(), HTTP_AUTHORIZATION=f"Bearer {token}") == "ada"
        assert len(devices(user)) == 3
        fresh = User.objects.get(pk=user.pk)
        fresh.set_password("a new long passphrase, set by a reset link")
        fresh.save()
        assert who(laptop) is None
        assert who(phone) is None
        assert devices(user) == []
        assert who(Client(), HTTP_AUTHORIZATION=f"Bearer {token}") is None
        # Saving the user without a new password ends nothing.
        fresh.set_password(PASSWORD)
        fresh.save()
        log_in(laptop)
        User.objects.get(pk=user.pk).save()
        assert who(laptop) == "ada"
