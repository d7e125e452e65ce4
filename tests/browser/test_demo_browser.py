"""The demo in a real browser (Debian's chromium under Playwright), in every mode.

What a cookie jar in a test client cannot show: that Chromium keeps the login across
pages and restarts exactly as the cookie's attributes say, hides the HttpOnly cookie
from scripts, stores the flags coatcheck set, refuses a form posted from another
origin, and drops a login that was revoked from another browser.
"""

from __future__ import annotations

import os
import shutil
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, SCREENSHOTS, Demo

pytestmark = pytest.mark.slow

HELLO = "Hello, Alice Example"
GUEST = "Hello, guest"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page: Any, demo: Demo, *, remember: bool, user: str = "alice") -> Any:
    """Log in through the home page's form; return the POST /login response."""
    page.goto(demo.url + "/")
    form = page.locator('form[action="/login"]')
    form.locator("input[name=username]").fill(user)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=remember]").set_checked(remember)
    with page.expect_response(lambda r: r.url.endswith("/login")) as caught:
        form.locator("button").click()
    page.wait_for_load_state()
    return caught.value


def _heading(page: Any) -> str:
    return str(page.locator("h1").first.inner_text())


def _set_cookies(response: Any) -> dict[str, dict[str, str]]:
    """The login response's Set-Cookie headers as {name: {attribute (lower): value}}."""
    found: dict[str, dict[str, str]] = {}
    for header in response.headers_array():
        if header["name"].lower() != "set-cookie":
            continue
        for line in header["value"].split("\n"):  # Playwright may fold several into one
            first, *attributes = [part.strip() for part in line.split(";")]
            name, _, value = first.partition("=")
            attrs = {"value": value}
            for attribute in attributes:
                key, _, val = attribute.partition("=")
                attrs[key.lower()] = val
            found[name] = attrs
    return found


def _auth_cookies(response: Any) -> dict[str, dict[str, str]]:
    # The credential cookies (the CSRF middleware's own cookies are not the login).
    return {k: v for k, v in _set_cookies(response).items() if "csrf" not in k and v["value"]}


def test_a_new_page_is_still_logged_in(browser: Any, demo: Demo) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo.url + "/")
    assert _heading(page) == GUEST
    _shot(page, f"{demo.mode}-guest")
    _login(page, demo, remember=True)
    assert _heading(page) == HELLO
    _shot(page, f"{demo.mode}-home")
    if os.environ.get("COATCHECK_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1000, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{demo.mode}-home.png"), full_page=True)
    page.close()
    again = context.new_page()
    again.goto(demo.url + "/")
    assert _heading(again) == HELLO
    again.goto(demo.url + "/sessions")
    _shot(again, f"{demo.mode}-sessions")
    context.close()


@pytest.mark.parametrize("remember", [True, False], ids=["remember-me", "browser-session"])
def test_quitting_the_browser(
    playwright: Any, demo: Demo, tmp_path: Path, remember: bool
) -> None:
    # A fresh profile: "continue where you left off" is off, so Chromium drops
    # browser-session cookies when it quits, as RFC 6265bis §5.6 says it may.
    profile = tmp_path / "profile"

    def launch() -> Any:
        return playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS
        )

    context = launch()
    page = context.pages[0] if context.pages else context.new_page()
    _login(page, demo, remember=remember)
    assert _heading(page) == HELLO
    context.close()  # quits chromium, which writes its cookie store to the profile

    context = launch()
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(demo.url + "/")
        assert _heading(page) == (HELLO if remember else GUEST)
        names = {c["name"] for c in context.cookies()}
        assert any(n.endswith(("_session", "_token", "_access")) for n in names) is remember
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_scripts_cannot_read_the_auth_cookie(browser: Any, demo: Demo) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = _login(page, demo, remember=True)
    readable = page.evaluate("document.cookie")
    auth = _auth_cookies(response)
    assert auth, "the login set no credential cookie"
    for name, attrs in auth.items():
        assert name not in readable
        assert attrs["value"] not in readable
    stored = {c["name"] for c in context.cookies()}
    assert set(auth) <= stored  # the browser has them; scripts just cannot see them
    context.close()


def _check_flags(context: Any, response: Any, *, secure: bool) -> None:
    """Each credential cookie as Chromium stored it carries exactly the attributes sent."""
    stored = {c["name"]: c for c in context.cookies()}
    auth = _auth_cookies(response)
    assert auth
    for name, attrs in auth.items():
        cookie = stored[name]
        assert cookie["value"] == attrs["value"]
        assert cookie["httpOnly"] is ("httponly" in attrs)
        assert cookie["httpOnly"] is True
        assert cookie["secure"] is ("secure" in attrs) is secure
        assert cookie["sameSite"] == attrs["samesite"] == "Lax"
        assert cookie["path"] == attrs["path"]
        assert "domain" not in attrs
        assert cookie["domain"] == "127.0.0.1"
        if "max-age" in attrs:
            expires = parsedate_to_datetime(attrs["expires"]).timestamp()
            assert abs(cookie["expires"] - expires) <= 1
            assert abs(cookie["expires"] - (time.time() + int(attrs["max-age"]))) <= 60
        else:
            assert cookie["expires"] == -1  # a browser-session cookie


