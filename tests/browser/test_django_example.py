"""The example Django project (``examples/django_project``) in a real browser: Debian's
chromium under Playwright, the project under ``manage.py runserver`` and uvicorn.

The flow a visitor has: the greeting (a name kept in ``request.session``), a form that
Django's CSRF middleware protects, Django's login page, the admin, the API called from
the page with the cookie (CSRF checked), hybrid mode's silent refresh when the access
cookie has expired, and logging out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..examples._django_project import PASSWORD, SERVERS, prepare, project_env, serve
from .conftest import ARTIFACTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=SERVERS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"django-{request.param}")
    env = project_env(folder)
    prepare(env)
    with serve(request.param, env, folder) as base_url:
        # localhost: Chromium keeps Secure cookies on http://localhost (a secure context).
        yield base_url.replace("127.0.0.1", "localhost")


def _greeting(page: Any) -> str:
    return str(page.locator("#greeting").inner_text())


def _cookies(context: Any) -> dict[str, Any]:
    return {cookie["name"]: cookie for cookie in context.cookies()}


def _fetch(page: Any, method: str, path: str, csrf: bool = False) -> Any:
    return page.evaluate(
        """async ([method, path, csrf]) => {
            const headers = {"Content-Type": "application/json"};
            if (csrf) {
                const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
                headers["X-CSRFToken"] = m ? m[1] : "";
            }
            const init = {method, headers, credentials: "same-origin"};
            if (method !== "GET") init.body = JSON.stringify({text: "from the page"});
            const r = await fetch(path, init);
            return {status: r.status, body: await r.text()};
        }""",
        [method, path, csrf],
    )


def test_greeting_login_api_refresh_logout(
    browser: Any, site: str, request: pytest.FixtureRequest
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(site + "/")
        assert _greeting(page) == "Hello, guest"

        page.fill("#name-form input[name=name]", "Ada")
        page.click("#name-form button")
        assert _greeting(page) == "Hello, Ada"
        session = _cookies(context)["sessionid"]
        assert session["httpOnly"]
        assert session["secure"]
        assert "Ada" not in session["value"]  # the name is server-side
        assert "sessionid" not in page.evaluate("document.cookie")

        # The CSRF-protected form with a forged token: Django answers 403, nothing changes.
        page.evaluate(
            "document.querySelector('#name-form [name=csrfmiddlewaretoken]').value = 'x'.repeat(32)"
        )
        page.fill("#name-form input[name=name]", "Mallory")
        with page.expect_navigation() as forged:
            page.click("#name-form button")
        assert forged.value.status == 403
        page.goto(site + "/")
        assert _greeting(page) == "Hello, Ada"

        page.click("#login-link")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wrong")
        page.click("#login-form button")
        assert page.locator("#login-error").is_visible()
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button")
        page.wait_for_url(site + "/")
        assert page.locator("#signed-in").inner_text() == "Signed in as alice"
        assert _greeting(page) == "Hello, Ada"  # login() keeps the session's data
        cookies = _cookies(context)
        for name in ("__Host-coatcheck_access", "__Secure-coatcheck_refresh"):
            assert cookies[name]["httpOnly"], name
            assert cookies[name]["secure"], name
            assert name not in page.evaluate("document.cookie")

        # The API from the page, on the cookie: reading is fine, writing needs the token.
        me = _fetch(page, "GET", "/api/me")
        assert me["status"] == 200
        assert '"via":"cookie"' in me["body"]
        assert _fetch(page, "POST", "/api/notes")["status"] == 403
        assert _fetch(page, "POST", "/api/notes", csrf=True)["status"] == 201

        page.goto(site + "/admin/")
        assert "Site administration" in page.title()

        # Hybrid mode: an expired access cookie sends the browser to REFRESH_PATH (the
        # middleware's 307), where the refresh cookie (sent only there) buys a new pair
        # and the browser comes back: the refresh token rotates, the login goes on.
        before = _cookies(context)
        assert before["__Secure-coatcheck_refresh"]["path"] == "/auth/refresh"
        back = page.goto(site + "/auth/refresh?next=/")
        assert back is not None
        assert back.url == site + "/"
        assert page.locator("#signed-in").inner_text() == "Signed in as alice"
        after = _cookies(context)
        for name in ("__Secure-coatcheck_refresh", "__Host-coatcheck_access"):
            assert after[name]["value"] != before[name]["value"]

        page.click("#logout-form button")
        page.wait_for_url(site + "/")
        assert _greeting(page) == "Hello, guest"  # logout() ends the session
        assert page.locator("#login-link").is_visible()
        assert _fetch(page, "GET", "/api/me")["status"] in (401, 403)
        page.goto(site + "/admin/")
        assert "/admin/login/" in page.url
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"django-example-{request.node.callspec.id}.png"))
    finally:
        context.close()
