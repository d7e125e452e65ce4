"""The demo's layout in Chromium, from a 360 px phone to a desktop: nothing overflows its
box (no element wider than its parent, no SVG text past its picture, no sideways
scrolling), on every page a visitor reaches, in every mode. Screenshots of each go to
test-artifacts/browser; with COATCHECK_UPDATE_SCREENSHOTS=1 the home pages also go to
docs/screenshots (the README and the docs site show them).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from .conftest import ARTIFACTS, PASSWORD, SCREENSHOTS, Demo

pytestmark = pytest.mark.slow

WIDTHS = {"phone": (360, 740), "desktop": (1280, 900)}

# Every element against its parent's box, the page against the viewport, and every SVG
# text against its SVG's viewBox. Returns what overflows, described.
_OVERFLOWS = """
() => {
  const bad = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '');
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    bad.push('page scrolls sideways: ' + root.scrollWidth + ' > ' + root.clientWidth);
  }
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const parent = el.parentElement;
    if (parent && parent !== document.body) {
      const outer = parent.getBoundingClientRect();
      if (box.right > outer.right + 1 || box.left < outer.left - 1) {
        bad.push(name(el) + ' sticks out of ' + name(parent) + ': ' +
                 Math.round(box.left) + '..' + Math.round(box.right) + ' vs ' +
                 Math.round(outer.left) + '..' + Math.round(outer.right));
      }
    }
    if (style.overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 &&
        el.clientWidth > 0 && style.display !== 'inline') {
      bad.push(name(el) + ' content wider than its box: ' + el.scrollWidth + ' > ' +
               el.clientWidth);
    }
  }
  for (const svg of document.querySelectorAll('svg[viewBox]')) {
    const width = svg.viewBox.baseVal.width;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      if (b.x < -0.5 || b.x + b.width > width + 0.5) {
        bad.push('svg text "' + t.textContent.slice(0, 40) + '" past its picture: ' +
                 Math.round(b.x) + '..' + Math.round(b.x + b.width) + ' of ' + width);
      }
    }
  }
  return bad;
}
"""


def _check(page: Any, label: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"layout-{label}.png"), full_page=True)
    overflowing = page.evaluate(_OVERFLOWS)
    assert overflowing == [], f"{label}: {overflowing}"


def _log_in(page: Any, demo: Demo) -> None:
    page.goto(demo.url + "/")
    form = page.locator('form[action="/login"]')
    form.locator("input[name=username]").fill("alice")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button").click()
    page.wait_for_load_state()
    assert page.locator("h1").first.inner_text() == "Hello, Alice Example"


# A token whose 342-character RS256 signature has no break point: the inspector report
# overflowed its box with it at 360 px before issue 17.
_LONG_JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0Ijox"
    "NzAwMDAwMDAwfQ." + "A" * 342
)


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_nothing_overflows(browser: Any, demo: Demo, width: str) -> None:
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h})
    page = context.new_page()
    page.goto(demo.url + "/")
    _check(page, f"{demo.mode}-{width}-guest")
    # A guest with a cart: the data cookie and the guest record in the picture.
    page.click('form[action="/cart/add"]:has(input[value=hat]) button')
    page.wait_for_load_state()
    _check(page, f"{demo.mode}-{width}-guest-cart")
    _log_in(page, demo)
    diagram = page.locator("#diagram")
    assert diagram.locator("svg.browser").count() == 1
    assert diagram.locator("svg.server").count() == 1
    _check(page, f"{demo.mode}-{width}-home")
    if os.environ.get("COATCHECK_UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # The first screen, as a visitor sees it: the greeting and the picture.
        page.screenshot(path=str(SCREENSHOTS / f"{demo.mode}-{width}.png"))
    for path in ("/sessions", "/password", "/theft", "/inspect"):
        page.goto(demo.url + path)
        _check(page, f"{demo.mode}-{width}{path.replace('/', '-')}")
    page.goto(demo.url + "/inspect")
    page.fill("textarea[name=value]", _LONG_JWT)
    page.click('form[action="/inspect"] button')
    page.wait_for_load_state()
    assert "signature" in page.content()
    _check(page, f"{demo.mode}-{width}-inspect-report")
    context.close()


def test_the_picture_follows_the_request(browser: Any, demo: Demo) -> None:
    """The diagram is this request's: cookie names, flags and expiry, the stored record."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(demo.url + "/")
    assert "No cookie from this site yet" in page.locator("svg.browser").inner_html()
    _log_in(page, demo)
    held = page.locator("svg.browser").inner_html()
    kept = page.locator("svg.server").inner_html()
    cookie = {"session": "coatcheck_session", "jwt": "coatcheck_token",
              "hybrid": "coatcheck_access"}[demo.mode]  # fmt: skip
    assert cookie in held
    assert "HttpOnly" in held
    assert "not Secure (plain HTTP)" in held
    assert "SameSite=Lax" in held
    assert "expires in " in held  # remember me is ticked by default
    if demo.mode == "jwt":
        assert "no session record" in kept
        token = page.locator(".token code.jwt")
        assert token.locator(".jwt-h").count() == 1
        assert token.locator(".jwt-s").inner_text().endswith("\N{HORIZONTAL ELLIPSIS}")
        # Times in words beside the numbers.
        assert "expires in " in page.locator(".decoded").inner_text()
    else:
        assert "session " in kept
        assert "idle expiry" in kept
    if demo.mode == "hybrid":
        assert "coatcheck_refresh" in held
        assert "Path=/auth/refresh" in held
        assert page.locator("svg.timeline").count() == 1
    # The screenshots show the store as a reader would name it, not a test's temp folder.
    if demo.mode != "jwt":  # jwt mode names no store: it keeps nothing per user
        assert "Store: sqlite:///demo.db" in page.content()
    assert str(ARTIFACTS.parent.parent) not in page.content()
    # The page holds no working copy of the HttpOnly credential.
    value = {c["name"]: c["value"] for c in context.cookies()}[cookie]
    assert value not in page.content()
    with httpx.Client(base_url=demo.url) as client:
        assert client.get("/healthz").json()["status"] == "ok"
    context.close()
