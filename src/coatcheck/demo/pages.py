"""HTML for the demo: small functions, every dynamic value escaped with html.escape.

No template engine: the pages are few and short, and an f-string per fragment keeps
the escaping visible at each insertion point (``_e``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from . import visual

__all__ = [
    "Explainer",
    "SessionRow",
    "device_name",
    "duration",
    "error_page",
    "form",
    "hidden_input",
    "home_page",
    "hybrid_panel",
    "not_found_page",
    "page",
    "session_panel",
    "sessions_page",
    "when",
]

_STYLE = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#dfe3ea;--bg:#f6f7fb;--card:#fff;--accent:#3b4cca;
--accent-ink:#fff;--ok:#0f7b4f;--warn:#a15c00;--bad:#b3261e;--soft:#eef0fb;
--jwt-h:#fb015b;--jwt-p:#b62fd6;--jwt-s:#0092c8}
*{box-sizing:border-box}
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--ink);
background:var(--bg)}
main{max-width:62rem;margin:0 auto;padding:1rem}
nav.top{background:#1d2330;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;
gap:.3rem .9rem;
align-items:center}
nav.top a{color:#dfe3ff;text-decoration:none}nav.top a:hover{text-decoration:underline}
nav.top .brand{font-weight:700;color:#fff;margin-right:.4rem}
.mode{display:inline-block;padding:0 .55rem;border-radius:1rem;font-size:.85rem;font-weight:600;
background:#ffd166;color:#1d2330}
.mode.jwt{background:#ff9db8}.mode.hybrid{background:#9fe3c1}
h1{font-size:1.7rem;margin:.6rem 0}h2{font-size:1.25rem;margin:.2rem 0 .6rem}
h3{font-size:1.02rem;margin:.9rem 0 .3rem}h4{margin:.2rem 0;font-size:.9rem}
a{color:var(--accent)}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
overflow-wrap:anywhere;word-break:break-word}
code{background:#eef0f4;padding:0 .25em;border-radius:3px}
pre{background:#eef0f4;padding:.6rem;border-radius:6px;white-space:pre-wrap;margin:.3rem 0}
.box{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.9rem 1.1rem;
margin:1rem 0;min-width:0;overflow-wrap:anywhere}
.msg{background:#eaf4ff;border-color:#b8d8ff}.err{background:#fff0f0;border-color:#f2b8b8}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,19rem),1fr));gap:0 1rem}
label{display:block;margin:.45rem 0;font-weight:500}
input[type=text],input[type=password],textarea{display:block;width:100%;max-width:26rem;
margin-top:.2rem;padding:.5rem .6rem;font:inherit;border:1px solid #b9c0cc;border-radius:7px;
background:#fff}
textarea{max-width:100%;font:13px/1.4 ui-monospace,monospace}
input:focus,textarea:focus,button:focus{outline:3px solid #b7c0ff;outline-offset:1px}
label.check{font-weight:400;display:flex;gap:.5rem;align-items:flex-start}
label.check input{margin-top:.35rem}
button{font:inherit;font-weight:600;padding:.45rem 1rem;border-radius:7px;
border:1px solid var(--accent);
background:var(--accent);color:var(--accent-ink);cursor:pointer;margin:.25rem .3rem .25rem 0}
button:hover{filter:brightness(1.1)}
form.inline{display:inline}form.inline button{background:#fff;color:var(--accent)}
button.danger,form.danger button{background:#fff;color:var(--bad);border-color:var(--bad)}
ul{padding-left:1.2rem}li{margin:.15rem 0}
.small{font-size:.85rem;color:var(--muted)}
table{border-collapse:collapse;width:100%}
td,th{padding:.45rem .6rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:.85rem;color:var(--muted);font-weight:600}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;background:#dff5e9;color:var(--ok);
font-size:.8rem;font-weight:700}
@media (max-width:640px){table.devices thead{display:none}
table.devices tr{display:block;border:1px solid var(--line);border-radius:8px;margin:.5rem 0;
padding:.3rem .5rem;background:#fff}
table.devices td{display:grid;grid-template-columns:6rem minmax(0,1fr);gap:.5rem;border:0;
padding:.2rem 0}
table.devices td::before{content:attr(data-label);color:var(--muted);font-size:.85rem}}
table.devices td{overflow-wrap:break-word}table.devices button{white-space:nowrap}
figure.diagram{margin:.6rem 0;display:flex;flex-wrap:wrap;align-items:center;gap:.4rem;
justify-content:center}
figure.diagram svg.panel{flex:1 1 18rem;max-width:26rem;width:100%;height:auto}
figure.diagram figcaption{flex-basis:100%;text-align:center;font-size:.9rem;color:var(--muted)}
.link svg path{stroke:var(--accent);stroke-width:2.5;fill:none}
@media (max-width:700px){.link{transform:rotate(90deg)}}
svg text{font:12px system-ui,sans-serif;fill:var(--ink)}
svg text.title{font-weight:700;font-size:14px}svg text.name{font-weight:700;font-size:13px}
svg text.mono{font:11.5px ui-monospace,Menlo,Consolas,monospace;fill:#34406a}
svg text.small,svg tspan.label{font-size:11.5px;fill:var(--muted)}
svg .frame{fill:#fff;stroke:var(--line);stroke-width:1.5}
svg.browser .frame{stroke:#b7c0ff}svg.server .frame{stroke:#9fd7bd}
svg .card rect{fill:#f8f9fd;stroke:#d5dae6}svg .record rect{fill:#f3fbf7;stroke:#c5e6d5}
svg .pill rect{fill:#e4e8ff}svg .pill text{font-size:10.5px;fill:#2b3990}
svg .pill.warn rect{fill:#fff1d6}svg .pill.warn text{fill:var(--warn)}
.token{margin:.4rem 0}
code.jwt{display:block;padding:.6rem;background:#fff;border:1px solid var(--line);font-size:13px}
.jwt-h{color:var(--jwt-h)}.jwt-p{color:var(--jwt-p)}.jwt-s{color:var(--jwt-s)}
.decoded{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,15rem),1fr));
gap:.6rem;
margin-top:.6rem}
.decoded .part{border-left:4px solid var(--jwt-p);padding:.2rem .7rem;background:#fff;min-width:0}
.decoded .h{border-color:var(--jwt-h)}.decoded .s{border-color:var(--jwt-s)}
.decoded ul{list-style:none;padding:0;margin:0}.when{display:block;font-size:.82rem;
color:var(--muted)}
svg.timeline{width:100%;height:auto;max-width:44rem;display:block;margin:.4rem 0}
svg.timeline .life{fill:#9fb4ff}svg.timeline .leeway{fill:#ffd9a0}
svg.timeline .session{fill:#bfe8d3}svg.timeline line.now{stroke:var(--bad);stroke-width:2.5}
svg.timeline text.now{fill:var(--bad);font-weight:700}
svg.timeline .arrow{stroke:var(--accent);stroke-width:2;fill:none}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def when(timestamp: float) -> str:
    """A POSIX time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "never"


