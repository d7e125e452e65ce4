"""Login rate limiting with growing back-off, counted in the session store.

:class:`LoginLimiter` counts failed sign-ins per account and per client IP in an
:class:`AttemptCounter`: every store class (MemoryStore, SQLiteStore, RedisStore,
PostgresStore) is one, so the count holds across processes and hosts that share
the store. After ``failures`` failures under one key, each further attempt waits
``base_delay * 2 ** (n - failures)`` seconds after the latest failure, capped at
``max_delay``; a count restarts once its ``window`` passes with no failure
(OWASP Authentication Cheat Sheet, "Login Throttling"). The IP limit is looser
than the account one, so a shared NAT is not locked out by one user's typos, and
an IPv6 client is counted per /64, the smallest block one host is usually given.

Use it around the password check::

    await limiter.check(username, ip)        # raises RateLimited: answer 429
    if verify_password(username, password):  # same work for unknown users
        await limiter.succeeded(username, ip)
    else:
        await limiter.failed(username, ip)   # unknown user or wrong password alike

``check`` reads the counts and ``failed`` adds to them, so requests that arrive
together all pass ``check`` before any of them is counted: a client can get as
many guesses as it sends at once (bounded by the server's concurrency) before the
lock applies. Limit concurrent sign-ins per client upstream if that matters.

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
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from .clock import Clock, SystemClock
from .errors import ConfigurationError, RateLimited
from .secret import Secret

__all__ = ["AttemptCounter", "Limit", "LoginLimiter", "normalize_ip", "normalize_username"]

_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@runtime_checkable
class AttemptCounter(Protocol):
    """Counts failures per key, shared by every process using the same backend.

    A count restarts once ``window`` seconds pass after the latest failure; the
    stores judge that by the caller's ``now`` (and only collect spent counters on
    their own). ``hit_attempts`` is atomic across processes: one script call on
    Redis, one statement on SQLite and PostgreSQL. Methods raise StoreUnavailable
    or StoreError like the rest of the store.
    """

    async def hit_attempts(self, key: str, window: float, now: float) -> tuple[int, float]:
        """Count one failure; return ``(count including it, resets_at)``."""
        ...

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` without counting; ``(0, now)`` when none is running."""
        ...

    async def clear_attempts(self, key: str) -> None:
        """Forget the failures counted under ``key``."""
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


class LoginLimiter:
    """Per-account and per-IP sign-in throttling with growing back-off.

    ``counter`` is any :class:`AttemptCounter` (every store). By default an account
    gets 5 failures and an IP (or IPv6 /64) 50 within a 15-minute window; then the
    n-th failure locks that key for ``base_delay * 2 ** (n - failures)``, at most
    ``max_delay``. ``namespace`` separates limiters sharing a store (say, sign-in and
    password reset). Raises ConfigurationError for a delay that is not positive, a
    ``max_delay`` longer than a window (a lock cannot outlive its count) or a
    namespace outside ``[A-Za-z0-9_.-]{1,32}``.
    """

    __slots__ = ("_account", "_base", "_clock", "_counter", "_ip", "_max", "_prefix", "_secret")

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
        self._account = (per_account.failures, per_account.window.total_seconds())
        self._ip = (per_ip.failures, per_ip.window.total_seconds())
        self._base = base_delay.total_seconds()
        self._max = max_delay.total_seconds()
        self._clock = clock
        self._prefix = b"coatcheck.ratelimit\x00" + namespace.encode() + b"\x00"
        if secret is None:
            self._secret: Secret | None = None
        else:
            self._secret = secret if isinstance(secret, Secret) else Secret(secret)

    def _key(self, kind: bytes, value: str) -> str:
        message = self._prefix + kind + b"\x00" + value.encode("utf-8", "surrogatepass")
        if self._secret is None:
            return hashlib.sha256(message).hexdigest()
        return hmac.new(self._secret.reveal(), message, hashlib.sha256).hexdigest()

    def _keys(self, username: str, ip: str) -> list[tuple[str, tuple[int, float]]]:
        keys = [(self._key(b"account", normalize_username(username)), self._account)]
        if ip.strip():  # no address known: the account limit alone applies
            keys.append((self._key(b"ip", normalize_ip(ip)), self._ip))
        return keys

    def delay(self, failures: int, allowed: int) -> float:
        """Seconds a key waits after its latest failure, having ``failures`` of ``allowed``."""
        if failures < allowed:
            return 0.0
        exponent = failures - allowed
        # 2**64 seconds exceeds any max_delay; stop before floats overflow.
        return self._max if exponent >= 64 else min(self._base * 2.0**exponent, self._max)

    async def retry_after(self, username: str, ip: str) -> float:
        """Seconds until ``username`` may try again from ``ip`` (0.0: now)."""
        now = self._clock.now()
        wait = 0.0
        for key, (allowed, window) in self._keys(username, ip):
            count, resets_at = await self._counter.peek_attempts(key, now)
            if count >= allowed:
                # The count's window restarts at each failure: the latest was then.
                until = resets_at - window + self.delay(count, allowed)
                wait = max(wait, until - now)
        return wait

    async def check(self, username: str, ip: str) -> None:
        """Raise RateLimited (with ``retry_after`` seconds) while sign-in must wait.

        Call it before checking the password; the answer is the same whether or not
        the account exists. Store errors (StoreUnavailable) propagate.
        """
        wait = await self.retry_after(username, ip)
        if wait > 0:
            raise RateLimited(
                "too many failed sign-in attempts; try again later",
                retry_after=float(math.ceil(wait)),
            )

    async def failed(self, username: str, ip: str) -> None:
        """Count a failed sign-in (wrong password or unknown user alike)."""
        now = self._clock.now()
        for key, (_, window) in self._keys(username, ip):
            await self._counter.hit_attempts(key, window, now)

    async def succeeded(self, username: str, ip: str) -> None:
        """Forget the account's failures after a good password.

        The IP's count stays: one good password from an address must not reset the
        count of its guesses at other accounts.
        """
        key, _ = self._keys(username, ip)[0]
        await self._counter.clear_attempts(key)

    def __repr__(self) -> str:
        return (
            f"LoginLimiter(account={self._account[0]}/{self._account[1]:g}s, "
            f"ip={self._ip[0]}/{self._ip[1]:g}s, max_delay={self._max:g}s)"
        )
