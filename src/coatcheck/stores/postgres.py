"""PostgresStore: sessions in a PostgreSQL table, through psycopg 3's async pool.

* One prepared ``SELECT`` by primary key per lookup; expiry is checked in the query.
* The schema is created or migrated when the pool opens: ``coatcheck_schema_version``
  records the version per table, and a transaction-scoped advisory lock makes
  several processes starting at once apply each migration exactly once.
* ``update`` is a compare-and-set: ``UPDATE ... WHERE id = %s AND version = %s``.
* Expired rows go in batches (``DELETE ... WHERE id IN (SELECT ... LIMIT n FOR
  UPDATE SKIP LOCKED)``) from ``delete_expired`` (``coatcheck sessions prune``),
  and opportunistically every ``prune_every`` creates: never a full scan per request.
  The expiry index is on ``LEAST(expires_at, absolute_expires_at)`` so the idle and
  the absolute expiry are both served by one index.
* Login-attempt counters (:mod:`coatcheck.ratelimit`) live in ``<table>_attempts``
  (schema version 2): one upsert per failure, so every process counts each one.
* One-time values (:class:`~coatcheck.sessions.ReplayCache`, DPoP proof ids) live in
  ``<table>_replay`` (schema version 3): one ``INSERT ... ON CONFLICT`` each; every
  ``prune_every``-th also sweeps a batch of spent ones, and ``delete_expired`` the rest.
* Connections run in autocommit, so returning one to the pool costs no ``ROLLBACK``
  round trip. A pool that cannot get a connection within ``timeout`` seconds (2 by
  default) raises StoreUnavailable; broken connections are dropped and re-made, so
  the store recovers by itself after a server restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from ..errors import ConfigurationError, StoreError, StoreUnavailable
from ..sessions.record import SQL_COLUMNS, SessionRecord

__all__ = ["PostgresStore"]

_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,50}")
_BATCH = 1000

# Ordered; each entry moves the schema from version i to i + 1. Never edit one that
# has shipped: append a new one. {t} is the table, {i_*} its index names.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {t} (
        id text PRIMARY KEY,
        user_id text NOT NULL,
        created_at double precision NOT NULL,
        last_seen double precision NOT NULL,
        expires_at double precision NOT NULL,
        absolute_expires_at double precision NOT NULL,
        auth_time double precision NOT NULL,
        data jsonb NOT NULL,
        user_agent text NOT NULL,
        ip text NOT NULL,
        version integer NOT NULL
    );
    CREATE INDEX {i_user} ON {t} (user_id, created_at);
    CREATE INDEX {i_expiry} ON {t} (LEAST(expires_at, absolute_expires_at));
    """,
    # 2: login-attempt counters (coatcheck.ratelimit); keys are hashes, never names.
    """
    CREATE TABLE {t_attempts} (
        key text PRIMARY KEY,
        failures integer NOT NULL,
        resets_at double precision NOT NULL
    );
    CREATE INDEX {i_resets} ON {t_attempts} (resets_at);
    """,
    # 3: one-time values (coatcheck.sessions.ReplayCache); keys are hashes.
    """
    CREATE TABLE {t_replay} (
        key text PRIMARY KEY,
        forget_at double precision NOT NULL
    );
    CREATE INDEX {i_forget} ON {t_replay} (forget_at);
    """,
)


def _unavailable(exc: Exception) -> StoreUnavailable:
    error = StoreUnavailable("PostgreSQL cannot be reached")
    error.__cause__ = exc
    return error