def duration(span: timedelta | float) -> str:
    """A duration in words: ``7 days``, ``12 hours``, ``5 minutes``, ``90 seconds``.

    The largest unit that divides it exactly, so nothing is rounded away.
    """
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} second" + ("" if seconds == 1 else "s")


# An inline icon, so browsers need not ask for /favicon.ico (which answers 204 anyway).
_ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%23246'/%3E"
    "%3Cpath d='M8 3v3M5 6h6l-1 7H6z' stroke='%23fff' fill='none'/%3E%3C/svg%3E"
)


def _page(title: str, body: str, *, mode: str) -> str:
    jwks = '<a href="/.well-known/jwks.json">JWKS</a>' if mode in ("jwt", "hybrid") else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<link rel=icon href="{_ICON}">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f'<nav class=top><a class=brand href="/">coatcheck demo</a>'
        f'<span class="mode {_e(mode)}">{_e(mode)} mode</span>'
        '<a href="/sessions">sessions</a><a href="/password">password</a>'
        '<a href="/inspect">inspect a token</a><a href="/theft">theft</a>'
        f'<a href="/api/me">/api/me</a>{jwks}<a href="/healthz">health</a></nav>'
        f"<main>{body}</main></body></html>"
    )


def page(title: str, body: str, *, mode: str) -> str:
    """A whole page around ``body``, which is trusted HTML: escape what goes into it."""
    return _page(title, body, mode=mode)


