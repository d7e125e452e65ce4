"""RedisStore: sessions shared by every process, one round trip per request.

Layout (``P`` is the key prefix, ``T`` the first 4 hex digits of the session id's
slot, which is the user's slot, see :mod:`coatcheck.sessions.ids`; ``D`` the 32
raw bytes of the SHA-256 in the session id)::

    P{T}s<D[:16]>   -> D[16:] followed by the record, a compact JSON array
    P{T}u<user id>  -> hash: one field D[:16] (value empty) per session of the user
    Pa:<key>        -> a login-attempt counter (see coatcheck.ratelimit)
    Pr:<key>        -> a one-time value (coatcheck.sessions.ReplayCache): SET NX PX

``{T}`` is a Redis Cluster hash tag, so one user's sessions and index share a slot
and the Lua scripts that change both stay legal on a cluster (16 bits of tag are
plenty for the cluster's 16384 slots). A guest's session (user id ``""``) has a random
slot (:func:`~coatcheck.sessions.ids.new_token`), so guests spread over every slot, and
no index: it is one key, written with a plain ``SET``. Keys and index fields hold the first 128
bits of the digest, raw: the token has 256 random bits, so 128 bits of its hash
still make a guess or a collision infeasible; the other 16 bytes lead the value,
so a lookup still matches the whole id and listings can return it. This layout is
what keeps a session with a 300-byte record and its index entry under 520 bytes of
Redis memory (``bench/bench_stores.py``: about 508 with four sessions per user):
the record key (``len(prefix) + 23`` bytes) fits jemalloc's 32-byte size class
while the prefix has at most 5 bytes, and an index entry costs 20 bytes of
listpack (a user with more than ``hash-max-listpack-entries`` sessions, 512 by
default, gets a real hash table instead, at several times that per entry).

* ``get`` is one ``GET``; expiry is still checked against the caller's ``now``.
* The key's TTL is the session's remaining life, ``min(expires_at,
  absolute_expires_at) - last_seen``, counted by Redis's own clock so that a skewed
  app clock cannot keep a session alive; Redis drops dead sessions by itself. The
  user index lives as long as its longest possible session: its TTL only ever
  grows, and only when a session is created or changed, never on a plain request.
* Every write that touches a record and the index runs as one Lua script
  (``EVALSHA``, reloaded on ``NOSCRIPT``), so the two never disagree for long: a
  field whose record Redis expired is dropped by the next ``create`` that samples
  it (``HRANDFIELD``, so Redis 6.2 or newer), ``list_user`` or ``delete_expired``.
* ``update`` is a compare-and-set: the script compares the stored version.
* ``delete_expired`` walks the user indexes with ``SCAN MATCH P{????}u*``
  (cursor-based, never blocking the server; Redis has no secondary index by time
  without a per-session memory cost) and removes records expired at ``now``. Redis
  expires records on its own, so in production this only tidies indexes. It is a
  maintenance task (``coatcheck sessions prune``); no request path scans.
"""

from __future__ import annotations

import hmac
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
from ..sessions.record import SessionRecord, _make_record
from ._decoded import loads

try:
    from ._resp import FastGet
except ImportError:  # pragma: no cover - hiredis comes with coatcheck[redis]
    FastGet = None  # type: ignore[assignment,misc]

__all__ = ["RedisStore"]

_ID_RE = re.compile(r"[0-9a-f]{8}\.[0-9a-f]{64}")
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)
_MIN_TTL_MS = 1000  # a record already past its expiry still lives a second, then goes
_INDEX_MARGIN_MS = 60_000
_TAG = 4  # hex digits of the slot in the hash tag
_HALF = 16  # bytes of the digest in the key; the rest lead the value
_SWEEP = 8  # index fields a create samples for records Redis already expired

# The value is the digest's last 16 bytes, then [version, expires_at,
# absolute_expires_at, created_at, last_seen, auth_time, user_id, user_agent, ip,
# data]: the fields the scripts need come first and are plain numbers, so Lua reads
# them with one pattern instead of decoding JSON. last_seen and auth_time are null
# when they equal created_at (a fresh session): 4 bytes instead of up to 18 each.
_HEAD = "^%[(%-?%d+),([^,]*),([^,]*),([^,]*),([^,]*),(.*)$"