def _json(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError("the session cannot be stored: its data is not plain JSON") from exc


def _params(record: SessionRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.user_id,
        record.created_at,
        record.last_seen,
        record.expires_at,
        record.absolute_expires_at,
        record.auth_time,
        _json(record.data),
        record.user_agent,
        record.ip,
        record.version,
    )


class PostgresStore:
    """Sessions in PostgreSQL. See the module docstring.

    ``conninfo`` is a libpq URL or DSN. The pool opens on first use (or
    :meth:`open`). ``table`` (and optional ``schema``) name the sessions table: lower
    case letters, digits and ``_`` only, else ConfigurationError. ``prune_every``
    creates (0: never) also delete up to ``prune_batch`` expired rows. Methods raise
    StoreUnavailable when the server cannot be reached and StoreError otherwise.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        table: str = "coatcheck_sessions",
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 2.0,
        prune_every: int = 256,
        prune_batch: int = 100,
    ) -> None:
        for name in (table, schema):
            if name is not None and not _NAME_RE.fullmatch(name):
                raise ConfigurationError(
                    f"table and schema names are lower-case letters, digits and _; not {name!r}"
                )
        if not 0 < min_size <= max_size or timeout <= 0 or prune_every < 0 or prune_batch < 1:
            raise ConfigurationError("invalid PostgreSQL pool or pruning settings")
        self._conninfo = conninfo
        self._table = table
        self._schema = schema
        self._qualified = f"{schema}.{table}" if schema else table
        self._pool_args = {"min_size": min_size, "max_size": max_size, "timeout": timeout}
        self._prune_every = prune_every
        self._prune_batch = prune_batch
        self._creates = 0
        self._remembered = 0
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()
        t = sql.Identifier(*([schema, table] if schema else [table]))
        cols = sql.SQL(SQL_COLUMNS)
        self._sql_get = sql.SQL(
            "SELECT {c} FROM {t} WHERE id = %s AND expires_at > %s AND absolute_expires_at > %s"
        ).format(c=cols, t=t)
        self._sql_create = sql.SQL(
            "INSERT INTO {t} ({c}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, "
            "created_at = EXCLUDED.created_at, last_seen = EXCLUDED.last_seen, "
            "expires_at = EXCLUDED.expires_at, "
            "absolute_expires_at = EXCLUDED.absolute_expires_at, "
            "auth_time = EXCLUDED.auth_time, data = EXCLUDED.data, "
            "user_agent = EXCLUDED.user_agent, ip = EXCLUDED.ip, version = EXCLUDED.version"
        ).format(c=cols, t=t)
        self._sql_touch = sql.SQL(
            "UPDATE {t} SET last_seen = %s, expires_at = %s WHERE id = %s"
        ).format(t=t)
        self._sql_update = sql.SQL(
            "UPDATE {t} SET user_id = %s, created_at = %s, last_seen = %s, expires_at = %s, "
            "absolute_expires_at = %s, auth_time = %s, data = %s::jsonb, user_agent = %s, ip = %s, "
            "version = %s WHERE id = %s AND version = %s"
        ).format(t=t)
        self._sql_delete = sql.SQL("DELETE FROM {t} WHERE id = %s RETURNING {c}").format(
            c=cols, t=t
        )
        self._sql_delete_user = sql.SQL("DELETE FROM {t} WHERE user_id = %s RETURNING id").format(
            t=t
        )
        self._sql_list = sql.SQL(
            "SELECT {c} FROM {t} WHERE user_id = %s AND expires_at > %s "
            "AND absolute_expires_at > %s ORDER BY created_at, id"
        ).format(c=cols, t=t)
        a = sql.Identifier(*([schema, f"{table}_attempts"] if schema else [f"{table}_attempts"]))
        # One statement, so processes count every failure: the count restarts when
        # the previous one had run out (resets_at <= now).
        self._sql_hit = sql.SQL(
            "INSERT INTO {a} AS c (key, failures, resets_at) VALUES (%s, 1, %s) "
            "ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN c.resets_at > %s "
            "THEN c.failures + 1 ELSE 1 END, resets_at = EXCLUDED.resets_at RETURNING failures"
        ).format(a=a)
        self._sql_peek = sql.SQL(
            "SELECT failures, resets_at FROM {a} WHERE key = %s AND resets_at > %s"
        ).format(a=a)
        self._sql_clear = sql.SQL("DELETE FROM {a} WHERE key = %s").format(a=a)
        self._sql_spent = sql.SQL("DELETE FROM {a} WHERE resets_at <= %s").format(a=a)
        r = sql.Identifier(*([schema, f"{table}_replay"] if schema else [f"{table}_replay"]))
        # A new key is inserted, a spent one taken over, a live one left alone (no row
        # comes back: "seen"). One statement, so concurrent callers agree.
        self._sql_remember = sql.SQL(
            "INSERT INTO {r} AS c (key, forget_at) VALUES (%s, %s) ON CONFLICT (key) "
            "DO UPDATE SET forget_at = EXCLUDED.forget_at WHERE c.forget_at <= %s RETURNING 1"
        ).format(r=r)
        self._sql_sweep_replay = sql.SQL(
            "DELETE FROM {r} WHERE key IN (SELECT key FROM {r} WHERE forget_at <= %s "
            "LIMIT %s FOR UPDATE SKIP LOCKED)"
        ).format(r=r)
        self._sql_spent_replay = sql.SQL("DELETE FROM {r} WHERE forget_at <= %s").format(r=r)
        self._sql_prune = sql.SQL(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} "
            "WHERE LEAST(expires_at, absolute_expires_at) <= %s LIMIT %s FOR UPDATE SKIP LOCKED)"
        ).format(t=t)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """A store for ``postgresql://user@host:port/db`` (or ``postgres://``).

        Query options ``table`` and ``schema`` pick the table; the others go to libpq.
        A ``connect_timeout`` of 2 seconds is added unless given. Raises
        ConfigurationError for a malformed URL.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.path):
            raise ConfigurationError(
                "a PostgreSQL store URL looks like postgresql://user@host:5432/db"
            )
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ConfigurationError("the PostgreSQL store URL has a bad port") from exc
        options = parse_qsl(parts.query, keep_blank_values=True)
        mine = {k: v for k, v in options if k in ("table", "schema")}
        rest = [(k, v) for k, v in options if k not in ("table", "schema")]
        if not any(k == "connect_timeout" for k, _ in rest):
            rest.append(("connect_timeout", "2"))
        conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest)))
        return cls(
            conninfo,
            table=mine.get("table", "coatcheck_sessions"),
            schema=mine.get("schema") or None,
        )

    # -- pool and schema ----------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and create or migrate the schema (idempotent).

        Raises StoreUnavailable when the server cannot be reached.
        """
        async with self._opening:
            if self._pool is not None:
                return
            pool = AsyncConnectionPool(
                self._conninfo,
                open=False,
                kwargs={"autocommit": True},
                # Pool workers retry lost connections for this long before giving up
                # until the next request asks again.
                reconnect_timeout=30.0,
                **self._pool_args,  # type: ignore[arg-type]
            )
            try:
                await pool.open(wait=False)
                await self._migrate(pool)
            except psycopg.OperationalError as exc:
                await pool.close()
                raise _unavailable(exc) from exc
            except psycopg.Error as exc:
                await pool.close()
                raise StoreError("the PostgreSQL schema could not be prepared") from exc
            self._pool = pool

    async def _migrate(self, pool: AsyncConnectionPool) -> None:
        lock = int.from_bytes(
            hashlib.sha256(b"coatcheck.schema\x00" + self._qualified.encode()).digest()[:8],
            "big",
            signed=True,
        )
        names = {
            "t": sql.Identifier(*([self._schema, self._table] if self._schema else [self._table])),
            "i_user": sql.Identifier(f"{self._table}_user_idx"),
            "i_expiry": sql.Identifier(f"{self._table}_expiry_idx"),
            "t_attempts": sql.Identifier(
                *([self._schema] if self._schema else []), f"{self._table}_attempts"
            ),
            "i_resets": sql.Identifier(f"{self._table}_resets_idx"),
            "t_replay": sql.Identifier(
                *([self._schema] if self._schema else []), f"{self._table}_replay"
            ),
            "i_forget": sql.Identifier(f"{self._table}_forget_idx"),
        }
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            if self._schema:
                await conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema))
                )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS coatcheck_schema_version ("
                " name text PRIMARY KEY, version integer NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute(
                "SELECT version FROM coatcheck_schema_version WHERE name = %s", (self._qualified,)
            )
            row = await cur.fetchone()
            current = row[0] if row else 0
            if current > len(_MIGRATIONS):
                raise ConfigurationError(
                    f"the table {self._qualified} has schema version {current}, newer than "
                    f"this coatcheck ({len(_MIGRATIONS)}); upgrade coatcheck"
                )
            for step in _MIGRATIONS[current:]:
                await conn.execute(sql.SQL(step).format(**names))
            if current < len(_MIGRATIONS):
                await conn.execute(
                    "INSERT INTO coatcheck_schema_version (name, version) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, "
                    "applied_at = now()",
                    (self._qualified, len(_MIGRATIONS)),
                )

    async def _execute(
        self, query: sql.Composed, params: Sequence[Any], *, fetch: str = ""
    ) -> Any:
        pool = self._pool
        if pool is None:
            await self.open()
            pool = self._pool
            if pool is None:  # pragma: no cover - open() either sets it or raises
                raise StoreError("the PostgreSQL pool did not open")
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(query, params, prepare=True)
                if fetch == "one":
                    return await cur.fetchone()
                if fetch == "all":
                    return await cur.fetchall()
                return cur.rowcount
        except psycopg.OperationalError as exc:
            # A restart breaks every pooled connection at once: have the pool test
            # the idle ones now rather than fail one request per dead connection.
            self._check_soon(pool)
            raise _unavailable(exc) from exc
        except psycopg.Error as exc:
            raise StoreError("PostgreSQL refused a session query") from exc

    def _check_soon(self, pool: AsyncConnectionPool) -> None:
        if not pool.closed:
            task = asyncio.get_running_loop().create_task(pool.check())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- the protocol -------------------------------------------------------------------

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``: one prepared query."""
        row = await self._execute(self._sql_get, (session_id, now, now), fetch="one")
        return None if row is None else SessionRecord.from_row(row, row[7])

    async def create(self, record: SessionRecord) -> None:
        """Store a new session (replacing one with the same id)."""
        if not (math.isfinite(record.expires_at) and math.isfinite(record.absolute_expires_at)):
            raise StoreError("session expiry times must be finite")
        await self._execute(self._sql_create, _params(record))
        self._creates += 1
        if self._prune_every and self._creates % self._prune_every == 0:
            await self._execute(self._sql_prune, (record.created_at, self._prune_batch))

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity; a missing session is ignored."""
        await self._execute(self._sql_touch, (last_seen, expires_at, session_id))

    async def update(self, record: SessionRecord) -> bool:
        """Write ``record`` only over version ``record.version - 1``."""
        params = (*_params(record)[1:], record.id, record.version - 1)
        return bool(await self._execute(self._sql_update, params) == 1)

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove one session; return it (``None`` if there was none)."""
        row = await self._execute(self._sql_delete, (session_id,), fetch="one")
        return None if row is None else SessionRecord.from_row(row, row[7])

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids (none for ``""``: guests)."""
        if not user_id:
            return []
        rows = await self._execute(self._sql_delete_user, (user_id,), fetch="all")
        return [row[0] for row in rows]

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first (served by the user index); none for ``""``."""
        if not user_id:
            return []
        rows = await self._execute(self._sql_list, (user_id, now, now), fetch="all")
        return [SessionRecord.from_row(row, row[7]) for row in rows]

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        """Remove up to ``limit`` expired sessions (all when ``None``), in batches."""
        removed = 0
        while limit is None or removed < limit:
            batch = _BATCH if limit is None else min(_BATCH, limit - removed)
            n = int(await self._execute(self._sql_prune, (now, batch)))
            removed += n
            if n < batch:
                break
        # Spent login-attempt counters and one-time values go too (not counted).
        await self._execute(self._sql_spent, (now,))
        await self._execute(self._sql_spent_replay, (now,))
        return removed

    # -- login-attempt counters (coatcheck.ratelimit.AttemptCounter) ------------------

    async def hit_attempts(self, key: str, window: float, now: float) -> tuple[int, float]:
        """Count one failure under ``key``; ``(count, resets_at)``: one statement.

        The count restarts once ``window`` seconds pass after the latest failure.
        """
        resets_at = now + window
        row = await self._execute(self._sql_hit, (key, resets_at, now), fetch="one")
        return int(row[0]), resets_at

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` of ``key`` without counting; ``(0, now)`` if none."""
        row = await self._execute(self._sql_peek, (key, now), fetch="one")
        return (0, now) if row is None else (int(row[0]), float(row[1]))

    async def clear_attempts(self, key: str) -> None:
        """Forget the failures counted under ``key``."""
        await self._execute(self._sql_clear, (key,))

    # -- one-time values (coatcheck.sessions.ReplayCache) ------------------------------

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` until ``now + ttl``; ``False`` if it is remembered already.

        One statement; every ``prune_every``-th call also sweeps up to ``prune_batch``
        x 10 spent keys, so the table holds about one window's worth.
        """
        row = await self._execute(self._sql_remember, (key, now + ttl, now), fetch="one")
        self._remembered += 1
        if self._prune_every and self._remembered % self._prune_every == 0:
            await self._execute(self._sql_sweep_replay, (now, self._prune_batch * 10))
        return row is not None

    async def close(self) -> None:
        """Close the pool (it reopens on the next use)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def __repr__(self) -> str:
        where = re.sub(r"//[^@/]*@", "//", self._conninfo.split("?")[0])  # no credentials
        return f"PostgresStore({where}, table={self._qualified!r})"