def form(action: str, inner: str, button: str, *, hidden: str = "", css: str = "") -> str:
    """A POST form; ``hidden`` is pre-rendered hidden inputs (the CSRF token goes there)."""
    klass = f' class="{_e(css)}"' if css else ""
    return (
        f'<form method=post action="{_e(action)}"{klass}>{hidden}{inner}'
        f"<button>{_e(button)}</button></form>"
    )


def hidden_input(name: str, value: str) -> str:
    return f'<input type=hidden name="{_e(name)}" value="{_e(value)}">'


@dataclass(frozen=True, slots=True)
class Explainer:
    """What the page says about the active mode (plain text; escaped when rendered)."""

    browser: Sequence[str]
    server: Sequence[str]


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def home_page(
    *,
    mode: str,
    name: str | None,
    explainer: Explainer,
    details: Sequence[str] = (),
    message: str = "",
    error: str = "",
    hidden: str = "",
    username: str = "",
    register: tuple[str, str] = ("", ""),
    extra: str = "",
    guest_name: str | None = None,
    flashes: Sequence[tuple[str, str]] = (),
    session: str = "",
    picture: str = "",
    token: str = "",
    store_note: str = "",
) -> str:
    """The front page: greeting, what is held where, and the forms.

    ``picture`` is the browser/server diagram and ``token`` the coloured token
    (:mod:`coatcheck.demo.visual`, trusted HTML); ``store_note`` says what survives a
    restart of the server with the store in use (plain text).

    ``register`` is the (username, name) a refused registration sent, shown again
    (never the password). ``extra`` and ``session`` are trusted HTML made by this
    module (the hybrid token panel, :func:`session_panel`). A guest who gave their name
    (``guest_name``) is greeted by it; ``flashes`` are one-time notes.
    """
    shown = name or guest_name
    parts = [f"<h1>Hello, {_e(shown) if shown else 'guest'}</h1>"]
    for _, note in flashes:
        parts.append(f'<div class="box msg" role=status>{_e(note)}</div>')
    if message:
        parts.append(f'<div class="box msg">{_e(message)}</div>')
    if error:
        parts.append(f'<div class="box err" role=alert>{_e(error)}</div>')
    if picture:
        parts.append(f'<section class=box><h2>Right now</h2>{picture}{token}</section>')
    if name:
        account = "<h2>You are logged in</h2>" + (_list(details) if details else "")
        account += form("/logout", "", "Log out", hidden=hidden)
        account += '<p><a href="/password">Change your password</a> · '
        account += '<a href="/sessions">Your devices</a></p>'
        parts.append(f"<section class=box>{account}</section>")
        parts.append(extra)
        parts.append(session)
    else:
        parts.append(session)
        login = (
            "<h2>Log in</h2>"
            + form(
                "/login",
                f'<label>Username <input type=text name=username value="{_e(username)}" '
                "autocomplete=username required></label>"
                "<label>Password <input type=password name=password "
                "autocomplete=current-password required></label>"
                "<label class=check><input type=checkbox name=remember value=on checked> "
                "<span>Remember me (a persistent cookie; without it the cookie ends when the "
                "browser closes)</span></label>",
                "Log in",
                hidden=hidden,
            )
        )
        register_form = (
            "<h2>Register</h2>"
            + form(
                "/register",
                # The same rules as coatcheck.demo.users (which lower-cases the name).
                f'<label>Username <input type=text name=username value="{_e(register[0])}" '
                'minlength=2 maxlength=32 pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{1,31}" '
                'title="2 to 32 letters, digits, _ . or -, starting with a letter or digit" '
                "autocomplete=username required></label>"
                "<label>Password <input type=password name=password minlength=8 "
                "maxlength=1024 autocomplete=new-password required></label>"
                f'<label>Display name <input type=text name=name value="{_e(register[1])}" '
                "maxlength=100 required></label>",
                "Register",
                hidden=hidden,
            )
        )
        parts.append(
            f"<div class=grid><section class=box>{login}</section>"
            f"<section class=box>{register_form}</section></div>"
        )
    restart = f"<h3>After a server restart</h3><p>{_e(store_note)}</p>" if store_note else ""
    parts.append(
        f'<div class=box><h2>Mode: {_e(mode)}</h2><h3>What your browser holds</h3>'
        f"{_list(explainer.browser)}<h3>What the server keeps</h3>{_list(explainer.server)}"
        f"{restart}"
        '<p>To see what a cookie or token holds, copy it from your browser\'s developer '
        'tools and paste it into the <a href="/inspect">inspector</a> (it works offline).'
        "</p></div>"
    )
    return _page("coatcheck demo", "".join(parts), mode=mode)