def _lua(source: str) -> str:
    # Shared pieces are spelled once: the record-head pattern and the TTL floor.
    return (
        source.replace("HEAD", _HEAD)
        .replace("MIN_TTL", str(_MIN_TTL_MS))
        .replace("HALF", str(_HALF))
    )


# KEYS: record, index. ARGV: value, ttl ms, field, index ttl ms.
_CREATE = _lua("""
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], '')
local t = redis.call('PTTL', KEYS[2])
if t == -1 or t < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
local base = string.sub(KEYS[1], 1, #KEYS[1] - HALF)
for _, m in ipairs(redis.call('HRANDFIELD', KEYS[2], SWEEP)) do
  if redis.call('EXISTS', base .. m) == 0 then redis.call('HDEL', KEYS[2], m) end
end
return 1
""".replace("SWEEP", str(_SWEEP)))

# KEYS: record. ARGV: expires_at, last_seen, digest tail.
_TOUCH = _lua("""
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, HALF) ~= ARGV[3] then return 0 end
local ver, _, a, c, _, rest = string.match(string.sub(v, HALF + 1), 'HEAD')
if not ver then return redis.error_reply('ERR coatcheck: unreadable session record') end
local ttl = math.ceil((math.min(tonumber(ARGV[1]), tonumber(a)) - tonumber(ARGV[2])) * 1000)
if ttl < MIN_TTL then ttl = MIN_TTL end
local nv = ARGV[3] .. '[' .. ver .. ',' .. ARGV[1] .. ',' .. a .. ',' .. c .. ',' .. ARGV[2]
  .. ',' .. rest
redis.call('SET', KEYS[1], nv, 'PX', string.format('%d', ttl))
return 1
""")

