"""SQLiteStore: the default session store, one file on local disk.

Built on the standard library's :mod:`sqlite3`. The database runs in WAL mode with
``synchronous=NORMAL``: readers never wait for the writer, and a crash can lose at
most the last few renewals, never corrupt the file. Several processes may share one
file (each opens its own connection; a fork drops the inherited one).

Calls run inline on the event loop, not in a worker thread: a primary-key read
takes about 10 µs here, and a hop to a thread would cost about 200 µs. Every
method is one statement (``delete_expired`` one per batch), so under write
contention the loop waits at most ``busy_timeout``.

Threads (a threaded WSGI server) share the store's one connection, one call at a
time: each statement is read to its end under a lock, so no thread's half-read
statement holds a stale snapshot that turns another's write into SQLITE_BUSY_SNAPSHOT,
and a change count is never another thread's. Every write is its own ``BEGIN
IMMEDIATE`` transaction: it takes the write lock before reading, so another process's
writer makes it wait (``busy_timeout``) instead of failing, and a transaction that
still meets a busy snapshot or a WAL recovery is retried from the start. The
connection opens once, on first use, whichever thread gets there first.

Login-attempt counters (:mod:`coatcheck.ratelimit`) live in ``coatcheck_attempts``
(schema version 2): one upsert checks the lock and counts an attempt together, so
processes sharing the file never let more through than the limit. One-time values
(:class:`~coatcheck.sessions.ReplayCache`, DPoP proof ids) live in ``coatcheck_replay``
(version 3): one upsert each, and every 256th also sweeps up to 1000 spent ones.

Store URLs follow SQLAlchemy: ``sqlite:///relative.db`` (relative to the working
folder), ``sqlite:////absolute/path.db``, ``sqlite://`` for a private in-memory
database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigurationError, StoreError, StoreUnavailable
from ..sessions.record import SQL_COLUMNS, SessionRecord
from ._decoded import loads

if TYPE_CHECKING:
    from ..ratelimit import AttemptRule

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION: Final = 3

# Every SELECT/RETURNING of a session reads SQL_COLUMNS, the order from_row expects.

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS coatcheck_schema (version INTEGER NOT NULL)",
    # WITHOUT ROWID: a lookup by id is one B-tree descent instead of two.
    """CREATE TABLE IF NOT EXISTS coatcheck_sessions (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        expires_at REAL NOT NULL,
        absolute_expires_at REAL NOT NULL,
        auth_time REAL NOT NULL,
        data TEXT NOT NULL,
        user_agent TEXT NOT NULL,
        ip TEXT NOT NULL,
        version INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # The per-user listing, already in display order.
    "CREATE INDEX IF NOT EXISTS coatcheck_sessions_user "
    "ON coatcheck_sessions (user_id, created_at)",
    # Pruning looks at whichever expiry comes first; index exactly that expression.
    "CREATE INDEX IF NOT EXISTS coatcheck_sessions_expiry "
    "ON coatcheck_sessions (min(expires_at, absolute_expires_at))",
    # Version 2: login-attempt counters (coatcheck.ratelimit); keys are hashes.
    """CREATE TABLE IF NOT EXISTS coatcheck_attempts (
        key TEXT PRIMARY KEY NOT NULL,
        failures INTEGER NOT NULL,
        resets_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS coatcheck_attempts_resets ON coatcheck_attempts (resets_at)",
    # Version 3: one-time values (coatcheck.sessions.ReplayCache); keys are hashes.
    """CREATE TABLE IF NOT EXISTS coatcheck_replay (
        key TEXT PRIMARY KEY NOT NULL,
        forget_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS coatcheck_replay_forget ON coatcheck_replay (forget_at)",
)

_GET = (
    f"SELECT {SQL_COLUMNS} FROM coatcheck_sessions "  # noqa: S608 - constant columns
    "WHERE id = ? AND expires_at > ? AND absolute_expires_at > ?"
)
_CREATE = (
    "INSERT OR REPLACE INTO coatcheck_sessions (user_id, created_at, last_seen, "
    "expires_at, absolute_expires_at, auth_time, data, user_agent, ip, version, id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TOUCH = "UPDATE coatcheck_sessions SET last_seen = ?, expires_at = ? WHERE id = ?"
_UPDATE = (
    "UPDATE coatcheck_sessions SET user_id = ?, created_at = ?, last_seen = ?, expires_at = ?, "
    "absolute_expires_at = ?, auth_time = ?, data = ?, user_agent = ?, ip = ?, version = ? "
    "WHERE id = ? AND version = ? RETURNING version"
)
_DELETE = (
    f"DELETE FROM coatcheck_sessions WHERE id = ? RETURNING {SQL_COLUMNS}"  # noqa: S608
)
_DELETE_USER = "DELETE FROM coatcheck_sessions WHERE user_id = ? RETURNING id"
_LIST_USER = (
    f"SELECT {SQL_COLUMNS} FROM coatcheck_sessions "  # noqa: S608 - constant columns
    "WHERE user_id = ? AND expires_at > ? AND absolute_expires_at > ? "
    "ORDER BY created_at, id"
)
# SQLite's DELETE ... LIMIT needs a compile-time option; a subquery works everywhere.
_DELETE_EXPIRED = (
    "DELETE FROM coatcheck_sessions WHERE id IN ("
    "SELECT id FROM coatcheck_sessions "
    "WHERE min(expires_at, absolute_expires_at) <= ? LIMIT ?)"
)

# Check-and-count in one statement, so processes sharing the file never let more
# attempts through than the rule allows (coatcheck.ratelimit.AttemptRule.wait, in the
# same operations and order): a running count (resets_at > now) at or over `allowed`
# waits until its latest attempt (resets_at - window) plus the back-off delay. The
# upsert's WHERE leaves a waiting row untouched and returns no row.
_RESERVE_ATTEMPT = (
    "INSERT INTO coatcheck_attempts (key, failures, resets_at) VALUES (:key, 1, :resets_at) "
    "ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN coatcheck_attempts.resets_at > :now "
    "THEN coatcheck_attempts.failures + 1 ELSE 1 END, resets_at = excluded.resets_at "
    "WHERE coatcheck_attempts.resets_at <= :now OR coatcheck_attempts.failures < :allowed "
    "OR coatcheck_attempts.resets_at - :window + min(:base * "
    "(1 << min(coatcheck_attempts.failures - :allowed, 62)), :max) <= :now "
    "RETURNING failures"
)
_RELEASE_ATTEMPT = (
    "UPDATE coatcheck_attempts SET failures = failures - 1 WHERE key = ? AND failures > 0"
)
_PEEK_ATTEMPTS = (
    "SELECT failures, resets_at FROM coatcheck_attempts WHERE key = ? AND resets_at > ?"
)
_CLEAR_ATTEMPTS = "DELETE FROM coatcheck_attempts WHERE key = ?"
_DELETE_SPENT_ATTEMPTS = "DELETE FROM coatcheck_attempts WHERE resets_at <= ?"

# One statement: a new key is inserted, a spent one taken over, a live one left alone
# (then no row changes, and that is the answer "seen").
_REMEMBER_ONCE = (
    "INSERT INTO coatcheck_replay (key, forget_at) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET forget_at = excluded.forget_at "
    "WHERE coatcheck_replay.forget_at <= ?"
)
_SWEEP_REPLAY = (
    "DELETE FROM coatcheck_replay WHERE key IN ("
    "SELECT key FROM coatcheck_replay WHERE forget_at <= ? LIMIT ?)"
)
_DELETE_SPENT_REPLAY = "DELETE FROM coatcheck_replay WHERE forget_at <= ?"
_SWEEP_EVERY = 256

# sqlite3 has no names for them: SQLITE_BUSY | (1 << 8), another connection is
# recovering the WAL index; SQLITE_BUSY | (2 << 8), a write on a stale read snapshot.
# Both are returned at once, without the busy handler; a fresh transaction clears them.
# A plain SQLITE_BUSY has already waited busy_timeout and is not retried.
_SQLITE_BUSY_RECOVERY = 261
_SQLITE_BUSY_SNAPSHOT = 517
_RETRIED = frozenset({_SQLITE_BUSY_RECOVERY, _SQLITE_BUSY_SNAPSHOT})
_BUSY_RETRIES = 20

# SQLite page cache per connection, KiB.
_PAGE_CACHE_KIB = 16384

# Removing all expired rows goes in batches so no single write holds the lock long.
_PRUNE_BATCH = 1000

# Stores whose connection a forked child must not reuse (SQLite forbids carrying an
# open connection across fork()).
_OPEN_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for store in list(_OPEN_STORES):
        store._conn = None
        # Another parent thread may have held it at fork(); none runs in the child.
        store._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _fields(record: SessionRecord) -> tuple[Any, ...]:
    """The columns _CREATE and _UPDATE write, in their order (id and version checks last)."""
    return (
        record.user_id,
        record.created_at,
        record.last_seen,
        record.expires_at,
        record.absolute_expires_at,
        record.auth_time,
        _dump(record.data),
        record.user_agent,
        record.ip,
        record.version,
    )


def _dump(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError("session data must be JSON-serialisable") from exc


def _wrap(exc: sqlite3.Error) -> StoreError:
    # OperationalError covers "database is locked", "unable to open database file" and
    # disk I/O: conditions that may clear by themselves, so callers answer 503.
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"SQLite session store unavailable ({exc.__class__.__name__})")
    return StoreError(f"SQLite session store failed ({exc.__class__.__name__})")


class SQLiteStore:
    """Sessions in an SQLite file. See the module docstring.

    ``path`` is a file path or ``":memory:"``. The connection opens, and the schema
    is created, on first use. Raises ConfigurationError at construction when the
    file's folder does not exist; store methods raise StoreUnavailable or StoreError.
    """

    __slots__ = (
        "__weakref__",
        "_busy_timeout",
        "_conn",
        "_lock",
        "_path",
        "_remembered",
    )

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        path = os.fspath(path)
        if not path:
            raise ConfigurationError("an SQLite store needs a file path (or ':memory:')")
        if path != ":memory:" and not Path(path).parent.is_dir():
            raise ConfigurationError(
                f"the folder for the SQLite session store does not exist: {Path(path).parent}"
            )
        if busy_timeout < 0:
            raise ConfigurationError("busy_timeout must be at least 0 seconds")
        # Resolved now: a relative path means the working folder at start-up, even if
        # the process changes folder before the first request opens the file.
        self._path = path if path == ":memory:" else os.path.abspath(path)
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        # Guards opening the connection and every call on it (module docstring).
        self._lock = threading.Lock()
        self._remembered = 0

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """A store for an ``sqlite:`` URL (see the module docstring).

        The only query parameter is ``busy_timeout`` (seconds). Raises
        ConfigurationError for a malformed URL.
        """
        path, busy_timeout = _parse_url(url)
        return cls(path, busy_timeout=busy_timeout)

    @property
    def path(self) -> str:
        return self._path

    # -- connection ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                # Autocommit: every statement is its own transaction.
                isolation_level=None,
                # WSGI servers call from several threads; the SQLite library serialises
                # use of one connection, and each method is a single statement.
                check_same_thread=False,
                cached_statements=64,
            )
        except sqlite3.Error as exc:
            raise _wrap(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if self._path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # SQLite's own page cache, per connection (default 2 MiB): 20,000 sessions
            # take about 8 MiB, and a lookup that misses it pays a read() of the page.
            conn.execute(f"PRAGMA cache_size = -{_PAGE_CACHE_KIB}")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        _OPEN_STORES.add(self)
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        try:
            # IMMEDIATE takes the write lock first, so processes starting together
            # create the schema once, one after another.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                row = conn.execute("SELECT max(version) FROM coatcheck_schema").fetchone()
                found = row[0] if row else None
                if found is None:
                    conn.execute(
                        "INSERT INTO coatcheck_schema (version) VALUES (?)", (SCHEMA_VERSION,)
                    )
                elif found > SCHEMA_VERSION:
                    raise StoreError(
                        f"the SQLite session store has schema version {found}; this coatcheck "
                        f"knows up to {SCHEMA_VERSION} (upgrade coatcheck)"
                    )
                elif found < SCHEMA_VERSION:
                    # Every step so far only adds tables (CREATE ... IF NOT EXISTS above).
                    conn.execute("UPDATE coatcheck_schema SET version = ?", (SCHEMA_VERSION,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _wrap(exc) from exc

    def _run(self, body: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        """``body(connection)``, alone on the connection; a write in BEGIN IMMEDIATE.

        ``body`` reads every statement to its end (fetchall) and may run again, from
        the start, when SQLite reports a busy snapshot or a WAL recovery. Raises
        StoreUnavailable or StoreError.
        """
        try:
            with self._lock:
                conn = self._conn if self._conn is not None else self._connect()
                for attempt in range(_BUSY_RETRIES):
                    try:
                        if not write:
                            return body(conn)
                        conn.execute("BEGIN IMMEDIATE")
                        try:
                            result = body(conn)
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                        return result
                    except sqlite3.OperationalError as exc:
                        code = getattr(exc, "sqlite_errorcode", 0)
                        if code not in _RETRIED or attempt == _BUSY_RETRIES - 1:
                            raise
                raise AssertionError("unreachable")  # pragma: no cover
        except sqlite3.Error as exc:
            raise _wrap(exc) from exc

    def _rows(self, sql: str, params: Any, *, write: bool = False) -> list[Any]:
        """The rows of one statement, run to its end by :meth:`_run`."""
        return self._run(lambda conn: conn.execute(sql, params).fetchall(), write=write)

    # -- the store protocol -------------------------------------------------------------

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``. Raises StoreError."""
        rows = self._rows(_GET, (session_id, now, now))
        if not rows:
            return None
        row = rows[0]
        # Decoded on every read: a cache of decoded records cost more on its misses
        # (with more users than entries) than it saved on its hits (bench/results).
        return SessionRecord.from_row(row, loads(row[7]))

    async def create(self, record: SessionRecord) -> None:
        """Store a new session. Raises StoreError."""
        self._rows(_CREATE, (*_fields(record), record.id), write=True)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity; a missing session is ignored. Raises StoreError."""
        self._rows(_TOUCH, (last_seen, expires_at, session_id), write=True)

    async def update(self, record: SessionRecord) -> bool:
        """Write ``record`` only over version ``record.version - 1``. Raises StoreError."""
        values = (*_fields(record), record.id, record.version - 1)
        # RETURNING says whether this statement changed the row, whatever ran before.
        return bool(self._rows(_UPDATE, values, write=True))

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove one session; return it (``None`` if there was none). Raises StoreError."""
        rows = self._rows(_DELETE, (session_id,), write=True)
        return SessionRecord.from_row(rows[0], loads(rows[0][7])) if rows else None

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids. Raises StoreError.

        Guests' sessions (user id ``""``) belong to no user: ``""`` removes nothing.
        """
        if not user_id:
            return []
        return [row[0] for row in self._rows(_DELETE_USER, (user_id,), write=True)]

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first (none for ``""``). Raises StoreError."""
        if not user_id:
            return []
        rows = self._rows(_LIST_USER, (user_id, now, now))
        return [SessionRecord.from_row(row, loads(row[7])) for row in rows]

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        """Remove up to ``limit`` expired sessions (all when ``None``); return how many.

        Raises StoreError.
        """
        if limit is not None and limit <= 0:
            return 0
        removed = 0
        # One transaction per batch, so no single write holds the lock long.
        while limit is None or removed < limit:
            batch = _PRUNE_BATCH if limit is None else min(_PRUNE_BATCH, limit - removed)

            def prune(conn: sqlite3.Connection, batch: int = batch) -> int:
                return conn.execute(_DELETE_EXPIRED, (now, batch)).rowcount

            count = self._run(prune, write=True)
            removed += count
            if count < batch:
                break

        # Spent login-attempt counters and one-time values go too (not counted).
        def spent(conn: sqlite3.Connection) -> None:
            conn.execute(_DELETE_SPENT_ATTEMPTS, (now,))
            conn.execute(_DELETE_SPENT_REPLAY, (now,))

        self._run(spent, write=True)
        return removed

    # -- login-attempt counters (coatcheck.ratelimit.AttemptCounter) ------------------

    async def reserve_attempt(self, key: str, rule: AttemptRule, now: float) -> float:
        """Count one attempt under ``key`` unless ``rule`` makes it wait: ``0.0`` when
        counted, else the seconds to wait. The check and the count are one statement.

        Raises StoreError.
        """
        params = {
            "key": key,
            "resets_at": now + rule.window,
            "now": now,
            "allowed": rule.allowed,
            "window": rule.window,
            "base": rule.base_delay,
            "max": rule.max_delay,
        }
        if self._rows(_RESERVE_ATTEMPT, params, write=True):
            return 0.0
        # Refused, nothing counted. How long is only for Retry-After; a count read a
        # moment later can only be the same or have run out.
        rows = self._rows(_PEEK_ATTEMPTS, (key, now))
        wait = rule.wait(int(rows[0][0]), float(rows[0][1]), now) if rows else 0.0
        return wait if wait > 0 else rule.base_delay

    async def release_attempt(self, key: str) -> None:
        """Take one counted attempt back (the count's window stays). Raises StoreError."""
        self._rows(_RELEASE_ATTEMPT, (key,), write=True)

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` of ``key`` without counting; ``(0, now)`` if none."""
        rows = self._rows(_PEEK_ATTEMPTS, (key, now))
        return (int(rows[0][0]), float(rows[0][1])) if rows else (0, now)

    async def clear_attempts(self, key: str) -> None:
        """Forget the attempts counted under ``key``. Raises StoreError."""
        self._rows(_CLEAR_ATTEMPTS, (key,), write=True)

    # -- one-time values (coatcheck.sessions.ReplayCache) ------------------------------

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` until ``now + ttl``; ``False`` if it is remembered already.

        One statement; every 256th call also sweeps up to 1000 spent keys, so the
        table holds about one window's worth. Raises StoreError.
        """

        def remember(conn: sqlite3.Connection) -> bool:
            # rowcount is this statement's: no other runs on the connection meanwhile.
            fresh = conn.execute(_REMEMBER_ONCE, (key, now + ttl, now)).rowcount == 1
            self._remembered += 1
            if self._remembered % _SWEEP_EVERY == 0:
                conn.execute(_SWEEP_REPLAY, (now, _PRUNE_BATCH))
            return fresh

        return self._run(remember, write=True)

    async def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        with self._lock:  # not under another thread's statement
            conn, self._conn = self._conn, None
            _OPEN_STORES.discard(self)
            if conn is not None:
                conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"


def _parse_url(url: str) -> tuple[str, float]:
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigurationError(f"not an SQLite store URL (it must start with 'sqlite:'): {url!r}")
    if not url.startswith("sqlite://"):
        raise ConfigurationError(
            "an SQLite store URL is sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    if parts.netloc:
        raise ConfigurationError(
            f"SQLite store URL {url!r} has a host part ({parts.netloc!r}); use three slashes "
            f"for a path relative to the working folder (sqlite:///{parts.netloc}{parts.path}) "
            "or four for an absolute one (sqlite:////absolute/path.db)"
        )
    if parts.fragment:
        raise ConfigurationError(f"an SQLite store URL takes no '#fragment': {url!r}")
    busy_timeout = 5.0
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "busy_timeout":
            raise ConfigurationError(
                f"unknown SQLite store URL option {name!r} (the only one is busy_timeout)"
            )
        try:
            busy_timeout = float(value)
        except ValueError:
            raise ConfigurationError("busy_timeout must be a number of seconds") from None
    # SQLAlchemy's rule: drop the one slash that separates the (empty) host from the
    # path, so '///a.db' is 'a.db' and '////tmp/a.db' is '/tmp/a.db'.
    path = unquote(parts.path[1:]) if parts.path else ""
    return (path or ":memory:"), busy_timeout
