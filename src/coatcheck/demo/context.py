"""What every demo page shares: the configuration, the context built once at start-up,
and the request helpers (identity, headers, bodies, passwords).

The routes import from here and :mod:`coatcheck.demo.app` assembles them, so imports
run one way: app -> routes -> context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from argon2 import PasswordHasher
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..adapters.asgi import IDENTITY_KEY, request_headers
from ..auth import Authenticator, BearerTransport, CookieTransport, DPoPTransport, Identity
from ..bodies import content_length, parse_form, parse_json
from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, InputError, PayloadTooLarge
from ..policies import SessionPolicy, validate_origin
from ..ratelimit import LoginLimiter
from ..revocation import RevocationFeed
from ..sessions import SessionManager, SessionStore, StoreSessions
from ..tokens import KeyRing
from . import pages
from .users import HashingBusy, PasswordWork, User, UserDirectory, UsernameTaken

if TYPE_CHECKING:  # prometheus_client is imported only when --metrics asks for it
    from ..observe.prometheus import PrometheusObserver

__all__ = [
    "MAX_BODY",
    "MODE_NAMES",
    "DemoConfig",
    "DemoContext",
    "DemoError",
    "check_password",
    "client_ip",
    "demo_of",
    "hash_work",
    "headers_of",
    "identity_of",
    "now",
    "read_body",
    "read_form",
    "read_json",
    "redirect",
    "register_user",
    "wants_json",
]

T = TypeVar("T")

#: The demo's modes; :data:`coatcheck.demo.app.MODES` holds a builder for each.
MODE_NAMES = ("session", "jwt", "hybrid")
#: Largest request body the demo reads (bytes); more is refused with 413.
MAX_BODY = 64 * 1024


class DemoError(Exception):
    """An HTTP refusal specific to the demo (413, 415, 409, 503 ...) with a stable code.

    ``retry_after`` (seconds) becomes a Retry-After header (RFC 9110 §10.2.3).
    """

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConfig:
    """How to run the demo.

    ``https`` means the demo is served over HTTPS (behind a TLS proxy): cookies
    get Secure and the ``__Host-`` prefix (``__Secure-`` for hybrid mode's refresh
    cookie, which has a narrow Path). In hybrid mode ``access_ttl`` is the access
    token's lifetime and ``feed_url`` the revocation feed (default: the store's
    Redis or PostgreSQL server, none for SQLite and memory). On plain HTTP they
    cannot be Secure, or the browser would drop them on any host but localhost.
    ``fresh_login`` is how recent a login must be for sensitive actions (changing
    the password, logging out everywhere). ``dpop`` accepts DPoP proofs on the API
    (RFC 9449): a login or refresh with a proof gets a key-bound token;
    ``dpop_required`` refuses logins without one and unbound bearer tokens;
    ``dpop_nonce`` makes proofs carry a server nonce; ``public_origin`` is the origin
    browsers and API clients use when a proxy stands in front (the CSRF check compares
    ``Origin`` with it; DPoP proofs name it). ``dbsc``
    offers browsers Device Bound Session Credentials in session and hybrid mode;
    ``bound_ttl`` is session mode's bound-cookie lifetime (hybrid mode's is
    ``access_ttl``). ``metrics`` serves Prometheus metrics at ``/metrics`` (every
    :mod:`coatcheck.events` counted, the store timed). ``clock`` is every time the demo
    reads (tests pass a FrozenClock).
    """

    mode: str = "session"
    store_url: str = "sqlite:///coatcheck.db"
    users_path: str | None = None
    https: bool = False
    alg: str = "ES256"
    jwt_ttl: timedelta = timedelta(days=7)
    access_ttl: timedelta = timedelta(minutes=5)
    feed_url: str | None = None
    session_policy: SessionPolicy = field(default_factory=SessionPolicy)
    hasher: PasswordHasher | None = None
    fresh_login: timedelta = timedelta(minutes=10)
    dpop: bool = True
    dpop_required: bool = False
    dpop_nonce: bool = False
    public_origin: str | None = None
    dbsc: bool = True
    bound_ttl: timedelta = timedelta(minutes=2)
    metrics: bool = False
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        if self.mode not in MODE_NAMES:
            raise ConfigurationError(f"mode must be one of {', '.join(sorted(MODE_NAMES))}")
        if self.public_origin is not None:
            # Now, not at the first request (Starlette builds its middleware lazily).
            validate_origin(self.public_origin)


@dataclass(slots=True)
class DemoContext:
    """Everything the routes share, built once at start-up."""

    config: DemoConfig
    users: UserDirectory
    authenticator: Authenticator
    cookie: CookieTransport
    bearer: BearerTransport
    store: SessionStore
    manager: SessionManager | None
    sessions: StoreSessions
    keys: KeyRing | None
    explainer: pages.Explainer
    feed: RevocationFeed | None = None
    limiter: LoginLimiter | None = None
    dpop: DPoPTransport | None = None
    #: The Prometheus metrics behind /metrics (``--metrics``), else ``None``.
    metrics: PrometheusObserver | None = None
    #: Bounds password hashing (argon2id's memory) per process: see demo/users.py.
    hashing: PasswordWork = field(default_factory=PasswordWork)


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/.well-known/")) or path == "/healthz"


# -- request helpers shared by the routes ---------------------------------------------------


def demo_of(request: Request) -> DemoContext:
    demo: DemoContext = request.app.state.demo
    return demo


def identity_of(request: Request) -> Identity | None:
    identity = request.scope.get(IDENTITY_KEY)
    return identity if isinstance(identity, Identity) else None


def headers_of(request: Request) -> Mapping[str, str]:
    return request_headers(request.scope)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def read_body(request: Request) -> bytes:
    """The request body, up to :data:`MAX_BODY`. Raises PayloadTooLarge (413), InputError."""
    declared = content_length(headers_of(request).get("content-length"))
    if declared is not None and declared > MAX_BODY:
        raise PayloadTooLarge(f"the body is over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"the body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return headers_of(request).get("content-type", "").partition(";")[0].strip().lower()


async def read_form(request: Request, *, allow_nul: bool = False) -> dict[str, str]:
    """An urlencoded form as ``{field: first value}``, every value valid text
    (:func:`coatcheck.bodies.parse_form`; NUL only with ``allow_nul``). Raises
    InvalidText, InputError, DemoError 415, PayloadTooLarge."""
    media = _media_type(request)
    body = await read_body(request)
    # An empty POST (a bare logout button, a script) may come without a Content-Type.
    if media != "application/x-www-form-urlencoded" and (media or body):
        raise DemoError(
            415, "unsupported_media_type", "send the form as application/x-www-form-urlencoded"
        )
    return parse_form(body, max_fields=32, allow_nul=allow_nul)


async def read_json(request: Request) -> dict[str, Any]:
    """A JSON object body, every string valid text (:func:`coatcheck.bodies.parse_json`).

    Raises InvalidText, InputError (400), PayloadTooLarge (413), DemoError (415).
    """
    media = _media_type(request)
    if media != "application/json" and not media.endswith("+json"):
        raise DemoError(415, "unsupported_media_type", "send a JSON body as application/json")
    body = await read_body(request)
    if not body.strip():
        raise InputError("the body is empty; send a JSON object")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InputError("the JSON body must be an object")
    return data


async def hash_work(demo: DemoContext, call: Callable[..., T], *args: object) -> T:
    """``call(*args)`` (argon2 work) in a worker thread, within the demo's hashing bound.

    Raises DemoError 503 ``server_busy`` with Retry-After when no slot frees in time.
    """
    try:
        return await demo.hashing.run(call, *args)
    except HashingBusy as exc:
        raise DemoError(503, "server_busy", str(exc), retry_after=exc.retry_after) from exc


async def check_password(demo: DemoContext, username: object, password: object) -> User | None:
    # argon2 takes tens of milliseconds of CPU and 64 MiB: off the loop, and bounded.
    return await hash_work(demo, demo.users.check, username, password)


async def register_user(
    demo: DemoContext, username: object, password: object, name: object
) -> User:
    try:
        return await hash_work(demo, demo.users.register, username, password, name)
    except UsernameTaken as exc:
        raise DemoError(409, "username_taken", "that username is already taken") from exc


def redirect(url: str, set_headers: list[tuple[str, str]] | None = None) -> Response:
    response = RedirectResponse(url, status_code=303)
    for name, value in set_headers or ():
        response.headers.append(name, value)
    return response


def now(demo: DemoContext) -> float:
    return demo.config.clock.now()