# KEYS: record, index. ARGV: value, old version, new end of life, index ttl ms.
_UPDATE = _lua("""
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, HALF) ~= string.sub(ARGV[1], 1, HALF) then return 0 end
local ver, e, a = string.match(string.sub(v, HALF + 1), 'HEAD')
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

# KEYS: record. ARGV: index key without the user id, field, digest tail.
_DELETE = _lua("""
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, HALF) ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1])
local uid = cjson.decode(string.sub(v, HALF + 1))[7]
redis.call('HDEL', ARGV[1] .. uid, ARGV[2])
return v
""")

# KEYS: index. ARGV: record key base. Returns each removed field and its digest tail.
_DELETE_USER = _lua("""
local out = {}
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  local k = ARGV[1] .. m
  local tail = redis.call('GETRANGE', k, 0, HALF - 1)
  if #tail == HALF then
    redis.call('DEL', k)
    out[#out + 1] = m .. tail
  end
end
redis.call('DEL', KEYS[1])
return out
""")

_LIST = """
local out = {}
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. m)
  if v then out[#out + 1] = m; out[#out + 1] = v else redis.call('HDEL', KEYS[1], m) end
end
return out
"""

_PRUNE = _lua("""
local n, now, lim = 0, tonumber(ARGV[2]), tonumber(ARGV[3])
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  if n >= lim then break end
  local k = ARGV[1] .. m
  local v = redis.call('GET', k)
  if not v then
    redis.call('HDEL', KEYS[1], m)
  else
    local ver, e, a = string.match(string.sub(v, HALF + 1), 'HEAD')
    if ver and (now >= tonumber(e) or now >= tonumber(a)) then
      redis.call('DEL', k)
      redis.call('HDEL', KEYS[1], m)
      n = n + 1
    end
  end
end
return n
""")

# Login-attempt counters (coatcheck.ratelimit): "count:resets_at" under a TTL that
# only collects garbage; the count is judged by the caller's clock, like sessions.
# KEYS: counter. ARGV: now, resets_at, ttl ms.
_HIT = """
local n = 1
local v = redis.call('GET', KEYS[1])
if v then
  local c, r = string.match(v, '^(%d+):(.+)$')
  if c and tonumber(r) > tonumber(ARGV[1]) then n = tonumber(c) + 1 end
end
redis.call('SET', KEYS[1], string.format('%d', n) .. ':' .. ARGV[2], 'PX', ARGV[3])
return n
"""


def _num(value: float) -> float | int:
    # Integral times are stored without ".0": a few bytes per field, per session.
    if value.is_integer() and -1e15 < value < 1e15:
        return int(value)
    return value


def _encode(record: SessionRecord, tail: bytes) -> bytes:
    """The stored value: the digest's last 16 bytes, then the JSON array."""
    created = record.created_at
    try:
        body = json.dumps(
            [
                record.version,
                _num(record.expires_at),
                _num(record.absolute_expires_at),
                _num(created),
                None if record.last_seen == created else _num(record.last_seen),
                None if record.auth_time == created else _num(record.auth_time),
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
    return tail + body


def _decode(session_id: str, raw: bytes) -> SessionRecord:
    try:
        version, exp, absolute, created, seen, auth, user, agent, ip, data = loads(raw[_HALF:])
        created = float(created)
        return _make_record(
            session_id,
            user,
            created,
            created if seen is None else float(seen),
            float(exp),
            float(absolute),
            created if auth is None else float(auth),
            data,
            agent,
            ip,
            version,
        )
    except (TypeError, ValueError) as exc:
        raise StoreError("a stored session record is unreadable") from exc


# Connection options the lean GET honours itself, or that do not change what a GET
# returns; a client with any other option keeps redis-py for every command.
_FAST_OPTIONS = frozenset({
    "host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout",
    "health_check_interval", "retry", "retry_on_timeout", "retry_on_error", "encoding",
    "encoding_errors", "decode_responses", "himport_registry", "maint_notifications_config",
    "maint_notifications_pool_handler", "orig_host_address", "orig_socket_timeout",
    "orig_socket_connect_timeout", "client_name", "lib_name", "lib_version",
})


def _fast_get(client: Any) -> FastGet | None:
    """A :class:`FastGet` for a plain TCP ``redis.asyncio.Redis`` client, else ``None``."""
    pool = getattr(client, "connection_pool", None)
    if (
        type(client) is not aioredis.Redis
        or pool is None
        or pool.connection_class is not aioredis.Connection
        or getattr(client, "single_connection_client", False)
    ):
        return None
    kwargs = pool.connection_kwargs
    if FastGet is None or not set(kwargs) <= _FAST_OPTIONS or kwargs.get("decode_responses"):
        return None
    try:
        return FastGet(
            str(kwargs.get("host", "localhost")),
            int(kwargs.get("port", 6379)),
            db=int(kwargs.get("db") or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            connect_timeout=kwargs.get("socket_connect_timeout"),
            timeout=kwargs.get("socket_timeout"),
        )
    except (TypeError, ValueError):
        return None


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
        "_fast",
        "_hit",
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
        self._hit = client.register_script(_HIT)
        # The per-request GET skips redis-py when the client is a plain TCP one (see
        # coatcheck.stores._resp); anything else (TLS, sockets, clusters) keeps it.
        self._fast = _fast_get(client)

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
        client, chosen = _connect(
            aioredis.Redis, Retry, url, prefix, connect_timeout, timeout
        )
        return cls(client, prefix=chosen)

    # -- keys ---------------------------------------------------------------------------

    def _session_key(self, session_id: str) -> tuple[bytes, bytes, bytes] | None:
        """``(key, index field, digest tail)`` for a well-formed id, else ``None``."""
        if len(session_id) != 73 or not _ID_RE.fullmatch(session_id):
            return None
        digest = bytes.fromhex(session_id[9:])
        head = digest[:_HALF]
        tag = session_id[:_TAG].encode()
        return self._prefix + b"{" + tag + b"}s" + head, head, digest[_HALF:]

    def _user_keys(self, user_id: str) -> tuple[bytes, bytes, str]:
        """``(index key, record key base, slot)`` for a user."""
        slot = user_slot(user_id)
        head = self._prefix + b"{" + slot[:_TAG].encode() + b"}"
        return head + b"u" + user_id.encode(), head + b"s", slot

    def _create_call(self, record: SessionRecord) -> tuple[list[bytes], list[Any]]:
        """The keys and arguments of the create script (the benchmark pipelines them)."""
        keys = self._session_key(record.id)
        index, _, slot = self._user_keys(record.user_id)
        if keys is None or record.id[:8] != slot:
            raise StoreError("the session id is not a session id made for this user")
        key, field, tail = keys
        ends = min(record.expires_at, record.absolute_expires_at)
        ttl = _ttl_ms(ends, record.last_seen)
        index_ttl = max(ttl, _ttl_ms(record.absolute_expires_at, record.last_seen))
        args = [_encode(record, tail), ttl, field, index_ttl + _INDEX_MARGIN_MS]
        return [key, index], args

    # -- the protocol -------------------------------------------------------------------

    async def get(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session with this id, or ``None``: one ``GET``."""
        keys = self._session_key(session_id)
        if keys is None:
            return None
        fast = self._fast
        try:
            if fast is not None:
                raw = await fast.get(keys[0])
            else:
                raw = cast("bytes | None", await self._client.get(keys[0]))
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a read") from exc
        # The key holds half the digest; the value's first bytes must hold the rest.
        if not isinstance(raw, bytes) or not hmac.compare_digest(raw[:_HALF], keys[2]):
            return None
        # Decoded on every read: a cache of decoded records cost more on its misses
        # (with more users than entries) than it saved on its hits (bench/results).
        record = _decode(session_id, raw)
        if now >= record.expires_at or now >= record.absolute_expires_at:
            return None
        return record

    async def create(self, record: SessionRecord) -> None:
        """Store a new session and index it under its user (one script).

        Raises StoreError when the id is not a session id of this user.
        """
        if not record.user_id:
            await self._create_guest(record)
            return
        keys, args = self._create_call(record)
        await self._run(self._create, keys, args)

    async def _create_guest(self, record: SessionRecord) -> None:
        keys = self._session_key(record.id)
        if keys is None:
            raise StoreError("the session id is not a session id")
        ttl = _ttl_ms(min(record.expires_at, record.absolute_expires_at), record.last_seen)
        try:
            await self._client.set(keys[0], _encode(record, keys[2]), px=ttl)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a session write") from exc

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity and move the key's TTL; a missing session is ignored."""
        keys = self._session_key(session_id)
        if keys is None:
            return
        args = [repr(_num(expires_at)), repr(_num(last_seen)), keys[2]]
        await self._run(self._touch, [keys[0]], args)

    async def update(self, record: SessionRecord) -> bool:
        """Write ``record`` only over version ``record.version - 1`` (checked in Redis)."""
        keys = self._session_key(record.id)
        if keys is None:
            return False
        if record.user_id:
            index = self._user_keys(record.user_id)[0]
        else:
            # A guest has no index; this key (same hash tag, never created) keeps the
            # script's two keys in one cluster slot, and the script skips a missing index.
            index = self._prefix + b"{" + record.id[:_TAG].encode() + b"}u"
        ends = min(record.expires_at, record.absolute_expires_at)
        index_ttl = _ttl_ms(record.absolute_expires_at, record.last_seen) + _INDEX_MARGIN_MS
        done = await self._run(
            self._update,
            [keys[0], index],
            [_encode(record, keys[2]), str(record.version - 1), repr(ends), index_ttl],
        )
        return bool(done)

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove one session and its index entry; return it (``None`` if none)."""
        keys = self._session_key(session_id)
        if keys is None:
            return None
        index_head = self._prefix + b"{" + session_id[:_TAG].encode() + b"}u"
        raw = await self._run(self._delete, [keys[0]], [index_head, keys[1], keys[2]])
        return None if raw is None else _decode(session_id, raw)

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids (none for ``""``: guests)."""
        if not user_id:
            return []
        index, base, slot = self._user_keys(user_id)
        digests = await self._run(self._delete_user, [index], [base])
        return [f"{slot}.{digest.hex()}" for digest in digests]

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first (drops index entries Redis expired).

        None for ``""``: guests have no index.
        """
        if not user_id:
            return []
        index, base, slot = self._user_keys(user_id)
        flat = await self._run(self._list, [index], [base])
        records = [
            _decode(f"{slot}.{(flat[i] + flat[i + 1][:_HALF]).hex()}", flat[i + 1])
            for i in range(0, len(flat), 2)
        ]
        live = [r for r in records if not r.is_expired(now)]
        live.sort(key=lambda r: (r.created_at, r.id))
        return live

    async def delete_expired(self, now: float, limit: int | None = None) -> int:
        """Remove up to ``limit`` sessions expired at ``now``; return how many.

        One cursor pass over the user indexes (see the module docstring).
        """
        remaining = limit if limit is not None else 2**62
        pattern = _glob_escape(self._prefix) + b"{" + b"?" * _TAG + b"}u*"
        head = len(self._prefix)
        removed, cursor = 0, 0
        try:
            while remaining > 0:
                cursor, found = await self._client.scan(cursor, match=pattern, count=1000)
                for index in cast("list[bytes]", found):
                    if remaining <= 0:
                        break
                    base = index[: head + _TAG + 2] + b"s"
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

    # -- login-attempt counters (coatcheck.ratelimit.AttemptCounter) ------------------

    async def hit_attempts(self, key: str, window: float, now: float) -> tuple[int, float]:
        """Count one failure under ``key``; ``(count, resets_at)``: one script call.

        The count restarts once ``window`` seconds pass after the latest failure.
        """
        resets_at = now + window
        ttl = _ttl_ms(resets_at, now) + _INDEX_MARGIN_MS
        args = [repr(now), repr(resets_at), ttl]
        count = await self._run(self._hit, [self._attempt_key(key)], args)
        return int(count), resets_at

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` of ``key`` without counting; ``(0, now)`` if none."""
        try:
            raw = cast("bytes | None", await self._client.get(self._attempt_key(key)))
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a read") from exc
        count, _, resets = (raw or b"").partition(b":")
        try:
            n, resets_at = int(count), float(resets)
        except ValueError:
            return 0, now
        return (n, resets_at) if resets_at > now else (0, now)

    async def clear_attempts(self, key: str) -> None:
        """Forget the failures counted under ``key``."""
        try:
            await self._client.delete(self._attempt_key(key))
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a write") from exc

    def _attempt_key(self, key: str) -> bytes:
        return self._prefix + b"a:" + key.encode()

    # -- one-time values (coatcheck.sessions.ReplayCache) ------------------------------

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; ``False`` if it is remembered already.

        One ``SET NX PX``: atomic on one server and on a cluster (a single key), and
        Redis forgets it by itself (by its own clock, so ``now`` is not needed).
        """
        try:
            done = await self._client.set(
                self._prefix + b"r:" + key.encode(), b"", nx=True, px=max(1, math.ceil(ttl * 1000))
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        except RedisError as exc:
            raise StoreError("Redis refused a write") from exc
        return bool(done)

    async def close(self) -> None:
        """Close the client and its connection pool."""
        if self._fast is not None:
            self._fast.close()
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


def _connect(
    client_class: Any,
    retry_class: Any,
    url: str,
    prefix: str | None,
    connect_timeout: float,
    timeout: float,
) -> tuple[Any, str]:
    """Check a Redis store URL and make a ``client_class`` client for it, with its prefix.

    One rule for the async store and the sync one (``redis.asyncio.Redis`` with its
    ``Retry``, or ``redis.Redis`` with its own). Raises ConfigurationError for a
    malformed URL.
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
        client = client_class.from_url(
            urlunsplit(parts._replace(query=rest)),
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            # Only connection errors are retried: a timed-out write may have
            # landed, and replaying a compare-and-set could apply a change twice.
            retry=retry_class(ExponentialBackoff(cap=0.25, base=0.05), 1, (RedisConnectionError,)),
            health_check_interval=30,
            decode_responses=False,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError("the Redis store URL is malformed") from exc
    return client, chosen
