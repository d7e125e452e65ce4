"""``settings.COATCHECK``: read and validated once, and the objects built from it.

The settings contract (a dict; only ``STORE`` is required)::

    COATCHECK = {
        # Any coatcheck store URL: memory://, sqlite:///path.db, redis://..., postgresql://...
        "STORE": "sqlite:///coatcheck.db",
        # How a login is carried: "session" (a server-side session: the session engine's
        # own record, so SESSION_ENGINE must be coatcheck.adapters.django.sessions),
        # "jwt" (a signed token, nothing stored) or "hybrid" (a short access JWT and a
        # rotating refresh token with reuse detection).
        "MODE": "session",
        # Where the credential travels, in the order tried: "cookie" and/or "bearer".
        "TRANSPORTS": ["cookie", "bearer"],
        # jwt and hybrid: the private JWK that signs (manage.py coatcheck_keygen prints
        # one), as a dict or JSON text; VERIFY_KEYS are retired keys still accepted.
        "SIGNING_KEY": {...},
        "VERIFY_KEYS": [],
        # hybrid: the refresh tokens' HMAC secret (default: derived from SECRET_KEY).
        "REFRESH_SECRET": None,
        # Cookie names (defaults: session mode uses SESSION_COOKIE_NAME; jwt
        # "__Host-coatcheck_token"; hybrid "__Host-coatcheck_access" and
        # "__Secure-coatcheck_refresh"; unprefixed when COOKIE_SECURE is False).
        "COOKIE_NAME": None,
        "REFRESH_COOKIE_NAME": None,
        "REFRESH_PATH": "/auth/refresh",
        # Secure cookies (default True: browsers keep Secure cookies on http://localhost).
        "COOKIE_SECURE": True,
        # Lifetimes, in seconds or as timedelta.
        "IDLE_TIMEOUT": 7 * 86400,       # session idle expiry (sliding)
        "ABSOLUTE_TIMEOUT": 30 * 86400,  # session hard cap
        "RENEW_INTERVAL": 3600,          # at most one renewal write per session per interval
        "JWT_TTL": 12 * 3600,            # jwt mode's tokens
        "ACCESS_TTL": 300,               # hybrid mode's access tokens
        # hybrid: the revocation feed that tells every process of a revocation within
        # about a second (redis://..., postgresql://...; "none" for none). Default: the
        # store's own server when it is Redis or PostgreSQL.
        "FEED": None,
        # Tests only: a coatcheck Clock (FrozenClock) every lifetime is measured with.
        "CLOCK": None,
    }

:func:`get_config` validates it into a frozen :class:`CoatcheckConfig`, raising
:class:`~coatcheck.errors.ConfigurationError` with a message that says how to fix it
(the system checks in :mod:`coatcheck.adapters.django.checks` report the same messages
at start-up). :func:`get_runtime` builds, once per process, a :class:`Runtime`: the
store for synchronous code (WSGI, sync views, management commands: blocking I/O, never
an event loop), the store for the ASGI path (``redis.asyncio``, psycopg's async pool;
opened on first use, so a check or a command never opens it), and over each a
:class:`~coatcheck.sessions.SessionManager` and an :class:`~coatcheck.auth.Authenticator`.
Memory and SQLite stores are one object for both paths. Changing ``COATCHECK`` with
``override_settings`` closes the runtime and the next use builds a new one.

The strategies are the core's (:class:`~coatcheck.auth.SessionStrategy`,
:class:`~coatcheck.auth.JWTStrategy`, :class:`~coatcheck.auth.HybridStrategy`), with
the same transports the Starlette, WSGI and Flask adapters take; nothing here decides
who is logged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ...auth.authenticator import Authenticator
from ...auth.hybrid import HybridStrategy
from ...auth.hybrid_cookies import DEFAULT_REFRESH_PATH, HybridCookieTransport
from ...auth.strategies import JWTStrategy, SessionStrategy, Strategy
from ...auth.transports import BearerTransport, CookieTransport, Transport
from ...clock import Clock, SystemClock
from ...cookies import prefixed_name
from ...errors import CoatcheckError, ConfigurationError
from ...policies import CookiePolicy, SessionPolicy
from ...revocation import RevocationFeed, RevocationSet
from ...sessions.manager import SessionManager
from ...sessions.store import SessionStore
from ...stores import open_store
from ...stores.feeds import FEED_SCHEMES, default_feed_url, open_feed
from ...sync import run_sync
from ...tokens import JWTCodec, Key, KeyRing

__all__ = [
    "ENGINE",
    "MODES",
    "SETTING",
    "TRANSPORT_NAMES",
    "CoatcheckConfig",
    "Parts",
    "Runtime",
    "close_runtime",
    "get_config",
    "get_runtime",
    "read_config",
]

#: The settings name this module reads.
SETTING = "COATCHECK"
#: ``SESSION_ENGINE`` for coatcheck's session engine.
ENGINE = "coatcheck.adapters.django.sessions"
MODES = ("session", "jwt", "hybrid")
TRANSPORT_NAMES = ("cookie", "bearer")
Mode = Literal["session", "jwt", "hybrid"]

_KEYS = frozenset(
    {
        "STORE",
        "MODE",
        "TRANSPORTS",
        "SIGNING_KEY",
        "VERIFY_KEYS",
        "REFRESH_SECRET",
        "COOKIE_NAME",
        "REFRESH_COOKIE_NAME",
        "REFRESH_PATH",
        "COOKIE_SECURE",
        "IDLE_TIMEOUT",
        "ABSOLUTE_TIMEOUT",
        "RENEW_INTERVAL",
        "JWT_TTL",
        "ACCESS_TTL",
        "CLOCK",
        "FEED",
    }
)
# Schemes whose store is the same object for synchronous and asynchronous code.
_LOCAL_SCHEMES = ("memory", "sqlite")


@dataclass(frozen=True, slots=True, kw_only=True)
class CoatcheckConfig:
    """``settings.COATCHECK``, validated (see the module docstring for each field)."""

    store_url: str = field(repr=False)  # may hold a password
    mode: Mode = "session"
    transports: tuple[str, ...] = ("cookie", "bearer")
    keys: KeyRing | None = field(default=None, repr=False)
    refresh_secret: bytes | None = field(default=None, repr=False)
    cookie_name: str = "sessionid"
    refresh_cookie_name: str = "coatcheck_refresh"
    refresh_path: str = DEFAULT_REFRESH_PATH
    cookie_secure: bool = True
    session_policy: SessionPolicy = field(default_factory=SessionPolicy)
    jwt_ttl: timedelta = timedelta(hours=12)
    access_ttl: timedelta = timedelta(minutes=5)
    clock: Clock = field(default_factory=SystemClock, repr=False)
    feed_url: str | None = field(default=None, repr=False)

    @property
    def local_store(self) -> bool:
        """Whether the store lives in this process or on this machine (memory, SQLite)."""
        return self.store_url.partition(":")[0].lower() in _LOCAL_SCHEMES


def _seconds(
    raw: Mapping[str, Any], name: str, default: timedelta, *, zero: bool = False
) -> timedelta:
    value = raw.get(name, default)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (value == 0 and not zero)
    ):
        raise ConfigurationError(
            f"COATCHECK[{name!r}] must be a positive number of seconds or a timedelta"
        )
    return timedelta(seconds=value)


def _text(raw: Mapping[str, Any], name: str, default: str) -> str:
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"COATCHECK[{name!r}] must be a non-empty string")
    return value.strip()


def _key(value: object, what: str) -> Key:
    if isinstance(value, Key):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigurationError(
                f"{what} must be a JWK (a dict or its JSON text); "
                "run `manage.py coatcheck_keygen` to make one"
            ) from exc
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{what} must be a JWK (a dict or its JSON text); "
            "run `manage.py coatcheck_keygen` to make one"
        )
    try:
        return Key.from_jwk(value)
    except CoatcheckError as exc:
        raise ConfigurationError(f"{what} is not a usable JWK: {exc}") from exc


def _keys(raw: Mapping[str, Any], mode: str) -> KeyRing | None:
    signing = raw.get("SIGNING_KEY")
    if signing is None:
        if mode == "session":
            return None
        raise ConfigurationError(
            f"COATCHECK['MODE'] is {mode!r}, which signs tokens: set COATCHECK['SIGNING_KEY'] "
            "to a private JWK (`manage.py coatcheck_keygen --alg ES256` prints one)"
        )
    key = _key(signing, "COATCHECK['SIGNING_KEY']")
    if not key.can_sign:
        raise ConfigurationError(
            "COATCHECK['SIGNING_KEY'] cannot sign (a public key?): give the private JWK"
        )
    others = raw.get("VERIFY_KEYS") or ()
    if isinstance(others, (str, Mapping)) or not isinstance(others, Sequence):
        raise ConfigurationError("COATCHECK['VERIFY_KEYS'] must be a list of JWKs")
    retired = [_key(item, "each of COATCHECK['VERIFY_KEYS']") for item in others]
    return KeyRing([key, *retired])


def _refresh_secret(raw: Mapping[str, Any], mode: str, secret_key: str) -> bytes | None:
    if mode != "hybrid":
        return None
    value = raw.get("REFRESH_SECRET")
    if value is None:
        from django.utils.crypto import salted_hmac

        if not secret_key:
            raise ConfigurationError(
                "hybrid mode needs COATCHECK['REFRESH_SECRET'] or Django's SECRET_KEY"
            )
        # Django's own key derivation, namespaced so it is no other use's HMAC.
        derived: bytes = salted_hmac(
            "coatcheck.adapters.django.refresh", "", secret=secret_key, algorithm="sha256"
        ).digest()
        return derived
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes) or len(value) < 32:
        raise ConfigurationError(
            "COATCHECK['REFRESH_SECRET'] must be at least 32 bytes "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value


def read_config(
    raw: object, *, session_cookie_name: str = "sessionid", secret_key: str = ""
) -> CoatcheckConfig:
    """Validate the ``COATCHECK`` dict (no I/O).

    :raises ConfigurationError: with a message that says what to change.
    """
    if raw is None:
        raise ConfigurationError(
            "settings.COATCHECK is missing: add COATCHECK = {'STORE': 'sqlite:///coatcheck.db'} "
            "(any coatcheck store URL) to your settings"
        )
    if not isinstance(raw, Mapping):
        raise ConfigurationError("settings.COATCHECK must be a dict, e.g. {'STORE': 'memory://'}")
    unknown = sorted(str(name) for name in raw if name not in _KEYS)
    if unknown:
        raise ConfigurationError(
            f"settings.COATCHECK has unknown keys {', '.join(unknown)}; "
            f"the keys are {', '.join(sorted(_KEYS))}"
        )
    store = raw.get("STORE")
    if not isinstance(store, str) or not store.strip():
        raise ConfigurationError(
            "COATCHECK['STORE'] must be a store URL such as sqlite:///coatcheck.db, "
            "redis://127.0.0.1:6379/0 or postgresql://user@host/db"
        )
    mode = raw.get("MODE", "session")
    if mode not in MODES:
        raise ConfigurationError(
            f"COATCHECK['MODE'] must be one of {', '.join(MODES)}, not {mode!r}"
        )
    transports = raw.get("TRANSPORTS", TRANSPORT_NAMES)
    if isinstance(transports, str):
        transports = (transports,)
    if (
        not isinstance(transports, Sequence)
        or not transports
        or any(t not in TRANSPORT_NAMES for t in transports)
        or len(set(transports)) != len(transports)
    ):
        raise ConfigurationError(
            "COATCHECK['TRANSPORTS'] must list 'cookie' and/or 'bearer', e.g. ['cookie', 'bearer']"
        )
    secure = raw.get("COOKIE_SECURE", True)
    if not isinstance(secure, bool):
        raise ConfigurationError("COATCHECK['COOKIE_SECURE'] must be True or False")
    default_name = {"session": session_cookie_name, "jwt": "coatcheck_token",
                    "hybrid": "coatcheck_access"}[mode]  # fmt: skip
    cookie_name = _text(raw, "COOKIE_NAME", default_name)
    if mode != "session" and raw.get("COOKIE_NAME") is None:
        # A name coatcheck picks gets the strongest prefix (__Host- over HTTPS), so a
        # sibling subdomain cannot toss a cookie of that name (see SECURITY.md).
        cookie_name = prefixed_name(default_name, CookiePolicy(secure=secure))
    if mode == "session" and cookie_name != session_cookie_name:
        raise ConfigurationError(
            "in session mode the credential is the session engine's cookie: leave out "
            "COATCHECK['COOKIE_NAME'] and set SESSION_COOKIE_NAME instead"
        )
    refresh_path = _text(raw, "REFRESH_PATH", DEFAULT_REFRESH_PATH)
    if not refresh_path.startswith("/") or refresh_path.startswith("//"):
        raise ConfigurationError(
            "COATCHECK['REFRESH_PATH'] must be an absolute path like /auth/refresh"
        )
    try:
        policy = SessionPolicy(
            idle_timeout=_seconds(raw, "IDLE_TIMEOUT", timedelta(days=7)),
            absolute_timeout=_seconds(raw, "ABSOLUTE_TIMEOUT", timedelta(days=30)),
            renew_interval=_seconds(raw, "RENEW_INTERVAL", timedelta(hours=1), zero=True),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"COATCHECK timeouts: {exc}") from exc
    feed = raw.get("FEED")
    if feed is not None and (not isinstance(feed, str) or not feed.strip()):
        raise ConfigurationError(
            "COATCHECK['FEED'] must be a feed URL (redis://..., postgresql://...) or 'none'"
        )
    feed_url = None
    if mode == "hybrid" and feed != "none":
        feed_url = feed.strip() if feed else default_feed_url(store.strip())
        if feed_url is not None and feed_url.partition(":")[0].lower() not in FEED_SCHEMES:
            raise ConfigurationError(
                "COATCHECK['FEED'] must be a redis://, redis+cluster://, redis+sentinel:// or "
                "postgresql:// URL, or 'none'"
            )
    clock = raw.get("CLOCK") or SystemClock()
    if not callable(getattr(clock, "now", None)):
        raise ConfigurationError("COATCHECK['CLOCK'] must be a coatcheck Clock (tests only)")
    return CoatcheckConfig(
        feed_url=feed_url,
        clock=clock,
        store_url=store.strip(),
        mode=mode,
        transports=tuple(transports),
        keys=_keys(raw, mode),
        refresh_secret=_refresh_secret(raw, mode, secret_key),
        cookie_name=cookie_name,
        refresh_cookie_name=(
            _text(raw, "REFRESH_COOKIE_NAME", "coatcheck_refresh")
            if raw.get("REFRESH_COOKIE_NAME") is not None
            # Path-limited, so __Secure- at most (bound to the access cookie's session).
            else prefixed_name("coatcheck_refresh", CookiePolicy(secure=secure, path=refresh_path))
        ),
        refresh_path=refresh_path,
        cookie_secure=secure,
        session_policy=policy,
        jwt_ttl=_seconds(raw, "JWT_TTL", timedelta(hours=12)),
        access_ttl=_seconds(raw, "ACCESS_TTL", timedelta(minutes=5)),
    )


def get_config() -> CoatcheckConfig:
    """``settings.COATCHECK`` validated (cached with the runtime's lock).

    :raises ConfigurationError: see :func:`read_config`.
    """
    from django.conf import settings

    return read_config(
        getattr(settings, SETTING, None),
        session_cookie_name=settings.SESSION_COOKIE_NAME,
        secret_key=getattr(settings, "SECRET_KEY", "") or "",
    )


class FeedThread:
    """A revocation feed listening on a thread and event loop of its own.

    Django serves requests on WSGI threads or on the ASGI server's loop, neither of
    which can host a feed's listener for the life of the process; this thread does,
    for both. :attr:`feed` publishes from any thread (see :class:`_ThreadedFeed`).
    """

    def __init__(self, url: str, revocations: RevocationSet, *, wait: float = 2.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="coatcheck-revocation-feed", daemon=True
        )
        self._thread.start()
        try:
            inner = asyncio.run_coroutine_threadsafe(
                self._open(url, revocations, wait), self._loop
            ).result(timeout=wait + 10)
        except BaseException:
            self._halt()
            raise
        self.feed: RevocationFeed = _ThreadedFeed(inner, self._loop)

    @staticmethod
    async def _open(url: str, revocations: RevocationSet, wait: float) -> RevocationFeed:
        feed = open_feed(url, revocations)
        await feed.start(wait=wait)  # keeps trying in the background if not up yet
        return feed

    def close(self) -> None:
        """Stop the listener and the thread."""
        inner = self.feed._inner if isinstance(self.feed, _ThreadedFeed) else self.feed
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(inner.stop(), self._loop).result(timeout=10)
        self._halt()

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


class _ThreadedFeed(RevocationFeed):
    """A feed running on a :class:`FeedThread`, published to from any thread: a sync
    caller (WSGI, :func:`~coatcheck.sync.run_sync`) waits for the send, an async one
    awaits it without blocking its loop."""

    def __init__(self, inner: RevocationFeed, loop: asyncio.AbstractEventLoop) -> None:
        # No super().__init__(): the inner feed owns the listener, the set and its health.
        self._inner = inner
        self._feed_loop = loop

    @property
    def revocations(self) -> RevocationSet:
        return self._inner.revocations

    @property
    def channel(self) -> str:
        return self._inner.channel

    @property
    def healthy(self) -> bool:
        return self._inner.healthy

    @property
    def pending(self) -> int:
        return self._inner.pending

    async def start(self, *, wait: float | None = None) -> None:
        """Started by its :class:`FeedThread`."""

    async def stop(self) -> None:
        """Stopped by its :class:`FeedThread`."""

    async def publish(self, session_ids: Iterable[str]) -> bool:
        future = asyncio.run_coroutine_threadsafe(
            self._inner.publish(list(session_ids)), self._feed_loop
        )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return future.result(timeout=10)  # a synchronous caller: wait here
        return await asyncio.wrap_future(future)

    def __repr__(self) -> str:
        return f"_ThreadedFeed({self._inner!r})"


@dataclass(slots=True)
class Parts:
    """One path's objects: a store, its session manager and the authenticator over it."""

    store: SessionStore
    manager: SessionManager
    authenticator: Authenticator


def _transports(config: CoatcheckConfig) -> list[Transport]:
    policy = CookiePolicy(secure=config.cookie_secure)
    out: list[Transport] = []
    for name in config.transports:
        if name == "bearer":
            out.append(BearerTransport())
        elif config.mode == "hybrid":
            out.append(
                HybridCookieTransport(
                    config.cookie_name,
                    policy,
                    refresh_name=config.refresh_cookie_name,
                    refresh_path=config.refresh_path,
                )
            )
        else:
            out.append(CookieTransport(config.cookie_name, policy))
    return out


def _parts(
    config: CoatcheckConfig,
    store: SessionStore,
    revocations: RevocationSet | RevocationFeed,
) -> Parts:
    """The manager and authenticator over ``store``: the same builders per mode as the demo
    (:mod:`coatcheck.demo.app`), from the public API."""
    clock = config.clock
    manager = SessionManager(
        store, policy=config.session_policy, clock=clock, revocations=revocations
    )
    strategy: Strategy
    if config.mode == "session":
        strategy = SessionStrategy(manager, clock=clock)
    else:
        assert config.keys is not None  # read_config requires it for these modes
        algorithms = sorted({key.alg for key in config.keys})
        codec = JWTCodec(config.keys, algorithms=algorithms, clock=clock)
        if config.mode == "jwt":
            strategy = JWTStrategy(codec, ttl=config.jwt_ttl, clock=clock)
        else:
            assert config.refresh_secret is not None  # read_config sets it
            strategy = HybridStrategy(
                manager, codec, config.refresh_secret, access_ttl=config.access_ttl,
                clock=clock,
            )  # fmt: skip
    return Parts(store, manager, Authenticator(strategy, _transports(config)))


class Runtime:
    """What ``settings.COATCHECK`` builds, once per process (see the module docstring).

    :attr:`sync` serves synchronous code (its store never suspends: drive it with
    :func:`~coatcheck.sync.run_sync`); :meth:`async_parts` the event loop (opened on
    first use, in the running loop). Revocations are shared by both paths.
    """

    def __init__(self, config: CoatcheckConfig) -> None:
        self.config = config
        # Opening validates the URL (scheme, driver installed) without connecting.
        self.revocations = RevocationSet(
            retention=config.access_ttl + timedelta(seconds=30), clock=config.clock
        )
        # Every revocation (logout, a password change, reuse detection, the devices
        # page) goes through a manager, which publishes it here.
        self.feed_thread = (
            None if config.feed_url is None else FeedThread(config.feed_url, self.revocations)
        )
        self._published: RevocationSet | RevocationFeed = (
            self.revocations if self.feed_thread is None else self.feed_thread.feed
        )
        self.sync = _parts(config, open_store(config.store_url, sync=True), self._published)
        self._async: Parts | None = self.sync if config.local_store else None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def async_parts(self) -> Parts:
        """The parts for the running event loop (its own network store, made on first use).

        A network store's async connections belong to one loop; a later loop (a test's)
        gets a new store, and the previous one is dropped.
        """
        if self.config.local_store:
            return self.sync
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                self._async = _parts(self.config, open_store(self.config.store_url),
                                     self._published)  # fmt: skip
                self._async_loop = loop
            return self._async

    @property
    def manager(self) -> SessionManager:
        """The synchronous path's session manager (management commands, the engine)."""
        return self.sync.manager

    @property
    def authenticator(self) -> Authenticator:
        """The synchronous path's authenticator."""
        return self.sync.authenticator

    def close(self) -> None:
        """Close the synchronous store and the feed (the async store: :meth:`aclose`)."""
        if self.feed_thread is not None:
            self.feed_thread.close()
            self.feed_thread = None
        run_sync(self.sync.store.close())

    async def aclose(self) -> None:
        """Close the event loop's store (if any) and the synchronous one."""
        parts, self._async = self._async, None
        if parts is not None and parts is not self.sync:
            await parts.store.close()
        self.close()

    def __repr__(self) -> str:
        return f"Runtime(mode={self.config.mode!r}, store={self.sync.store!r})"


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide :class:`Runtime` (built on first use).

    :raises ConfigurationError: for a missing or bad ``settings.COATCHECK``.
    """
    global _runtime
    runtime = _runtime
    if runtime is not None:
        return runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(get_config())
        return _runtime


def close_runtime() -> None:
    """Close and forget the runtime (settings changed, tests, shutdown)."""
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close()


def _setting_changed(*, setting: str, **_: object) -> None:
    if setting in (SETTING, "SESSION_COOKIE_NAME", "SECRET_KEY"):
        close_runtime()


def _connect() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_setting_changed, dispatch_uid="coatcheck.adapters.django.conf")


_connect()
