"""PostgresStore: sessions in a PostgreSQL table, asyncpg under asyncio, psycopg when blocking.

* One prepared ``SELECT`` by primary key per lookup; expiry is checked in the query.
  The store holds the SQL, migrations and record mapping; its I/O goes through
  :mod:`coatcheck.stores._pg_io` (asyncpg connections in a free list; psycopg's
  blocking pool for :class:`~coatcheck.stores.postgres_sync.SyncPostgresStore`).
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
  (schema version 2): one upsert checks the lock and counts an attempt together, so
  processes never let more through than the limit.
* One-time values (:class:`~coatcheck.sessions.ReplayCache`, DPoP proof ids) live in
  ``<table>_replay`` (schema version 3): one ``INSERT ... ON CONFLICT`` each; every
  ``prune_every``-th also sweeps a batch of spent ones, and ``delete_expired`` the rest.
* Connections run outside transactions, so returning one to the pool costs no
  ``ROLLBACK`` round trip. A pool that cannot get a connection within ``timeout``
  seconds (2 by default) raises StoreUnavailable; broken connections are dropped and
  re-made, so the store recovers by itself after a server restart.
* libpq multi-host URLs work (``postgresql://h1,h2/db?target_session_attrs=
  read-write``): the hosts are tried in turn, so after a failover the store finds the
  new primary by itself; a standby's "read-only transaction" refusal is a
  StoreUnavailable (503) meanwhile, never a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, StoreError
from ..sessions.record import SQL_COLUMNS, SessionRecord
from ._decoded import loads
from ._pg_io import AsyncpgIO, PgIO

if TYPE_CHECKING:
    from ..ratelimit import AttemptRule

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


def _row(row: Any) -> SessionRecord:
    data = row[7]
    if isinstance(data, (str, bytes)):  # asyncpg hands jsonb over as text
        data = loads(data)
    return SessionRecord.from_row(row, data)


def _quote(*names: str | None) -> str:
    # Names are checked against _NAME_RE first: quoting only keeps their case.
    return ".".join(f'"{name}"' for name in names if name)


class PostgresStore:
    """Sessions in PostgreSQL. See the module docstring.

    ``conninfo`` is a libpq URL (also the multi-host form); or pass ``io``, a
    :class:`~coatcheck.stores._pg_io.PgIO` (the default is asyncpg's). Connections open
    on first use (or :meth:`open`). ``table`` (and optional ``schema``) name the
    sessions table: lower case letters, digits and ``_`` only, else
    ConfigurationError. ``prune_every`` creates (0: never) also delete up to
    ``prune_batch`` expired rows. Methods raise StoreUnavailable when the server
    cannot be reached and StoreError otherwise.
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
        io: PgIO | None = None,
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
        self._prune_every = prune_every
        self._prune_batch = prune_batch
        self._creates = 0
        self._remembered = 0
        if io is None:
            _check_asyncpg_options(conninfo)
        self._io: PgIO = io or AsyncpgIO(
            _without(conninfo, "connect_timeout"), min_size=min_size, max_size=max_size,
            timeout=timeout, connect_timeout=_connect_timeout(conninfo),
        )  # fmt: skip
        self._ready = False
        self._opening = asyncio.Lock()
        # Templates with {t} (the table), {a} / {r} (its attempts and replay tables) and
        # {c} (the columns), filled in by plain replacement: the names were checked above.
        names = {
            "{t}": _quote(schema, table), "{a}": _quote(schema, table + "_attempts"),
            "{r}": _quote(schema, table + "_replay"), "{c}": SQL_COLUMNS,
        }  # fmt: skip

        def q(template: str) -> str:
            for name, value in names.items():
                template = template.replace(name, value)
            return template

        self._sql_get = q(
            "SELECT {c} FROM {t} WHERE id = $1 AND expires_at > $2 "
            "AND absolute_expires_at > $3"
        )
        self._sql_create = q(
            "INSERT INTO {t} ({c}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, "
            "$11) ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, "
            "created_at = EXCLUDED.created_at, last_seen = EXCLUDED.last_seen, "
            "expires_at = EXCLUDED.expires_at, "
            "absolute_expires_at = EXCLUDED.absolute_expires_at, "
            "auth_time = EXCLUDED.auth_time, data = EXCLUDED.data, "
            "user_agent = EXCLUDED.user_agent, ip = EXCLUDED.ip, version = EXCLUDED.version"
        )
        self._sql_touch = q("UPDATE {t} SET last_seen = $1, expires_at = $2 WHERE id = $3")
        self._sql_update = q(
            "UPDATE {t} SET user_id = $1, created_at = $2, last_seen = $3, expires_at = $4, "
            "absolute_expires_at = $5, auth_time = $6, data = $7::jsonb, user_agent = $8, "
            "ip = $9, version = $10 WHERE id = $11 AND version = $12"
        )
        self._sql_delete = q("DELETE FROM {t} WHERE id = $1 RETURNING {c}")
        self._sql_delete_user = q("DELETE FROM {t} WHERE user_id = $1 RETURNING id")
        self._sql_list = q(
            "SELECT {c} FROM {t} WHERE user_id = $1 AND expires_at > $2 "
            "AND absolute_expires_at > $3 ORDER BY created_at, id"
        )
        # Check-and-count in one statement (the row is locked by the upsert, and READ
        # COMMITTED re-checks the WHERE on the latest version), so processes never let
        # more attempts through than the rule allows. The rule is AttemptRule.wait's,
        # in the same operations and order; a waiting row is left untouched and no row
        # is returned.
        self._sql_reserve = q(
            "INSERT INTO {a} AS c (key, failures, resets_at) VALUES ($1, 1, $2) "
            "ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN c.resets_at > $3 "
            "THEN c.failures + 1 ELSE 1 END, resets_at = EXCLUDED.resets_at "
            "WHERE c.resets_at <= $4 OR c.failures < $5::integer "
            "OR c.resets_at - $6::float8 + LEAST($7::float8 * "
            "(1::bigint << LEAST(c.failures - $8::integer, 62)), $9::float8) <= $10 "
            "RETURNING failures"
        )
        self._sql_release = q(
            "UPDATE {a} SET failures = failures - 1 WHERE key = $1 AND failures > 0"
        )
        self._sql_peek = q("SELECT failures, resets_at FROM {a} WHERE key = $1 AND resets_at > $2")
        self._sql_clear = q("DELETE FROM {a} WHERE key = $1")
        self._sql_spent = q("DELETE FROM {a} WHERE resets_at <= $1")
        # A new key is inserted, a spent one taken over, a live one left alone (no row
        # comes back: "seen"). One statement, so concurrent callers agree.
        self._sql_remember = q(
            "INSERT INTO {r} AS c (key, forget_at) VALUES ($1, $2) ON CONFLICT (key) "
            "DO UPDATE SET forget_at = EXCLUDED.forget_at WHERE c.forget_at <= $3 RETURNING 1"
        )
        self._sql_sweep_replay = q(
            "DELETE FROM {r} WHERE key IN (SELECT key FROM {r} WHERE forget_at <= $1 "
            "LIMIT $2 FOR UPDATE SKIP LOCKED)"
        )
        self._sql_spent_replay = q("DELETE FROM {r} WHERE forget_at <= $1")
        self._sql_prune = q(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} "
            "WHERE LEAST(expires_at, absolute_expires_at) <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
        )

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """A store for ``postgresql://user@host:port/db`` (or ``postgres://``).

        Several hosts may be given, libpq-style (``postgresql://h1,h2:5433/db?
        target_session_attrs=read-write``). Query options ``table`` and ``schema`` pick
        the table; the others go to the driver. A ``connect_timeout`` of 2 seconds is
        added unless given. Raises ConfigurationError for a malformed URL.
        """
        conninfo, options = _parse_url(url)
        return cls(conninfo, **options)

    # -- connections and schema ---------------------------------------------------------

    async def open(self) -> None:
        """Connect and create or migrate the schema (idempotent).

        Raises StoreUnavailable when the server cannot be reached.
        """
        async with self._opening:
            if self._ready:
                return
            await self._io.open()
            await self._migrate()
            self._ready = True

    async def _migrate(self) -> None:
        lock = int.from_bytes(
            hashlib.sha256(b"coatcheck.schema\x00" + self._qualified.encode()).digest()[:8],
            "big",
            signed=True,
        )
        names = {
            "t": _quote(self._schema, self._table),
            "i_user": _quote(f"{self._table}_user_idx"),
            "i_expiry": _quote(f"{self._table}_expiry_idx"),
            "t_attempts": _quote(self._schema, f"{self._table}_attempts"),
            "i_resets": _quote(f"{self._table}_resets_idx"),
            "t_replay": _quote(self._schema, f"{self._table}_replay"),
            "i_forget": _quote(f"{self._table}_forget_idx"),
        }
        async with self._io.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock($1)", (lock,), "one")
            if self._schema:
                await tx.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(self._schema)}")
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS coatcheck_schema_version ("
                " name text PRIMARY KEY, version integer NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = await tx.execute(
                "SELECT version FROM coatcheck_schema_version WHERE name = $1",
                (self._qualified,), "one",
            )  # fmt: skip
            current = row[0] if row else 0
            if current > len(_MIGRATIONS):
                raise ConfigurationError(
                    f"the table {self._qualified} has schema version {current}, newer than "
                    f"this coatcheck ({len(_MIGRATIONS)}); upgrade coatcheck"
                )
            for step in _MIGRATIONS[current:]:
                await tx.execute(step.format(**names))
            if current < len(_MIGRATIONS):
                await tx.execute(
                    "INSERT INTO coatcheck_schema_version (name, version) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, "
                    "applied_at = now()",
                    (self._qualified, len(_MIGRATIONS)),
                )

    async def _execute(self, query: str, params: tuple[Any, ...], fetch: str = "") -> Any:
        if not self._ready:
            await self.open()
        return await self._io.execute(query, params, fetch)

    # -- the protocol -------------------------------------------------------------------

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``: one prepared query."""
        if not self._ready:
            await self.open()
        row = await self._io.execute(self._sql_get, (session_id, now, now), "one")
        return None if row is None else _row(row)

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
        row = await self._execute(self._sql_delete, (session_id,), "one")
        return None if row is None else _row(row)

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids (none for ``""``: guests)."""
        if not user_id:
            return []
        rows = await self._execute(self._sql_delete_user, (user_id,), "all")
        return [row[0] for row in rows]

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first (served by the user index); none for ``""``."""
        if not user_id:
            return []
        rows = await self._execute(self._sql_list, (user_id, now, now), "all")
        return [_row(row) for row in rows]

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

    async def reserve_attempt(self, key: str, rule: AttemptRule, now: float) -> float:
        """Count one attempt under ``key`` unless ``rule`` makes it wait: ``0.0`` when
        counted, else the seconds to wait. The check and the count are one statement.
        """
        resets_at = now + rule.window
        params = (
            key, resets_at, now, now, rule.allowed, rule.window,
            rule.base_delay, rule.allowed, rule.max_delay, now,
        )  # fmt: skip
        if await self._execute(self._sql_reserve, params, "one") is not None:
            return 0.0
        # Refused, nothing counted; how long is only for Retry-After.
        row = await self._execute(self._sql_peek, (key, now), "one")
        wait = 0.0 if row is None else rule.wait(int(row[0]), float(row[1]), now)
        return wait if wait > 0 else rule.base_delay

    async def release_attempt(self, key: str) -> None:
        """Take one counted attempt back (the count's window stays)."""
        await self._execute(self._sql_release, (key,))

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` of ``key`` without counting; ``(0, now)`` if none."""
        row = await self._execute(self._sql_peek, (key, now), "one")
        return (0, now) if row is None else (int(row[0]), float(row[1]))

    async def clear_attempts(self, key: str) -> None:
        """Forget the attempts counted under ``key``."""
        await self._execute(self._sql_clear, (key,))

    # -- one-time values (coatcheck.sessions.ReplayCache) ------------------------------

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` until ``now + ttl``; ``False`` if it is remembered already.

        One statement; every ``prune_every``-th call also sweeps up to ``prune_batch``
        x 10 spent keys, so the table holds about one window's worth.
        """
        row = await self._execute(self._sql_remember, (key, now + ttl, now), "one")
        self._remembered += 1
        if self._prune_every and self._remembered % self._prune_every == 0:
            await self._execute(self._sql_sweep_replay, (now, self._prune_batch * 10))
        return row is not None

    async def close(self) -> None:
        """Close the connections (they open again on the next use)."""
        self._ready = False
        await self._io.close()

    def __repr__(self) -> str:
        where = re.sub(r"//[^@/]*@", "//", self._conninfo.split("?")[0])  # no credentials
        return f"{type(self).__name__}({where}, table={self._qualified!r})"


def _without(url: str, name: str) -> str:
    parts = urlsplit(url)
    rest = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode(rest)))


def _connect_timeout(url: str) -> float:
    raw = dict(parse_qsl(urlsplit(url).query)).get("connect_timeout", "2")
    try:
        return max(float(raw), 0.1)
    except ValueError as exc:
        raise ConfigurationError("connect_timeout in the PostgreSQL URL is a number") from exc


# What asyncpg reads from a URL's query (asyncpg/connect_utils.py, 0.29 to 0.32), with the
# values it accepts where it checks them only when connecting. Any other option asyncpg
# sends to the server as a setting, which fails at the first connection (or, for a libpq
# option such as keepalives, means something else entirely): refused here instead.
_ASYNCPG_OPTIONS: Final[dict[str, frozenset[str] | None]] = {
    "host": None, "port": None, "user": None, "password": None, "dbname": None,
    "database": None, "passfile": None, "service": None, "krbsrvname": None,
    "sslcert": None, "sslkey": None, "sslrootcert": None, "sslcrl": None, "sslpassword": None,
    "sslmode": frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}),
    "sslnegotiation": frozenset({"postgres", "direct"}),
    "ssl_min_protocol_version": frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}),
    "ssl_max_protocol_version": frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}),
    "target_session_attrs": frozenset(
        {"any", "primary", "standby", "read-write", "read-only", "prefer-standby"}
    ),
    "gsslib": frozenset({"gssapi", "sspi"}),
    # Server settings asyncpg passes on, which every PostgreSQL knows.
    "application_name": None, "search_path": None, "timezone": None,
    "statement_timeout": None, "lock_timeout": None,
}  # fmt: skip


def _check_asyncpg_options(conninfo: str) -> None:
    """Refuse a URL option asyncpg would not understand, or a bad value. Raises
    ConfigurationError saying what it takes, and where libpq's other options work."""
    for name, value in parse_qsl(urlsplit(conninfo).query, keep_blank_values=True):
        if name == "connect_timeout":
            continue  # coatcheck's own (checked in _connect_timeout)
        if name not in _ASYNCPG_OPTIONS:
            raise ConfigurationError(
                f"the PostgreSQL URL option {name!r} is not one the asyncio store (asyncpg) "
                f"understands; it takes {', '.join(sorted(_ASYNCPG_OPTIONS))} and "
                "connect_timeout. Remove it, or for other libpq options use "
                "open_store(url, sync=True) (psycopg)"
            )
        allowed = _ASYNCPG_OPTIONS[name]
        if allowed is not None and value not in allowed:
            raise ConfigurationError(
                f"the PostgreSQL URL option {name}={value!r} is not valid: use one of "
                f"{', '.join(sorted(allowed))}"
            )


def _parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """``(conninfo, store options)`` of a store URL. Raises ConfigurationError."""
    parts = urlsplit(url)
    help_text = "a PostgreSQL store URL looks like postgresql://user@host:5432/db"
    if parts.scheme not in ("postgresql", "postgres") or not (parts.netloc or parts.path):
        raise ConfigurationError(help_text)
    hosts = parts.netloc.rpartition("@")[2]
    for host in hosts.split(",") if hosts else []:
        name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if sep and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigurationError("the PostgreSQL store URL has a bad port")
        if sep and not name:
            raise ConfigurationError(help_text)
    options = parse_qsl(parts.query, keep_blank_values=True)
    mine = {k: v for k, v in options if k in ("table", "schema")}
    rest = [(k, v) for k, v in options if k not in ("table", "schema")]
    if not any(k == "connect_timeout" for k, _ in rest):
        rest.append(("connect_timeout", "2"))
    conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest)))
    _connect_timeout(conninfo)
    return conninfo, {
        "table": mine.get("table", "coatcheck_sessions"),
        "schema": mine.get("schema") or None,
    }
