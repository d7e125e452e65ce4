"""Text and JSON rendering, colour rules."""

from __future__ import annotations

import io
import json

from coatcheck.inspect import inspect_value, render_json, render_text, use_colour


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_tty_without_no_color() -> None:
    assert use_colour(_Tty(), {}) is True
    assert use_colour(_Tty(), {"NO_COLOR": "1"}) is False
    assert use_colour(io.StringIO(), {}) is False


def test_text_and_json() -> None:
    report = inspect_value("Cookie: a=1; sid=0123456789abcdef0123456789abcdef")
    plain = render_text(report)
    assert "\x1b[" not in plain
    assert "Cookie header (2 cookies)" in plain
    assert "\x1b[" in render_text(report, colour=True)
    data = json.loads(render_json(report))
    assert data["kind"] == "cookie-header"
    assert [c["name"] for c in data["children"]] == ["a", "sid"]


def test_control_characters_are_escaped() -> None:
    text = render_text(inspect_value("Cookie: a=\x1b[31mred"))
    assert "\x1b[31m" not in text
