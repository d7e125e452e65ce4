"""A Django session engine on any coatcheck store.

``SESSION_ENGINE = "coatcheck.adapters.django.sessions"``:
``request.session`` keeps Django's :class:`~django.contrib.sessions.backends.base.SessionBase`
contract (``cycle_key``, ``flush``, ``set_expiry``, ``clear_expired`` for ``manage.py
clearsessions``, ``SESSION_SAVE_EVERY_REQUEST``, the test client's ``client.session`` and
``force_login``, and Django 5's ``aload``/``asave``/... in the event loop), while the
store is coatcheck's (``settings.COATCHECK["STORE"]``, see :mod:`.conf`) and the rules are
its :class:`~coatcheck.sessions.SessionManager`'s:

* the session key in the cookie is a coatcheck session token (256 random bits); the
  store holds only its SHA-256 (the session id), so a leaked store or backup gives no
  usable cookie;
* idle and absolute timeouts (``IDLE_TIMEOUT``, ``ABSOLUTE_TIMEOUT``), the idle expiry
  renewed by a read at most once per ``RENEW_INTERVAL`` (not a write per request);
  a ``set_expiry`` shorter than those is honoured too, as Django's backends do;
* a session that holds a login (``_auth_user_id``) is stored under that user, so the
  user's device list, "log out everywhere", ``coatcheck_sessions revoke-user`` and
  coatcheck's session strategy (``MODE = "session"``: this cookie is the credential)
  see it. When the logged-in user changes, the data moves to a new key;
* ``update_session_auth_hash`` (a password change) ends the user's other sessions and
  publishes their ids to the revocation feed; ``flush`` / ``logout`` revoke likewise.

Session data is stored as JSON (what Django's default ``JSONSerializer`` allows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.utils import timezone

from ...auth.identity import Identity
from ...errors import InvalidCredentials
from ...sessions.ids import session_id
from ...sessions.manager import SessionManager
from ...sessions.mapping import Changes, copy_json, same
from ...sessions.record import SessionRecord
from ...sync import run_sync
from .conf import get_runtime

__all__ = ["SessionStore"]


def _user_of(data: Mapping[str, Any]) -> str:
    """The user a session's record is stored under: the login's, in session mode.

    In jwt and hybrid mode the credential is the token, so ``request.session`` is only
    data and stays a guest's record (the user's device list is their hybrid sessions).
    """
    if get_runtime().config.mode != "session":
        return ""
    user = data.get(SESSION_KEY)
    return user if isinstance(user, str) else ("" if user is None else str(user))


async def _end(manager: SessionManager, sid: str) -> None:
    """End a session: a revocation in session mode (the record is the credential, so it
    is published); in jwt and hybrid mode only data, simply deleted."""
    if get_runtime().config.mode == "session":
        await manager.revoke_id(sid)
    else:
        await manager.store.delete(sid)


def _logged_in_user(data: Mapping[str, Any]) -> str:
    user = data.get(SESSION_KEY)
    return user if isinstance(user, str) else ("" if user is None else str(user))


class SessionStore(SessionBase):  # type: ignore[misc]  # Django is untyped
    """``request.session`` kept in a coatcheck store (see the module docstring).

    ``client`` (user agent, IP) is recorded on new sessions for device lists; the
    middleware sets it. :meth:`prime` hands over a record already read this request.
    """

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._record: SessionRecord | None = None
        self._base: Mapping[str, Any] = {}
        self._cleared = False
        self.client: tuple[str, str] = ("", "")
        #: The request's identity (the middleware sets it): whose credential to keep
        #: when a password change ends the user's other sessions in hybrid mode.
        self.current: Identity | None = None

    # -- keys ----------------------------------------------------------------------------

    def _validate_session_key(self, key: object) -> bool:
        # Only a well-formed coatcheck token: anything else is a new, empty session.
        return isinstance(key, str) and session_id(key) is not None

    def prime(self, token: str, record: SessionRecord) -> None:
        """Use ``record`` (just read and renewed for ``token``) instead of reading again."""
        if (
            token == self.session_key
            and session_id(token) == record.id
            and not hasattr(self, "_session_cache")
        ):
            self._record = record
            self._session_cache = self._checked(record)

    # -- the shared logic: coroutines on a manager, driven sync or async -------------------

    def _checked(self, record: SessionRecord) -> dict[str, Any]:
        # The request's own copy; the stored data is kept apart to tell what it changed.
        self._base = record.data
        self._cleared = False
        data: dict[str, Any] = copy_json(dict(record.data))
        return data

    def clear(self) -> None:
        super().clear()
        self._cleared = True

    def _changes(self, data: Mapping[str, Any]) -> Changes:
        """What this request did to the data, key by key (replayed on the latest data)."""
        if self._cleared:  # everything the request kept is its own
            return Changes(dict(data), frozenset(), True)
        base, missing = self._base, object()
        changed = {
            key: value
            for key, value in data.items()
            if (old := base.get(key, missing)) is missing or not same(value, old)
        }
        removed = frozenset(key for key in base if key not in data)
        return Changes(changed, removed, self._cleared)

    def _past_custom_expiry(self, record: SessionRecord, now: float) -> bool:
        # set_expiry(seconds | datetime): seconds are measured from the last renewal, as
        # Django's backends measure them from the last save.
        expiry = record.data.get("_session_expiry")
        if not expiry:
            return False
        current = timezone.now()
        last = current - timedelta(seconds=max(0.0, now - record.last_seen))
        try:
            return bool(self.get_expiry_date(modification=last, expiry=expiry) <= current)
        except (TypeError, ValueError, OverflowError):
            return True  # fail closed on an expiry no one could have set

    async def _load(self, manager: SessionManager) -> dict[str, Any]:
        token = self.session_key
        record = None if token is None else await manager.validate(token)
        if record is not None and self._past_custom_expiry(record, manager.clock.now()):
            await _end(manager, record.id)
            record = None
        if record is None:
            self._record = None
            self._session_key = None
            return {}
        self._record = record
        return self._checked(record)

    async def _exists(self, manager: SessionManager, session_key: str | None) -> bool:
        sid = session_id(session_key) if isinstance(session_key, str) else None
        if sid is None:
            return False
        return await manager.get_id(sid) is not None

    async def _create(self, manager: SessionManager, data: dict[str, Any]) -> None:
        user_agent, ip = self.client
        token, record = await manager.create(
            _user_of(data), data=data, user_agent=user_agent, ip=ip
        )
        self._session_key = token  # type: ignore[assignment]  # a property of SessionBase
        self._record = await self._expire_custom(manager, record, data)
        self._base, self._cleared = copy_json(dict(data)), False
        self.modified = True

    async def _expire_custom(
        self, manager: SessionManager, record: SessionRecord, data: Mapping[str, Any]
    ) -> SessionRecord:
        """Bring the stored expiry forward to a ``set_expiry`` shorter than the policy's,
        so ``clear_expired`` (and Redis's own expiry) removes the session in time."""
        expiry = data.get("_session_expiry")
        if not expiry:
            return record
        now = manager.clock.now()
        try:
            age = self.get_expiry_age(expiry=expiry)
        except (TypeError, ValueError, OverflowError):
            age = 0
        ends = min(record.expires_at, now + age)
        if ends >= record.expires_at:
            return record
        await manager.store.touch(record.id, now, ends)
        return replace(record, last_seen=now, expires_at=ends)

    async def _save(self, manager: SessionManager, data: dict[str, Any], must_create: bool) -> None:
        if self.session_key is None or must_create:
            await self._create(manager, data)
            return
        record = self._record
        if record is None:
            sid = session_id(self.session_key)
            record = None if sid is None else await manager.get_id(sid)
            if record is None:
                raise UpdateError
        user = _user_of(data)
        if record.user_id != user:
            # The login changed: the data moves to a key of the new user (stored under
            # them), and the old key stops working.
            await self._create(manager, data)
            await _end(manager, record.id)
            return
        previous_hash = record.data.get(HASH_SESSION_KEY)
        login = _logged_in_user(data)
        # Key by key onto the latest stored data, as every coatcheck session mapping does:
        # two requests that change different keys both keep their change.
        changes = self._changes(data)
        try:
            saved = await manager.apply(record, changes.apply)
        except InvalidCredentials as exc:  # revoked or expired meanwhile
            raise UpdateError from exc
        if saved is None:  # pragma: no cover - the change never asks to delete
            raise UpdateError
        self._record = await self._expire_custom(manager, saved, data)
        self._base, self._cleared = copy_json(dict(saved.data)), False
        if login and previous_hash and data.get(HASH_SESSION_KEY) != previous_hash:
            # update_session_auth_hash(): the password changed. Django's own backends
            # leave the other sessions to fail their hash check one by one; here they
            # end now, and processes that check tokens without the store hear of it.
            await self._password_changed(manager, login, record)

    async def _password_changed(
        self, manager: SessionManager, user: str, record: SessionRecord
    ) -> None:
        mode = get_runtime().config.mode
        if mode == "session":
            await manager.revoke_user(user, keep=record.id)
        elif mode == "hybrid":
            # The user's hybrid sessions, but the one this request came with.
            current = self.current
            keep = current.session_id if current is not None and current.user_id == user else None
            await manager.revoke_user(user, keep=keep)
        # jwt mode: a signed token cannot be revoked (use hybrid mode for that).

    async def _delete(self, manager: SessionManager, session_key: str | None) -> None:
        key = self.session_key if session_key is None else session_key
        if key is None:
            return
        sid = session_id(key)
        if sid is None:
            return
        if self._record is not None and self._record.id == sid:
            self._record = None
        await _end(manager, sid)

    # -- SessionBase, synchronous: the store that never suspends ---------------------------

    @staticmethod
    def _manager() -> SessionManager:
        return get_runtime().sync.manager

    def load(self) -> dict[str, Any]:
        return run_sync(self._load(self._manager()))

    def exists(self, session_key: str | None) -> bool:
        return run_sync(self._exists(self._manager(), session_key))

    def create(self) -> None:
        run_sync(self._create(self._manager(), self._get_session(no_load=True)))

    def save(self, must_create: bool = False) -> None:
        data = self._get_session(no_load=must_create or self.session_key is None)
        run_sync(self._save(self._manager(), data, must_create))

    def delete(self, session_key: str | None = None) -> None:
        run_sync(self._delete(self._manager(), session_key))

    @classmethod
    def clear_expired(cls) -> None:
        run_sync(get_runtime().sync.manager.prune())

    # -- Django 5's async twins: the event loop's store, no thread ------------------------

    @staticmethod
    def _amanager() -> SessionManager:
        return get_runtime().async_parts().manager

    async def aload(self) -> dict[str, Any]:
        return await self._load(self._amanager())

    async def aexists(self, session_key: str | None) -> bool:
        return await self._exists(self._amanager(), session_key)

    async def acreate(self) -> None:
        await self._create(self._amanager(), await self._aget_session(no_load=True))

    async def asave(self, must_create: bool = False) -> None:
        data = await self._aget_session(no_load=must_create or self.session_key is None)
        await self._save(self._amanager(), data, must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await self._delete(self._amanager(), session_key)

    @classmethod
    async def aclear_expired(cls) -> None:
        await get_runtime().async_parts().manager.prune()
