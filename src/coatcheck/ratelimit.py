"""Login rate limiting with growing back-off, counted in the session store.

:class:`LoginLimiter` counts sign-in attempts per account and per client IP in an
:class:`AttemptCounter`: every store class (MemoryStore, SQLiteStore, RedisStore,
PostgresStore, and the synchronous stores of ``open_store(url, sync=True)``) is one, so
the count holds across processes and hosts that share the store. After ``failures``
attempts under one key, each further attempt waits ``base_delay * 2 ** (n - failures)``
seconds after the latest one, capped at ``max_delay``; a count restarts once its
``window`` passes with no attempt (OWASP Authentication Cheat Sheet, "Login
Throttling"). The IP limit is looser than the account one, so a shared NAT is not
locked out by one user's typos, and an IPv6 client is counted per /64, the smallest
block one host is usually given.

**Reserve, then check the password.** An attempt is counted *before* its password is
verified, in one atomic store operation that checks the lock and counts together (one
Lua script on Redis, one statement on SQLite and PostgreSQL, one locked step in
memory). However many requests arrive at once, and in however many processes, at most
``failures`` of them are ever reserved before the lock, then one per back-off period,
so at most that many passwords are ever verified; the rest are refused with
:class:`~coatcheck.errors.RateLimited` without any password work. A good password
gives the reservation back::

    async with limiter.attempt(username, ip) as attempt:  # RateLimited: answer 429
        user = verify_password(username, password)        # same work for unknown users
        if user is not None:
            await attempt.succeeded()  # the account's count is cleared
    # leaving the block without succeeded(): the attempt stays counted, a failure;
    # leaving it with an exception: the password was not checked, nothing is counted

A success clears the account's count and gives back its one reservation on the IP
(a good password is not a guess at other accounts, and does not reset the address's
count of its guesses either).

No user enumeration: the limiter never asks whether an account exists. Keys
come from the submitted name alone, so an unknown name is counted and locked
exactly like a real one, and :class:`~coatcheck.errors.RateLimited` is the same
(code, message, ``retry_after``) for both. The caller keeps the rest of that
promise: one message for "unknown user" and "wrong password", and a password hash
computed for unknown users too, so both take about the same time.

Counter keys never hold a username or an IP in clear text: each is the SHA-256 of
a namespaced value, or an HMAC-SHA256 with ``secret`` when one is given. Give a
secret when the store's readers must not learn who failed to sign in: without it,
anyone who can read the store can test a guessed name or IP against the keys
(IPv4 has only 2**32 addresses).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal, Protocol, runtime_checkable

from .clock import Clock, SystemClock
from .errors import ConfigurationError, RateLimited
from .events import Concealed, LoginFailed, LoginThrottled, emit, observed
from .secret import Secret

__all__ = [
    "Attempt",
    "AttemptCounter",
    "AttemptRule",
    "Limit",
    "LoginLimiter",
    "normalize_ip",
    "normalize_username",
]

_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True, slots=True)
class AttemptRule:
    """When a key must wait: the lock rule every :class:`AttemptCounter` applies.

    ``allowed`` attempts count freely within ``window`` seconds of the latest one; from
    then on the key waits ``min(base_delay * 2 ** (count - allowed), max_delay)``
    seconds after its latest attempt. Stores that apply the rule in their own language
    (SQL, Lua) compute it with the same operations in the same order as :meth:`wait`,
    so every store agrees to the last bit of a double.
    """

    allowed: int
    window: float
    base_delay: float
    max_delay: float

    def delay(self, count: int) -> float:
        """Seconds a key with ``count`` attempts waits after its latest one."""
        if count < self.allowed:
            return 0.0
        # 2**62 times any positive delay exceeds any max_delay; floats never overflow.
        return min(self.base_delay * 2.0 ** min(count - self.allowed, 62), self.max_delay)

    def wait(self, count: int, resets_at: float, now: float) -> float:
        """Seconds until one more attempt may be counted (``0.0``: now).

        ``(count, resets_at)`` is the key's running count; ``resets_at`` is its latest
        attempt plus ``window`` (a count with ``resets_at <= now`` has run out).
        """
        if count < self.allowed or resets_at <= now:
            return 0.0
        until = resets_at - self.window + self.delay(count)
        return until - now if until > now else 0.0


@runtime_checkable
class AttemptCounter(Protocol):
    """Counts attempts per key, shared by every process using the same backend.

    A count restarts once ``window`` seconds pass after the latest attempt; the stores
    judge that by the caller's ``now`` (and only collect spent counters on their own).
    ``reserve_attempt`` is atomic across processes: the lock check and the count are
    one script call on Redis, one statement on SQLite and PostgreSQL. Methods raise
    StoreUnavailable or StoreError like the rest of the store.
    """

    async def reserve_attempt(self, key: str, rule: AttemptRule, now: float) -> float:
        """Count one attempt unless ``rule`` makes the key wait, in one atomic step.

        ``0.0`` when the attempt was counted; otherwise the seconds to wait, and
        nothing was counted.
        """
        ...

    async def release_attempt(self, key: str) -> None:
        """Take one counted attempt back (its password was right, or never checked)."""
        ...

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` without counting; ``(0, now)`` when none is running."""
        ...

    async def clear_attempts(self, key: str) -> None:
        """Forget the attempts counted under ``key``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """How many failures one key may have before back-off, and how long they count.

    Raises ConfigurationError unless ``failures >= 1`` and ``window`` is positive.
    """

    failures: int
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window <= timedelta(0):
            raise ConfigurationError("a limit needs failures >= 1 and a positive window")


def normalize_username(username: str) -> str:
    """The form of a login name the account limit counts: NFKC, case-folded, trimmed.

    "Alice", "ALICE " and "alice" share one counter (Unicode §3.13 caseless
    matching), so changing the case of a name does not buy more guesses.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold()).strip()


