"""The offline inspector: say what a token or cookie is, show its parts, verify with a key.

It never sends anything anywhere; ``coatcheck inspect`` is its command line.
"""

from __future__ import annotations

from .detect import MAX_INPUT, inspect_single, inspect_value
from .material import KeyMaterial, LabelledKey
from .render import render_json, render_text, use_colour
from .report import Finding, Report, TimeInfo, Verification
from .setcookie import SetCookie, lint_set_cookie, parse_set_cookie

__all__ = [
    "MAX_INPUT",
    "Finding",
    "KeyMaterial",
    "LabelledKey",
    "Report",
    "SetCookie",
    "TimeInfo",
    "Verification",
    "inspect_single",
    "inspect_value",
    "lint_set_cookie",
    "parse_set_cookie",
    "render_json",
    "render_text",
    "use_colour",
]
