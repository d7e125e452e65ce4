"""RedisStore: sessions shared by every process, one round trip per request.

Layout (``P`` is the key prefix, ``T`` the 8-hex-digit slot of the session id, which
is the user's slot, see :mod:`coatcheck.sessions.ids`)::

    P{T}s<32 raw bytes of the id's SHA-256>   -> the record, a compact JSON array
    P{T}u<user id>                            -> sorted set: the user's sessions
                                                 (members: the 32 raw bytes)

``{T}`` is a Redis Cluster hash tag, so one user's sessions and index share a slot
and the Lua scripts that change both stay legal on a cluster. The digest is kept
raw rather than in hex: the record key then fits a smaller allocator size class and
each index entry is 32 bytes shorter (see ``bench/bench_stores.py`` for bytes per
session).

* ``get`` is one ``GET``; expiry is still checked against the caller's ``now``.
* The key's TTL is the session's remaining life, ``min(expires_at,
  absolute_expires_at) - last_seen``, counted by Redis's own clock so that a skewed
  app clock cannot keep a session alive; Redis drops dead sessions by itself. The
  user index lives as long as its longest possible session.
* Every write that touches a record and the index runs as one Lua script
  (``EVALSHA``, reloaded on ``NOSCRIPT``), so the two never disagree for long: a
  member whose record Redis expired is dropped by the next ``create``,
  ``list_user`` or ``delete_expired`` that meets it.
* ``update`` is a compare-and-set: the script compares the stored version.
* ``delete_expired`` walks the user indexes with ``SCAN MATCH P{*}u*`` (cursor-based,
  never blocking the server; Redis has no secondary index by time without a
  per-session memory cost) and removes records expired at ``now``. Redis expires
  records on its own, so in production this only tidies indexes. It is a
  maintenance task (``coatcheck sessions prune``); no request path scans.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ConfigurationError, StoreError, StoreUnavailable
from ..sessions.ids import user_slot
from ..sessions.record import SessionRecord

__all__ = ["RedisStore"]

_ID_RE = re.compile(r"[0-9a-f]{8}\.[0-9a-f]{64}")
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)
_MIN_TTL_MS = 1000  # a record already past its expiry still lives a second, then goes
_INDEX_MARGIN_MS = 60_000

# The record is [version, expires_at, absolute_expires_at, created_at, last_seen,
# auth_time, user_id, user_agent, ip, data]: the fields the scripts need come first
# and are plain numbers, so Lua reads them with one pattern instead of decoding JSON.
_HEAD = "^%[(%-?%d+),([^,]*),([^,]*),([^,]*),([^,]*),(.*)$"

def _lua(source: str) -> str:
    # Shared pieces are spelled once: the record-head pattern and the TTL floor.
    return source.replace("HEAD", _HEAD).replace("MIN_TTL", str(_MIN_TTL_MS))


_CREATE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
local t = redis.call('PTTL', KEYS[2])
if t == -1 or t < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
local base = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[3])
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, 7)) do
  if redis.call('EXISTS', base .. m) == 0 then redis.call('ZREM', KEYS[2], m) end
end
return 1
"""

_TOUCH = _lua("""
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ver, _, a, c, _, rest = string.match(v, 'HEAD')
if not ver then return redis.error_reply('ERR coatcheck: unreadable session record') end
local ttl = math.ceil((math.min(tonumber(ARGV[1]), tonumber(a)) - tonumber(ARGV[2])) * 1000)
if ttl < MIN_TTL then ttl = MIN_TTL end
local nv = '[' .. ver .. ',' .. ARGV[1] .. ',' .. a .. ',' .. c .. ',' .. ARGV[2] .. ',' .. rest
redis.call('SET', KEYS[1], nv, 'PX', string.format('%d', ttl))
return 1
""")

_UPDATE = _lua("""
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ver, e, a = string.match(v, 'HEAD')
if ver ~= ARGV[2] then return 0 end
local old, new = math.min(tonumber(e), tonumber(a)), tonumber(ARGV[3])
if new == old then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
else
  local ttl = redis.call('PTTL', KEYS[1]) + math.ceil((new - old) * 1000)
  if ttl < MIN_TTL then ttl = MIN_TTL end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', string.format('%d', ttl))
end
local t = redis.call('PTTL', KEYS[2])
if t ~= -2 and (t == -1 or t < tonumber(ARGV[4])) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1
""")