def normalize_ip(ip: str) -> str:
    """The block an IP limit counts: the IPv4 address, or the IPv6 /64 network.

    An IPv4-mapped IPv6 address counts as its IPv4 address and a zone (``%eth0``) is
    dropped. Anything that does not parse is counted as its trimmed, lower-case text.
    Never raises.
    """
    text = ip.strip()
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text.lower()
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Attempt:
    """A reserved sign-in attempt (from :meth:`LoginLimiter.attempt`).

    As an async context manager: leaving normally keeps the attempt counted (a failure)
    unless :meth:`succeeded` was called; leaving with an exception gives the
    reservation back (the password was never judged, say the hashing queue was full).
    """

    __slots__ = ("_account", "_counter", "_done", "_others", "_who")

    def __init__(
        self,
        counter: AttemptCounter,
        account: str | None,
        others: list[str],
        who: tuple[str, str | None, str] = ("login", None, ""),
    ) -> None:
        self._counter = counter
        self._account = account
        self._others = others
        self._done = False
        # (limiter namespace, username as typed, ip): only for the LoginFailed event.
        self._who = who

    async def succeeded(self) -> None:
        """The password was right: clear the account's count, give back the IP's one.

        Raises StoreUnavailable / StoreError.
        """
        if self._done:
            return
        self._done = True
        if self._account is not None:
            await self._counter.clear_attempts(self._account)
        for key in self._others:
            await self._counter.release_attempt(key)

    async def cancel(self) -> None:
        """The password was not checked: give every reservation back.

        Raises StoreUnavailable / StoreError.
        """
        if self._done:
            return
        self._done = True
        for key in ([] if self._account is None else [self._account]) + self._others:
            await self._counter.release_attempt(key)

    def failed(self) -> None:
        """The password was wrong (or the name unknown): the attempt stays counted.

        The ``async with`` form calls it on leaving without :meth:`succeeded`; after
        :meth:`reserve`, call it to tell observers (:class:`~coatcheck.events.LoginFailed`).
        Never raises.
        """
        if self._done:
            return
        self._done = True
        namespace, username, ip = self._who
        if username is not None and observed(LoginFailed):
            emit(LoginFailed(limiter=namespace, username=Concealed(username), ip=Concealed(ip)))

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            await self.cancel()
        self.failed()


