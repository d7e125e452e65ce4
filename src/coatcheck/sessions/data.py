"""Session data for every visitor: the mapping's life across a request, kept in a store.

A backend (:class:`StoreSessions` here, :class:`~coatcheck.sessions.client.CookieSessions`
for a signed or encrypted cookie) does two things per request, and adapters do nothing
else: :meth:`~SessionBackend.open` gives the :class:`~coatcheck.sessions.mapping.SessionMapping`
the app sees as ``request.session``, :meth:`~SessionBackend.save` writes it back once,
at the end, and returns the ``Set-Cookie`` headers to send.

**Where the data lives** (:class:`StoreSessions`):

* a **guest** (no login) has none until something is stored: then a guest session is
  made, a :class:`~coatcheck.sessions.SessionRecord` with user id ``""`` under a token
  of its own in the data cookie (``__Host-coatcheck_data`` by default, see
  :data:`DEFAULT_DATA_COOKIE_NAME`). Guests' records are never
  indexed under a user and never authenticate anyone. A request that stores nothing
  makes no store call and sends no cookie; a session whose data becomes empty is
  deleted and its cookie cleared.
* a visitor **logged in with a server-side session** (session mode) keeps the data in
  that very login record, under the reserved key :data:`DATA_KEY`: one cookie, one
  record, one store read per request (the one authentication already made, passed in
  as :attr:`Visitor.record`).
* a visitor **logged in with a JWT** (jwt and hybrid modes) has no server session per
  request, so the data keeps its own record and cookie, as for a guest, with the
  owner's user id under :data:`OWNER_KEY`. A data record is shown only to its owner: a
  guest (an expired token, another person at the same browser) or another user sees an
  empty session, and the record is left alone for its owner to come back to.

**Written once, only when changed.** :meth:`~SessionBackend.save` compares the mapping
with what was read; an unchanged session costs the one read and no write. A change is a
compare-and-set of the record read (one write); when another request won the race, the
latest record is read and the *key-level* changes are replayed on it
(:class:`~coatcheck.sessions.mapping.Changes`), so concurrent requests that change
different keys lose nothing. A guest record's idle expiry slides as a login session's
does (at most one ``touch`` per ``renew_interval``), and its persistent cookie's Max-Age
follows.

**Login and logout.** When the visitor changes during a request (the adapter sees the
app set or clear the credential cookie) or between requests (a guest's data cookie
arrives with a login), the data moves to a new id, never the old one (session
fixation): at login ``on_login(data)`` picks what is carried over (everything, by
default); at logout ``on_logout(data)`` picks what stays with the browser (nothing, by
default).

**Limits.** The data, as compact JSON, may take ``max_data_size`` bytes of the
:class:`~coatcheck.sessions.SessionManager` (64 KiB by default); more is a
:class:`~coatcheck.errors.SessionTooLarge` at save, naming the size.

**Moving over from Starlette or Flask.** ``legacy`` readers
(:mod:`coatcheck.interop.signed_sessions`) recognise another framework's signed session
cookie, given its old secret, and carry its data into a new session on the first visit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..cookies import dump_cookie, expire_cookie, find_cookie, prefixed_name
from ..errors import ConfigurationError, InvalidCredentials
from ..events import note_cookie
from ..policies import CookiePolicy
from .manager import SessionManager
from .mapping import Changes, SessionMapping, check_json
from .record import SessionRecord

__all__ = [
    "DATA_KEY",
    "DEFAULT_DATA_COOKIE_NAME",
    "GUEST",
    "OWNER_KEY",
    "LegacyCookie",
    "SessionBackend",
    "StoreSessions",
    "Visitor",
    "carry_all",
    "drop_all",
]

#: The data cookie's name when the caller does not name it, before its prefix
#: (:func:`~coatcheck.cookies.prefixed_name`: ``__Host-coatcheck_data`` over HTTPS).
#: Not ``session``: that is the login cookie's name over plain HTTP
#: (:class:`~coatcheck.auth.CookieTransport`), and Starlette's and Flask's.
DEFAULT_DATA_COOKIE_NAME = "coatcheck_data"

#: Key of a record's data under which the session mapping is kept.
DATA_KEY = "_session"
#: Key of a data record's data naming the user it belongs to (jwt and hybrid modes).
OWNER_KEY = "_owner"

M = TypeVar("M", bound=SessionMapping)
#: ``on_login`` / ``on_logout``: given the data, return what to keep (a new mapping).
Hook = Callable[[dict[str, Any]], Mapping[str, Any]]


def carry_all(data: dict[str, Any]) -> Mapping[str, Any]:
    """The default ``on_login``: everything a guest stored comes along (the cart)."""
    return data


def drop_all(data: dict[str, Any]) -> Mapping[str, Any]:
    """The default ``on_logout``: nothing stays with the browser after logout."""
    return {}


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who a request is, as authentication found it.

    ``user_id`` is ``""`` for a guest. ``record`` is the server-side login session that
    authenticated the request (session mode), whose data then holds the mapping; it is
    ``None`` for a guest and for a JWT.
    """

    user_id: str = ""
    record: SessionRecord | None = field(default=None, repr=False, compare=False)


