"""Revocations over Redis pub/sub: the feed of :mod:`coatcheck.revocation` for Redis."""

from __future__ import annotations

import contextlib
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, StoreUnavailable
from ..revocation import RevocationFeed, RevocationSet, encode_message

__all__ = ["RedisRevocationFeed"]

_SYSTEM_CLOCK = SystemClock()


class RedisRevocationFeed(RevocationFeed):
    """Revocations over Redis pub/sub, with a sorted-set backlog (``<channel>:backlog``).

    ``url`` is a ``redis://`` URL (the one of the session store works). Publishing is
    one MULTI/EXEC round trip: add to the backlog, trim expired entries, PUBLISH.
    The listener pings every ``heartbeat`` seconds and reconnects when three go
    unanswered, so a silently dead connection is noticed within a few seconds.

    :raises ConfigurationError: for a bad channel, or when redis-py is not installed.
    """

    def __init__(
        self,
        url: str,
        revocations: RevocationSet,
        *,
        channel: str = "coatcheck:revoked",
        clock: Clock = _SYSTEM_CLOCK,
        heartbeat: float = 1.0,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(
            revocations, channel=channel, clock=clock, heartbeat=heartbeat, max_backoff=max_backoff
        )
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise ConfigurationError(
                "RedisRevocationFeed needs `pip install coatcheck[redis]`"
            ) from exc
        # No silent reconnects: a reconnected pub/sub may have missed messages, so a
        # broken connection must surface here and go through the backlog replay.
        self._client: Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=None, retry=Retry(NoBackoff(), 0)
        )
        self._pubclient: Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2
        )
        self._backlog = channel + ":backlog"
        self._pubsub: Any = None

    async def _listen(self) -> None:
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        await pubsub.subscribe(self._channel)
        # Subscribed first, replayed second: nothing falls between the two.
        now = self._clock.now()
        rows = await self._client.zrangebyscore(self._backlog, now, "+inf", withscores=True)
        for sid, until in rows:
            self._set.add([sid.decode() if isinstance(sid, bytes) else sid], until=until)
        await self._connected()
        unanswered = 0
        while True:
            message = await pubsub.get_message(timeout=self._heartbeat)
            if message is None:
                if unanswered >= 3:
                    raise StoreUnavailable("the revocation feed stopped answering pings")
                unanswered += 1
                await pubsub.ping()
                continue
            unanswered = 0
            if message.get("type") == "message":
                self._apply(message["data"])

    async def _send(self, session_ids: list[str], until: float) -> None:
        now = self._clock.now()
        async with self._pubclient.pipeline(transaction=True) as pipe:
            pipe.zadd(self._backlog, dict.fromkeys(session_ids, until))
            pipe.zremrangebyscore(self._backlog, "-inf", now)
            pipe.expire(self._backlog, int(self._set.retention) + 60)
            pipe.publish(self._channel, encode_message(session_ids, until))
            await pipe.execute()

    async def _close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def stop(self) -> None:
        await super().stop()
        await self._client.aclose()
        await self._pubclient.aclose()
