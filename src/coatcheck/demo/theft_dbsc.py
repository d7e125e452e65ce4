"""Cookie theft against Device Bound Session Credentials: the page section and the
command-line walk-through.

The page (``/theft/dbsc``) copies the cookies this browser sent, exactly what an
infostealer takes from the cookie jar (HttpOnly ones included), and replays them as
another client with no device key, now and later, next to a copy of the long-lived
cookie alone. :func:`walk_through` tells the same story without a browser: a small
DBSC user agent (:class:`DbscAgent`) logs in to an in-process demo, binds its key,
and a thief replays its cookies before and after the bound cookie runs out, in
session and hybrid mode, next to the same theft from a browser without DBSC.

Kept apart from :mod:`coatcheck.demo.routes` so that other theft demonstrations (DPoP
for API clients) can sit beside it.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..auth import Identity
from ..clock import FrozenClock
from ..cookies import parse_cookie
from ..sessions.dbsc import BINDING_KEY, BOUND_CLAIM
from ..tokens import Key
from ..tokens.dbsc import make_proof
from . import pages
from .context import (
    DemoConfig,
    DemoContext,
    demo_of,
    headers_of,
    identity_of,
    now,
    read_form,
    redirect,
)
from .protection import csrf_field

__all__ = ["DbscAgent", "bound_status", "replay_now", "routes", "walk_through"]

Endpoint = Callable[[Request], Awaitable[Response]]
ASGIApp = Callable[..., Awaitable[None]]

_LOOT_KEY = "dbsc_loot"
_MAX_LOOT = 256
_HOST = "demo.invalid"


# -- calling the app as another client --------------------------------------------------------


async def call(
    app: ASGIApp, method: str, path: str, headers: Mapping[str, str], body: bytes = b""
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One in-process HTTPS request to ``app``: ``(status, headers, body)``."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"host", _HOST.encode()))
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw,
        "client": ("198.51.100.7", 40000),
        "server": (_HOST, 443),
    }
    sent = False
    out: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a disconnect never comes: the app answers first
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = [(k.decode("latin-1"), v.decode("latin-1"))
                              for k, v in message.get("headers", [])]  # fmt: skip
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _who(status: int, body: bytes) -> str:
    if status == 200:
        match = re.search(rb'"name":"([^"]*)"', body)
        return f"200: in as {match.group(1).decode() if match else '?'}"
    match = re.search(rb'"error":"([^"]*)"', body)
    return f"{status}: refused ({match.group(1).decode() if match else 'no session'})"


# -- the page section ---------------------------------------------------------------------------


def bound_status(identity: Identity, mode: str) -> tuple[bool, str]:
    """Whether this browser's session is bound to a device key, in a sentence."""
    if mode == "jwt":
        return False, (
            "jwt mode keeps no server-side session, so there is nothing to bind a device "
            "key to: DBSC works in session and hybrid mode."
        )
    binding = identity.claims.get(BINDING_KEY)
    jkt = identity.claims.get(BOUND_CLAIM)
    if isinstance(binding, Mapping):
        jkt = binding.get("jkt")
    if isinstance(jkt, str):
        return True, (
            f"Bound: this browser proved it holds the private key with thumbprint {jkt} "
            "(RFC 7638). Its short-lived bound cookie is renewed only by a fresh signature "
            "of that key."
        )
    return False, (
        "Not bound: this browser did not register a device key. DBSC needs Chrome 145 or "
        "later with a TPM (Windows) or with chrome://flags/#enable-bound-session-credentials"
        "-software-keys-for-manual-testing, and HTTPS (or localhost). Without it the "
        "session works as before, and a copied cookie works as long as the session."
    )


def _loot(request: Request) -> OrderedDict[str, tuple[str, str, float]]:
    state = request.app.state
    loot: OrderedDict[str, tuple[str, str, float]] | None = getattr(state, _LOOT_KEY, None)
    if loot is None:
        loot = OrderedDict()
        setattr(state, _LOOT_KEY, loot)
    return loot


def _long_lived_only(demo: DemoContext, cookie_header: str) -> str:
    """The stolen cookies less the one DBSC keeps short: what a thief has once it lapses."""
    binding = demo.authenticator.binding
    bound = binding.bound_cookie_name if binding is not None else ""
    kept = {k: v for k, v in parse_cookie(cookie_header).items() if k != bound}
    return "; ".join(f"{k}={v}" for k, v in kept.items())


async def _replay(request: Request, cookie_header: str) -> str:
    # Like a thief's browser: it follows hybrid mode's refresh redirect with its copy.
    status, body = await _thief(request.app, parse_cookie(cookie_header), "/api/me")
    return _who(status, body)


