"""The theft, shown: a credential copied to another client, with and without binding.

The ``/theft`` page is made of sections, one per kind of binding (:data:`SECTIONS`);
each runs its own demonstration and returns :class:`TheftStep` rows. The DPoP section
mints two API tokens for the signed-in user, one plain bearer token and one bound to
a DPoP key the "owner" holds, then plays the owner and a thief against this very app
(in-process, through its whole middleware stack): the copied bearer token works for
the thief, the copied DPoP-bound token does not, whichever way it is sent. The same
scenario runs over the network with ``coatcheck theft --url ...``
(:func:`dpop_theft`, driven by :mod:`coatcheck.cli.theft_cmd`). The DBSC section replays
the browser's own cookies from another client (:mod:`coatcheck.demo.theft_dbsc`, which
also has the ``/theft/dbsc`` page that keeps the copy to replay it later).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..auth import HybridStrategy
from ..clock import Clock, SystemClock
from ..dpop_client import DPoPAuth
from ..tokens.dpop import make_proof
from . import pages
from .context import DemoContext, demo_of, identity_of, read_form
from .routes import hidden_fields
from .theft_dbsc import replay_now

__all__ = ["SECTIONS", "Minted", "TheftSection", "TheftStep", "dpop_theft", "routes"]

_HEADERS = {"cache-control": "no-store"}
_SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True, slots=True)
class TheftStep:
    """One request of a demonstration and what the server answered.

    ``thief_got_in`` is True when a thief's request was served (the theft worked),
    False when it was refused, None for the owner's own requests.
    """

    binding: str
    actor: str
    action: str
    sent: str
    status: int
    answer: str
    thief_got_in: bool | None


@dataclass(frozen=True, slots=True)
class Minted:
    """An access token (and hybrid mode's refresh token) a client holds."""

    token: str
    token_type: str
    refresh_token: str | None = None


def _short(token: str) -> str:
    return token[:12] + "..." if len(token) > 16 else token


def _answer(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    if "error" in body:
        return str(body["error"])
    if "username" in body:
        return f"served as {body.get('username')} (via {body.get('via')})"
    if "token" in body or "access_token" in body:
        return f"a new {body.get('token_type', '?')} pair for the thief"
    return "ok"


async def dpop_theft(
    client: httpx.AsyncClient,
    *,
    plain: Minted | None,
    bound: Minted,
    owner: DPoPAuth,
    clock: Clock = _SYSTEM_CLOCK,
) -> list[TheftStep]:
    """The DPoP demonstration against the app ``client`` talks to; the steps in order.

    ``plain`` is a bearer token (``None`` when the server requires binding), ``bound`` a
    token bound to ``owner``'s key. The thief is another client that copied them (its
    proofs are dated by ``clock``).
    """
    steps: list[TheftStep] = []

    async def step(binding: str, actor: str, action: str, sent: str, response: httpx.Response,
                   ) -> httpx.Response:
        got_in = None if actor == "owner" else response.status_code < 300
        steps.append(TheftStep(binding, actor, action, sent, response.status_code,
                               _answer(response), got_in))
        return response

    if plain is not None:
        bearer = {"Authorization": f"Bearer {plain.token}"}
        await step("none", "owner", "calls the API with its bearer token",
                   f"Authorization: Bearer {_short(plain.token)}",
                   await client.get("/api/me", headers=bearer))
        await step("none", "thief", "sends the copied bearer token from another machine",
                   f"Authorization: Bearer {_short(plain.token)}",
                   await client.get("/api/me", headers=bearer))
        if plain.refresh_token is not None:
            await step("none", "thief", "trades the copied refresh token for a new pair",
                       "POST /api/refresh {refresh_token}",
                       await client.post("/api/refresh",
                                         json={"refresh_token": plain.refresh_token}))
    owner.access_token = bound.token
    captured = client.build_request("GET", "/api/me")
    next(owner.auth_flow(captured))  # the owner's request, with its one-time proof
    await step("DPoP", "owner", "calls the API with its token and a fresh proof of its key",
               f"Authorization: DPoP {_short(bound.token)} + DPoP: <proof>",
               await client.send(captured))
    await step("DPoP", "thief", "sends the copied token as a bearer token",
               f"Authorization: Bearer {_short(bound.token)}",
               await client.get("/api/me", headers={"Authorization": f"Bearer {bound.token}"}))
    await step("DPoP", "thief", "sends it with a proof signed by its own key",
               f"Authorization: DPoP {_short(bound.token)} + DPoP: <proof of another key>",
               await client.get("/api/me", auth=DPoPAuth(access_token=bound.token, clock=clock)))
    await step("DPoP", "thief", "replays the owner's request exactly as captured",
               "the same Authorization and DPoP headers again",
               await client.send(captured))
    if bound.refresh_token is not None:
        body = {"refresh_token": bound.refresh_token}
        await step("DPoP", "thief", "trades the copied refresh token for a new pair",
                   "POST /api/refresh {refresh_token} (no proof)",
                   await client.post("/api/refresh", json=body))
        await step("DPoP", "thief", "tries that with a proof of its own key",
                   "POST /api/refresh {refresh_token} + DPoP: <proof of another key>",
                   await client.post("/api/refresh", json=body, auth=DPoPAuth(clock=clock)))
    await step("DPoP", "owner", "carries on as if nothing happened",
               f"Authorization: DPoP {_short(bound.token)} + DPoP: <new proof>",
               await client.get("/api/me", auth=owner))
    return steps


# -- the page -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TheftSection:
    """One binding's part of the page: its explanation and its demonstration."""

    key: str
    title: str
    intro: str  # trusted HTML
    run: Callable[[Request], Awaitable[list[TheftStep] | str]]


def _origin(request: Request, demo: DemoContext) -> str:
    return demo.config.public_origin or f"{request.url.scheme}://{request.url.netloc}"


async def _run_dpop(request: Request) -> list[TheftStep] | str:
    demo = demo_of(request)
    identity = identity_of(request)
    if identity is None:
        return "Sign in first: the demonstration mints API tokens for you."
    if demo.dpop is None:
        return "DPoP is turned off on this demo (--no-dpop)."
    origin = _origin(request, demo)
    owner = DPoPAuth(clock=demo.config.clock)
    authenticator = demo.authenticator
    data = {"username": identity.claims.get("username", ""), "name": identity.name}
    # Minted as the API's login would: one without a proof, one with the owner's.
    plain: Minted | None = None
    if not demo.dpop.policy.required:  # else the API hands out no plain token at all
        issued = await authenticator.login(
            identity.user_id, headers={}, data=data, persistent=False, revoke_previous=False
        )
        plain = Minted(issued.token, issued.token_type, issued.refresh_token)
    proof_headers = {
        "host": origin.partition("://")[2], ":method": "POST",
        ":scheme": origin.partition("://")[0], ":path": "/api/login",
        "dpop": make_proof(owner.key, method="POST", url=origin + "/api/login",
                           now=demo.config.clock.now()),
    }  # fmt: skip
    issued = await authenticator.login(
        identity.user_id, headers=proof_headers, data=data, persistent=False,
        revoke_previous=False,
    )  # fmt: skip
    bound = Minted(issued.token, issued.token_type, issued.refresh_token)
    transport = httpx.ASGITransport(app=request.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=origin) as client:
            return await dpop_theft(
                client, plain=plain, bound=bound, owner=owner, clock=demo.config.clock
            )
    finally:
        # The demonstration's sessions end here (a JWT cannot be revoked; none was shown).
        strategy = authenticator.strategy
        for minted in (plain, bound):
            if minted is not None and strategy.name != "jwt":
                if isinstance(strategy, HybridStrategy) and minted.refresh_token:
                    await strategy.revoke(minted.refresh_token)
                else:
                    await strategy.revoke(minted.token)


_DPOP_INTRO = (
    "<p>A native app or script that holds an API token can lose it: read from a file or "
    "a log, taken by malware. With <b>DPoP</b> (RFC 9449) the token is bound to a key "
    "that stays with the app: every request carries a fresh proof signed by that key "
    "(the <code>DPoP</code> header), and the token names the key's thumbprint "
    "(<code>cnf.jkt</code>, or in the session). A copy of the token alone is refused.</p>"
    "<p>Running it mints two API tokens for you, a plain bearer token and one bound to "
    "a key generated for the 'owner', then plays the owner and a thief against this "
    "app. Afterwards their sessions are ended.</p>"
)

async def _run_dbsc(request: Request) -> list[TheftStep] | str:
    rows = await replay_now(request)
    if isinstance(rows, str):
        return rows
    return [
        TheftStep(binding, "thief", f"replays {what} from another machine", "Cookie: ...",
                  status, answer, status < 300)
        for what, binding, status, answer in rows
    ]  # fmt: skip


_DBSC_INTRO = (
    "<p>A browser's cookies can be copied too: by malware that reads the cookie jar, from "
    "a HAR file or a proxy log. With <b>Device Bound Session Credentials</b> (W3C draft, "
    "Chrome 145+) the browser keeps a key per session that never leaves the device, and "
    "the server gives it a short-lived bound cookie that only a fresh signature of that "
    "key renews. A copy works until the bound cookie runs out, then never again.</p>"
    "<p>Running it replays the cookies your browser sends with the button, from another "
    "client without the key. To watch the copy die once the bound cookie has run out, "
    'use <a href="/theft/dbsc">/theft/dbsc</a>, which keeps the copy and replays it '
    "later; <code>coatcheck theft --dbsc</code> tells the whole story.</p>"
)

#: The page's sections, one per kind of binding, in order.
SECTIONS: list[TheftSection] = [
    TheftSection("dpop", "API tokens: DPoP", _DPOP_INTRO, _run_dpop),
    TheftSection("dbsc", "Browser cookies: DBSC", _DBSC_INTRO, _run_dbsc),
]


def _table(steps: Sequence[TheftStep]) -> str:
    rows = []
    for s in steps:
        if s.thief_got_in is None:
            verdict = "owner"
        else:
            verdict = "<b class=bad>the theft works</b>" if s.thief_got_in else (
                "<b class=good>refused</b>"
            )
        rows.append(
            f"<tr><td>{html.escape(s.binding)}</td><td>{html.escape(s.actor)}</td>"
            f"<td>{html.escape(s.action)}<br><code>{html.escape(s.sent)}</code></td>"
            f"<td>{s.status}</td><td>{html.escape(s.answer)}</td><td>{verdict}</td></tr>"
        )
    return (
        "<table><tr><th>binding</th><th>who</th><th>request</th><th>status</th>"
        "<th>answer</th><th></th></tr>" + "".join(rows) + "</table>"
    )


def _section(request: Request, section: TheftSection, result: list[TheftStep] | str | None,
             ) -> str:
    run = pages.form("/theft", pages.hidden_input("section", section.key),
                     "Run the theft", hidden=hidden_fields(request))
    shown = ""
    if isinstance(result, str):
        shown = f'<div class="box err">{html.escape(result)}</div>'
    elif result is not None:
        shown = _table(result)
    return (f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>'
            f"{section.intro}{run}{shown}</section>")


_CSS = "<style>.good{color:#070}.bad{color:#a00}td{vertical-align:top}</style>"


def _page(request: Request, results: dict[str, list[TheftStep] | str]) -> Response:
    demo = demo_of(request)
    body = (
        "<h1>A stolen credential, with and without binding</h1>"
        + "".join(_section(request, s, results.get(s.key)) for s in SECTIONS)
    )
    return HTMLResponse(pages.page("theft", _CSS + body, mode=demo.config.mode),
                        headers=_HEADERS)


async def theft_page(request: Request) -> Response:
    """GET /theft: the sections and their buttons."""
    return _page(request, {})


async def theft_run(request: Request) -> Response:
    """POST /theft: run one section's demonstration and show its steps."""
    fields = await read_form(request)
    section = next((s for s in SECTIONS if s.key == fields.get("section")), None)
    if section is None:
        return _page(request, {})
    return _page(request, {section.key: await section.run(request)})


routes: list[tuple[str, Any, list[str]]] = [
    ("/theft", theft_page, ["GET"]),
    ("/theft", theft_run, ["POST"]),
]
