"""Typed events and the observers that hear them: metrics and audit logs.

The core tells what happened (a login, a refusal, a store call ...) by emitting one of
the frozen dataclasses below; whoever wants to know subscribes an :class:`Observer`
(any callable taking an event). :mod:`coatcheck.observe.prometheus` and
:mod:`coatcheck.observe.otel` are such observers; an app's audit log is another::

    from coatcheck import events

    def audit(event: events.Event) -> None:
        if isinstance(event, events.LoginSucceeded):
            log.info("login user=%s ip=%s", event.user.reveal(), event.ip.reveal())

    events.subscribe(audit)                       # every kind of event
    events.subscribe(audit, events.RefreshReuseDetected, events.CsrfRefused)  # or some

Events are process-wide, like :mod:`logging`: one subscription hears every
authenticator, manager and adapter of the process (ASGI, WSGI, Flask, FastAPI alike,
since they all go through the same core). Observers run inline, in the request that
caused the event, on its thread: keep them quick (an audit log that writes to a
database should put the event on a queue). An observer that raises is logged and
skipped; it never fails the request, and the others still hear the event.

**Nobody listening costs nothing.** Each emitting place first asks :func:`observed`
(a set lookup) and builds the event only when some observer wants its kind; the
per-request path (authenticating a request) emits nothing at all. Store calls are
timed only through a store wrapped in :class:`~coatcheck.stores.ObservedStore`.

**No token, id or secret in an event.** Plain fields hold only values of a small,
fixed set (a mode, an error code, a cookie's role, a store operation, a configured
channel name), counts, sizes and durations: safe as metric labels. What is about a
person (the user id, the name typed at a login, the client's address) comes wrapped
in :class:`Concealed`, whose ``repr`` and ``str`` show nothing: an audit hook calls
``reveal()`` on purpose; a metric, a ``repr(event)`` or a log line of the event
never shows it. Session ids, tokens, cookies, keys and proofs are never in an event.
"""

from __future__ import annotations

import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol, final

__all__ = [
    "EVENT_TYPES",
    "Concealed",
    "CookieIssued",
    "CsrfRefused",
    "Event",
    "FeedStateChanged",
    "LoggedOut",
    "LoginFailed",
    "LoginSucceeded",
    "LoginThrottled",
    "Observer",
    "RefreshRefused",
    "RefreshReuseDetected",
    "Refreshed",
    "RevocationsPublished",
    "RevocationsReceived",
    "SessionCreated",
    "SessionsRevoked",
    "StoreCalled",
    "Subscription",
    "emit",
    "note_cookie",
    "observed",
    "subscribe",
]

_log = logging.getLogger("coatcheck.events")


