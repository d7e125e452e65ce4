"""The front page's picture of this very request: the cookies the browser sent (and the
ones it holds for other paths), their flags and expiry, and what the server keeps.

Values are shown only in part: the page must never hold a working copy of an HttpOnly
cookie (a script that fetched the page would get it), so a session token shows its slot
and a few characters, a JWT its header and payload and the start of its signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.requests import Request

from ..auth import HybridCookieTransport, Identity
from ..policies import CookiePolicy
from ..sessions import SessionRecord
from . import pages, visual
from .context import DemoContext, now

__all__ = ["Picture", "right_now", "store_survives_restart"]

_CUT = "\N{HORIZONTAL ELLIPSIS}"


class Picture:
    """The diagram and, for a token in a cookie, the coloured token (both trusted HTML)."""

    __slots__ = ("diagram", "token")

    def __init__(self, diagram: str, token: str) -> None:
        self.diagram = diagram
        self.token = token


def _flags(policy: CookiePolicy, *, path: str | None = None) -> list[str]:
    return [
        "HttpOnly" if policy.http_only else "not HttpOnly",
        "Secure" if policy.secure else "not Secure (plain HTTP)",
        f"SameSite={policy.same_site.capitalize()}",
        f"Path={path or policy.path}",
    ]


def _session_token_preview(value: str) -> str:
    slot, _, secret = value.partition(".")
    return f"{slot}.{secret[:6]}{_CUT}" if secret else value[:12] + _CUT


def _jwt_preview(value: str) -> str:
    return value[:28] + _CUT


def _data_json(data: Mapping[str, object]) -> str:
    return json.dumps(dict(data), ensure_ascii=False, sort_keys=True) if data else "{}"


def _record_rows(record: SessionRecord, at: float, *, name: str = "") -> list[tuple[str, str]]:
    rows = [
        ("user", f"{record.user_id}" + (f" ({name})" if name else "") if record.user_id
         else "none: a guest"),
        ("created", visual.relative(record.created_at, at)),
        ("last seen", visual.relative(record.last_seen, at)),
        ("idle expiry", visual.relative(record.expires_at, at)),
        ("ends at most", visual.relative(record.absolute_expires_at, at)),
    ]  # fmt: skip
    if record.user_agent:
        rows.append(("device", pages.device_name(record.user_agent)))
    return rows


def store_survives_restart(store_url: str, mode: str) -> str:
    """What a restart of this demo keeps, for the store in use (said on the home page)."""
    scheme = store_url.partition("://")[0].partition("+")[0]
    tokens = (
        " A JWT needs no store: its signing key is kept in the demo's users file, so tokens "
        "stay valid across a restart until they expire."
        if mode == "jwt"
        else ""
    )
    if scheme == "memory":
        return (
            "The store is memory://: every session and guest cart lives in this process and "
            "ends when the server stops, with or without 'remember me'." + tokens
        )
    if scheme == "sqlite":
        return (
            "The store is a SQLite file: sessions and carts survive a restart of the server, "
            "with or without 'remember me'. 'Remember me' decides only whether your cookie "
            "survives closing the browser." + tokens
        )
    server = {"redis": "Redis", "postgresql": "PostgreSQL", "postgres": "PostgreSQL"}.get(
        scheme, scheme
    )
    return (
        f"Sessions live in the {server} server: they survive a restart of this demo, with "
        "or without 'remember me' ('remember me' decides only whether your cookie survives "
        f"closing the browser), and last as long as the {server} server keeps its data."
        + tokens
    )


async def right_now(
    demo: DemoContext,
    request: Request,
    identity: Identity | None,
    data: Mapping[str, object],
    record: SessionRecord | None,
) -> Picture:
    """The picture for this request; ``record`` is the login's session, read once by the
    caller (``None`` when there is none)."""
    at = now(demo)
    cookies = request.cookies
    cookie = demo.cookie
    policy = cookie.policy
    mode = demo.config.mode
    held: list[visual.Held] = []
    kept: list[visual.Kept] = []
    ends = None
    if identity is not None and identity.persistent:
        ends = record.expires_at if record is not None and mode == "hybrid" else identity.expires_at
    value = cookies.get(cookie.cookie_name)
    token_html = ""
    if value is not None:
        if mode == "session":
            held.append(visual.Held(cookie.cookie_name, _session_token_preview(value),
                                    _flags(policy), ends,
                                    "a session token: <slot>.<256 random bits>"))  # fmt: skip
        else:
            what = "the access JWT" if mode == "hybrid" else "a signed JWT"
            note = f"{what} ({demo.config.alg}), header.payload.sig"
            held.append(visual.Held(cookie.cookie_name, _jwt_preview(value), _flags(policy),
                                    ends, note))
            token_html = visual.token_view(value, now=at)
            if token_html:
                heading = "Your access JWT" if mode == "hybrid" else "Your JWT"
                token_html = f"<h3>{heading}, decoded</h3>" + token_html
    by_cookie = identity is not None and identity.via == "cookie"
    if isinstance(cookie, HybridCookieTransport) and by_cookie:
        held.append(visual.Held(
            cookie.refresh_name, f"sent only to {cookie.refresh_path}",
            _flags(policy, path=cookie.refresh_path), ends,
            "the refresh token: opaque, rotated at every use",
        ))  # fmt: skip
    data_cookie = demo.sessions.cookie_name
    if data_cookie in cookies and (identity is None or mode != "session"):
        idle = visual.relative(at + demo.config.session_policy.idle_timeout.total_seconds(), at)
        held.append(visual.Held(data_cookie, _session_token_preview(cookies[data_cookie]),
                                _flags(policy), None,
                                "your request.session data's token",
                                ends=f"persistent: lasts while its record does ({idle} idle)"))
    if identity is None:
        if data:
            kept.append(visual.Kept("a guest session record", [
                ("user", "none: a guest"), ("data", _data_json(data)),
            ]))  # fmt: skip
            link = ("Each request sends the data cookie; the server hashes its token and reads "
                    "the record: one store read.")  # fmt: skip
        else:
            kept.append(visual.Kept("nothing about you", [("cost", "no record, no store call")]))
            link = "Nothing to look up: a visitor who stores nothing costs the server nothing."
    elif mode == "jwt":
        kept.append(visual.Kept("no session record", [
            ("per user", "nothing at all"),
            ("keys", f"the {demo.config.alg} signing key"),
            ("published", "/.well-known/jwks.json"),
        ]))  # fmt: skip
        link = ("Each request sends the cookie; the server checks the JWT's signature with "
                "its public key: no store read. Logout cannot recall a copy.")  # fmt: skip
    else:
        sid = identity.session_id or ""
        slot, _, digest = sid.partition(".")
        title = f"session {slot}.{digest[:10]}{_CUT}"
        rows = _record_rows(record, at, name=identity.name) if record is not None else [
            ("state", "gone: revoked or expired")]  # fmt: skip
        if mode == "hybrid":
            rows.append(("refresh", "SHA-256 of the current and previous generation"))
        elif record is not None:
            rows.append(("data", _data_json(record.data.get("_session", {}))))
        kept.append(visual.Kept(title, rows))
        if mode == "hybrid":
            link = ("Each request sends the access cookie, checked by its signature alone; "
                    "only a refresh reads the session, and a revoke reaches every server "
                    "within about a second.")  # fmt: skip
        else:
            link = ("Each request sends the cookie; the server hashes the token (SHA-256) "
                    "and reads this record: one store read. Logout deletes it.")  # fmt: skip
        if mode != "session" and data:
            kept.append(visual.Kept("your data record", [
                ("owner", identity.user_id), ("data", _data_json(data))]))  # fmt: skip
    return Picture(visual.diagram(held=held, kept=kept, link=link, now=at), token_html)