class LoginLimiter:
    """Per-account and per-IP sign-in throttling with growing back-off.

    ``counter`` is any :class:`AttemptCounter` (every store). By default an account
    gets 5 attempts and an IP (or IPv6 /64) 50 within a 15-minute window; then the
    n-th attempt locks that key for ``base_delay * 2 ** (n - failures)``, at most
    ``max_delay``. ``namespace`` separates limiters sharing a store (say, sign-in and
    password reset). Raises ConfigurationError for a delay that is not positive, a
    ``max_delay`` longer than a window (a lock cannot outlive its count) or a
    namespace outside ``[A-Za-z0-9_.-]{1,32}``.
    """

    __slots__ = ("_account", "_clock", "_counter", "_ip", "_namespace", "_prefix", "_secret")

    def __init__(
        self,
        counter: AttemptCounter,
        *,
        per_account: Limit = Limit(failures=5),
        per_ip: Limit = Limit(failures=50),
        base_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=15),
        secret: str | bytes | Secret | None = None,
        namespace: str = "login",
        clock: Clock = SystemClock(),  # noqa: B008  (stateless; one shared default is safe)
    ) -> None:
        if not timedelta(0) < base_delay <= max_delay:
            raise ConfigurationError("delays must satisfy 0 < base_delay <= max_delay")
        if max_delay > min(per_account.window, per_ip.window):
            raise ConfigurationError("max_delay cannot be longer than a limit's window")
        if not _NAMESPACE_RE.fullmatch(namespace):
            raise ConfigurationError("a limiter namespace is 1-32 of [A-Za-z0-9_.-]")
        self._counter = counter
        base, most = base_delay.total_seconds(), max_delay.total_seconds()
        self._account = AttemptRule(
            per_account.failures, per_account.window.total_seconds(), base, most
        )
        self._ip = AttemptRule(per_ip.failures, per_ip.window.total_seconds(), base, most)
        self._clock = clock
        self._namespace = namespace
        self._prefix = b"coatcheck.ratelimit\x00" + namespace.encode() + b"\x00"
        if secret is None:
            self._secret: Secret | None = None
        else:
            self._secret = secret if isinstance(secret, Secret) else Secret(secret)

    @property
    def counter(self) -> AttemptCounter:
        return self._counter

    def _key(self, kind: bytes, value: str) -> str:
        message = self._prefix + kind + b"\x00" + value.encode("utf-8", "surrogatepass")
        if self._secret is None:
            return hashlib.sha256(message).hexdigest()
        return hmac.new(self._secret.reveal(), message, hashlib.sha256).hexdigest()

    def _keys(self, username: str | None, ip: str) -> list[tuple[str, AttemptRule]]:
        keys = []
        if username is not None:
            keys.append((self._key(b"account", normalize_username(username)), self._account))
        if ip.strip():  # no address known: the account limit alone applies
            keys.append((self._key(b"ip", normalize_ip(ip)), self._ip))
        return keys

    def delay(self, failures: int, allowed: int) -> float:
        """Seconds a key waits after its latest attempt, having ``failures`` of ``allowed``."""
        return replace(self._account, allowed=allowed).delay(failures)

    async def retry_after(self, username: str | None, ip: str) -> float:
        """Seconds until ``username`` may try again from ``ip`` (0.0: now). Counts nothing."""
        now = self._clock.now()
        wait = 0.0
        for key, rule in self._keys(username, ip):
            count, resets_at = await self._counter.peek_attempts(key, now)
            wait = max(wait, rule.wait(count, resets_at, now))
        return wait

    def attempt(self, username: str | None, ip: str) -> _Reserving:
        """Reserve a sign-in attempt before checking its password (see the module docstring).

        ``async with limiter.attempt(name, ip) as attempt:`` raises
        :class:`~coatcheck.errors.RateLimited` (with ``retry_after`` seconds, the same
        whether or not the account exists) when the account or the address must wait;
        then nothing is counted. ``username=None`` counts the address alone: other
        password work an address can ask for, such as a registration. Store errors
        (StoreUnavailable) propagate.
        """
        return _Reserving(self, username, ip)

    async def reserve(self, username: str | None, ip: str) -> Attempt:
        """:meth:`attempt` without the context manager: call ``succeeded()``, ``failed()``
        or ``cancel()``.

        :raises RateLimited: while the account or the address must wait.
        """
        now = self._clock.now()
        reserved: list[str] = []
        for key, rule in self._keys(username, ip):
            try:
                wait = await self._counter.reserve_attempt(key, rule, now)
            except BaseException:
                await self._give_back(reserved)
                raise
            if wait > 0:
                # One key refused: the others' reservations go back, nothing counts.
                await self._give_back(reserved)
                retry_after = float(max(1, math.ceil(wait)))
                if username is not None and observed(LoginThrottled):
                    limit: Literal["account", "ip"] = "ip" if rule is self._ip else "account"
                    emit(
                        LoginThrottled(
                            limiter=self._namespace, limit=limit, retry_after=retry_after,
                            username=Concealed(username), ip=Concealed(ip),
                        )
                    )  # fmt: skip
                # Without a username it is other password work (a registration, say):
                # the caller says which in its own words.
                what = (
                    "too many failed sign-in attempts"
                    if username is not None
                    else "too many attempts from this address"
                )
                raise RateLimited(f"{what}; try again later", retry_after=retry_after)
            reserved.append(key)
        who = (self._namespace, username, ip)
        if username is None:
            return Attempt(self._counter, None, reserved, who)
        return Attempt(self._counter, reserved[0], reserved[1:], who)

    async def _give_back(self, reserved: list[str]) -> None:
        for key in reserved:
            await self._counter.release_attempt(key)

    def __repr__(self) -> str:
        return (
            f"LoginLimiter(account={self._account.allowed}/{self._account.window:g}s, "
            f"ip={self._ip.allowed}/{self._ip.window:g}s, max_delay={self._account.max_delay:g}s)"
        )


class _Reserving:
    """``async with limiter.attempt(...)``: reserves on entry, settles on exit."""

    __slots__ = ("_attempt", "_ip", "_limiter", "_username")

    def __init__(self, limiter: LoginLimiter, username: str | None, ip: str) -> None:
        self._limiter = limiter
        self._username = username
        self._ip = ip
        self._attempt: Attempt | None = None

    async def __aenter__(self) -> Attempt:
        self._attempt = await self._limiter.reserve(self._username, self._ip)
        return self._attempt

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: object
    ) -> None:
        if self._attempt is not None:
            await self._attempt.__aexit__(kind, value, tb)
