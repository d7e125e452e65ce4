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
no index: it is one key, written with a plain ``SET``. Keys and index fields hold the
first 128 bits of the digest, raw: the token has 256 random bits, so 128 bits of its hash
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
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from ..errors import ConfigurationError, StoreError
from ..sessions.ids import user_slot
from ..sessions.record import SessionRecord, _make_record
from ._decoded import loads
from ._redis_io import MOVING, NodeIO, RedisIO, Script, open_io
from ._redis_io import _fast_get as _lean_get

if TYPE_CHECKING:
    from ..ratelimit import AttemptRule

__all__ = ["RedisStore"]

_ID_RE = re.compile(r"[0-9a-f]{8}\.[0-9a-f]{64}")
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
    # Shared pieces are spelled once: the record-head pattern, the TTL floor, and the
    # answer when a key the script reaches has moved to another cluster master.
    return (
        source.replace("HEAD", _HEAD)
        .replace("MIN_TTL", str(_MIN_TTL_MS))
        .replace("HALF", str(_HALF))
        .replace("SLOT_MOVING", f"redis.error_reply('{MOVING}')")
    )


# Scripts that reach keys they do not declare (a user's records, found in the index)
# read them with pcall first: on a cluster master whose slot is migrating, a key that
# already moved is an error there, and the script answers TRYAGAIN before it writes
# anything, so it is never half done (ClusterIO tries it again on the owner).


# KEYS: record, index. ARGV: value, ttl ms, field, index ttl ms.
_CREATE = Script(_lua("""
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], '')
local t = redis.call('PTTL', KEYS[2])
if t == -1 or t < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
local base = string.sub(KEYS[1], 1, #KEYS[1] - HALF)
for _, m in ipairs(redis.call('HRANDFIELD', KEYS[2], SWEEP)) do
  if redis.pcall('EXISTS', base .. m) == 0 then redis.call('HDEL', KEYS[2], m) end
end
return 1
""".replace("SWEEP", str(_SWEEP))), undeclared=True)

# KEYS: record. ARGV: expires_at, last_seen, digest tail.
_TOUCH = Script(_lua("""
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
"""))

# KEYS: record, index. ARGV: value, old version, new end of life, index ttl ms.
_UPDATE = Script(_lua("""
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
"""))

# KEYS: record. ARGV: index key without the user id, field, digest tail.
_DELETE = Script(_lua("""
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, HALF) ~= ARGV[3] then return false end
local uid = cjson.decode(string.sub(v, HALF + 1))[7]
if type(redis.pcall('HDEL', ARGV[1] .. uid, ARGV[2])) == 'table' then return SLOT_MOVING end
redis.call('DEL', KEYS[1])
return v
"""), undeclared=True)

# KEYS: index. ARGV: record key base. Returns each removed field and its digest tail.
_DELETE_USER = Script(_lua("""
local out, keys = {}, {}
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  local k = ARGV[1] .. m
  local tail = redis.pcall('GETRANGE', k, 0, HALF - 1)
  if type(tail) == 'table' then return SLOT_MOVING end
  if #tail == HALF then
    keys[#keys + 1] = k
    out[#out + 1] = m .. tail
  end
end
for _, k in ipairs(keys) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
return out
"""), undeclared=True)

_LIST = Script(_lua("""
local out, gone = {}, {}
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  local v = redis.pcall('GET', ARGV[1] .. m)
  if type(v) == 'table' then return SLOT_MOVING end
  if v then out[#out + 1] = m; out[#out + 1] = v else gone[#gone + 1] = m end
end
for _, m in ipairs(gone) do redis.call('HDEL', KEYS[1], m) end
return out
"""), undeclared=True)

_PRUNE = Script(_lua("""
local n, now, lim = 0, tonumber(ARGV[2]), tonumber(ARGV[3])
for _, m in ipairs(redis.call('HKEYS', KEYS[1])) do
  if type(redis.pcall('EXISTS', ARGV[1] .. m)) == 'table' then return SLOT_MOVING end
end
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
"""), undeclared=True)