#: What the demo's cart offers, and how to say one of each.
CART_ITEMS = {"hat": "a hat", "scarf": "a scarf", "gloves": "gloves", "umbrella": "an umbrella"}


def session_panel(
    *,
    data: Mapping[str, object],
    logged_in: bool,
    hidden: str,
    browser: Sequence[str],
    server: Sequence[str],
) -> str:
    """The visitor's session data (``request.session``): name, cart, and where it lives."""
    parts = ["<div class=box id=session-data><h2>Your session (request.session)</h2>"]
    if not logged_in:
        current = data.get("name")
        value = _e(current) if isinstance(current, str) else ""
        parts.append(
            form(
                "/name",
                f'<label>Your name (no account needed) <input type=text name=name '
                f'value="{value}" maxlength=60 autocomplete=nickname></label>',
                "Remember my name",
                hidden=hidden,
            )
        )
    cart = data.get("cart")
    items = [str(item) for item in cart] if isinstance(cart, list) else []
    listed = ", ".join(_e(item) for item in items) if items else "empty"
    parts.append(f"<h3>Your cart</h3><p id=cart>{listed}</p>")
    for item, label in CART_ITEMS.items():
        parts.append(
            form("/cart/add", hidden_input("item", item), f"Add {label}", hidden=hidden,
                 css="inline")
        )  # fmt: skip
    if items:
        parts.append(form("/cart/clear", "", "Empty the cart", hidden=hidden, css="inline"))
    shown = json.dumps(dict(data), ensure_ascii=False, indent=1, sort_keys=True)
    parts.append(
        f"<h3>What your browser holds</h3>{_list(browser)}"
        f"<h3>What the server keeps</h3>{_list(server)}"
        f"<p>The data, as JSON:</p><pre id=session-json>{_e(shown)}</pre></div>"
    )
    return "".join(parts)


def device_name(user_agent: str) -> str:
    """``Chrome on Linux``, ``Firefox on Android``, ``curl``: a reader's name for a
    User-Agent (the first browser and system that match; the raw string is shown too)."""
    ua = user_agent.lower()
    browser = next(
        (name for token, name in (
            ("edg/", "Edge"), ("firefox/", "Firefox"), ("headlesschrome", "Chromium (headless)"),
            ("chrome/", "Chrome"), ("safari/", "Safari"), ("curl/", "curl"),
            ("python-httpx", "httpx"), ("python-requests", "requests"), ("node", "Node"),
        ) if token in ua),
        "",
    )  # fmt: skip
    system = next(
        (name for token, name in (
            ("android", "Android"), ("iphone", "iPhone"), ("ipad", "iPad"),
            ("windows", "Windows"), ("mac os", "macOS"), ("linux", "Linux"),
        ) if token in ua),
        "",
    )  # fmt: skip
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "unknown device"


def _time_cell(timestamp: float, now: float) -> str:
    return (
        f'<div>{_e(visual.relative(timestamp, now))}<br>'
        f'<span class="small">{_e(when(timestamp))}</span></div>'
    )


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    created_at: float
    last_seen: float
    expires_at: float
    user_agent: str
    ip: str
    current: bool