#: The visitor of a request without a login.
GUEST = Visitor()


@runtime_checkable
class LegacyCookie(Protocol):
    """Reads another framework's session cookie (see :mod:`coatcheck.interop.signed_sessions`).

    ``load`` returns the session's data when ``value`` is a valid, unexpired cookie of
    its kind, else ``None``; it never raises.
    """

    cookie_name: str

    def load(self, value: str, now: float) -> dict[str, Any] | None: ...


@runtime_checkable
class SessionBackend(Protocol):
    """Where a request's session mapping comes from and goes back to (module docstring)."""

    @property
    def cookie_name(self) -> str: ...

    async def open(
        self,
        headers: Mapping[str, str],
        visitor: Visitor = GUEST,
        *,
        factory: type[M] = SessionMapping,  # type: ignore[assignment]
    ) -> M: ...

    async def save(
        self, session: SessionMapping, visitor: Visitor | None = None
    ) -> list[tuple[str, str]]: ...


def _stored(record: SessionRecord) -> dict[str, Any]:
    value = record.data.get(DATA_KEY)
    return value if isinstance(value, dict) else {}


class _Open:
    """What :class:`StoreSessions` remembers between ``open`` and ``save`` of one request."""

    __slots__ = ("clear", "legacy", "owner", "record", "renewed", "retire", "token", "visitor")

    def __init__(self, visitor: Visitor) -> None:
        self.visitor = visitor
        # Whose data the mapping holds; where it is stored (a guest-kind record, or the
        # login record); the token of a guest-kind record (from the data cookie).
        self.owner = ""
        self.record: SessionRecord | None = None
        self.token: str | None = None
        # A data cookie came that must go unless a new one replaces it.
        self.clear = False
        # The guest record's idle expiry slid forward: re-send a persistent cookie.
        self.renewed = False
        # A guest-kind record whose data moved elsewhere: delete it at save.
        self.retire: SessionRecord | None = None
        # Another cookie migrated from (a legacy name other than ours): clear it.
        self.legacy: str | None = None


class _CookieWriter:
    """The data cookie: name, policy, persistence (shared by both backends)."""

    __slots__ = ("_clear", "_name", "_persistent", "_policy", "clock")

    def __init__(
        self, name: str | None, policy: CookiePolicy, persistent: bool, clock: Any
    ) -> None:
        if name is None:
            name = prefixed_name(DEFAULT_DATA_COOKIE_NAME, policy)
        self._name = name
        self._policy = policy
        self._persistent = persistent
        self.clock = clock
        # Builds and checks the expiring header now: a bad name fails at start-up.
        self._clear = ("set-cookie", expire_cookie(name, policy))

    @property
    def name(self) -> str:
        return self._name

    def write(self, value: str, expires_at: float) -> tuple[str, str]:
        if not self._persistent:
            cookie = dump_cookie(self._name, value, self._policy)
        else:
            now = self.clock.now()
            max_age = max(0, int(expires_at - now))
            cookie = dump_cookie(self._name, value, self._policy, max_age=max_age, now=now)
        note_cookie("session", cookie)
        return "set-cookie", cookie

    def clear(self, name: str | None = None) -> tuple[str, str]:
        if name is None or name == self._name:
            return self._clear
        return "set-cookie", expire_cookie(name, self._policy)


def _checked_hook(hook: Hook, what: str) -> Hook:
    if not callable(hook):
        raise ConfigurationError(f"{what} must be a function of the data returning a mapping")
    return hook


def transfer(
    data: dict[str, Any], from_owner: str, to_owner: str, on_login: Hook, on_logout: Hook
) -> dict[str, Any]:
    """The data that follows a visitor from ``from_owner`` to ``to_owner`` (``""``: guest).

    A change of owner is a logout of the old one (``on_logout`` picks what stays), then
    a login of the new one (``on_login`` picks what comes along).

    :raises SessionValueError: when a hook returns something that is not JSON.
    """
    if from_owner == to_owner:
        return data
    if from_owner:
        data = dict(on_logout(data))
    if to_owner:
        data = dict(on_login(data))
    for key, value in data.items():
        check_json(key, value)
    return data


def _legacy_data(
    readers: Sequence[LegacyCookie], cookie_header: str | None, own: str, value: str | None,
    now: float,
) -> tuple[dict[str, Any], str] | None:
    """Data of a migrated cookie and its name, from the first reader that accepts one."""
    for reader in readers:
        name = reader.cookie_name
        found = value if name == own else find_cookie(cookie_header, name)
        if found:
            data = reader.load(found, now)
            if data is not None:
                return data, name
    return None