# Login-attempt counters (coatcheck.ratelimit): "count:resets_at" under a TTL that
# only collects garbage; the count is judged by the caller's clock, like sessions.
# Reserve checks the lock and counts in one script (so processes never let more attempts
# through than the rule allows), with AttemptRule.wait's operations in the same order:
# a running count at or over `allowed` waits until its latest attempt (resets_at -
# window) plus min(base * 2^min(count - allowed, 62), max). Returns "0" when counted,
# else the wait in seconds (a string: Lua numbers would be truncated to integers).
# KEYS: counter. ARGV: now, window, allowed, base, max, ttl ms, resets_at (repr).
_RESERVE = Script("""
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local allowed = tonumber(ARGV[3])
local n, r = 0, now
local v = redis.call('GET', KEYS[1])
if v then
  local c, rr = string.match(v, '^(%d+):(.+)$')
  if c and tonumber(rr) > now then n = tonumber(c); r = tonumber(rr) end
end
if n >= allowed then
  local e = n - allowed
  if e > 62 then e = 62 end
  local d = math.min(tonumber(ARGV[4]) * 2 ^ e, tonumber(ARGV[5]))
  local u = r - window + d
  if u > now then return string.format('%.17g', u - now) end
end
redis.call('SET', KEYS[1], string.format('%d', n + 1) .. ':' .. ARGV[7], 'PX', ARGV[6])
return '0'
""")

# Take one counted attempt back; the count keeps its resets_at and its TTL.
# KEYS: counter.
_RELEASE = Script("""
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local c, r = string.match(v, '^(%d+):(.+)$')
if not c then return 0 end
local n = tonumber(c) - 1
if n <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', n) .. ':' .. r, 'KEEPTTL')
return n
""")


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


def _ttl_ms(until: float, since: float) -> int:
    return max(math.ceil((until - since) * 1000), _MIN_TTL_MS)


def _glob_escape(raw: bytes) -> bytes:
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", raw)


