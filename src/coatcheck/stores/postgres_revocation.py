"""Revocations over PostgreSQL LISTEN/NOTIFY: the feed of :mod:`coatcheck.revocation`."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError
from ..revocation import RevocationFeed, RevocationSet

__all__ = ["PostgresRevocationFeed"]

_SYSTEM_CLOCK = SystemClock()
# A NOTIFY payload must stay under 8000 bytes; a session id is 73 characters.
_CHUNK = 80


class PostgresRevocationFeed(RevocationFeed):
    """Revocations over PostgreSQL LISTEN/NOTIFY, with a backlog table.

    The table ``coatcheck_revocations`` (created on first connection) holds recent
    revocations; publishing inserts them and calls ``pg_notify`` in one transaction,
    so a listener that replays the table after LISTEN misses nothing. The listener
    runs ``SELECT 1`` every ``heartbeat`` seconds to notice a dead connection.

    :raises ConfigurationError: for a bad channel, or when psycopg is not installed.
    """

    def __init__(
        self,
        url: str,
        revocations: RevocationSet,
        *,
        channel: str = "coatcheck_revoked",
        clock: Clock = _SYSTEM_CLOCK,
        heartbeat: float = 1.0,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(
            revocations, channel=channel, clock=clock, heartbeat=heartbeat, max_backoff=max_backoff
        )
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", channel):
            raise ConfigurationError("a PostgreSQL channel is a lower-case identifier")
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise ConfigurationError(
                "PostgresRevocationFeed needs `pip install coatcheck[postgres]`"
            ) from exc
        self._psycopg: Any = psycopg
        self._url = url
        self._listener: Any = None
        self._publisher: Any = None
        self._lock = asyncio.Lock()

    async def _connect(self, role: str) -> Any:
        conn = await self._psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=2, application_name=role
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS coatcheck_revocations"
            " (session_id text PRIMARY KEY, until double precision NOT NULL)"
        )
        return conn

    async def _listen(self) -> None:
        conn = self._listener = await self._connect("coatcheck-revocation-listener")
        await conn.execute(f"LISTEN {self._channel}")
        now = self._clock.now()
        cur = await conn.execute(
            "SELECT session_id, until FROM coatcheck_revocations WHERE until > %s", (now,)
        )
        for sid, until in await cur.fetchall():
            self._set.add([sid], until=until)
        await self._connected()
        while True:
            async for notify in conn.notifies(timeout=self._heartbeat):
                if notify.channel == self._channel:
                    self._apply(notify.payload)
            await asyncio.wait_for(conn.execute("SELECT 1"), self._heartbeat * 3)

    async def _send(self, session_ids: list[str], until: float) -> None:
        async with self._lock:
            conn = self._publisher
            if conn is None or conn.closed:
                conn = self._publisher = await self._connect("coatcheck-revocation-publisher")
            try:
                async with conn.transaction():
                    await conn.execute(
                        "DELETE FROM coatcheck_revocations WHERE until < %s", (self._clock.now(),)
                    )
                    for start in range(0, len(session_ids), _CHUNK):
                        chunk = session_ids[start : start + _CHUNK]
                        await conn.execute(
                            "INSERT INTO coatcheck_revocations (session_id, until)"
                            " SELECT unnest(%s::text[]), %s ON CONFLICT (session_id)"
                            " DO UPDATE SET until = greatest(coatcheck_revocations.until,"
                            " excluded.until)",
                            (chunk, until),
                        )
                        payload = self._message(chunk, until)
                        await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))
            except Exception:
                self._publisher = None
                with contextlib.suppress(Exception):
                    await conn.close()
                raise

    async def _close(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def stop(self) -> None:
        await super().stop()
        conn, self._publisher = self._publisher, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
