"""The demo's /inspect page: :mod:`coatcheck.inspect` behind a form, offline.

The visitor pastes a token, a cookie value, or a ``Cookie`` / ``Set-Cookie`` line
(and optionally a secret); the report is rendered as HTML with every part escaped.
Nothing is sent anywhere, stored or logged, and the page never fills in the
visitor's own cookies: they are HttpOnly so that no page script reads them, and
showing them here would undo that.
"""

from __future__ import annotations

import html
import json
from typing import Any

from joserfc import jwk
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..auth import HybridCookieTransport
from ..errors import PayloadTooLarge
from ..inspect import KeyMaterial, LabelledKey, Report, inspect_value
from . import pages
from .context import DemoContext, demo_of, read_form
from .routes import hidden_fields

__all__ = ["MAX_VALUE", "inspect_form", "inspect_result", "render_report", "routes"]

#: Longest value the page inspects (characters); the request body is bounded too.
MAX_VALUE = 64 * 1024
_MAX_SHOWN = 8000
_MAX_SECRET = 4096
_HEADERS = {"cache-control": "no-store"}
_FIELD_CSS = (
    "<style>.report{background:#fafafa}.report .report{background:#fff}"
    "pre{white-space:pre-wrap;word-break:break-all;background:#f3f3f3;padding:.4rem;margin:.2rem 0}"
    "textarea{width:100%;font:13px/1.4 monospace}"
    ".error{color:#a00}.warning{color:#960}.info{color:#555}"
    ".verified{color:#070;font-weight:bold}.failed{color:#a00;font-weight:bold}</style>"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _clean(text: str) -> str:
    # Control characters of a hostile value are shown, not passed on; long parts cut.
    cleaned = "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in text)
    if len(cleaned) > _MAX_SHOWN:
        cleaned = cleaned[:_MAX_SHOWN] + f"... ({len(cleaned)} characters in all)"
    return cleaned


def _json(value: Any) -> str:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (RecursionError, ValueError, TypeError):
        return "(nested too deeply to show)"
    return _clean(text)


def _pre(value: Any) -> str:
    text = _clean(value) if isinstance(value, str) else _json(value)
    return f"<pre>{_e(text)}</pre>"


def _row(label: str, cell: str) -> str:
    """A table row; ``cell`` is trusted HTML."""
    return f"<tr><th>{_e(label)}</th><td>{cell}</td></tr>"


def render_report(report: Report) -> str:
    """The report as HTML: every value from the inspected input escaped."""
    heading = _e(report.title)
    if report.name is not None:
        heading = f"<code>{_e(_clean(report.name))}</code>: {heading}"
    rows = [_row("kind", f"<code>{_e(report.kind)}</code>")]
    if report.length:
        rows.append(_row("length", f"{report.length} characters"))
    if report.kid is not None:
        rows.append(_row("kid", f"<code>{_e(_clean(report.kid))}</code>"))
    if report.verification is not None:
        v = report.verification
        cell = f'<span class="{_e(v.status)}">{_e(v.status.replace("_", " "))}</span>: '
        cell += _e(_clean(v.detail))
        if v.key is not None and v.key not in v.detail:
            cell += f" (key: {_e(_clean(v.key))})"
        if v.error_code is not None:
            cell += f" [<code>{_e(v.error_code)}</code>]"
        rows.append(_row("verification", cell))
    for info in report.times:
        rows.append(_row(info.name, f"{_e(info.iso)} (<b>{_e(info.relative)}</b>)"))
    for key, value in report.fields.items():
        rows.append(_row(key.replace("_", " "), _pre(value)))
    if report.header is not None:
        rows.append(_row("header", _pre(report.header)))
    if report.payload is not None:
        rows.append(_row("payload", _pre(report.payload)))
    if report.signature:
        rows.append(_row("signature", f"<code>{_e(_clean(report.signature))}</code>"))
    parts = [f'<div class="box report"><h3>{heading}</h3><table>{"".join(rows)}</table>']
    if report.findings:
        items = "".join(
            f'<li><span class="{_e(f.severity)}">{_e(f.severity)}</span> '
            f"<code>{_e(f.code)}</code> {_e(_clean(f.message))}</li>"
            for f in report.findings
        )
        parts.append(f"<ul>{items}</ul>")
    parts.extend(render_report(child) for child in report.children)
    parts.append("</div>")
    return "".join(parts)


def _demo_keys(demo: DemoContext) -> tuple[LabelledKey, ...]:
    """This demo's public signing keys (never a private one), to verify its own tokens."""
    if demo.keys is None:
        return ()
    found = []
    for entry in demo.keys.jwks().get("keys", []):
        try:
            key = jwk.import_key(entry)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        kid = entry.get("kid") if isinstance(entry.get("kid"), str) else None
        found.append(LabelledKey(label=f"this demo's public key kid={kid}", key=key, kid=kid))
    return tuple(found)


def _explanation(demo: DemoContext) -> str:
    mode = demo.config.mode
    cookie = demo.cookie
    name = _e(cookie.cookie_name)
    if mode == "session":
        mine = (
            f"In session mode the cookie <code>{name}</code> holds a session token "
            "<code>&lt;slot&gt;.&lt;256 random bits&gt;</code>; the slot (8 hex digits of "
            "the SHA-256 of the user id) is the same for all of a user's sessions and not "
            "secret. The inspector can only tell it is a coatcheck session token, since its "
            "meaning lives in the server's session store."
        )
    elif mode == "jwt":
        mine = (
            f"In jwt mode the cookie <code>{name}</code> holds a signed JWT: paste it to see "
            "its header and claims, and keep the box below ticked to check its signature "
            "against this demo's public key (the report names the kid that matched)."
        )
    else:
        refresh = cookie.refresh_name if isinstance(cookie, HybridCookieTransport) else "?"
        mine = (
            f"In hybrid mode the cookie <code>{name}</code> holds a short-lived access JWT "
            f"(verified with this demo's public key when the box is ticked) and "
            f"<code>{_e(refresh)}</code> the refresh token, opaque by design."
        )
    return (
        "<p>Paste a token, a cookie value, a whole <code>Cookie:</code> request header or a "
        "<code>Set-Cookie:</code> response line (which is also linted: HttpOnly, Secure, "
        "SameSite, prefixes, size). The inspector says what it is and shows its parts.</p>"
        f"<p>{mine} To see this demo's own cookies, open your browser's developer tools "
        "(Application or Storage, then Cookies) and copy the value. This page does not show "
        "them by itself: they are HttpOnly precisely so that no script on a page can read "
        "them.</p>"
        "<p>The value is read here, on the demo's server, and nothing is sent anywhere, "
        "stored or logged. Still, do not paste live production secrets into any web page "
        "you do not run yourself; <code>coatcheck inspect</code> does the same in a "
        "terminal.</p>"
    )


def _page(
    request: Request,
    *,
    value: str = "",
    use_demo_keys: bool = True,
    result: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    demo = demo_of(request)
    checkbox = ""
    if demo.keys is not None:
        checked = " checked" if use_demo_keys else ""
        checkbox = (
            f"<label><input type=checkbox name=demo_keys value=on{checked}> Also verify with "
            "this demo's public signing key</label>"
        )
    inner = (
        "<label>Token, cookie value, Cookie or Set-Cookie line<br>"
        f"<textarea name=value rows=7 spellcheck=false autocomplete=off required>"
        f"{_e(value)}</textarea></label>"
        "<label>Secret or key to verify or decrypt with (optional: an HMAC secret, "
        "AUTH_SECRET, a framework's secret key) <input type=password name=secret "
        "autocomplete=off></label>" + checkbox
    )
    body = (
        "<h1>Inspect a token or cookie</h1>"
        + _explanation(demo)
        + (f'<div class="box err" role=alert>{_e(error)}</div>' if error else "")
        + pages.form("/inspect", inner, "Inspect", hidden=hidden_fields(request))
        + (f"<h2>Report</h2>{result}" if result else "")
    )
    html_page = pages.page("inspect", _FIELD_CSS + body, mode=demo.config.mode)
    return HTMLResponse(html_page, status_code=status, headers=_HEADERS)


async def inspect_form(request: Request) -> Response:
    """GET /inspect: the empty form and what it is for."""
    return _page(request)


async def inspect_result(request: Request) -> Response:
    """POST /inspect: the report on the pasted value. Never a 500, whatever it is."""
    demo = demo_of(request)
    try:
        # NUL is fine here: the value is only inspected, never stored.
        fields = await read_form(request, allow_nul=True)
    except PayloadTooLarge:
        return _page(request, error=f"That is too long: at most {MAX_VALUE} bytes.", status=413)
    value = fields.get("value", "")
    secret = fields.get("secret", "")
    use_demo_keys = fields.get("demo_keys") == "on"
    if not value.strip():
        return _page(request, use_demo_keys=use_demo_keys,
                     error="Paste a token, a cookie value or a header line.", status=400)
    if len(value) > MAX_VALUE or len(secret) > _MAX_SECRET:
        return _page(request, error=f"That is too long: at most {MAX_VALUE} characters.",
                     status=413)
    material = KeyMaterial(
        secrets=(secret,) if secret else (),
        keys=_demo_keys(demo) if use_demo_keys else (),
    )
    # Some formats need key derivation and decryption: keep that off the event loop.
    report = await run_in_threadpool(
        inspect_value, value, material=material, clock=demo.config.clock
    )
    return _page(request, value=value, use_demo_keys=use_demo_keys,
                 result=render_report(report))


routes = [
    ("/inspect", inspect_form, ["GET"]),
    ("/inspect", inspect_result, ["POST"]),
]