class StoreSessions:
    """The session mapping kept in a store, for guests and logged-in visitors alike.

    :param manager: the :class:`~coatcheck.sessions.SessionManager` of the store (in
        session mode, the one the :class:`~coatcheck.auth.SessionStrategy` uses, so the
        data can live in the login record). Its policy times guest sessions too; its
        ``max_data_size`` bounds the data.
    :param cookie_name: the data cookie (guests, and jwt/hybrid logins); by default
        :data:`DEFAULT_DATA_COOKIE_NAME` with the strongest prefix ``cookie_policy``
        allows. It must differ from every other coatcheck cookie (checked at start-up).
    :param cookie_policy: its attributes (HttpOnly, Secure, SameSite=Lax, Path=/ by
        default; ``secure=False`` only for plain-HTTP development).
    :param persistent: the cookie outlives the browser (Max-Age up to the session's
        expiry); ``False`` makes it a browser-session cookie.
    :param on_login: what a guest's data becomes at login (default: all of it).
    :param on_logout: what stays with the browser at logout (default: nothing).
    :param legacy: readers of other frameworks' session cookies to migrate from.
    :raises ConfigurationError: for a hook that is not callable.
    :raises CookieError: for an illegal cookie name or policy.
    """

    __slots__ = ("_cookie", "_legacy", "_manager", "_on_login", "_on_logout")

    def __init__(
        self,
        manager: SessionManager,
        *,
        cookie_name: str | None = None,
        cookie_policy: CookiePolicy = CookiePolicy(),  # noqa: B008 - frozen, so sharing is safe
        persistent: bool = True,
        on_login: Hook = carry_all,
        on_logout: Hook = drop_all,
        legacy: Sequence[LegacyCookie] = (),
    ) -> None:
        self._manager = manager
        self._cookie = _CookieWriter(cookie_name, cookie_policy, persistent, manager.clock)
        self._on_login = _checked_hook(on_login, "on_login")
        self._on_logout = _checked_hook(on_logout, "on_logout")
        self._legacy = tuple(legacy)

    @property
    def manager(self) -> SessionManager:
        return self._manager

    @property
    def cookie_name(self) -> str:
        return self._cookie.name

    # -- open -------------------------------------------------------------------------------

    async def open(
        self,
        headers: Mapping[str, str],
        visitor: Visitor = GUEST,
        *,
        factory: type[M] = SessionMapping,  # type: ignore[assignment]
    ) -> M:
        """The request's session mapping: at most one store read (none for a new guest).

        ``headers`` has lower-case names; ``visitor`` is who authentication found.
        ``factory`` makes the mapping (a subclass, for Flask). Raises StoreError /
        StoreUnavailable.
        """
        header = headers.get("cookie")
        value = find_cookie(header, self._cookie.name) if header else None
        state = _Open(visitor)
        found: SessionRecord | None = None
        if value:
            # lookup() refuses a malformed token before the store sees it.
            record, renewed = (
                await self._manager.lookup(value) if len(value) == 52 else (None, False)
            )
            if record is None or record.user_id:
                # Unknown, expired, not ours, or a login token where data belongs: never
                # read a login's data through the data cookie.
                state.clear = True
            else:
                found = record
                state.renewed = renewed
        login = visitor.record
        if login is not None:
            # Session mode: the data lives in the login session authentication read.
            session = factory(_stored(login), new=False)
            state.owner, state.record = login.user_id, login
            if found is not None:
                # A guest's data cookie arrives with a login: carry it in, once.
                carried = self._transfer(_stored(found), found.data.get(OWNER_KEY, ""), login)
                session.load((k, v) for k, v in carried.items() if k not in session)
                state.retire, state.clear = found, True
        elif found is not None:
            owner = found.data.get(OWNER_KEY, "")
            if owner == visitor.user_id:
                session = factory(_stored(found), new=False)
                state.owner, state.record, state.token = owner, found, value
                if not owner:
                    session.binding = found.id
            elif not owner:
                # A guest's data, and the visitor has logged in since (jwt, hybrid):
                # it moves to a new id, theirs.
                session = factory()
                session.load(self._transfer(_stored(found), "", visitor).items())
                state.owner = visitor.user_id
                state.retire, state.clear = found, True
            else:
                # Someone else's data: hidden, and kept for its owner to come back to.
                session = factory()
                state.owner = visitor.user_id
        else:
            session = factory()
            state.owner = visitor.user_id
        if self._legacy and found is None:
            legacy = _legacy_data(
                self._legacy, header, self._cookie.name, value, self._manager.clock.now()
            )
            if legacy is not None:
                data, name = legacy
                session.load(self._transfer(data, "", visitor).items())
                state.legacy = name if name != self._cookie.name else None
                state.clear = state.clear or name == self._cookie.name
        session.handle = state
        return session

    def _transfer(
        self, data: dict[str, Any], owner: str, to: Visitor | SessionRecord
    ) -> dict[str, Any]:
        return transfer(data, owner, to.user_id, self._on_login, self._on_logout)

    # -- save -------------------------------------------------------------------------------

    async def save(
        self, session: SessionMapping, visitor: Visitor | None = None
    ) -> list[tuple[str, str]]:
        """Write the session if it changed; the ``Set-Cookie`` headers to send.

        ``visitor`` is who the request ended as, when the app logged in or out during
        it (``None``: no change). Raises SessionValueError, SessionTooLarge,
        ConflictError, StoreError / StoreUnavailable.
        """
        state = session.handle
        if not isinstance(state, _Open):
            raise ConfigurationError("this session was not opened by this StoreSessions")
        if (
            visitor is None
            and not state.renewed
            and not state.clear
            and state.retire is None
            and state.legacy is None
            and session.changes() is None
        ):
            return []  # the common read: nothing to write, no cookie to send
        headers: list[tuple[str, str]] = []
        if visitor is not None and _moves(state, visitor):
            await self._move(session, state, visitor, headers)
        else:
            await self._write(session, state, headers)
        if state.retire is not None:
            await self._manager.store.delete(state.retire.id)
        if state.clear and not headers:
            headers.append(self._cookie.clear())
        if state.legacy is not None:
            headers.append(self._cookie.clear(state.legacy))
        return headers

    async def _write(
        self, session: SessionMapping, state: _Open, headers: list[tuple[str, str]]
    ) -> None:
        changes = session.changes()
        record = state.record
        if changes is None:
            if state.renewed and record is not None and state.token is not None:
                headers.append(self._cookie.write(state.token, record.expires_at))
            return
        if record is None:
            await self._create(changes.apply({}), state.owner, headers)
            return
        guest_kind = not record.user_id
        try:
            updated = await self._manager.apply(record, _merger(changes, delete=guest_kind))
        except InvalidCredentials:
            # Gone meanwhile: a guest's (expired, or emptied by another tab) starts
            # again with these changes; a login's was logged out: its data went with it.
            if guest_kind:
                await self._create(changes.apply({}), state.owner, headers)
            return
        if not guest_kind or state.token is None:
            return
        if updated is None:
            headers.append(self._cookie.clear())
        elif state.renewed:
            headers.append(self._cookie.write(state.token, updated.expires_at))

    async def _move(
        self, session: SessionMapping, state: _Open, visitor: Visitor,
        headers: list[tuple[str, str]],
    ) -> None:
        data = dict(session)
        data = transfer(data, state.owner, visitor.user_id, self._on_login, self._on_logout)
        old = state.record
        if old is not None and not old.user_id and state.retire is None:
            state.retire = old  # a guest-kind record: its data moves to a new id
        if state.token is not None:
            state.clear = True
        target = visitor.record
        if target is not None:
            # Logged in with a session: the data goes into the new login record.
            if data:
                changes = Changes(data, frozenset())
                # InvalidCredentials: logged out again meanwhile; the data went with it.
                with contextlib.suppress(InvalidCredentials):
                    await self._manager.apply(target, _merger(changes, delete=False))
            return
        await self._create(data, visitor.user_id, headers)

    async def _create(
        self, data: dict[str, Any], owner: str, headers: list[tuple[str, str]]
    ) -> None:
        if not data:
            return
        stored: dict[str, Any] = {DATA_KEY: data}
        if owner:
            stored[OWNER_KEY] = owner
        token, record = await self._manager.create("", data=stored)
        headers.append(self._cookie.write(token, record.expires_at))

    def __repr__(self) -> str:
        return f"StoreSessions({self._manager!r}, cookie_name={self._cookie.name!r})"


def _moves(state: _Open, visitor: Visitor) -> bool:
    """Whether the visitor the request ended as takes the data somewhere new."""
    if visitor.user_id != state.owner:
        return True
    target = visitor.record
    # The same user with another login session (logged in again): into the new one.
    return target is not None and (state.record is None or target.id != state.record.id)


def _merger(
    changes: Changes, *, delete: bool
) -> Callable[[Mapping[str, Any]], dict[str, Any] | None]:
    """The compare-and-set step: ``changes`` replayed on the latest record's data."""

    def merge(current: Mapping[str, Any]) -> dict[str, Any] | None:
        stored = current.get(DATA_KEY)
        merged = changes.apply(stored if isinstance(stored, dict) else {})
        data = dict(current)
        if merged:
            data[DATA_KEY] = merged
            return data
        if delete:
            return None  # an empty guest session is deleted (and its cookie cleared)
        data.pop(DATA_KEY, None)
        return data

    return merge