_DELETE = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
local uid = cjson.decode(v)[7]
redis.call('ZREM', ARGV[1] .. uid, ARGV[2])
return v
"""

_DELETE_USER = """
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('DEL', ARGV[1] .. m) == 1 then out[#out + 1] = m end
end
redis.call('DEL', KEYS[1])
return out
"""

_LIST = """
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('GET', ARGV[1] .. m)
  if v then out[#out + 1] = m; out[#out + 1] = v else redis.call('ZREM', KEYS[1], m) end
end
return out
"""

_PRUNE = _lua("""
local n, now, lim = 0, tonumber(ARGV[2]), tonumber(ARGV[3])
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if n >= lim then break end
  local k = ARGV[1] .. m
  local v = redis.call('GET', k)
  if not v then
    redis.call('ZREM', KEYS[1], m)
  else
    local ver, e, a = string.match(v, 'HEAD')
    if ver and (now >= tonumber(e) or now >= tonumber(a)) then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[1], m)
      n = n + 1
    end
  end
end
return n
""")


def _num(value: float) -> float | int:
    # Integral times are stored without ".0": a few bytes per field, per session.
    if value.is_integer() and -1e15 < value < 1e15:
        return int(value)
    return value


def _encode(record: SessionRecord) -> bytes:
    try:
        return json.dumps(
            [
                record.version,
                _num(record.expires_at),
                _num(record.absolute_expires_at),
                _num(record.created_at),
                _num(record.last_seen),
                _num(record.auth_time),
                record.user_id,
                record.user_agent,
                record.ip,
                record.data,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
    except (TypeError, ValueError) as exc:
        raise StoreError("the session cannot be stored: its data is not plain JSON") from exc


def _decode(session_id: str, raw: bytes) -> SessionRecord:
    try:
        version, exp, absolute, created, seen, auth, user, agent, ip, data = json.loads(raw)
        return SessionRecord(
            id=session_id,
            user_id=user,
            created_at=float(created),
            last_seen=float(seen),
            expires_at=float(exp),
            absolute_expires_at=float(absolute),
            auth_time=float(auth),
            data=data,
            user_agent=agent,
            ip=ip,
            version=version,
        )
    except (TypeError, ValueError) as exc:
        raise StoreError("a stored session record is unreadable") from exc


def _ttl_ms(until: float, since: float) -> int:
    return max(math.ceil((until - since) * 1000), _MIN_TTL_MS)


def _glob_escape(raw: bytes) -> bytes:
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", raw)


class RedisStore:
    """Sessions in Redis (or a Redis Cluster). See the module docstring for the layout.

    ``client`` is a ``redis.asyncio.Redis`` made with ``decode_responses=False``; the
    store owns it and closes it in :meth:`close`. Prefer :meth:`from_url`, which sets
    short timeouts and a reconnecting retry. Raises ConfigurationError for a prefix
    that holds ``{`` or ``}`` (it would break the hash tag). Methods raise
    StoreUnavailable when Redis cannot be reached and StoreError for other failures.
    """

    __slots__ = (
        "_client",
        "_create",
        "_delete",
        "_delete_user",
        "_list",
        "_prefix",
        "_prune",
        "_touch",
        "_update",
    )

    def __init__(self, client: aioredis.Redis, *, prefix: str = "cc:") -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("a Redis key prefix cannot contain '{' or '}'")
        self._client = client
        self._prefix = prefix.encode()
        self._create = client.register_script(_CREATE)
        self._touch = client.register_script(_TOUCH)
        self._update = client.register_script(_UPDATE)
        self._delete = client.register_script(_DELETE)
        self._delete_user = client.register_script(_DELETE_USER)
        self._list = client.register_script(_LIST)
        self._prune = client.register_script(_PRUNE)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        connect_timeout: float = 1.0,
        timeout: float = 2.0,
    ) -> RedisStore:
        """A store for ``redis://host:port/db`` (or ``rediss://``), optional ``?prefix=``.

        Connections time out after ``connect_timeout`` / ``timeout`` seconds so a dead
        server fails fast, and a dropped connection is re-made once before a call
        gives up, so the store recovers by itself after a Redis restart.
        Raises ConfigurationError for a malformed URL.
        """
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        db = parts.path.lstrip("/")
        if (
            parts.scheme not in ("redis", "rediss")
            or not parts.hostname
            or not port_ok
            or not (db == "" or db.isdigit())
        ):
            raise ConfigurationError("a Redis store URL looks like redis://host:port/db")
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = dict(query)
        chosen = prefix if prefix is not None else options.pop("prefix", "cc:")
        rest = urlencode([(k, v) for k, v in query if k != "prefix"])
        try:
            client = aioredis.Redis.from_url(
                urlunsplit(parts._replace(query=rest)),
                socket_connect_timeout=connect_timeout,
                socket_timeout=timeout,
                # Only connection errors are retried: a timed-out write may have
                # landed, and replaying a compare-and-set could apply a change twice.
                retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), 1, (RedisConnectionError,)),
                health_check_interval=30,
                decode_responses=False,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError("the Redis store URL is malformed") from exc
        return cls(client, prefix=chosen)

    # -- keys ---------------------------------------------------------------------------

    def _session_key(self, session_id: str) -> tuple[bytes, bytes] | None:
        """``(key, index member)`` for a well-formed id, else ``None``."""
        if len(session_id) != 73 or not _ID_RE.fullmatch(session_id):
            return None
        member = bytes.fromhex(session_id[9:])
        return self._prefix + b"{" + session_id[:8].encode() + b"}s" + member, member

    def _user_keys(self, user_id: str) -> tuple[bytes, bytes, str]:
        """``(index key, record key base, slot)`` for a user."""
        slot = user_slot(user_id)
        head = self._prefix + b"{" + slot.encode() + b"}"
        return head + b"u" + user_id.encode(), head + b"s", slot

    # -- the protocol -------------------------------------------------------------------

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``: one ``GET``."""
        keys = self._session_key(session_id)
        if keys is None:
            return None
        try:
            raw = cast("bytes | None", await self._client.get(keys[0]))
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a read") from exc
        if raw is None:
            return None
        record = _decode(session_id, raw)
        if now >= record.expires_at or now >= record.absolute_expires_at:
            return None
        return record

    async def create(self, record: SessionRecord) -> None:
        """Store a new session and index it under its user (one script).

        Raises StoreError when the id is not a session id of this user.
        """
        keys = self._session_key(record.id)
        index, _, slot = self._user_keys(record.user_id)
        if keys is None or record.id[:8] != slot:
            raise StoreError("the session id is not a session id made for this user")
        key, member = keys
        value = _encode(record)
        ends = min(record.expires_at, record.absolute_expires_at)
        ttl = _ttl_ms(ends, record.last_seen)
        index_ttl = max(ttl, _ttl_ms(record.absolute_expires_at, record.last_seen))
        await self._run(
            self._create,
            [key, index],
            [value, ttl, member, int(record.created_at), index_ttl + _INDEX_MARGIN_MS],
        )

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity and move the key's TTL; a missing session is ignored."""
        keys = self._session_key(session_id)
        if keys is None:
            return
        await self._run(self._touch, [keys[0]], [repr(_num(expires_at)), repr(_num(last_seen))])

    async def update(self, record: SessionRecord) -> bool:
        """Write ``record`` only over version ``record.version - 1`` (checked in Redis)."""
        keys = self._session_key(record.id)
        if keys is None:
            return False
        index, _, _ = self._user_keys(record.user_id)
        ends = min(record.expires_at, record.absolute_expires_at)
        index_ttl = _ttl_ms(record.absolute_expires_at, record.last_seen) + _INDEX_MARGIN_MS
        done = await self._run(
            self._update,
            [keys[0], index],
            [_encode(record), str(record.version - 1), repr(ends), index_ttl],
        )
        return bool(done)

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove one session and its index entry; return it (``None`` if none)."""
        keys = self._session_key(session_id)
        if keys is None:
            return None
        index_head = self._prefix + b"{" + session_id[:8].encode() + b"}u"
        raw = await self._run(self._delete, [keys[0]], [index_head, keys[1]])
        return None if raw is None else _decode(session_id, raw)

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids."""
        index, base, slot = self._user_keys(user_id)
        members = await self._run(self._delete_user, [index], [base])
        return [f"{slot}.{member.hex()}" for member in members]

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first (drops index entries Redis expired)."""
        index, base, slot = self._user_keys(user_id)
        flat = await self._run(self._list, [index], [base])
        records = [
            _decode(f"{slot}.{flat[i].hex()}", flat[i + 1]) for i in range(0, len(flat), 2)
        ]
        live = [r for r in records if not r.is_expired(now)]
        live.sort(key=lambda r: (r.created_at, r.id))
        return live

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        """Remove up to ``limit`` sessions expired at ``now``; return how many.

        One cursor pass over the user indexes (see the module docstring).
        """
        remaining = limit if limit is not None else 2**62
        pattern = _glob_escape(self._prefix) + b"{????????}u*"
        head = len(self._prefix)
        removed, cursor = 0, 0
        try:
            while remaining > 0:
                cursor, found = await self._client.scan(cursor, match=pattern, count=1000)
                for index in cast("list[bytes]", found):
                    if remaining <= 0:
                        break
                    base = index[: head + 10] + b"s"
                    n = int(await self._prune(keys=[index], args=[base, repr(now), remaining]))
                    removed += n
                    remaining -= n
                if cursor == 0:
                    break
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused to prune sessions") from exc
        return removed

    async def close(self) -> None:
        """Close the client and its connection pool."""
        try:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
        except _UNAVAILABLE:
            pass  # the connections are gone either way

    async def ping(self) -> bool:
        """Whether Redis answers now (for health checks); never raises."""
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def _run(self, script: Any, keys: list[bytes], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a session write") from exc

    def __repr__(self) -> str:
        kwargs = self._client.connection_pool.connection_kwargs
        where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        return f"RedisStore({where}, prefix={self._prefix.decode()!r})"
