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

__all__ = [
    "Explainer",
    "SessionRow",
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
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}code{background:#f3f3f3;padding:0 .25em}
.box{border:1px solid #ddd;border-radius:6px;padding:.75rem 1rem;margin:1rem 0}
.msg{background:#eef6ff;border-color:#b8d8ff}.err{background:#fff0f0;border-color:#f2b8b8}
label{display:block;margin:.3rem 0}input[type=text],input[type=password]{width:16rem}
table{border-collapse:collapse}
td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left}
form.inline{display:inline}pre{background:#f7f7f7;padding:.5rem;overflow:auto}
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
    jwks = (
        ' · <a href="/.well-known/jwks.json">JWKS</a>' if mode in ("jwt", "hybrid") else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<link rel=icon href="{_ICON}">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f'<p><a href="/">coatcheck demo</a> · mode <b>{_e(mode)}</b> · '
        '<a href="/sessions">sessions</a> · <a href="/password">password</a> · '
        '<a href="/inspect">inspect a token</a> · <a href="/theft">theft</a> · '
        f'<a href="/api/me">/api/me</a>{jwks}</p>'
        f"{body}</body></html>"
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
) -> str:
    """The front page: greeting, what is held where, and the forms.

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
    if name:
        if details:
            parts.append("<h2>You are logged in</h2>" + _list(details))
        parts.append(extra)
        parts.append(form("/logout", "", "Log out", hidden=hidden))
        parts.append('<p><a href="/password">Change your password</a></p>')
        parts.append(session)
    else:
        parts.append(session)
        parts.append(
            "<h2>Log in</h2>"
            + form(
                "/login",
                f'<label>Username <input type=text name=username value="{_e(username)}" '
                "autocomplete=username required></label>"
                "<label>Password <input type=password name=password "
                "autocomplete=current-password required></label>"
                "<label><input type=checkbox name=remember value=on checked> Remember me "
                "(a persistent cookie; without it the cookie ends when the browser closes)"
                "</label>",
                "Log in",
                hidden=hidden,
            )
        )
        parts.append(
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
        f'<div class=box><h2>Mode: {_e(mode)}</h2><h3>What your browser holds</h3>'
        f"{_list(explainer.browser)}<h3>What the server keeps</h3>{_list(explainer.server)}"
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
) -> str:
    """The user's active sessions with revoke buttons (or why there is no list)."""
    parts = [f"<h1>Sessions of {_e(name)}</h1>"]
    if note:
        parts.append(f'<div class="box msg">{_e(note)}</div>')
    if rows is not None:
        body = []
        for row in rows:
            revoke = form(
                "/sessions/revoke",
                hidden_input("session_id", row.session_id),
                "Revoke",
                hidden=hidden,
                css="inline",
            )
            body.append(
                "<tr>"
                f"<td>{_e(when(row.created_at))}</td><td>{_e(when(row.last_seen))}</td>"
                f"<td>{_e(when(row.expires_at))}</td><td>{_e(row.user_agent or '?')}</td>"
                f"<td>{_e(row.ip or '?')}</td>"
                f"<td>{'<b>this device</b>' if row.current else ''}</td><td>{revoke}</td></tr>"
            )
        parts.append(
            "<table><tr><th>created</th><th>last seen</th><th>idle expiry</th>"
            "<th>user agent</th><th>IP</th><th></th><th></th></tr>"
            + "".join(body)
            + "</table>"
        )
        parts.append(form("/sessions/revoke-all", "", "Log out everywhere", hidden=hidden))
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
    access_cookie: str,
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
