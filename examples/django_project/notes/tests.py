"""The example project through Django's test client: ``python manage.py test``.

The browser side (greeting, login, logout, CSRF, the admin) and the native client's
API (obtain, call, refresh with rotation, reuse detected, log out) against the real
middleware, session engine and DRF classes, on the store ``COATCHECK_STORE`` names.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, TestCase, override_settings

from coatcheck.clock import FrozenClock

from .models import Note

PASSWORD = "correct horse battery"
# Tests only: Django's real hasher costs ~0.3 s a password on a small CI machine.
FAST_HASHER = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])


def _greeting(response: Any) -> str:
    html = response.content.decode()
    start = html.index('<h1 id="greeting">') + len('<h1 id="greeting">')
    return str(html[start : html.index("</h1>", start)]).removeprefix("Hello, ")


@FAST_HASHER
class BrowserTests(TestCase):  # type: ignore[misc]
    """What a browser does: cookies, forms, CSRF tokens."""

    def setUp(self) -> None:
        User.objects.create_user("alice", password=PASSWORD, is_staff=True, is_superuser=True)
        self.client = Client(enforce_csrf_checks=True)

    def csrf(self, path: str = "/") -> str:
        self.client.get(path)
        return str(self.client.cookies["csrftoken"].value)

    def test_a_guest_is_greeted_as_guest(self) -> None:
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(_greeting(response), "guest")
        self.assertContains(response, 'id="login-link"')

    def test_a_name_given_is_kept_in_the_session(self) -> None:
        token = self.csrf()
        response = self.client.post(
            "/name", {"name": "  Ada   Lovelace ", "csrfmiddlewaretoken": token}
        )
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        self.assertEqual(_greeting(self.client.get("/")), "Ada Lovelace")
        # request.session is coatcheck's engine: the cookie holds an id, the name is server-side.
        cookie = self.client.cookies[settings.SESSION_COOKIE_NAME]
        self.assertNotIn("Ada", cookie.value)
        self.assertEqual(self.client.session["name"], "Ada Lovelace")
        self.assertEqual(_greeting(Client().get("/")), "guest")  # another browser

    def test_the_name_form_needs_the_csrf_token(self) -> None:
        self.csrf()
        refused = self.client.post("/name", {"name": "Mallory"})
        self.assertEqual(refused.status_code, 403)
        forged = self.client.post("/name", {"name": "Mallory", "csrfmiddlewaretoken": "x" * 32})
        self.assertEqual(forged.status_code, 403)
        self.assertEqual(_greeting(self.client.get("/")), "guest")

    def test_login_and_logout(self) -> None:
        token = self.csrf()
        self.client.post("/name", {"name": "Ada", "csrfmiddlewaretoken": token})
        page = self.client.get("/login/")
        self.assertContains(page, 'id="login-form"')
        wrong = self.client.post(
            "/login/", {"username": "alice", "password": "nope", "csrfmiddlewaretoken": token}
        )
        self.assertContains(wrong, 'id="login-error"')
        done = self.client.post(
            "/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
        )
        self.assertRedirects(done, "/", fetch_redirect_response=False)
        # Hybrid mode: a short access cookie and a rotating refresh cookie, HttpOnly.
        for name in ("__Host-coatcheck_access", "__Secure-coatcheck_refresh"):
            self.assertTrue(self.client.cookies[name]["httponly"], name)
        home = self.client.get("/")
        self.assertContains(home, "Signed in as alice")
        self.assertEqual(_greeting(home), "Ada")  # login() keeps the session's data
        self.assertEqual(self.client.get("/admin/").status_code, 200)
        token = self.client.cookies["csrftoken"].value  # login() rotates it
        # Logging out changes state: without the token it is refused, and nothing ends.
        self.assertEqual(self.client.post("/logout/").status_code, 403)
        self.assertContains(self.client.get("/"), "Signed in as alice")
        out = self.client.post("/logout/", {"csrfmiddlewaretoken": token})
        self.assertRedirects(out, "/", fetch_redirect_response=False)
        home = self.client.get("/")
        self.assertEqual(_greeting(home), "guest")
        self.assertNotContains(home, "Signed in")
        self.assertEqual(self.client.get("/admin/").status_code, 302)

    def test_an_expired_access_cookie_is_refreshed_on_the_way(self) -> None:
        clock = FrozenClock(time.time())
        with override_settings(COATCHECK={**settings.COATCHECK, "CLOCK": clock}):
            token = self.csrf()
            self.client.post(
                "/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
            )
            refresh = self.client.cookies["__Secure-coatcheck_refresh"].value
            clock.advance(settings.COATCHECK["ACCESS_TTL"] + 120)
            # The middleware sends the browser to the refresh path (the method kept) ...
            away = self.client.get("/?page=2")
            self.assertEqual(away.status_code, 307)
            self.assertTrue(away["Location"].startswith("/auth/refresh"))
            # ... which rotates the refresh cookie and sends it back where it was going.
            back = self.client.get(away["Location"])
            self.assertEqual((back.status_code, back["Location"]), (307, "/?page=2"))
            self.assertNotEqual(self.client.cookies["__Secure-coatcheck_refresh"].value, refresh)
            self.assertContains(self.client.get("/?page=2"), "Signed in as alice")

    def test_the_admin_sends_a_guest_to_its_login(self) -> None:
        response = self.client.get("/admin/")
        self.assertEqual(response.status_code, 302)
        self.assertIn("/admin/login/", response["Location"])

    def test_the_api_with_the_browser_cookie_checks_csrf(self) -> None:
        token = self.csrf()
        self.client.post(
            "/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
        )
        me = self.client.get("/api/me")
        self.assertEqual(me.json(), {"username": "alice", "mode": "hybrid", "via": "cookie"})
        refused = self.client.post(
            "/api/notes", {"text": "forged"}, content_type="application/json"
        )
        self.assertEqual(refused.status_code, 403)
        created = self.client.post(
            "/api/notes",
            {"text": "from the page"},
            content_type="application/json",
            headers={"X-CSRFToken": self.client.cookies["csrftoken"].value},
        )
        self.assertEqual(created.status_code, 201)
        self.assertEqual(Note.objects.get().text, "from the page")


@FAST_HASHER
class NativeClientTests(TestCase):  # type: ignore[misc]
    """What a native app does: no cookies, bearer tokens and a refresh token."""

    def setUp(self) -> None:
        self.alice = User.objects.create_user("alice", password=PASSWORD)
        User.objects.create_user("bob", password=PASSWORD)
        self.client = Client(enforce_csrf_checks=True)

    def obtain(self, username: str = "alice") -> dict[str, Any]:
        response = self.client.post(
            "/api/token/",
            {"username": username, "password": PASSWORD},
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response["Cache-Control"], "no-store")
        self.assertEqual(response.cookies, {})  # nothing for a cookie jar
        return dict(response.json())

    def call(self, method: str, path: str, access: str, **kwargs: Any) -> Any:
        return self.client.generic(
            method, path, headers={"Authorization": f"Bearer {access}"}, **kwargs
        )

    def refresh(self, refresh: str) -> Any:
        return self.client.post(
            "/api/token/refresh/", {"refresh": refresh}, content_type="application/json"
        )

    def test_a_guest_gets_401(self) -> None:
        response = self.client.get("/api/me")
        self.assertEqual(response.status_code, 401)
        self.assertIn("Bearer", response["WWW-Authenticate"])

    def test_a_wrong_password_is_refused(self) -> None:
        response = self.client.post(
            "/api/token/",
            {"username": "alice", "password": "nope"},
            content_type="application/json",
        )
        self.assertEqual(
            (response.status_code, response.json()["code"]), (401, "invalid_credentials")
        )

    def test_bearer_calls_need_no_csrf_token_and_see_only_their_notes(self) -> None:
        pair = self.obtain()
        self.assertEqual(pair["token_type"].lower(), "bearer")
        me = self.call("GET", "/api/me", pair["access"])
        self.assertEqual(me.json(), {"username": "alice", "mode": "hybrid", "via": "bearer"})
        created = self.call(
            "POST",
            "/api/notes",
            pair["access"],
            data='{"text": "milk"}',
            content_type="application/json",
        )
        self.assertEqual(created.status_code, 201, created.content)
        bob = self.obtain("bob")
        self.assertEqual(self.call("GET", "/api/notes", bob["access"]).json(), [])
        notes = self.call("GET", "/api/notes", pair["access"]).json()
        self.assertEqual([note["text"] for note in notes], ["milk"])

    def test_refresh_rotates_and_a_replayed_token_ends_the_session(self) -> None:
        first = self.obtain()
        second = self.refresh(first["refresh"]).json()
        self.assertNotEqual(second["refresh"], first["refresh"])
        third = self.refresh(second["refresh"])  # the successor used: first is retired for good
        self.assertEqual(third.status_code, 200)
        replay = self.refresh(first["refresh"])
        self.assertEqual((replay.status_code, replay.json()["code"]), (401, "refresh_token_reused"))
        # The whole family is revoked: the newest pair too, access token included.
        self.assertEqual(self.refresh(third.json()["refresh"]).status_code, 401)
        self.assertEqual(self.call("GET", "/api/me", third.json()["access"]).status_code, 401)
        # Another login of the same user is untouched.
        other = self.obtain()
        self.assertEqual(self.call("GET", "/api/me", other["access"]).status_code, 200)

    def test_an_expired_access_token_is_refreshed(self) -> None:
        clock = FrozenClock(time.time())
        with override_settings(COATCHECK={**settings.COATCHECK, "CLOCK": clock}):
            pair = self.obtain()
            self.assertEqual(self.call("GET", "/api/me", pair["access"]).status_code, 200)
            clock.advance(settings.COATCHECK["ACCESS_TTL"] + 120)
            expired = self.call("GET", "/api/me", pair["access"])
            # coatcheck does not tell an expired token from a revoked one: the client refreshes.
            self.assertEqual(
                (expired.status_code, expired.json()["code"]), (401, "invalid_credentials")
            )
            fresh = self.refresh(pair["refresh"]).json()
            self.assertEqual(self.call("GET", "/api/me", fresh["access"]).status_code, 200)

    def test_logout_revokes_both_tokens(self) -> None:
        pair = self.obtain()
        body = json.dumps({"refresh": pair["refresh"]})
        out = self.call(
            "POST", "/api/token/revoke/", pair["access"], data=body, content_type="application/json"
        )
        self.assertEqual(out.status_code, 204)
        self.assertEqual(self.call("GET", "/api/me", pair["access"]).status_code, 401)
        self.assertEqual(self.refresh(pair["refresh"]).status_code, 401)

    def test_the_middleware_takes_the_bearer_token_on_django_views_too(self) -> None:
        # TRANSPORTS lists "bearer": request.user is the token's user on any view.
        pair = self.obtain()
        self.assertContains(self.call("GET", "/", pair["access"]), "Signed in as alice")
        self.assertNotContains(self.client.get("/"), "Signed in")
        self.assertNotContains(self.call("GET", "/", "not-a-token"), "Signed in")