class RedisStore:
    """Sessions in Redis: one server, a Redis Cluster or a Sentinel group.

    The store holds the layout (module docstring), the scripts and the record mapping;
    all its I/O goes through ``io``, a :class:`~coatcheck.stores._redis_io.RedisIO`
    (one server, a cluster or a Sentinel master; asyncio or blocking, see
    :class:`~coatcheck.stores.redis_sync.SyncRedisStore`). A ``redis.asyncio.Redis``
    or ``redis.Redis`` client made with ``decode_responses=False`` may be passed
    instead: the store owns it and closes it in :meth:`close`. Prefer
    :meth:`from_url`, which sets short timeouts and a reconnecting retry. ``wait``
    replicas must acknowledge a session's creation or deletion (Redis ``WAIT``)
    before it counts as done, so a failover cannot lose it (0: no waiting).

    Raises ConfigurationError for a prefix that holds ``{`` or ``}`` (it would break
    the hash tag). Methods raise StoreUnavailable when Redis cannot be reached and
    StoreError for other failures.
    """

    __slots__ = ("_get", "_io", "_prefix", "_wait")

    def __init__(self, io: RedisIO | Any, *, prefix: str = "cc:", wait: int = 0) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("a Redis key prefix cannot contain '{' or '}'")
        if not 0 <= wait <= 16:
            raise ConfigurationError("wait is the number of Redis replicas to wait for, 0-16")
        if isinstance(io, (redis.Redis, aioredis.Redis)):
            # A bare redis-py client (the lean GET too when it is plain TCP asyncio).
            io = NodeIO(io, fast=_lean_get(io) if isinstance(io, aioredis.Redis) else None)
        self._io: RedisIO = io
        self._get = io.get  # the per-request read, bound once
        self._prefix = prefix.encode()
        self._wait = wait

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        connect_timeout: float = 1.0,
        timeout: float = 2.0,
    ) -> RedisStore:
        """A store for a Redis URL, with optional ``?prefix=``, ``&wait=N``:

        * ``redis://host:port/db`` (or ``rediss://``): one server;
        * ``redis+cluster://host:port[,host:port...]/``: a Redis Cluster (any of its
          nodes; the rest are found from them);
        * ``redis+sentinel://host:port[,host:port...]/service_name/db``: the master a
          Sentinel group names, found again after a failover.

        Connections time out after ``connect_timeout`` / ``timeout`` seconds so a dead
        server fails fast, and a dropped connection is re-made once before a call
        gives up, so the store recovers by itself after a restart or a failover.
        Raises ConfigurationError for a malformed URL.
        """
        store: RedisStore = cls._from_url(url, False, prefix, connect_timeout, timeout)
        return store

    @classmethod
    def _from_url(
        cls, url: str, sync: bool, prefix: str | None, connect_timeout: float, timeout: float
    ) -> Any:
        io, chosen, wait = open_io(
            url, sync=sync, prefix=prefix, connect_timeout=connect_timeout, timeout=timeout
        )
        return cls(io, prefix=chosen, wait=wait)

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
        raw = await self._get(keys[0])
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
        await self._io.eval(_CREATE, keys, args, replicas=self._wait)

    async def _create_guest(self, record: SessionRecord) -> None:
        keys = self._session_key(record.id)
        if keys is None:
            raise StoreError("the session id is not a session id")
        ttl = _ttl_ms(min(record.expires_at, record.absolute_expires_at), record.last_seen)
        await self._io.call(b"SET", keys[0], _encode(record, keys[2]), b"PX", ttl)

    async def touch(self, session_id: str, last_seen: float, expires_at: float) -> None:
        """Record activity and move the key's TTL; a missing session is ignored."""
        keys = self._session_key(session_id)
        if keys is None:
            return
        args: list[bytes | str] = [repr(_num(expires_at)), repr(_num(last_seen)), keys[2]]
        await self._io.eval(_TOUCH, [keys[0]], args)

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
        done = await self._io.eval(
            _UPDATE,
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
        raw = await self._io.eval(
            _DELETE, [keys[0]], [index_head, keys[1], keys[2]], replicas=self._wait
        )
        return None if raw is None else _decode(session_id, raw)

    async def delete_user(self, user_id: str) -> list[str]:
        """Remove every session of ``user_id``; return their ids (none for ``""``: guests)."""
        if not user_id:
            return []
        index, base, slot = self._user_keys(user_id)
        digests = await self._io.eval(_DELETE_USER, [index], [base], replicas=self._wait)
        return [f"{slot}.{digest.hex()}" for digest in digests]

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions, oldest first (drops index entries Redis expired).

        None for ``""``: guests have no index.
        """
        if not user_id:
            return []
        index, base, slot = self._user_keys(user_id)
        flat = await self._io.eval(_LIST, [index], [base])
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
        removed = 0
        # On a cluster the scan visits every master; each index's keys share its slot.
        async for index in self._io.scan(pattern):
            if remaining <= 0:
                break
            base = index[: head + _TAG + 2] + b"s"
            n = int(await self._io.eval(_PRUNE, [index], [base, repr(now), remaining]))
            removed += n
            remaining -= n
        return removed

    # -- login-attempt counters (coatcheck.ratelimit.AttemptCounter) ------------------

    async def reserve_attempt(self, key: str, rule: AttemptRule, now: float) -> float:
        """Count one attempt under ``key`` unless ``rule`` makes it wait: ``0.0`` when
        counted, else the seconds to wait. The check and the count are one script call.
        """
        resets_at = now + rule.window
        ttl = _ttl_ms(resets_at, now) + _INDEX_MARGIN_MS
        args: list[str | int] = [
            repr(now), repr(rule.window), rule.allowed, repr(rule.base_delay),
            repr(rule.max_delay), ttl, repr(resets_at),
        ]  # fmt: skip
        wait = await self._io.eval(_RESERVE, [self._attempt_key(key)], args)
        return float(wait)

    async def release_attempt(self, key: str) -> None:
        """Take one counted attempt back (the count's window and TTL stay): one script."""
        await self._io.eval(_RELEASE, [self._attempt_key(key)], [])

    async def peek_attempts(self, key: str, now: float) -> tuple[int, float]:
        """``(count, resets_at)`` of ``key`` without counting; ``(0, now)`` if none."""
        raw = await self._io.call(b"GET", self._attempt_key(key))
        count, _, resets = (raw or b"").partition(b":")
        try:
            n, resets_at = int(count), float(resets)
        except ValueError:
            return 0, now
        return (n, resets_at) if resets_at > now else (0, now)

    async def clear_attempts(self, key: str) -> None:
        """Forget the attempts counted under ``key``."""
        await self._io.call(b"DEL", self._attempt_key(key))

    def _attempt_key(self, key: str) -> bytes:
        return self._prefix + b"a:" + key.encode()

    # -- one-time values (coatcheck.sessions.ReplayCache) ------------------------------

    async def remember_once(self, key: str, ttl: float, now: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; ``False`` if it is remembered already.

        One ``SET NX PX``: atomic on one server and on a cluster (a single key), and
        Redis forgets it by itself (by its own clock, so ``now`` is not needed).
        """
        key_bytes = self._prefix + b"r:" + key.encode()
        ttl_ms = max(1, math.ceil(ttl * 1000))
        done = await self._io.call(b"SET", key_bytes, b"", b"NX", b"PX", ttl_ms)
        return done is not None  # b"OK" when set, nil when the key was there

    async def close(self) -> None:
        """Close the connections (they open again on the next use)."""
        await self._io.close()

    async def ping(self) -> bool:
        """Whether Redis answers now (on a cluster: every master); never raises."""
        return await self._io.ping()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._io.describe()}, prefix={self._prefix.decode()!r})"
