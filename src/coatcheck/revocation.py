"""Recently revoked sessions, and the feeds that spread revocations to every process.

An access token in hybrid mode is checked without a store round trip, so revoking
its session cannot stop it by itself. Each process therefore keeps a
:class:`RevocationSet`: the ids of sessions revoked in the last access-token
lifetime (after that every token minted for them has expired anyway). A feed
(:class:`~coatcheck.stores.redis_revocation.RedisRevocationFeed` over Redis pub/sub,
:class:`~coatcheck.stores.postgres_revocation.PostgresRevocationFeed` over PostgreSQL
LISTEN/NOTIFY; drivers live in :mod:`coatcheck.stores` only) carries each
revocation to every process.

The bound, stated:

* no feed: a revocation stops the access tokens in the process that revoked at
  once, and in the other processes when the tokens expire: one access-token
  lifetime (plus the codec's leeway);
* with a healthy feed: the publish-to-delivery latency, well under a second;
* while a feed is down (not yet connected, disconnected, or the set overflowed):
  :attr:`RevocationSet.reliable` is false and
  :class:`~coatcheck.auth.hybrid.HybridStrategy` checks the store for every
  access token, so the bound stays "immediate" at the cost of one store read per
  request until the feed is back. Each feed also keeps its recent revocations in a
  backlog (a Redis sorted set, a PostgreSQL table) that it reads after every
  (re)connection, before declaring itself healthy, so nothing published while a
  process was disconnected (or not yet started) is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import timedelta

from .clock import Clock, SystemClock
from .errors import ConfigurationError
from .events import (
    FeedStateChanged,
    RevocationsPublished,
    RevocationsReceived,
    emit,
    observed,
)

__all__ = ["RevocationFeed", "RevocationSet", "decode_message", "encode_message"]

_log = logging.getLogger("coatcheck.revocation")
_SYSTEM_CLOCK = SystemClock()
_CHANNEL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,62}")


class RevocationSet:
    """Session ids revoked recently, each kept until ``until`` (its tokens' latest expiry).

    Memory is bounded by ``max_entries``. When full (after dropping expired entries)
    a new id is not stored; instead the set declares itself unreliable until that
    id would have expired, so callers check the store meanwhile: safe, never silent.
    ``reliable`` is also false while a feed that should fill the set is down.

    :raises ConfigurationError: when ``retention`` is not positive or ``max_entries`` < 1.
    """

    __slots__ = ("_clock", "_down", "_lock", "_max", "_overflow_until", "_retention", "_until")

    def __init__(
        self,
        *,
        retention: timedelta,
        max_entries: int = 1_000_000,
        clock: Clock = _SYSTEM_CLOCK,
    ) -> None:
        self._retention = retention.total_seconds()
        if self._retention <= 0 or max_entries < 1:
            raise ConfigurationError("retention must be positive and max_entries at least 1")
        self._max = max_entries
        self._clock = clock
        # Ordered by arrival, which with one retention is the order of expiry: pruning
        # pops from the front in O(1) (a plain dict's first key after many deletions is
        # found by walking every deleted slot before it).
        self._until: OrderedDict[str, float] = OrderedDict()
        # Writers may be WSGI threads (a manager with no feed records its own revokes):
        # two prunes at once must not pop a live entry. Readers take no lock.
        self._lock = threading.Lock()
        self._overflow_until = 0.0
        self._down = 0

    @property
    def retention(self) -> float:
        """Seconds an entry is kept: one access-token lifetime plus leeway."""
        return self._retention

    @property
    def reliable(self) -> bool:
        """Whether a session absent from the set can be trusted not to be revoked."""
        return not self._down and self._clock.now() >= self._overflow_until

    def reliable_at(self, now: float) -> bool:
        """:attr:`reliable` for a time the caller already read (the per-request path)."""
        return not self._down and now >= self._overflow_until

    def is_revoked(self, session_id: str, now: float) -> bool:
        """Whether ``session_id`` was revoked and its tokens may still be alive."""
        until = self._until.get(session_id)
        return until is not None and now < until

    def add(self, session_ids: Iterable[str], *, until: float | None = None) -> None:
        """Record revocations, kept until ``until``, at most now + retention (the default).

        Every token of a session revoked now expires within the retention, so a
        longer ``until`` from the wire (a publisher with longer-lived tokens, or the
        ``coatcheck sessions`` command, which cannot know) is shortened here.
        """
        now = self._clock.now()
        if until is None:
            until = now + self._retention
        until = min(until, now + self._retention)
        if until <= now:
            return
        with self._lock:
            self._prune(now)
            table = self._until
            for sid in session_ids:
                if sid in table:
                    table[sid] = max(table[sid], until)
                elif len(table) < self._max or self._sweep(now):
                    table[sid] = until
                else:
                    self._overflow_until = max(self._overflow_until, until)
                    _log.warning(
                        "revocation set full (%d); checking the store meanwhile", self._max
                    )

    def mark_down(self) -> None:
        """A feed lost its connection: the set may miss revocations from now on."""
        self._down += 1

    def mark_up(self) -> None:
        """A feed is connected again and has replayed its backlog."""
        self._down = max(0, self._down - 1)

    def _prune(self, now: float) -> None:
        table = self._until
        while table:
            sid = next(iter(table))
            if table[sid] > now:
                return
            table.popitem(last=False)

    def _sweep(self, now: float) -> bool:
        for sid in [s for s, u in self._until.items() if u <= now]:
            del self._until[sid]
        return len(self._until) < self._max

    def __len__(self) -> int:
        return len(self._until)

    def __repr__(self) -> str:
        return f"RevocationSet(<{len(self._until)} ids>, reliable={self.reliable})"


def encode_message(session_ids: list[str], until: float, *, sent_at: float | None = None) -> str:
    """The wire form of one revocation message (JSON); ``sent_at``, the publisher's
    time, lets listeners measure the feed's lag (older listeners ignore it)."""
    message: dict[str, object] = {"u": until, "s": session_ids}
    if sent_at is not None:
        message["t"] = sent_at
    return json.dumps(message, separators=(",", ":"))


def decode_message(payload: str | bytes) -> tuple[list[str], float] | None:
    """A message from the wire, or ``None`` when it is not one of ours (never raises)."""
    message = _decode(payload)
    return None if message is None else (message[0], message[1])


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _decode(payload: str | bytes) -> tuple[list[str], float, float | None] | None:
    """``(ids, until, sent_at or None)`` of a message, or ``None`` (never raises)."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    until, ids = _number(raw.get("u")), raw.get("s")
    if until is None or not isinstance(ids, list):
        return None
    return [s for s in ids if isinstance(s, str) and len(s) < 256], until, _number(raw.get("t"))


class RevocationFeed:
    """Base of the feeds: the reconnecting listener task, health and the publish queue.

    :raises ConfigurationError: for a bad channel, heartbeat or backoff.

    Subclasses implement ``_listen`` (connect, subscribe, replay the backlog, call
    ``_connected()``, then apply messages until the connection fails) and ``_send``.
    A publish that fails is queued and re-sent after the next successful connection;
    until then this process still knows (its own set has the ids).
    """

    def __init__(
        self,
        revocations: RevocationSet,
        *,
        channel: str,
        clock: Clock = _SYSTEM_CLOCK,
        heartbeat: float = 1.0,
        max_backoff: float = 5.0,
    ) -> None:
        if not _CHANNEL_RE.fullmatch(channel):
            raise ConfigurationError("a feed channel is a short identifier ([A-Za-z0-9_.:-])")
        if heartbeat <= 0 or max_backoff <= 0:
            raise ConfigurationError("heartbeat and max_backoff must be positive")
        self._set = revocations
        self._channel = channel
        self._clock = clock
        self._heartbeat = heartbeat
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._healthy = False
        self._pending: list[tuple[list[str], float]] = []
        self._up = asyncio.Event()
        # Until the first connection the set may already be missing revocations.
        revocations.mark_down()

    @property
    def revocations(self) -> RevocationSet:
        return self._set

    @property
    def channel(self) -> str:
        return self._channel

    @property
    def healthy(self) -> bool:
        """Whether the listener is connected and has replayed its backlog."""
        return self._healthy

    async def start(self, *, wait: float | None = None) -> None:
        """Start the listener task; with ``wait``, wait up to that many seconds for it
        to be healthy (it keeps trying in the background either way)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), wait)

    async def stop(self) -> None:
        """Stop the listener and close connections."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._disconnected()
        await self._close()

    @property
    def pending(self) -> int:
        """Messages whose publish failed, waiting for the next connection to re-send."""
        return len(self._pending)

    async def publish(self, session_ids: Iterable[str]) -> bool:
        """Revoke ``session_ids`` here at once and tell every other process; whether
        the message reached the server (``False``: it is queued).

        Never raises for a broken connection: the message is queued and re-sent
        after the feed reconnects (the store remains the authority meanwhile).
        """
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return True
        until = self._clock.now() + self._set.retention
        self._set.add(ids, until=until)
        try:
            await self._send(ids, until)
        except Exception as exc:  # any driver failure means "queue it"
            _log.warning("revocation publish failed (%s); queued", type(exc).__name__)
            self._pending.append((ids, until))
            self._published(len(ids), False)
            return False
        self._published(len(ids), True)
        return True

    def _published(self, count: int, delivered: bool) -> None:
        if observed(RevocationsPublished):
            emit(RevocationsPublished(channel=self._channel, count=count, delivered=delivered))

    def _message(self, session_ids: list[str], until: float) -> str:
        """The wire form of a message sent now (stamped, so listeners measure the lag)."""
        return encode_message(session_ids, until, sent_at=self._clock.now())

    def _apply(self, payload: str | bytes) -> None:
        message = _decode(payload)
        if message is None:
            return
        ids, until, sent_at = message
        self._set.add(ids, until=until)
        if observed(RevocationsReceived):
            lag = None if sent_at is None else max(0.0, self._clock.now() - sent_at)
            emit(RevocationsReceived(channel=self._channel, count=len(ids), lag=lag))

    async def _connected(self) -> None:
        pending, self._pending = self._pending, []
        for ids, until in pending:
            try:
                await self._send(ids, until)
            except Exception:
                self._pending.append((ids, until))
                raise
        if not self._healthy:
            self._healthy = True
            self._set.mark_up()
            self._up.set()
            self._state(True)

    def _disconnected(self) -> None:
        if self._healthy:
            self._healthy = False
            self._up.clear()
            self._set.mark_down()
            self._state(False)

    def _state(self, up: bool) -> None:
        if observed(FeedStateChanged):
            emit(FeedStateChanged(channel=self._channel, up=up))

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect on any failure
                _log.warning("revocation feed down (%s); reconnecting", type(exc).__name__)
            if self._healthy:
                delay = 0.05
            self._disconnected()
            with contextlib.suppress(Exception):
                await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def _listen(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _send(self, session_ids: list[str], until: float) -> None:  # pragma: no cover
        raise NotImplementedError

    async def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channel={self._channel!r}, healthy={self._healthy})"