def sessions_page(
    *,
    mode: str,
    name: str,
    rows: Sequence[SessionRow] | None,
    note: str = "",
    hidden: str = "",
    now: float | None = None,
) -> str:
    """The user's active sessions with revoke buttons (or why there is no list)."""
    parts = [f"<h1>Sessions of {_e(name)}</h1>"]
    if note:
        parts.append(f'<div class="box msg">{_e(note)}</div>')
    if rows is not None:
        body = []
        at = now if now is not None else datetime.now(UTC).timestamp()
        for row in rows:
            revoke = form(
                "/sessions/revoke",
                hidden_input("session_id", row.session_id),
                "Log this device out" if not row.current else "Log out here",
                hidden=hidden,
                css="inline danger",
            )
            this = ' <span class="badge">this device</span>' if row.current else ""
            body.append(
                "<tr>"
                f'<td data-label="device"><div><b>{_e(device_name(row.user_agent))}</b>{this}'
                f'<br><span class="small">{_e(row.user_agent[:160] or "no user agent")}</span>'
                f'</div></td><td data-label="IP"><div>{_e(row.ip or "?")}</div></td>'
                f'<td data-label="logged in">{_time_cell(row.created_at, at)}</td>'
                f'<td data-label="last seen">{_time_cell(row.last_seen, at)}</td>'
                f'<td data-label="idle expiry">{_time_cell(row.expires_at, at)}</td>'
                f'<td data-label=""><div>{revoke}</div></td></tr>'
            )
        parts.append(
            '<section class=box><table class="devices"><thead><tr><th>device</th><th>IP</th>'
            "<th>logged in</th><th>last seen</th><th>idle expiry</th><th></th></tr></thead>"
            "<tbody>" + "".join(body) + "</tbody></table>"
        )
        parts.append(
            form("/sessions/revoke-all", "", "Log out everywhere", hidden=hidden, css="danger")
            + "</section>"
        )
    return _page("sessions", "".join(parts), mode=mode)


def error_page(*, mode: str, status: int, code: str, message: str) -> str:
    """A short error page (the JSON API gets ``{"error", "message"}`` instead)."""
    body = (
        f"<h1>{_e(status)}: {_e(code)}</h1><div class='box err' role=alert>{_e(message)}</div>"
        '<p><a href="/">Back to the front page</a></p>'
    )
    return _page(f"error {status}", body, mode=mode)


def not_found_page(*, mode: str, path: str) -> str:
    """The 404 page, in the demo's layout."""
    body = (
        "<h1>404: not found</h1>"
        f"<div class='box err' role=alert>There is no page at <code>{_e(path)}</code>.</div>"
        '<p><a href="/">Back to the front page</a></p>'
    )
    return _page("not found", body, mode=mode)