async def replay_now(request: Request) -> list[tuple[str, str, int, str]] | str:
    """For the ``/theft`` page: this request's cookies replayed by another client now.

    ``(what the thief sends, binding, status, answer)`` for the whole copy and for the
    long-lived cookie alone; a sentence instead for a guest or jwt mode.
    """
    demo = demo_of(request)
    identity = identity_of(request)
    if identity is None:
        return "Sign in first: the demonstration copies your browser's cookies."
    bound, sentence = bound_status(identity, demo.config.mode)
    if demo.config.mode == "jwt" or demo.authenticator.binding is None:
        return sentence
    cookie_header = headers_of(request).get("cookie", "")
    rows = []
    for what, header in (
        ("every cookie this browser sent", cookie_header),
        ("the same without the bound cookie", _long_lived_only(demo, cookie_header)),
    ):
        status, body = await _thief(request.app, parse_cookie(header), "/api/me")
        rows.append((what, "DBSC" if bound else "none", status, _who(status, body)))
    return rows


async def theft_page(request: Request) -> Response:
    demo = demo_of(request)
    identity = identity_of(request)
    mode = demo.config.mode
    if identity is None:
        body = (
            "<h1>Cookie theft and DBSC</h1><p>Log in first: this page copies the cookies of "
            'your logged-in browser. <a href="/">Log in</a></p>'
        )
        return HTMLResponse(pages.page("Cookie theft", body, mode=mode), status_code=401)
    bound, sentence = bound_status(identity, mode)
    parts = ["<h1>Cookie theft and DBSC</h1>", f"<div class=box><p>{_e(sentence)}</p></div>"]
    binding = demo.authenticator.binding
    if binding is not None:
        lifetime = (
            demo.config.access_ttl if mode == "hybrid" else binding.policy.bound_ttl
        )
        parts.append(
            f"<p>The bound cookie ({_e(binding.bound_cookie_name)}) lives "
            f"{_e(pages.duration(lifetime))}; the browser renews it at "
            f"{_e(binding.refresh_path)} with a signature of its key, and holds its "
            "requests back while it does.</p>"
        )
    loot_id = request.query_params.get("loot", "")
    loot = _loot(request).get(loot_id)
    if loot is not None and loot[0] == identity.user_id:
        _, cookie_header, stolen_at = loot
        age = int(now(demo) - stolen_at)
        rows = [
            ("every cookie sent here", await _replay(request, cookie_header)),
            ("the long-lived cookie alone", await _replay(
                request, _long_lived_only(demo, cookie_header))),
        ]  # fmt: skip
        table = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td></tr>"
                        for a, b in rows)  # fmt: skip
        parts.append(
            f"<h2>Replayed by another client, {age} s after the theft</h2>"
            f"<table><tr><th>what the thief sends</th><th>GET /api/me</th></tr>{table}</table>"
            + pages.form(
                "/theft/dbsc/replay",
                pages.hidden_input("loot", loot_id),
                "Replay the stolen cookies again",
                hidden=csrf_field(request),
            )
            + (
                "<p>Hybrid mode: the refresh cookie is sent only to its own path, so this "
                "copy lacks it; an infostealer takes the whole jar (<code>coatcheck theft "
                "--dbsc</code> does).</p>"
                if mode == "hybrid"
                else ""
            )
            + (
                "<p>Bound: once the bound cookie has run out the copy is refused, while this "
                "browser, which holds the key, carries on. Reload this page to see it.</p>"
                if bound
                else "<p>Not bound: the copy keeps working for as long as the session "
                "lives. That is today's cookie theft.</p>"
            )
        )
    parts.append(
        pages.form(
            "/theft/dbsc/steal",
            "",
            "Steal this browser's cookies",
            hidden=csrf_field(request),
        )
    )
    parts.append(
        "<p>The server copies the Cookie header your browser just sent and replays it from "
        "another client with no key. Run <code>coatcheck theft --dbsc</code> for the same "
        "story in session and hybrid mode, with and without DBSC.</p>"
    )
    text = pages.page("Cookie theft and DBSC", "".join(parts), mode=mode)
    return HTMLResponse(text, headers={"cache-control": "no-store"})


async def steal(request: Request) -> Response:
    demo = demo_of(request)
    identity = identity_of(request)
    await read_form(request)  # the CSRF middleware read the token; nothing else is needed
    if identity is None:
        return redirect("/theft/dbsc")
    loot = _loot(request)
    loot_id = secrets.token_urlsafe(16)
    loot[loot_id] = (identity.user_id, headers_of(request).get("cookie", ""), now(demo))
    while len(loot) > _MAX_LOOT:
        loot.popitem(last=False)
    return redirect(f"/theft/dbsc?loot={loot_id}")


async def replay(request: Request) -> Response:
    fields = await read_form(request)
    loot_id = fields.get("loot", "")
    safe = loot_id if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", loot_id) else ""
    return redirect(f"/theft/dbsc?loot={safe}")