@pytest.mark.parametrize("remember", [True, False], ids=["remember-me", "browser-session"])
def test_stored_cookie_flags_are_the_ones_set(browser: Any, demo: Demo, remember: bool) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = _login(page, demo, remember=remember)
    assert _heading(page) == HELLO
    _check_flags(context, response, secure=False)  # plain HTTP on 127.0.0.1: not Secure
    context.close()


def test_over_https_the_cookies_are_secure_and_prefixed(browser: Any, tls_demo: Demo) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    response = _login(page, tls_demo, remember=True)
    assert _heading(page) == HELLO
    _check_flags(context, response, secure=True)
    names = set(_auth_cookies(response))
    # __Host- (Path=/, no Domain) where possible; hybrid's refresh cookie has its own
    # path, so both its cookies get __Secure- (RFC 6265bis §4.1.3).
    assert all(n.startswith(("__Host-", "__Secure-")) for n in names)
    _shot(page, f"{tls_demo.mode}-https-home")
    context.close()


def test_a_form_from_another_origin_is_refused(browser: Any, demo: Demo, attacker: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    _login(page, demo, remember=True)
    page.goto(attacker)
    with page.expect_response(lambda r: r.url.endswith("/logout")) as caught:
        page.locator("#go").click()
    refused = caught.value
    # Another port is another origin but the same site, so SameSite=Lax does send the
    # cookie: the CSRF check (Sec-Fetch-Site: same-site), not SameSite, stops it.
    assert refused.status == 403
    assert "csrf_cross_origin" in refused.text()
    _shot(page, f"{demo.mode}-csrf-refused")
    page.goto(demo.url + "/")
    assert _heading(page) == HELLO
    context.close()


def test_log_out_everywhere_from_a_second_browser(browser: Any, demo: Demo) -> None:
    first, second = browser.new_context(), browser.new_context()
    laptop, phone = first.new_page(), second.new_page()
    _login(laptop, demo, remember=True)
    _login(phone, demo, remember=True)
    assert _heading(laptop) == _heading(phone) == HELLO
    phone.goto(demo.url + "/sessions")
    everywhere = phone.locator('form[action="/sessions/revoke-all"] button')
    if demo.mode == "jwt":
        # Stateless JWTs: no list of logins, nothing to revoke; the page says so.
        assert everywhere.count() == 0
        assert "no 'log out everywhere'" in phone.content()
        laptop.reload()
        assert _heading(laptop) == HELLO
    else:
        everywhere.click()
        phone.wait_for_load_state()
        assert _heading(phone) == GUEST
        laptop.reload()
        assert _heading(laptop) == GUEST
    first.close()
    second.close()


@pytest.mark.parametrize("mode", ["session", "jwt", "hybrid"])
def test_a_guest_is_remembered_by_name_and_keeps_a_cart_through_login(
    playwright: Any, tmp_path: Path, mode: str
) -> None:
    # Its own demo, to restart it on the same SQLite file; its own profile, to quit
    # Chromium in between (persistent cookies are kept, browser-session ones are not).
    folder, profile = tmp_path / "server", tmp_path / "profile"
    folder.mkdir()
    server = Demo(mode, folder)

    def launch() -> Any:
        return playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS
        )

    context = launch()
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(server.url + "/")
        assert _heading(page) == GUEST
        assert "coatcheck_data" not in {c["name"] for c in context.cookies()}
        page.fill('form[action="/name"] input[name=name]', "Zoë")
        page.click('form[action="/name"] button')
        page.wait_for_load_state()
        assert _heading(page) == "Hello, Zoë"
        page.click('form[action="/cart/add"]:has(input[value=hat]) button')
        page.wait_for_load_state()
        assert page.locator("#cart").inner_text() == "hat"
        assert "Added a hat to your cart." in page.content()
        stored = {c["name"]: c for c in context.cookies()}["coatcheck_data"]
        assert stored["httpOnly"] is True
        assert stored["expires"] > time.time() + 3600  # persistent: outlives the browser
        assert "coatcheck_data" not in page.evaluate("document.cookie")
        _shot(page, f"{mode}-guest-session")
        context.close()  # quit Chromium
        server.stop()
        server = Demo(mode, folder, register=False)  # restart on the same SQLite file

        context = launch()
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(server.url + "/")
        assert _heading(page) == "Hello, Zoë"
        assert page.locator("#cart").inner_text() == "hat"
        _login(page, server, remember=True)
        assert _heading(page) == HELLO
        assert page.locator("#cart").inner_text() == "hat"  # it survived the login
        page.click('form[action="/cart/add"]:has(input[value=scarf]) button')
        page.wait_for_load_state()
        assert page.locator("#cart").inner_text() == "hat, scarf"
        _shot(page, f"{mode}-cart-after-login")
        page.click('form[action="/logout"] button')
        page.wait_for_load_state()
        assert _heading(page) == GUEST
        assert page.locator("#cart").inner_text() == "empty"
    finally:
        context.close()
        server.stop()
        shutil.rmtree(profile, ignore_errors=True)