_HYBRID_SCRIPT = """
(() => {
  const box = document.getElementById('tokens');
  const $ = (id) => document.getElementById(id);
  let exp = Number(box.dataset.exp), leeway = Number(box.dataset.leeway);
  // Server time minus this browser's: the countdown follows the server's clock.
  let skew = Number(box.dataset.now) - Date.now() / 1000;
  const clock = () => Date.now() / 1000 + skew;
  // The same format as the server-rendered times on this page.
  const at = (t) => new Date(t * 1000).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  const note = (text) => { const li = document.createElement('li');
    li.textContent = at(clock()) + ': ' + text; $('log').prepend(li); };
  const render = (now) => {
    const due = exp + leeway;
    $('left').textContent = now < exp ? 'in ' + Math.ceil(exp - now) + ' s'
      : now < due ? Math.floor(now - exp) + ' s ago; still accepted for ' +
        Math.ceil(due - now) + ' s'
      : Math.floor(now - exp) + ' s ago; the next request renews it';
  };
  const show = () => { $('exp').textContent = at(exp); $('until').textContent = at(exp + leeway);
    render(clock()); };
  // true: a new access token; false: the same one; null: logged out or unreachable.
  async function status(url, why) {
    // The CSRF token of this page's forms, echoed in the header (issue 5).
    const csrf = document.querySelector('input[name=csrf_token]');
    let r;
    try {
      r = await fetch(url, {credentials: 'same-origin',
        headers: csrf ? {'x-csrf-token': csrf.value} : {}});
    } catch (err) { note(why + 'no answer (' + err + ')'); return false; }
    if (!r.ok) { note(why + 'HTTP ' + r.status + ': logged out (the refresh token was refused)');
      return null; }
    const j = await r.json();
    skew = j.now - Date.now() / 1000;
    const renewed = j.access_expires_at !== exp;
    exp = j.access_expires_at;
    if (typeof j.leeway === 'number') { leeway = j.leeway; }
    show();
    note(why + (r.redirected ? 'redirected through the refresh path; ' : 'no redirect; ') +
      (renewed ? 'NEW access token ' + j.access_token_id + ', expires ' + at(exp)
               : 'same access token, expires ' + at(exp)));
    return renewed;
  }
  $('check').onclick = () => status('/api/refresh-status', 'you asked: ');
  $('force').onclick = () =>
    status(box.dataset.refresh + '?next=/api/refresh-status', 'refresh now: ');
  // Past exp + leeway the server refreshes on the next request. Ask then, and again
  // every 2.5 s (clocks differ by fractions of a second) until a new token comes.
  const tries = 6, every = 2.5;
  let attempt = 0, busy = false, next = 0, stopped = false;
  const tick = () => {
    const now = clock(), due = exp + leeway;
    render(now);
    if (now < due) { attempt = 0; stopped = false; return; }
    if (busy || stopped || now < next || !$('auto').checked) { return; }
    if (attempt >= tries) {
      stopped = true; note('no new token after ' + tries + ' requests; use the buttons');
      return;
    }
    attempt += 1; busy = true;
    status('/api/refresh-status', 'automatic request ' + attempt + '/' + tries + ': ')
      .then((renewed) => {
        busy = false; next = clock() + every;
        if (renewed === null) { stopped = true; }
      });
  };
  show();  // fill the countdown in at once, not a moment after the page shows
  tick();
  setInterval(tick, 500);
})();
"""


def hybrid_panel(
    *, expires_at: float, now: float, leeway: float, ttl: float, refresh_path: str,
    access_cookie: str, timeline: str = "",
) -> str:
    """Hybrid mode: the access token's countdown and the refreshes as they happen.

    The cookies stay HttpOnly; the script asks ``/api/refresh-status`` what they hold.
    The server accepts an access token until ``exp + leeway`` (RFC 7519 §4.1.4); the
    first request after that is refreshed, which is when the script asks.
    """  # fmt: skip
    return (
        f'<div class=box id=tokens data-exp="{_e(expires_at)}" data-now="{_e(now)}" '
        f'data-leeway="{_e(leeway)}" data-refresh="{_e(refresh_path)}">'
        "<h2>Your tokens right now</h2>"
        f"{timeline}"
        f"<p>Access token (cookie {_e(access_cookie)}, lifetime {_e(duration(ttl))}): "
        "expires at <b id=exp></b>, <b id=left>?</b>. The server still accepts it for "
        f"the {_e(duration(leeway))} of clock-skew leeway, until <b id=until></b>; the "
        f"first request after that is sent (307) to {_e(refresh_path)}, which rotates "
        "the refresh token and sends it back (307) with both cookies renewed.</p>"
        f"<p>Refresh token: an HttpOnly cookie the browser sends only to "
        f"{_e(refresh_path)}; neither cookie is visible to this script.</p>"
        "<p><label><input type=checkbox id=auto checked> once the server stops accepting "
        "the access token, make a request (again every few seconds until a new token "
        "comes back)</label></p>"
        "<button id=check type=button>Ask the server (/api/refresh-status)</button> "
        "<button id=force type=button>Refresh now</button>"
        f"<ul id=log></ul><script>{_HYBRID_SCRIPT}</script></div>"
    )
