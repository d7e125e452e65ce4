"""Revocations over Redis pub/sub: the feed of :mod:`coatcheck.revocation` for Redis.

On one server and on a Sentinel group it is classic ``PUBLISH``/``SUBSCRIBE``. On a
Redis Cluster it is *sharded* pub/sub (``SPUBLISH``/``SSUBSCRIBE``, Redis 7.0+): a
classic ``PUBLISH`` on a cluster is forwarded over the cluster bus to every node, so
its cost grows with the cluster, while a shard channel lives on the one shard that
owns its slot. The channel is then ``{<channel>}`` and the backlog
``{<channel>}:backlog``: one hash tag, one slot, so the publish script that adds to
the backlog and publishes runs on one node, atomically, and a listener subscribes
and replays from that same node. When that shard's master fails, the listener's
connection drops (or Redis unsubscribes it when the slot moves); it then asks the
cluster who owns the slot now, subscribes there and replays the backlog.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError, StoreUnavailable
from ..revocation import RevocationFeed, RevocationSet

__all__ = ["RedisRevocationFeed"]

_SYSTEM_CLOCK = SystemClock()

# KEYS: backlog. ARGV: publish command, channel, until, now, ttl s, payload, ids...
# The channel shares the backlog's hash tag on a cluster (Redis checks the slot).
_PUBLISH = """
for i = 7, #ARGV do redis.call('ZADD', KEYS[1], ARGV[3], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call(ARGV[1], ARGV[2], ARGV[6])
"""


class RedisRevocationFeed(RevocationFeed):
    """Revocations over Redis pub/sub, with a sorted-set backlog (see the module docstring).

    ``url`` is a ``redis://``, ``redis+sentinel://`` or ``redis+cluster://`` URL (the
    one of the session store works). Publishing is one script: add to the backlog,
    trim expired entries, publish. The listener pings every ``heartbeat`` seconds and
    reconnects when three go unanswered, so a silently dead connection is noticed
    within a few seconds.

    :raises ConfigurationError: for a bad channel or URL, or when redis-py is not
        installed.
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
            from ._redis_io import ClusterIO, Script, open_io
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise ConfigurationError(
                "RedisRevocationFeed needs `pip install coatcheck[redis]`"
            ) from exc
        self._url = url
        self._io: Any = open_io(url, sync=False, prefix=None, connect_timeout=2, timeout=2)[0]
        self._sharded = isinstance(self._io, ClusterIO)
        if self._sharded:
            self._wire = "{" + channel + "}"
            self._publish_command, self._subscribe = b"SPUBLISH", "ssubscribe"
        else:
            self._wire = channel
            self._publish_command, self._subscribe = b"PUBLISH", "subscribe"
        self._backlog = (self._wire + ":backlog").encode()
        self._script = Script(_PUBLISH)
        self._client: Any = None
        self._pubsub: Any = None

    async def _listen(self) -> None:
        from ._redis_io import subscriber

        client = self._client = await subscriber(self._url, self._io, self._backlog)
        pubsub = self._pubsub = client.pubsub()
        await getattr(pubsub, self._subscribe)(self._wire)
        # Subscribed first, replayed second: nothing falls between the two. Both on the
        # one node that owns the channel (and, on a cluster, the backlog's slot).
        now = self._clock.now()
        rows = await client.zrangebyscore(self._backlog, now, "+inf", withscores=True)
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
            kind = message.get("type")
            if kind in ("message", "smessage"):
                self._apply(message["data"])
            elif kind in ("unsubscribe", "sunsubscribe"):
                # The slot moved to another shard (or the server dropped us): start over.
                raise StoreUnavailable("the revocation feed was unsubscribed")

    async def _send(self, session_ids: list[str], until: float) -> None:
        now = self._clock.now()
        ttl = int(self._set.retention) + 60
        args: list[Any] = [
            self._publish_command, self._wire, repr(until), repr(now), ttl,
            self._message(session_ids, until), *session_ids,
        ]  # fmt: skip
        await self._io.eval(self._script, [self._backlog], args)

    async def _close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def stop(self) -> None:
        await super().stop()
        await self._io.close()
