"""Reports as readable (optionally coloured) text or as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import IO, Any

from .report import Report

__all__ = ["render_json", "render_text", "use_colour"]

_STYLES = {
    "title": "1",
    "label": "36",
    "error": "31",
    "warning": "33",
    "info": "2",
    "verified": "32",
    "failed": "31;1",
    "not_checked": "33",
}
_MAX_SHOWN = 2000


def use_colour(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def render_json(report: Report) -> str:
    """The report as indented JSON (stable keys; see :meth:`Report.to_dict`)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)


def _safe(text: str) -> str:
    # Control characters from a hostile value must not drive the terminal.
    cleaned = "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in text)
    if len(cleaned) <= _MAX_SHOWN:
        return cleaned
    return cleaned[:_MAX_SHOWN] + f"... ({len(cleaned)} chars)"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _pretty(value: Any) -> str:
    # One line per top-level member keeps long claim sets readable without a wall of lines.
    if isinstance(value, dict) and len(_compact(value)) > 60:
        return "\n".join(f"{_compact(k)}: {_compact(v)}" for k, v in value.items())
    if isinstance(value, (dict, list)):
        return _compact(value)
    return str(value)


def render_text(report: Report, *, colour: bool = False) -> str:
    """The report as text for people, with ANSI colours when ``colour``."""

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if colour else text

    lines: list[str] = []
    _render(report, lines, paint, indent="")
    return "\n".join(lines) + "\n"


def _render(report: Report, lines: list[str], paint: Any, indent: str) -> None:
    def add(text: str) -> None:
        for line in text.splitlines() or [""]:
            lines.append(indent + line)

    def field(label: str, value: str) -> None:
        body = _safe(value).splitlines() or [""]
        if len(body) == 1:
            add(f"{paint(label + ':', 'label')} {body[0]}")
            return
        add(paint(label + ":", "label"))
        for line in body:
            add("  " + line)

    heading = report.title if report.name is None else f"{_safe(report.name)}: {report.title}"
    add(paint(heading, "title"))
    if report.length:
        field("length", f"{report.length} characters")
    if report.header is not None:
        field("header", _pretty(report.header))
    if report.kid is not None:
        field("kid", report.kid)
    if report.payload is not None:
        field("payload", _pretty(report.payload))
    for key, value in report.fields.items():
        field(key.replace("_", " "), _pretty(value))
    if report.signature:
        field("signature", report.signature)
    for info in report.times:
        field(info.name, f"{info.iso} ({info.relative})")
    if report.verification is not None:
        v = report.verification
        field("verification", paint(v.status.replace("_", " "), v.status) + f": {v.detail}")
    for finding in report.findings:
        add(f"{paint(finding.severity, finding.severity)} [{finding.code}] {finding.message}")
    for child in report.children:
        lines.append("")
        _render(child, lines, paint, indent + "  ")