routes: list[tuple[str, Endpoint, list[str]]] = [
    ("/theft/dbsc", theft_page, ["GET"]),
    ("/theft/dbsc/steal", steal, ["POST"]),
    ("/theft/dbsc/replay", replay, ["POST"]),
]


# -- the walk-through -----------------------------------------------------------------------------


@dataclass
class DbscAgent:
    """A small DBSC user agent for the walk-through: a cookie jar, a key, registration
    and refresh as the draft describes (the tests carry an independent one)."""

    app: ASGIApp
    clock: FrozenClock
    dbsc: bool = True
    jar: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    key: Key | None = None
    session_id: str = ""
    refresh_url: str = ""
    credential: str = ""
    challenge: str | None = None
    log: list[str] = field(default_factory=list)

    def cookies(self) -> str:
        live = {k: v for k, (v, exp) in self.jar.items() if exp is None or exp > self.clock.now()}
        return "; ".join(f"{k}={v}" for k, v in live.items())

    def _store(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if name.lower() != "set-cookie":
                continue
            first, *attributes = [p.strip() for p in value.split(";")]
            key, _, val = first.partition("=")
            expires: float | None = None
            for attribute in attributes:
                if attribute.lower().startswith("max-age="):
                    expires = self.clock.now() + int(attribute[8:])
            if not val or (expires is not None and expires <= self.clock.now()):
                self.jar.pop(key, None)
            else:
                self.jar[key] = (val, expires)

    async def request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                      body: bytes = b"") -> tuple[int, list[tuple[str, str]], bytes]:  # fmt: skip
        """A request as a browser makes it: refresh first if needed, follow redirects."""
        for _ in range(4):
            status, out, data = await self._one(method, path, headers, body)
            location = dict((k.lower(), v) for k, v in out).get("location")
            if status not in (302, 303, 307) or location is None:
                break
            path = location
            if status == 303:
                method, body, headers = "GET", b"", None
        return status, out, data

    async def _one(self, method: str, path: str, headers: Mapping[str, str] | None,
                   body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:  # fmt: skip
        if self.dbsc and self.key is not None and path != self.refresh_url:
            held = self.jar.get(self.credential)
            if held is None or (held[1] is not None and held[1] <= self.clock.now()):
                await self._refresh()
        sent = {"cookie": self.cookies(), **(headers or {})}
        status, out, data = await call(self.app, method, path, sent, body)
        self._store(out)
        for name, value in out:
            lowered = name.lower()
            if lowered == "secure-session-registration" and self.dbsc:
                await self._register(value)
            elif lowered == "secure-session-challenge":
                self.challenge = value.split('"')[1]
        return status, out, data

    async def _register(self, header: str) -> None:
        path = re.search(r'path="([^"]*)"', header)
        challenge = re.search(r'challenge="([^"]*)"', header)
        if path is None or challenge is None:
            return
        key = Key.generate("ES256")
        proof = make_proof(key, challenge.group(1), registration=True)
        status, out, data = await call(self.app, "POST", path.group(1),
                                       {"cookie": self.cookies(),
                                        "secure-session-response": proof})  # fmt: skip
        self._store(out)
        self.log.append(f"POST {path.group(1)} -> {status}")
        if status == 200:
            body = json.loads(data)
            self.key = key
            self.session_id = body["session_identifier"]
            self.refresh_url = body["refresh_url"]
            self.credential = body["credentials"][0]["name"]
            for name, value in out:
                if name.lower() == "secure-session-challenge":
                    self.challenge = value.split('"')[1]

    async def _refresh(self) -> None:
        if self.key is None:
            return
        for _ in range(2):
            headers = {"cookie": self.cookies(), "sec-secure-session-id": self.session_id}
            if self.challenge is not None:
                headers["secure-session-response"] = make_proof(
                    self.key, self.challenge, registration=False
                )
            status, out, _ = await call(self.app, "POST", self.refresh_url, headers)
            self._store(out)
            self.log.append(f"POST {self.refresh_url} -> {status}")
            for name, value in out:
                if name.lower() == "secure-session-challenge":
                    self.challenge = value.split('"')[1]
            if status != 403:
                return


async def _thief(app: ASGIApp, cookies: dict[str, str], path: str) -> tuple[int, bytes]:
    """Another machine with a copy of the cookies: it follows redirects like a browser
    (hybrid mode's refresh), keeps the cookies it is given, but has no device key."""
    for _ in range(4):
        header = "; ".join(f"{k}={v}" for k, v in cookies.items())
        status, out, body = await call(app, "GET", path, {"cookie": header})
        for name, value in out:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                val = rest.partition(";")[0]
                if val:
                    cookies[key] = val
                else:
                    cookies.pop(key, None)
        location = dict((k.lower(), v) for k, v in out).get("location")
        if status not in (302, 303, 307) or location is None:
            return status, body
        path = location
    return status, body


async def _login(agent: DbscAgent, username: str, password: str) -> int:
    _, _, page = await agent.request("GET", "/")
    token = re.search(rb'name="csrf_token" value="([^"]*)"', page)
    form = (
        f"username={username}&password={password}&remember=on"
        f"&csrf_token={token.group(1).decode() if token else ''}"
    ).encode()
    status, _, _ = await agent.request(
        "POST",
        "/login",
        {
            "content-type": "application/x-www-form-urlencoded",
            "origin": f"https://{_HOST}",
            "sec-fetch-site": "same-origin",
        },
        form,
    )
    return status


async def _story(
    mode: str, bound_ttl: int, emit: Callable[[str], None], make_app: Callable[[DemoConfig], Any]
) -> bool:
    clock = FrozenClock(time.time())
    config = DemoConfig(
        mode=mode, store_url="memory://", users_path=":memory:", https=True, clock=clock,
        bound_ttl=timedelta(seconds=bound_ttl),
    )  # fmt: skip
    app = make_app(config)
    demo: DemoContext = app.state.demo
    await asyncio.to_thread(demo.users.register, "alice", "correct horse battery", "Alice")
    lifetime = int(config.access_ttl.total_seconds()) if mode == "hybrid" else bound_ttl
    after = lifetime + 30
    ok = True

    async def me(cookies: dict[str, str]) -> tuple[int, str]:
        status, body = await _thief(app, cookies, "/api/me")
        return status, _who(status, body)

    emit(f"== {mode} mode: the bound cookie lives {lifetime} s (a simulated clock) ==")
    for dbsc in (True, False):
        agent = DbscAgent(app, clock, dbsc=dbsc)
        kind = "Alice's browser with DBSC" if dbsc else "Alice's browser WITHOUT DBSC"
        await _login(agent, "alice", "correct horse battery")
        registered = (
            f"; it registers a P-256 key: {agent.log[-1]}"
            if agent.log
            else "; it ignores Secure-Session-Registration"
        )
        emit(f"{kind} logs in{registered}")
        stolen = parse_cookie(agent.cookies())
        emit(f"  malware copies every cookie ({', '.join(sorted(stolen))}) to another machine")
        status, who = await me(dict(stolen))
        emit(f"  the thief, at once:             GET /api/me -> {who}")
        ok &= status == 200
        clock.advance(after)
        status, who = await me(dict(stolen))
        emit(f"  the thief, {after} s later:       GET /api/me -> {who}")
        ok &= status == (401 if dbsc else 200)
        if dbsc:
            header = "; ".join(f"{k}={v}" for k, v in stolen.items())
            status, _, _ = await call(app, "POST", agent.refresh_url, {
                "cookie": header, "sec-secure-session-id": agent.session_id})  # fmt: skip
            emit(f"  the thief asks for a refresh: POST {agent.refresh_url} -> {status}, a "
                 "challenge it cannot sign without the key")  # fmt: skip
            ok &= status == 403
        # Past hybrid mode's 10 s grace for a replaced refresh token.
        clock.advance(15)
        before = len(agent.log)
        status, _, body = await agent.request("GET", "/api/me")
        done = "; ".join(agent.log[before:]) or "no refresh needed"
        emit(f"  Alice's browser, {after + 15} s later: GET /api/me -> {_who(status, body)} "
             f"({done})")  # fmt: skip
        if dbsc or mode == "session":
            ok &= status == 200
        elif status == 200:
            # Hybrid mode lets a retired refresh token fetch the same successor for a while
            # (a refresh whose answer was lost): the thief and Alice now share the session.
            emit("  (the thief refreshed first with the copied refresh token; Alice's retired "
                 "one still fetched the same new pair, so both are in: the theft succeeds "
                 "until someone logs out; with DBSC the copy never refreshes at all)")  # fmt: skip
        else:
            # Reuse detection (RFC 9700 §4.14.2) revoked the session: detected, not prevented.
            emit("  (the thief's refresh came first, so Alice's looked like a reuse and the "
                 "whole session was revoked: detected after the fact, Alice logged out; with "
                 "DBSC the copy never refreshes at all)")  # fmt: skip
            ok &= status == 401
    await demo.store.close()
    demo.users.close()
    return ok


def walk_through(
    modes: tuple[str, ...],
    *,
    make_app: Callable[[DemoConfig], Any],
    bound_ttl: int = 120,
    emit: Callable[[str], None] = print,
) -> bool:
    """Tell the theft story for each mode; whether every step went as DBSC promises.

    ``make_app`` is :func:`coatcheck.demo.create_app` (passed in: the app is built from
    this module's routes, so it cannot import it back).
    """
    ok = True
    for mode in modes:
        ok &= asyncio.run(_story(mode, bound_ttl, emit, make_app))
        emit("")
    return ok