@final
class Concealed:
    """A value about a person (a user id, a typed user name, an IP address) in an event.

    Its ``repr`` and ``str`` never show it, so a metric label, a log line of the event
    or an error report cannot leak it; :meth:`reveal` gives it to the audit hook that
    asks on purpose. Equal when the values are (compared in constant time).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value. Call it where it is written on purpose (an audit log), nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return "Concealed('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Concealed):
            return NotImplemented
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    def __hash__(self) -> int:
        return hash(self._value)


# -- the events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """The base of every event (subscribe to it to hear them all)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginSucceeded(Event):
    """:meth:`Authenticator.login <coatcheck.auth.Authenticator.login>` issued a credential.

    ``mode`` is the strategy's (``session``, ``jwt``, ``hybrid`` ...); ``bound`` is
    ``"dpop"`` for a credential bound to a DPoP key, else ``""``; ``persistent`` is
    "remember me".
    """

    mode: str
    bound: str
    persistent: bool
    user: Concealed
    ip: Concealed


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginFailed(Event):
    """A sign-in attempt reserved in a :class:`~coatcheck.ratelimit.LoginLimiter` ended
    without :meth:`~coatcheck.ratelimit.Attempt.succeeded`: a wrong password or an
    unknown name (the limiter cannot tell them apart, by design).

    ``limiter`` is the limiter's namespace (``login`` by default); ``username`` is the
    name as typed (it may hold a password typed in the wrong field: reveal with care).
    """

    limiter: str
    username: Concealed
    ip: Concealed


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginThrottled(Event):
    """A :class:`~coatcheck.ratelimit.LoginLimiter` refused an attempt (429) before any
    password work: ``limit`` is the one that must wait (``account`` or ``ip``)."""

    limiter: str
    limit: Literal["account", "ip"]
    retry_after: float
    username: Concealed
    ip: Concealed


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedOut(Event):
    """:meth:`Authenticator.logout <coatcheck.auth.Authenticator.logout>` for a request
    that presented a credential (the sessions it ended are :class:`SessionsRevoked`);
    ``user`` is ``None`` when the credential no longer verified."""

    mode: str
    user: Concealed | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(Event):
    """:meth:`SessionManager.create <coatcheck.sessions.SessionManager.create>` stored a
    new session: a login's (``guest`` false), or a record of session data with no login
    of its own (``guest`` true: a guest's data, or a jwt or hybrid user's)."""

    guest: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionsRevoked(Event):
    """The manager ended ``count`` live sessions (a logout, a login replacing the
    previous credential, the devices page, "log out everywhere", reuse detection, the
    ``coatcheck sessions`` command) and published them to its revocation feed or set."""

    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Refreshed(Event):
    """A hybrid session got a new access token.

    ``credential`` is ``refresh_token`` (the refresh token was traded: ``rotated`` is
    false when a racing tab or a lost answer got the same successor again) or
    ``device_key`` (DBSC: a proof of the bound device key; never rotated).
    """

    mode: str
    credential: Literal["refresh_token", "device_key"]
    rotated: bool
    user: Concealed


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshRefused(Event):
    """A refresh was refused; ``reason`` is the error code (``invalid_credentials``,
    ``dpop_binding_mismatch``, ``invalid_dbsc_proof`` ...). Reuse has its own event."""

    credential: Literal["refresh_token", "device_key"]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshReuseDetected(Event):
    """A retired refresh token came back: the session was revoked (RFC 9700 §4.14.2).

    A stolen refresh token was probably used: tell ``user``.
    """

    mode: str
    user: Concealed


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrfRefused(Event):
    """An unsafe request was refused by the CSRF rules (403); ``reason`` is the error
    code: ``csrf_cross_origin``, ``csrf_token_missing`` or ``csrf_token_invalid``."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieIssued(Event):
    """coatcheck wrote a cookie of ``size`` bytes (``name=value``, what browsers count
    against their 4096-byte limit, RFC 6265bis §5.6, and send on every request).

    ``cookie`` is its role, never its value: ``credential`` (a session token or JWT;
    hybrid's access token), ``refresh``, ``bound`` (DBSC), ``session`` (the session
    mapping's data cookie) or ``csrf``.
    """

    cookie: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreCalled(Event):
    """One call of an :class:`~coatcheck.stores.ObservedStore`: ``store`` is the wrapped
    store's class, ``operation`` the method (``get``, ``create``, ``touch`` ...),
    ``seconds`` its wall time, ``error`` the error code when it raised (``store_unavailable``,
    ``store_error`` ...; ``unexpected`` for anything else), else ``None``."""

    store: str
    operation: str
    seconds: float
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStateChanged(Event):
    """A revocation feed connected and replayed its backlog (``up``), or lost its
    connection: until it is back, hybrid mode checks the store on every request."""

    channel: str
    up: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationsPublished(Event):
    """This process published ``count`` revoked session ids; ``delivered`` false: the
    server could not be reached, the message is queued for the next connection."""

    channel: str
    count: int
    delivered: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationsReceived(Event):
    """A feed message with ``count`` revoked ids arrived. ``lag`` is the seconds from
    its publication to now (by the two hosts' clocks; ``None`` for a publisher too old
    to stamp its messages)."""

    channel: str
    count: int
    lag: float | None


#: Every concrete event type, for observers that handle each one.
EVENT_TYPES: tuple[type[Event], ...] = (
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    LoggedOut,
    SessionCreated,
    SessionsRevoked,
    Refreshed,
    RefreshRefused,
    RefreshReuseDetected,
    CsrfRefused,
    CookieIssued,
    StoreCalled,
    FeedStateChanged,
    RevocationsPublished,
    RevocationsReceived,
)


# -- observers ----------------------------------------------------------------------------


class Observer(Protocol):
    """Anything called with each event it subscribed to (a function, or an object with
    ``__call__``). It must not block for long and should not raise (see the module)."""

    def __call__(self, event: Any) -> None: ...


# event type -> the observers that want it. Replaced whole under the lock, never changed
# in place, so emitting reads it without a lock (from any thread).
_routes: dict[type[Event], tuple[Observer, ...]] = {}
_subscriptions: list[Subscription] = []
_lock = threading.Lock()


@final
class Subscription:
    """One :func:`subscribe` call: :meth:`close` it (or leave its ``with`` block) to stop."""

    __slots__ = ("kinds", "observer")

    def __init__(self, observer: Observer, kinds: tuple[type[Event], ...]) -> None:
        self.observer = observer
        self.kinds = kinds

    @property
    def active(self) -> bool:
        """Whether the observer still hears events through this subscription."""
        return any(s is self for s in _subscriptions)

    def close(self) -> None:
        """Stop hearing events (again is a no-op)."""
        with _lock:
            kept = [s for s in _subscriptions if s is not self]
            if len(kept) != len(_subscriptions):
                _subscriptions[:] = kept
                _reroute()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(k.__name__ for k in self.kinds)
        return f"Subscription({self.observer!r}, [{names}])"


def _reroute() -> None:
    global _routes
    routes: dict[type[Event], tuple[Observer, ...]] = {}
    for kind in EVENT_TYPES:
        wanted = tuple(
            s.observer for s in _subscriptions if any(issubclass(kind, k) for k in s.kinds)
        )
        if wanted:
            routes[kind] = wanted
    _routes = routes


def subscribe(observer: Observer, *kinds: type[Event]) -> Subscription:
    """Call ``observer`` with every event of ``kinds`` (subclasses included; every event
    when none is given) from now on, in this process, until the subscription is closed.

    :raises TypeError: when ``observer`` is not callable or a kind is not an Event type.
    """
    if not callable(observer):
        raise TypeError("an observer is a callable taking one event")
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, Event)):
            raise TypeError(f"{kind!r} is not an event type")
    subscription = Subscription(observer, kinds or (Event,))
    with _lock:
        _subscriptions.append(subscription)
        _reroute()
    return subscription


def observed(kind: type[Event]) -> bool:
    """Whether any observer wants events of ``kind`` (build the event only then)."""
    return kind in _routes


def emit(event: Event) -> None:
    """Hand ``event`` to every observer of its kind, in subscription order. Never raises:
    an observer's exception is logged (``coatcheck.events``) and the next one still runs."""
    for observer in _routes.get(type(event), ()):
        try:
            observer(event)
        except Exception:
            _log.exception("an event observer failed on %s", type(event).__name__)


def note_cookie(cookie: str, set_cookie: str) -> None:
    """Emit :class:`CookieIssued` for a ``Set-Cookie`` value coatcheck wrote, when
    observed: ``cookie`` is its role; the size counted is its ``name=value``."""
    if CookieIssued in _routes:
        size = len(set_cookie.partition(";")[0].encode("utf-8", "surrogatepass"))
        emit(CookieIssued(cookie=cookie, size=size))
