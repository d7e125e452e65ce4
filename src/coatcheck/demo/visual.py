"""Pictures for the demo, server-rendered: what the browser holds and what the server
keeps (SVG), a JWT coloured as jwt.io colours it, the hybrid timeline, times in words.

Every picture is made from a plain description of this request (:class:`Held`,
:class:`Kept`), so it is redrawn on every page load with the real cookie names, flags,
expiry and stored record, and needs no JavaScript. Every text is escaped; long values
are cut to what fits their box (SVG text does not wrap), so nothing overflows.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..inspect.report import time_info

__all__ = [
    "Held",
    "Kept",
    "diagram",
    "fit",
    "hybrid_timeline",
    "relative",
    "token_view",
]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def fit(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters, an ellipsis marking the cut."""
    return text if len(text) <= chars else text[: max(chars - 1, 0)] + "\N{HORIZONTAL ELLIPSIS}"


def relative(timestamp: float, now: float) -> str:
    """``in 5 minutes``, ``3 hours ago``, ``now``: as ``coatcheck inspect`` and
    ``coatcheck token decode`` say it (the nearest whole unit)."""
    info = time_info("", timestamp, now)
    return "never" if info is None else info.relative


def _when(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "never"


@dataclass(frozen=True, slots=True)
class Held:
    """One cookie the browser holds: its name, a safe preview of the value, its flags,
    and when it ends (``None``: when the browser closes)."""

    name: str
    preview: str
    flags: Sequence[str]
    expires: float | None
    note: str = ""
    ends: str = ""  # said instead of the expiry, when it is not one time


@dataclass(frozen=True, slots=True)
class Kept:
    """What the server keeps for this visitor: a title and ``(label, value)`` rows."""

    title: str
    rows: Sequence[tuple[str, str]] = field(default_factory=tuple)


# -- the browser / server diagram --------------------------------------------------------------

_W = 340  # each panel's width in SVG units; the panels sit side by side or stack (CSS)


def _pill(x: float, y: float, text: str, *, warn: bool = False) -> tuple[str, float]:
    width = 8 + len(text) * 6.2
    klass = "pill warn" if warn else "pill"
    return (
        f'<g class="{klass}"><rect x="{x:.0f}" y="{y}" width="{width:.0f}" height="17" '
        f'rx="8.5"/><text x="{x + width / 2:.0f}" y="{y + 12.5}" text-anchor="middle">'
        f"{_e(text)}</text></g>",
        width,
    )


def _cookie_card(cookie: Held, y: float, now: float) -> tuple[str, float]:
    parts = [f'<g class="card cookie"><rect x="10" y="{y}" width="{_W - 20}" rx="8" '
             'height="@H"/>']  # fmt: skip
    parts.append(f'<text class="name" x="22" y="{y + 20}">{_e(fit(cookie.name, 40))}'
                 "</text>")  # fmt: skip
    parts.append(f'<text class="mono" x="22" y="{y + 39}">{_e(fit(cookie.preview, 42))}</text>')
    # Flags as pills, wrapped onto as many lines as they need.
    x, line_y = 22.0, y + 48
    for flag in cookie.flags:
        warn = flag.startswith(("not ", "no "))
        pill_width = 8 + len(flag) * 6.2
        if x + pill_width > _W - 22:
            x, line_y = 22.0, line_y + 21
        svg, width = _pill(x, line_y, fit(flag, 44), warn=warn)
        parts.append(svg)
        x += width + 5
    line_y += 34
    if cookie.ends:
        ends = cookie.ends
    elif cookie.expires is None:
        ends = "ends when the browser closes (no Max-Age)"
    else:
        ends = f"expires {relative(cookie.expires, now)} ({_when(cookie.expires)})"
    parts.append(f'<text class="small" x="22" y="{line_y}">{_e(fit(ends, 50))}</text>')
    if cookie.note:
        line_y += 16
        parts.append(f'<text class="small" x="22" y="{line_y}">{_e(fit(cookie.note, 50))}'
                     "</text>")  # fmt: skip
    height = line_y - y + 12
    parts.append("</g>")
    return "".join(parts).replace("@H", f"{height:.0f}"), height


def _panel(title: str, body: str, height: float, klass: str) -> str:
    return (
        f'<svg class="panel {klass}" viewBox="0 0 {_W} {height:.0f}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="frame" x="1" y="1" width="{_W - 2}" height="{height - 2:.0f}" rx="12"/>'
        f'<text class="title" x="16" y="26">{_e(title)}</text>{body}</svg>'
    )


def diagram(
    *, held: Sequence[Held], kept: Sequence[Kept], link: str, now: float
) -> str:
    """Two panels, the browser's cookies and the server's records, and what links them.

    ``link`` says how a request turns the first into the second (a store read, a
    signature check). The SVGs scale to their column; CSS lays them side by side on a
    wide screen and one above the other on a phone.
    """
    y, cards = 40.0, []
    if not held:
        cards.append(f'<text class="small" x="22" y="{y + 18}">No cookie from this site yet.'
                     "</text>")  # fmt: skip
        y += 30
    for cookie in held:
        svg, height = _cookie_card(cookie, y, now)
        cards.append(svg)
        y += height + 10
    browser = _panel("Your browser holds", "".join(cards), y + 6, "browser")

    y, records = 40.0, []
    for record in kept:
        rows = [f'<text class="name" x="22" y="{y + 20}">{_e(fit(record.title, 42))}</text>']
        line = y + 20
        for label, value in record.rows:
            line += 18
            rows.append(
                f'<text class="small" x="22" y="{line}"><tspan class="label">'
                f"{_e(fit(label, 14))}</tspan></text>"
                f'<text class="mono" x="112" y="{line}">{_e(fit(value, 29))}</text>'
            )
        height = line - y + 14
        records.append(f'<g class="card record"><rect x="10" y="{y}" width="{_W - 20}" '
                       f'height="{height:.0f}" rx="8"/>{"".join(rows)}</g>')  # fmt: skip
        y += height + 10
    server = _panel("The server keeps", "".join(records), y + 6, "server")
    arrow = (
        '<div class="link" aria-hidden="true"><svg viewBox="0 0 60 24" width="60" height="24">'
        '<path d="M4 12h46m-8-7 8 7-8 7" /></svg></div>'
    )
    return (
        f'<figure class="diagram" id="diagram">{browser}{arrow}{server}'
        f"<figcaption>{_e(link)}</figcaption></figure>"
    )


# -- a JWT the way jwt.io shows it ------------------------------------------------------------

_TIME_CLAIMS = {"exp": "expires", "iat": "issued", "nbf": "not before", "auth_time": "logged in"}


def _decode_part(part: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None  # hostile input (nested 10,000 deep, not base64): just not shown


def token_view(token: str, *, now: float, cut_signature: bool = True) -> str:
    """A compact JWS in jwt.io's colours (header, payload, signature), decoded beside it,
    with every time claim also said in words.

    ``cut_signature`` shows only the start of the signature: the page then never holds a
    working copy of an HttpOnly cookie (a script that fetched the page gets no token).
    Not a JWS: an empty string.
    """
    segments = token.split(".")
    if len(segments) != 3:
        return ""
    header, payload = _decode_part(segments[0]), _decode_part(segments[1])
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return ""
    signature = segments[2]
    if cut_signature and len(signature) > 10:
        shown_sig = signature[:10] + "\N{HORIZONTAL ELLIPSIS}"
        cut_note = (
            '<p class="small">The signature is cut here on purpose: this page never holds '
            "a working copy of your HttpOnly cookie.</p>"
        )
    else:
        shown_sig, cut_note = signature, ""
    compact = (
        f'<code class="jwt"><span class="jwt-h">{_e(segments[0])}</span>.'
        f'<span class="jwt-p">{_e(segments[1])}</span>.'
        f'<span class="jwt-s">{_e(shown_sig)}</span></code>'
    )
    claims = []
    for name, value in payload.items():
        shown = json.dumps(value, ensure_ascii=False)
        words = ""
        if name in _TIME_CLAIMS and isinstance(value, int | float) and not isinstance(value, bool):
            at = float(value)
            words = (
                f' <span class="when">{_e(_TIME_CLAIMS[name])} '
                f"{_e(relative(at, now))} ({_e(_when(at))})</span>"
            )
        claims.append(f"<li><b>{_e(name)}</b>: <code>{_e(fit(shown, 200))}</code>{words}</li>")
    head = json.dumps(header, ensure_ascii=False)
    return (
        f'<div class="token">{compact}{cut_note}<div class="decoded">'
        f'<div class="part h"><h4>Header</h4><code>{_e(fit(head, 300))}</code></div>'
        f'<div class="part p"><h4>Payload</h4><ul>{"".join(claims)}</ul></div>'
        f'<div class="part s"><h4>Signature</h4><p class="small">{_e(header.get("alg", "?"))} '
        "over header.payload, checked against the public key in "
        '<a href="/.well-known/jwks.json">/.well-known/jwks.json</a>.</p></div></div></div>'
    )


# -- the hybrid timeline -----------------------------------------------------------------------


def hybrid_timeline(
    *, issued: float, expires: float, leeway: float, now: float, session_ends: float | None
) -> str:
    """The access token's life as a bar (issued, exp, the leeway, now), the refresh that
    follows it with its rotation, and the session behind both, as one SVG."""
    width, left, right = 700, 20, 520
    span = max(expires + leeway - issued, 1.0)

    def x(t: float) -> float:
        return left + (min(max(t, issued), expires + leeway) - issued) / span * (right - left)

    exp_x, end_x, now_x = x(expires), x(expires + leeway), x(now)
    ends = (
        f"session ends {relative(session_ends, now)}" if session_ends is not None
        else "session: as long as it is used"
    )  # fmt: skip
    lifetime = relative(expires, issued).removeprefix("in ")
    said = ("refresh: a new access", "token, and the refresh", "token rotated (the old",
            "one, reused, ends it all)")  # fmt: skip
    column = "".join(
        f'<text class="small" x="{right + 8}" y="{62 + 16 * n}">{_e(line)}</text>'
        for n, line in enumerate(said)
    )
    return (
        f'<svg class="timeline" viewBox="0 0 {width} 160" role="img" '
        'xmlns="http://www.w3.org/2000/svg" '
        'aria-label="The access token\'s life, the refresh and the session behind it">'
        f'<rect class="life" x="{left}" y="24" width="{exp_x - left:.1f}" height="22" rx="4"/>'
        f'<rect class="leeway" x="{exp_x:.1f}" y="24" width="{end_x - exp_x:.1f}" height="22"/>'
        f'<text class="small" x="{left}" y="62">access token: issued {_e(relative(issued, now))}'
        f", lives {_e(lifetime)}</text>"
        f'<text class="small" x="{exp_x:.1f}" y="62" text-anchor="end">exp</text>'
        f'<text class="small" x="{end_x:.1f}" y="78" text-anchor="end">'
        f"+ {leeway:.0f} s leeway</text>"
        f'<line class="now" x1="{now_x:.1f}" x2="{now_x:.1f}" y1="18" y2="50"/>'
        f'<text class="now" x="{max(now_x, left + 12):.1f}" y="13" text-anchor="middle">now</text>'
        f'<path class="arrow" d="M{end_x + 6:.1f} 35h{right + 40 - end_x - 6:.1f}m-7-6 7 6-7 6"/>'
        f"{column}"
        f'<rect class="session" x="{left}" y="128" width="{right - left}" height="10" rx="5"/>'
        f'<text class="small" x="{left}" y="154">refresh token and session on the server: '
        f"{_e(ends)}</text></svg>"
    )
