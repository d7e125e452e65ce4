from __future__ import annotations

import base64
import json
import re

from coatcheck.demo import visual


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_relative_times_in_words() -> None:
    assert visual.relative(1000.0, 1000.0) == "now"
    assert visual.relative(1300.0, 1000.0) == "in 5 minutes"
    assert visual.relative(1000.0 - 2 * 86400, 1000.0) == "2 days ago"
    assert visual.relative(1001.0, 1000.0) == "in 1 second"


def test_fit_marks_the_cut() -> None:
    assert visual.fit("abc", 5) == "abc"
    assert visual.fit("abcdef", 4) == "abc\N{HORIZONTAL ELLIPSIS}"


def test_token_view_colours_the_parts_and_cuts_the_signature() -> None:
    token = f"{_b64({'alg': 'ES256', 'typ': 'JWT'})}.{_b64({'sub': 'u1', 'exp': 4600})}.{'s' * 86}"
    html = visual.token_view(token, now=1000.0)
    assert '<span class="jwt-h">' in html
    assert '<span class="jwt-p">' in html
    assert '<span class="jwt-s">ssssssssss\N{HORIZONTAL ELLIPSIS}</span>' in html
    assert "s" * 11 not in html  # never a working copy of the credential
    assert "expires in 1 hour" in html
    full = visual.token_view(token, now=1000.0, cut_signature=False)
    assert "s" * 86 in full
    assert visual.token_view("not.a.jwt", now=0) == ""
    assert visual.token_view("abc", now=0) == ""


def test_token_view_escapes_hostile_claims() -> None:
    token = f"{_b64({'alg': '<b>'})}.{_b64({'<script>': '</code><script>x</script>'})}.sig"
    html = visual.token_view(token, now=0)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_diagram_cuts_values_to_their_box_and_escapes() -> None:
    held = [visual.Held("c<", "x" * 500, ["HttpOnly", "not Secure (plain HTTP)"], None)]
    kept = [visual.Kept("record", [("data", "y" * 500)])]
    html = visual.diagram(held=held, kept=kept, link="a & b", now=0)
    assert "c&lt;" in html
    assert "a &amp; b" in html
    assert "ends when the browser closes" in html
    assert max(len(t) for t in re.findall(r">([^<>]*)</text>", html)) <= 50
    assert 'class="pill warn"' in html  # "not Secure" stands out


def test_hybrid_timeline_places_now_on_the_token_life() -> None:
    svg = visual.hybrid_timeline(issued=1000, expires=1300, leeway=10, now=1150,
                                 session_ends=1000 + 7 * 86400)  # fmt: skip
    assert "lives 5 minutes" in svg
    assert "session ends in 7 days" in svg  # 7 days less 150 s, to the nearest day
    now_x = float(re.search(r'<line class="now" x1="([0-9.]+)"', svg).group(1))
    assert 250 < now_x < 280  # halfway along the 20..520 bar of 310 s


def test_token_view_of_hostile_parts_is_empty_not_an_error() -> None:
    deep = base64.urlsafe_b64encode(b"[" * 100_000).rstrip(b"=").decode()
    assert visual.token_view(f"{deep}.{deep}.x", now=0) == ""
    assert visual.token_view("!!!.@@@.x", now=0) == ""
