from __future__ import annotations

import re
from datetime import timedelta

import pytest

from coatcheck.demo import pages


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (timedelta(days=7), "7 days"),
        (timedelta(days=30), "30 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=12), "12 hours"),
        (timedelta(minutes=5), "5 minutes"),
        (timedelta(seconds=90), "90 seconds"),
        (timedelta(seconds=1), "1 second"),
        (300, "5 minutes"),
        (12.0, "12 seconds"),
    ],
)
def test_duration_in_words(span: timedelta | float, words: str) -> None:
    assert pages.duration(span) == words


def test_nav_links_and_inline_icon() -> None:
    session = pages.page("t", "", mode="session")
    for href in ("/password", "/inspect", "/sessions"):
        assert f'href="{href}"' in session
    assert "jwks.json" not in session
    assert "rel=icon" in session
    for mode in ("jwt", "hybrid"):
        assert 'href="/.well-known/jwks.json"' in pages.page("t", "", mode=mode)


def test_register_form_keeps_username_and_name_and_states_the_rules() -> None:
    explainer = pages.Explainer(browser=[], server=[])
    html = pages.home_page(
        mode="session", name=None, explainer=explainer, register=('bob"<', "Bob B")
    )
    register = html[html.index('action="/register"') :]
    assert 'value="bob&quot;&lt;"' in register
    assert 'value="Bob B"' in register
    assert "maxlength=32" in register
    assert "maxlength=100" in register
    pattern = re.search(r'pattern="([^"]+)"', register)
    assert pattern is not None
    rule = re.compile(pattern.group(1))
    assert rule.fullmatch("Alice.b-1")
    assert not rule.fullmatch("-x")
    assert not rule.fullmatch("a")


def test_not_found_page_escapes_the_path() -> None:
    html = pages.not_found_page(mode="jwt", path="/<x>")
    assert "404" in html
    assert "/&lt;x&gt;" in html
    assert "<x>" not in html


def test_hybrid_panel_counts_down_to_exp_and_states_the_leeway() -> None:
    html = pages.hybrid_panel(
        expires_at=1000.0, now=990.0, leeway=10.0, ttl=12, refresh_path="/auth/refresh",
        access_cookie="coatcheck_access",
    )  # fmt: skip
    assert 'data-exp="1000.0"' in html
    assert 'data-leeway="10.0"' in html
    assert 'data-now="990.0"' in html
    assert "lifetime 12 seconds" in html
    assert "10 seconds of clock-skew leeway" in html
    # The script retries after exp + leeway instead of firing once before it.
    assert "exp + leeway" in html
    assert "attempt" in html
    assert "toISOString" in html  # UTC, like the server-rendered times
