"""SessionManager: the async shell around the pure lifecycle rules and a store.

The manager fetches, calls :func:`~coatcheck.sessions.lifecycle.decide` and
persists; it holds no rule of its own. Per request, :meth:`SessionManager.validate`
costs one store read, plus one write only when renewal is due (at most once per
``renew_interval``), so sliding expiry does not turn every request into a write.

Revocation is one place: :meth:`~SessionManager.revoke`, :meth:`~SessionManager.revoke_id`
and :meth:`~SessionManager.revoke_user` end the sessions in the store and then
publish their ids to the manager's revocations (a
:class:`~coatcheck.revocation.RevocationFeed` for every process, or a
:class:`~coatcheck.revocation.RevocationSet` for this one), so no caller (the app,
an adapter's logout, hybrid reuse detection, the ``coatcheck sessions`` command) can
revoke without telling the processes that check access tokens without the store.

A guest's session is a record with user id ``""``: made by ``create("")``, read by
:meth:`~SessionManager.validate` like any other, never indexed under a user and never
an authentication (:class:`~coatcheck.auth.SessionStrategy` treats it as a guest).
Every write of data checks its size against ``max_data_size``. Text that no store can
keep (a NUL, which PostgreSQL refuses, or a lone surrogate, which UTF-8 cannot encode) in
a user id, a user agent, an address or anywhere in the data is refused before any store
sees it, with :class:`~coatcheck.errors.InvalidText` (a 400: such text comes from a
client), the same on every store. Creations and revocations
are told to observers as :mod:`coatcheck.events` (``SessionCreated``, ``SessionsRevoked``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..bodies import check_text
from ..clock import Clock, SystemClock
from ..errors import (
    ConfigurationError,
    ConflictError,
    InvalidCredentials,
    SessionTooLarge,
    StoreError,
)
from ..events import SessionCreated, SessionsRevoked, emit, observed
from ..policies import SessionPolicy
from ..revocation import RevocationFeed, RevocationSet
from .ids import new_token, session_id
from .lifecycle import Decision, decide, new_expiry, renewed
from .mapping import dump_json
from .record import SessionRecord
from .store import SessionStore

__all__ = ["DEFAULT_MAX_DATA_SIZE", "SessionManager"]

# Each lost compare-and-set means another writer won, so with N writers racing on
# one session a writer loses at most N - 1 times; 64 covers a burst of 64 requests
# on one session (two tabs, or a page firing requests in parallel, stay far below).
_DEFAULT_ATTEMPTS = 64
#: Largest session data, as compact UTF-8 JSON, a manager writes by default (bytes).
DEFAULT_MAX_DATA_SIZE = 64 * 1024
# Data is walked this deep for bad text; deeper, json.dumps refuses it anyway.
_TEXT_DEPTH = 256


class SessionManager:
    """Create, validate, renew, rotate and revoke server-side sessions.

    The client gets an opaque token once (from :meth:`create` or :meth:`rotate`);
    the store only ever sees its hash, the session id. Store failures propagate as
    :class:`~coatcheck.errors.StoreError` / :class:`~coatcheck.errors.StoreUnavailable`
    so callers can fail closed.

    ``revocations``: where revoked session ids are published (see the module
    docstring); :class:`~coatcheck.auth.HybridStrategy` sets a set of its own when
    none is given (:meth:`use_revocations`).
    """

    __slots__ = (
        "_absolute",
        "_attempts",
        "_clock",
        "_feed",
        "_idle",
        "_max_size",
        "_policy",
        "_renew",
        "_revoked",
        "_store",
    )

    def __init__(
        self,
        store: SessionStore,
        *,
        policy: SessionPolicy = SessionPolicy(),  # noqa: B008 - frozen, so sharing is safe
        clock: Clock = SystemClock(),  # noqa: B008 - stateless
        update_attempts: int = _DEFAULT_ATTEMPTS,
        max_data_size: int = DEFAULT_MAX_DATA_SIZE,
        revocations: RevocationSet | RevocationFeed | None = None,
    ) -> None:
        """Raises ConfigurationError when ``update_attempts`` or ``max_data_size`` is below 1.

        ``max_data_size`` bounds a session's data as compact UTF-8 JSON, in bytes.
        """
        if update_attempts < 1:
            raise ConfigurationError("update_attempts must be at least 1")
        if max_data_size < 1:
            raise ConfigurationError("max_data_size must be at least 1 byte")
        self._feed: RevocationFeed | None = None
        self._revoked: RevocationSet | None = None
        if revocations is not None:
            self.use_revocations(revocations)
        self._store = store
        self._policy = policy
        self._clock = clock
        self._attempts = update_attempts
        self._max_size = max_data_size
        # Read once: timedelta arithmetic is measurable on the per-request path.
        self._idle = policy.idle_timeout.total_seconds()
        self._absolute = policy.absolute_timeout.total_seconds()
        self._renew = policy.renew_interval.total_seconds()

    @property
    def store(self) -> SessionStore:
        return self._store

    @property
    def policy(self) -> SessionPolicy:
        return self._policy

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def max_data_size(self) -> int:
        return self._max_size

    def check_size(self, data: Mapping[str, Any]) -> None:
        """Refuse ``data`` over ``max_data_size`` bytes of compact JSON.

        :raises SessionTooLarge: with the size and the limit.
        :raises SessionValueError: when ``data`` is not JSON.
        """
        size = len(dump_json(data))
        if size > self._max_size:
            raise SessionTooLarge(
                f"the session data is {size} bytes of JSON, over the limit of {self._max_size} "
                "(SessionManager(max_data_size=...)); keep large things elsewhere and store "
                "their id",
                size=size,
                limit=self._max_size,
            )

    @property
    def revocations(self) -> RevocationSet | None:
        """The set revoked ids go to (the feed's set when there is a feed), or ``None``."""
        return self._revoked

    @property
    def feed(self) -> RevocationFeed | None:
        """The feed revoked ids are published on, or ``None``."""
        return self._feed

    def use_revocations(self, revocations: RevocationSet | RevocationFeed) -> None:
        """Publish every revocation to ``revocations`` from now on.

        Set once: giving the same set or feed again is a no-op. Raises
        ConfigurationError when the manager already publishes elsewhere.
        """
        if isinstance(revocations, RevocationFeed):
            feed: RevocationFeed | None = revocations
            target = revocations.revocations
        elif isinstance(revocations, RevocationSet):
            feed, target = None, revocations
        else:
            raise ConfigurationError("revocations must be a RevocationSet or a RevocationFeed")
        if self._revoked is not None:
            if self._revoked is not target or (feed is not None and self._feed is not feed):
                raise ConfigurationError(
                    "this SessionManager already publishes its revocations elsewhere; "
                    "give the feed (or set) to SessionManager(store, revocations=...) once"
                )
            return
        self._feed, self._revoked = feed, target

    async def _published(self, session_ids: list[str]) -> None:
        # Even ids the store no longer had: a retry after a failed publish must still
        # reach the other processes. A feed never raises (it queues and re-sends).
        if not session_ids:
            return
        if self._feed is not None:
            await self._feed.publish(session_ids)
        elif self._revoked is not None:
            self._revoked.add(session_ids)

    async def create(
        self,
        user_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        user_agent: str = "",
        ip: str = "",
    ) -> tuple[str, SessionRecord]:
        """Start a new session; return ``(token, record)``. The token is shown only here.

        Always a fresh id (call it at every login: session fixation). ``user_id=""``
        makes a guest's session. Raises InvalidText (NUL or lone surrogate in any
        text), StoreError, SessionTooLarge.
        """
        check_text(user_id, field="the user id")
        check_text(user_agent, field="the user agent")
        check_text(ip, field="the client address")
        stored = dict(data or {})
        _check_data_text(stored)
        self.check_size(stored)
        now = self._clock.now()
        token = new_token(user_id)
        sid = session_id(token)
        if sid is None:  # pragma: no cover - new_token always makes a well-formed token
            raise StoreError("could not make a session id")
        absolute = now + self._absolute
        record = SessionRecord(
            id=sid,
            user_id=user_id,
            created_at=now,
            last_seen=now,
            expires_at=min(now + self._idle, absolute),
            absolute_expires_at=absolute,
            auth_time=now,
            data=stored,
            user_agent=user_agent,
            ip=ip,
        )
        await self._store.create(record)
        if observed(SessionCreated):
            emit(SessionCreated(guest=not user_id))
        return token, record

    async def validate(self, token: str) -> SessionRecord | None:
        """The live session behind ``token`` (renewed when due), or ``None``.

        ``None`` for a malformed, unknown, revoked or expired token; a malformed one
        never reaches the store. Raises StoreError / StoreUnavailable.
        """
        sid = session_id(token)
        if sid is None:
            return None
        now = self._clock.now()
        record = await self._store.get(sid, now)
        if record is None:
            return None
        if (
            now < record.expires_at
            and now < record.absolute_expires_at
            and now - record.last_seen < self._renew
        ):
            # decide()'s KEEP, spelled out: the common case skips its timedelta math.
            return record
        decision = decide(record, now, self._policy)
        if decision is Decision.KEEP:
            return record
        if decision is Decision.EXPIRED:
            # Stores already hide expired records; this covers one that ends between
            # the store's check and ours. Cleaning up is best effort: prune catches it.
            with contextlib.suppress(StoreError):
                await self._store.delete(sid)
            return None
        fresh = renewed(record, now, self._policy)
        await self._store.touch(sid, fresh.last_seen, fresh.expires_at)
        return fresh

    async def lookup(self, token: str) -> tuple[SessionRecord | None, bool]:
        """:meth:`validate`, also saying whether this call renewed the session.

        For callers that re-send a persistent cookie's Max-Age only when the expiry
        moved (the session mapping's data cookie). Same costs and errors as validate.
        """
        sid = session_id(token)
        if sid is None:
            return None, False
        now = self._clock.now()
        record = await self._store.get(sid, now)
        if record is None:
            return None, False
        if (
            now < record.expires_at
            and now < record.absolute_expires_at
            and now - record.last_seen < self._renew
        ):
            return record, False  # decide()'s KEEP, spelled out as validate() does
        decision = decide(record, now, self._policy)
        if decision is Decision.KEEP:
            return record, False
        if decision is Decision.EXPIRED:
            with contextlib.suppress(StoreError):
                await self._store.delete(sid)
            return None, False
        fresh = renewed(record, now, self._policy)
        await self._store.touch(sid, fresh.last_seen, fresh.expires_at)
        return fresh, True

    async def get_id(self, session_id: str) -> SessionRecord | None:
        """The live session with this id, or ``None``; read only, never renews.

        For callers that hold a session id rather than a token (hybrid mode checks a
        JWT's ``sid`` this way while its revocation feed is down). Raises InvalidText,
        StoreError.
        """
        check_text(session_id, field="the session id")
        now = self._clock.now()
        record = await self._store.get(session_id, now)
        if record is None or decide(record, now, self._policy) is Decision.EXPIRED:
            return None
        return record

    async def rotate(self, token: str) -> tuple[str, SessionRecord] | None:
        """Move a live session to a new token (after a privilege change); ``None`` if gone.

        The data, user and lifetimes carry over; the old token stops working. Raises
        StoreError.
        """
        sid = session_id(token)
        if sid is None:
            return None
        now = self._clock.now()
        record = await self._store.get(sid, now)
        if record is None or record.is_expired(now):
            return None
        new = new_token(record.user_id)
        new_sid = session_id(new)
        if new_sid is None:  # pragma: no cover - new_token always makes a well-formed token
            raise StoreError("could not make a session id")
        moved = replace(
            record,
            id=new_sid,
            last_seen=now,
            expires_at=new_expiry(now, record.absolute_expires_at, self._policy),
            auth_time=now,
        )
        # Create before delete: a failure in between leaves two sessions (the old one
        # still revocable), never none.
        await self._store.create(moved)
        await self._store.delete(sid)
        return new, moved

    async def revoke(self, token: str) -> bool:
        """End the session behind ``token`` (logout) and publish it; whether there was one.

        Raises StoreError.
        """
        sid = session_id(token)
        if sid is None:
            return False
        removed = await self._store.delete(sid)
        await self._published([sid])
        if removed is not None:
            _revoked(1)
        return removed is not None

    async def revoke_id(self, session_id: str) -> SessionRecord | None:
        """End a session by its id (device lists, the CLI) and publish it; return the
        removed record. Raises StoreError.
        """
        check_text(session_id, field="the session id")
        removed = await self._store.delete(session_id)
        await self._published([session_id])
        if removed is not None:
            _revoked(1)
        return removed

    async def revoke_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """End every session of ``user_id`` except session id ``keep``; their ids.

        ``keep`` is for "log out my other devices" and password changes, which keep
        the current session. The ids are published. Raises InvalidText, StoreError.
        """
        check_text(user_id, field="the user id")
        if keep is None:
            revoked = await self._store.delete_user(user_id)
        else:
            # Only live sessions are listed; an expired one left behind is already
            # refused by validate() and goes at the next prune().
            revoked = []
            for record in await self._store.list_user(user_id, self._clock.now()):
                if record.id != keep and await self._store.delete(record.id) is not None:
                    revoked.append(record.id)
        await self._published(revoked)
        if revoked:
            _revoked(len(revoked))
        return revoked

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, oldest first. Raises InvalidText, StoreError."""
        check_text(user_id, field="the user id")
        return await self._store.list_user(user_id, self._clock.now())

    async def update_data(
        self, session_id: str, change: Callable[[dict[str, Any]], None]
    ) -> SessionRecord:
        """Apply ``change`` to a copy of the session's data and save it (compare-and-set).

        ``change`` mutates the dict it is given and may be called several times, once
        per attempt, each time on the latest data. Raises InvalidCredentials when the
        session is gone (revoked or expired meanwhile), ConflictError after too many
        lost races, SessionTooLarge, StoreError when the store fails.
        """
        record = await self._store.get(session_id, self._clock.now())
        if record is None:
            raise InvalidCredentials("the session does not exist or has expired")

        def changed(current: Mapping[str, Any]) -> dict[str, Any]:
            data = dict(current)
            change(data)
            return data

        updated = await self.apply(record, changed)
        if updated is None:  # pragma: no cover - `changed` never asks to delete
            raise InvalidCredentials("the session does not exist or has expired")
        return updated

    async def apply(
        self,
        record: SessionRecord,
        change: Callable[[Mapping[str, Any]], dict[str, Any] | None],
    ) -> SessionRecord | None:
        """Write ``change(record.data)`` over ``record`` (compare-and-set), merging on a race.

        Starts from ``record`` as read (no read of its own: a change costs one write); on
        a lost race it reads the latest record and calls ``change`` again on its data.
        ``change`` returns the new data, or ``None`` to delete the session. Returns the
        stored record, or ``None`` when ``change`` deleted it. Raises InvalidCredentials
        when the session is gone (revoked or expired meanwhile), ConflictError after
        ``update_attempts`` lost races, SessionTooLarge, StoreError.
        """
        current: SessionRecord | None = record
        for attempt in range(self._attempts):
            if current is None:
                raise InvalidCredentials("the session does not exist or has expired")
            data = change(current.data)
            if data is None:
                await self._store.delete(current.id)
                return None
            _check_data_text(data)
            self.check_size(data)
            updated = current.with_data(data)
            if await self._store.update(updated):
                return updated
            if attempt:
                # Let the winner's follow-up work run before the next read.
                await asyncio.sleep(0)
            current = await self._store.get(record.id, self._clock.now())
        raise ConflictError(f"session data changed concurrently {self._attempts} times in a row")

    async def prune(self, limit: int | None = None) -> int:
        """Remove up to ``limit`` expired sessions (all when ``None``); return how many.

        Raises StoreError.
        """
        return await self._store.delete_expired(self._clock.now(), limit)

    def __repr__(self) -> str:
        return f"SessionManager({self._store!r}, policy={self._policy!r})"


def _check_data_text(value: Any, depth: int = 0) -> None:
    """Refuse a NUL or lone surrogate in any key or string of session data.

    :raises InvalidText: naming only where (never the text itself).
    """
    if isinstance(value, str):
        check_text(value, field="a text in the session data")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                check_text(key, field="a key of the session data")
            if depth < _TEXT_DEPTH:
                _check_data_text(item, depth + 1)
    elif isinstance(value, list | tuple) and depth < _TEXT_DEPTH:
        for item in value:
            _check_data_text(item, depth + 1)


def _revoked(count: int) -> None:
    if observed(SessionsRevoked):
        emit(SessionsRevoked(count=count))
