"""The I/O seam of :class:`~coatcheck.stores.redis.RedisStore`: one Redis, a Cluster, or Sentinel.

The store holds the key layout, the Lua scripts and the record mapping once; all it
asks of Redis goes through a :class:`RedisIO`:

* ``get(key)``: the per-request read, one round trip;
* ``call(command, key, *args)``: any one-key command, routed by its key;
* ``eval(script, keys, args, replicas=0)``: a Lua script (``EVALSHA``, ``EVAL`` on
  ``NOSCRIPT``), optionally followed on the same connection by ``WAIT replicas``;
* ``scan(match)``: every matching key, on every master;
* ``ping()``, ``close()``, ``describe()``.

Every method is a coroutine. Over a blocking driver (``sync=True``) none of them ever
suspends, so :func:`coatcheck.sync.run_sync` drives the very same store for WSGI.
Replies are RESP as it comes (bytes, ints, lists, ``None``; a simple ``OK`` is
``b"OK"``). Failures are the store's: :class:`~coatcheck.errors.StoreUnavailable`
when Redis cannot be reached, does not answer, is loading, or is between masters
(``CLUSTERDOWN``, ``TRYAGAIN``, ``READONLY``, ``MASTERDOWN``), and
:class:`~coatcheck.errors.StoreError` when it refuses a command.

Three kinds:

* :class:`NodeIO`: one server (``redis://``) or the master a Sentinel group names
  (``redis+sentinel://``), through a redis-py client; on a plain TCP server the GET
  goes over :class:`~coatcheck.stores._resp.FastGet` instead.
* :class:`ClusterIO` (``redis+cluster://``): a slot table from ``CLUSTER SLOTS`` and
  one connection per master: :class:`~coatcheck.stores._resp.FastGet` under asyncio
  (so the per-request read is a CRC16, a list index and the lean GET, with none of
  redis-py's cluster machinery), a ``redis.Redis`` when blocking. ``MOVED`` updates
  the table and retries; ``ASK`` is followed once (never by a script that reaches
  keys it does not declare, see :class:`Script`); ``TRYAGAIN`` (a slot migrating) is
  tried again after short pauses; a node that cannot be reached
  marks the table stale, so it is read again (at most every 100 ms) until the
  cluster has promoted a replica, and requests recover by themselves.

``WAIT`` (``?wait=N`` on the URL) must run on the connection that wrote, which is
why ``eval`` sends both together.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from binascii import crc_hqx
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from inspect import isawaitable
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from ..errors import ConfigurationError, StoreError, StoreUnavailable
from ._resp import FastGet, ReplyError

__all__ = [
    "ClusterIO", "NodeIO", "RedisIO", "Script", "open_io", "sentinel_master", "subscriber",
]  # fmt: skip

Arg = bytes | str | int | float
_SLOTS = 16384
# Replies that mean "between masters": the request may work in a moment.
_TRANSIENT = ("LOADING", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN")
_REFRESH_EVERY = 0.1  # seconds between two reads of the slot table, at most
# Pauses before trying a command again while its slot is migrating (TRYAGAIN, or an
# ASK a script with undeclared keys must not follow): 0.31 s in all, then 503. Moving
# one slot's keys takes milliseconds; a longer move refuses writes, never half-does them.
_MIGRATING_PAUSES = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16)
# What a script answers when a key it reaches is not on this master (slot migrating).
MOVING = "TRYAGAIN coatcheck: a key of this slot is moving to another master"


class Script:
    """A Lua script and its SHA-1 (what ``EVALSHA`` names it by).

    ``undeclared``: the script also reaches keys it does not pass in ``KEYS`` (keys of
    the same hash tag it finds in an index). On a cluster such a script never follows
    an ``ASK`` redirect: on the importing master, a key that has not moved yet looks
    missing, and the script would take a live session for a gone one. It is tried
    again on the owner instead (see :class:`ClusterIO`).
    """

    __slots__ = ("sha", "source", "undeclared")

    def __init__(self, source: str, *, undeclared: bool = False) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's name
        self.undeclared = undeclared

    def __repr__(self) -> str:
        return f"Script({self.sha[:8]})"


class RedisIO(Protocol):
    """What :class:`~coatcheck.stores.redis.RedisStore` asks of Redis (see the module)."""

    # An attribute, so an implementation may hand out its leanest read itself.
    @property
    def get(self) -> Callable[[bytes], Awaitable[bytes | None]]: ...

    async def call(self, command: bytes, key: bytes, *args: Arg) -> Any: ...

    async def eval(
        self, script: Script, keys: Sequence[bytes], args: Sequence[Arg], *, replicas: int = 0
    ) -> Any: ...

    def scan(self, match: bytes, count: int = 1000) -> AsyncIterator[bytes]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...

    def describe(self) -> str: ...


def _raise_for(reply: Any) -> Any:
    """``reply``, unless it is an error reply: then the store's error for it."""
    if isinstance(reply, ReplyError):
        text = str(reply)
        if text.startswith(_TRANSIENT):
            raise StoreUnavailable("Redis cannot serve the request now") from reply
        raise StoreError("Redis refused a command") from reply
    return reply


# -- links: one connection (or pool) to one server, all methods coroutines ---------------


class _Link(Protocol):
    async def get_raw(self, key: bytes) -> Any: ...

    async def execute(self, *args: Arg, idempotent: bool = False) -> Any: ...

    async def execute_many(
        self, commands: list[tuple[Arg, ...]], *, idempotent: bool = False
    ) -> list[Any]: ...

    async def aclose(self) -> None: ...


def _as_reply(exc: RedisError) -> Any:
    """redis-py's exception for an error reply, as the reply itself; else StoreUnavailable."""
    if isinstance(exc, ResponseError):
        code = getattr(exc, "status_code", None)
        return ReplyError(f"{code} {exc}" if code else str(exc))
    raise StoreUnavailable("Redis cannot be reached") from exc


class _PyLink:
    """A redis-py client, blocking or asyncio, as a link (never suspends when blocking)."""

    __slots__ = ("client",)

    def __init__(self, client: Any) -> None:
        self.client = client

    async def _run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = call(*args, **kwargs)
            if isawaitable(result):
                result = await result
        except RedisError as exc:
            return _as_reply(exc)
        except OSError as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        return result

    async def get_raw(self, key: bytes) -> Any:
        return await self._run(self.client.execute_command, b"GET", key)

    async def execute(self, *args: Arg, idempotent: bool = False) -> Any:
        # The command name as bytes: redis-py then applies no reply callback, so replies
        # are RESP as it came, the same as over the lean connection.
        name = args[0] if isinstance(args[0], bytes) else str(args[0]).encode()
        return await self._run(self.client.execute_command, name, *args[1:])

    async def execute_many(
        self, commands: list[tuple[Arg, ...]], *, idempotent: bool = False
    ) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            name = command[0] if isinstance(command[0], bytes) else str(command[0]).encode()
            pipe.execute_command(name, *command[1:])
        replies = await self._run(pipe.execute, raise_on_error=False)
        if isinstance(replies, ReplyError):
            return [replies] * len(commands)
        out = []
        for reply in replies:
            if isinstance(reply, RedisError):
                reply = _as_reply(reply)
            out.append(reply)
        return out

    async def aclose(self) -> None:
        client = self.client
        try:
            if isinstance(client, aioredis.Redis):
                await client.aclose()
                await client.connection_pool.disconnect()
            else:
                client.close()
        except (RedisError, OSError):
            pass  # the connections are gone either way


class _LeanLink:
    """:class:`~coatcheck.stores._resp.FastGet` as a link (asyncio only)."""

    __slots__ = ("fast", "get_raw")

    def __init__(self, fast: FastGet) -> None:
        self.fast = fast
        self.get_raw = fast.get_raw

    async def execute(self, *args: Arg, idempotent: bool = False) -> Any:
        return await self.fast.execute(*args, idempotent=idempotent)

    async def execute_many(
        self, commands: list[tuple[Arg, ...]], *, idempotent: bool = False
    ) -> list[Any]:
        return await self.fast.execute_many(commands, idempotent=idempotent)

    async def aclose(self) -> None:
        self.fast.close()


async def _eval(
    link: _Link, script: Script, keys: Sequence[bytes], args: Sequence[Arg], replicas: int,
    wait_ms: int,
) -> Any:  # fmt: skip
    """Run ``script`` on ``link`` (and WAIT for ``replicas``); the reply, maybe an error."""
    command: tuple[Arg, ...] = (b"EVALSHA", script.sha, len(keys), *keys, *args)
    reply, acked = await _eval_once(link, command, replicas, wait_ms)
    if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
        # Not run: send the source, which also caches it for the next EVALSHA.
        command = (b"EVAL", script.source, len(keys), *keys, *args)
        reply, acked = await _eval_once(link, command, replicas, wait_ms)
    if replicas and not isinstance(reply, ReplyError) and (
        not isinstance(acked, int) or acked < replicas
    ):
        raise StoreUnavailable(
            f"the write reached {acked} of the {replicas} Redis replicas asked for in time"
        )
    return reply


async def _eval_once(
    link: _Link, command: tuple[Arg, ...], replicas: int, wait_ms: int
) -> tuple[Any, Any]:
    if not replicas:
        return await link.execute(*command), None
    reply, acked = await link.execute_many([command, (b"WAIT", replicas, wait_ms)])
    return reply, acked


async def _scan(link: _Link, match: bytes, count: int) -> AsyncIterator[bytes]:
    cursor: Arg = b"0"
    while True:
        reply = _raise_for(
            await link.execute(b"SCAN", cursor, b"MATCH", match, b"COUNT", count, idempotent=True)
        )
        cursor, keys = reply[0], reply[1]
        for key in keys:
            yield key
        if cursor in (b"0", 0):
            return


def _pong(reply: Any) -> bool:
    return reply is True or reply == b"PONG"


# -- one server, or the master of a Sentinel group ---------------------------------------


class NodeIO:
    """One Redis server through a redis-py client (blocking or asyncio).

    ``fast`` is the lean per-request GET (asyncio, plain TCP only). ``where`` is what
    :meth:`describe` says (never a password).
    """

    __slots__ = ("_fast", "_link", "_wait_ms", "_where", "client", "get")

    def __init__(
        self, client: Any, *, fast: FastGet | None = None, where: str = "", wait_ms: int = 100
    ) -> None:
        self.client = client
        self._link = _PyLink(client)
        self._fast = fast
        self._wait_ms = wait_ms
        self._where = where or _describe_client(client)
        # The per-request read: the lean GET itself when there is one (no extra frame).
        self.get: Callable[[bytes], Awaitable[bytes | None]] = (
            fast.get if fast is not None else self._get
        )

    async def _get(self, key: bytes) -> bytes | None:
        reply: bytes | None = _raise_for(await self._link.get_raw(key))
        return reply

    async def call(self, command: bytes, key: bytes, *args: Arg) -> Any:
        return _raise_for(await self._link.execute(command, key, *args))

    async def eval(
        self, script: Script, keys: Sequence[bytes], args: Sequence[Arg], *, replicas: int = 0
    ) -> Any:
        return _raise_for(await _eval(self._link, script, keys, args, replicas, self._wait_ms))

    def scan(self, match: bytes, count: int = 1000) -> AsyncIterator[bytes]:
        return _scan(self._link, match, count)

    async def ping(self) -> bool:
        try:
            return _pong(await self._link.execute(b"PING", idempotent=True))
        except StoreUnavailable:
            return False

    async def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        await self._link.aclose()

    def describe(self) -> str:
        return self._where


def _describe_client(client: Any) -> str:
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


# -- a Redis Cluster ----------------------------------------------------------------------


def _slot(key: bytes) -> int:
    # The cluster's key slot (Redis Cluster spec): CRC16 of the hash tag, mod 16384.
    start = key.find(b"{")
    if start > -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) % _SLOTS


class ClusterIO:
    """A Redis Cluster: a slot table and one link per master (see the module docstring).

    ``seeds`` are ``(host, port)`` pairs to read the table from; ``link_for(host,
    port)`` makes the link to one node (a lean asyncio one, or a blocking redis-py one);
    ``pause(seconds)`` waits before a command is tried again on a migrating slot
    (``asyncio.sleep``, or a blocking sleep under a blocking driver).
    """

    __slots__ = (
        "_link_for",
        "_links",
        "_lock",
        "_next_refresh",
        "_pause",
        "_seeds",
        "_slots",
        "_stale",
        "_wait_ms",
    )

    def __init__(
        self,
        seeds: Sequence[tuple[str, int]],
        link_for: Callable[[str, int], _Link],
        *,
        wait_ms: int = 100,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not seeds:
            raise ConfigurationError("a Redis Cluster needs at least one host:port")
        self._seeds = list(seeds)
        self._link_for = link_for
        self._links: dict[tuple[str, int], _Link] = {}
        self._slots: list[_Link | None] = [None] * _SLOTS
        self._stale = True
        self._next_refresh = 0.0
        self._wait_ms = wait_ms
        self._pause = pause
        self._lock = threading.Lock()  # threads of a WSGI server share the table

    def _link(self, host: str, port: int) -> _Link:
        link = self._links.get((host, port))
        if link is None:
            with self._lock:
                link = self._links.get((host, port))
                if link is None:
                    link = self._links[(host, port)] = self._link_for(host, port)
        return link

    async def _refresh(self) -> None:
        """Read the slot table from the first node that answers."""
        now = time.monotonic()
        if now < self._next_refresh and any(self._slots):
            return  # read a moment ago: use it (a failover takes longer than this)
        self._next_refresh = now + _REFRESH_EVERY
        known = [address for address in self._links if address not in self._seeds]
        for host, port in [*self._seeds, *known]:
            try:
                reply = await self._link(host, port).execute(
                    b"CLUSTER", b"SLOTS", idempotent=True
                )
            except StoreUnavailable:
                continue
            if isinstance(reply, ReplyError) or not reply:
                continue
            slots: list[_Link | None] = [None] * _SLOTS
            for entry in reply:
                start, end, master = int(entry[0]), int(entry[1]), entry[2]
                where = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
                link = self._link(where or host, int(master[1]))
                slots[start : end + 1] = [link] * (end - start + 1)
            self._slots = slots
            # A table with holes (a master just failed) is read again on the next call.
            self._stale = None in slots
            return
        raise StoreUnavailable("no Redis Cluster node can be reached")

    async def _route(self, key: bytes) -> tuple[int, _Link]:
        slot = _slot(key)
        if self._stale:
            await self._refresh()
        link = self._slots[slot]
        if link is None:
            self._stale = True
            raise StoreUnavailable("no Redis Cluster master serves this key now")
        return slot, link

    async def _send(
        self,
        key: bytes,
        commands: list[tuple[Arg, ...]],
        idempotent: bool,
        *,
        follow_ask: bool = True,
    ) -> list[Any]:
        """``commands`` on the node that owns ``key``, following redirects; while the
        slot migrates (``TRYAGAIN``; an ``ASK`` when not ``follow_ask``) tried again
        after short pauses, then the ``TRYAGAIN`` reply."""
        pauses = iter(_MIGRATING_PAUSES)
        for _ in range(len(_MIGRATING_PAUSES) + 1):
            replies = await self._redirected(key, commands, idempotent, follow_ask)
            first = replies[0]
            if not (isinstance(first, ReplyError) and str(first).startswith("TRYAGAIN")):
                return replies
            delay = next(pauses, None)
            if delay is None:
                break
            await self._pause(delay)
        return replies

    async def _redirected(
        self, key: bytes, commands: list[tuple[Arg, ...]], idempotent: bool, follow_ask: bool
    ) -> list[Any]:
        slot, link = await self._route(key)
        asking = False
        for _ in range(4):
            batch = [(b"ASKING",), *commands] if asking else commands
            try:
                if len(batch) == 1:
                    replies = [await link.execute(*batch[0], idempotent=idempotent)]
                else:
                    replies = await link.execute_many(batch, idempotent=idempotent)
            except StoreUnavailable:
                self._stale = True  # the node may be gone: learn who took over
                raise
            if asking:
                replies = replies[1:]
            first = replies[0]
            if not isinstance(first, ReplyError):
                return replies
            kind, _, rest = str(first).partition(" ")
            if kind not in ("MOVED", "ASK"):
                if kind in ("CLUSTERDOWN", "TRYAGAIN"):
                    self._stale = True
                return replies
            if kind == "ASK" and not follow_ask:
                return [ReplyError(MOVING)] * len(commands)
            # Not run: the slot lives elsewhere (for good: MOVED; mid-migration: ASK).
            where = rest.split()[-1]
            host, _, port = where.rpartition(":")
            target = self._link(host or "127.0.0.1", int(port))
            if kind == "MOVED":
                self._slots[slot] = target
                self._stale = True
                asking = False
            else:
                asking = True
            link = target
        raise StoreUnavailable("the Redis Cluster keeps redirecting this key")

    async def get(self, key: bytes) -> bytes | None:
        if not self._stale:
            link = self._slots[_slot(key)]
            if link is not None:
                try:
                    reply = await link.get_raw(key)
                except StoreUnavailable:
                    self._stale = True
                    raise
                if not isinstance(reply, ReplyError):
                    return reply  # type: ignore[no-any-return]
        replies = await self._send(key, [(b"GET", key)], True)
        value: bytes | None = _raise_for(replies[0])
        return value

    async def call(self, command: bytes, key: bytes, *args: Arg) -> Any:
        return _raise_for((await self._send(key, [(command, key, *args)], False))[0])

    async def eval(
        self, script: Script, keys: Sequence[bytes], args: Sequence[Arg], *, replicas: int = 0
    ) -> Any:
        # Every key of a script shares one hash tag (Redis refuses CROSSSLOT otherwise).
        key, follow = keys[0], not script.undeclared
        command: tuple[Arg, ...] = (b"EVALSHA", script.sha, len(keys), *keys, *args)
        reply, acked = await self._eval_on(key, command, replicas, follow)
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            command = (b"EVAL", script.source, len(keys), *keys, *args)
            reply, acked = await self._eval_on(key, command, replicas, follow)
        reply = _raise_for(reply)
        if replicas and (not isinstance(acked, int) or acked < replicas):
            raise StoreUnavailable(
                f"the write reached {acked} of the {replicas} Redis replicas asked for in time"
            )
        return reply

    async def _eval_on(
        self, key: bytes, command: tuple[Arg, ...], replicas: int, follow_ask: bool
    ) -> tuple[Any, Any]:
        if not replicas:
            return (await self._send(key, [command], False, follow_ask=follow_ask))[0], None
        batch = [command, (b"WAIT", replicas, self._wait_ms)]
        replies = await self._send(key, batch, False, follow_ask=follow_ask)
        return replies[0], replies[1]

    async def _masters(self) -> list[_Link]:
        if self._stale:
            await self._refresh()
        seen: dict[int, _Link] = {}
        for link in self._slots:
            if link is not None:
                seen.setdefault(id(link), link)
        return list(seen.values())

    async def scan(self, match: bytes, count: int = 1000) -> AsyncIterator[bytes]:
        for link in await self._masters():
            try:
                async for key in _scan(link, match, count):
                    yield key
            except StoreUnavailable:
                self._stale = True
                raise

    async def ping(self) -> bool:
        """Whether every master answers (every slot is served)."""
        try:
            masters = await self._masters()
            if self._stale:
                return False
            for link in masters:
                if not _pong(await link.execute(b"PING", idempotent=True)):
                    return False
        except StoreUnavailable:
            self._stale = True
            return False
        return bool(masters)

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        self._slots = [None] * _SLOTS
        self._stale = True
        for link in links:
            await link.aclose()

    def describe(self) -> str:
        return "cluster " + ",".join(f"{h}:{p}" for h, p in self._seeds)


# -- URLs ----------------------------------------------------------------------------------

_URL_HELP = (
    "a Redis store URL looks like redis://host:port/db, "
    "redis+cluster://host:port[,host:port...]/ or "
    "redis+sentinel://host:port[,host:port...]/service_name/db"
)


def _hosts(netloc: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """``(username, password, [(host, port), ...])`` of a multi-host netloc."""
    auth, _, hostlist = netloc.rpartition("@")
    user, _, password = auth.partition(":")
    hosts = []
    for item in hostlist.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
            raise ConfigurationError(f"{_URL_HELP} (each host with its port)")
        hosts.append((host.strip("[]"), int(port)))
    return (unquote(user) or None, unquote(password) or None, hosts)


def _int_option(options: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = options.pop(name, None)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigurationError(f"the Redis store URL option {name} is {low} to {high}")
    return int(raw)


def open_io(
    url: str, *, sync: bool, prefix: str | None, connect_timeout: float, timeout: float
) -> tuple[RedisIO, str, int]:
    """The I/O for a Redis store URL: ``(io, prefix, replicas to WAIT for)``.

    ``redis://``/``rediss://`` (one server), ``redis+cluster://`` and
    ``redis+sentinel://``; options ``prefix``, ``wait`` (replicas a session creation
    or deletion waits for, 0 by default) and ``wait_timeout`` (milliseconds, 100).
    Raises ConfigurationError for a malformed URL or an unknown cluster/sentinel option.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(query)
    chosen = prefix if prefix is not None else options.pop("prefix", "cc:")
    options.pop("prefix", None)
    replicas = _int_option(options, "wait", 0, 0, 16)
    wait_ms = _int_option(options, "wait_timeout", 100, 1, 60_000)
    retry = _retry(sync)
    common: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "decode_responses": False,
    }
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss"):
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        db = parts.path.lstrip("/")
        if not parts.hostname or not port_ok or not (db == "" or db.isdigit()):
            raise ConfigurationError(_URL_HELP)
        rest = urlencode([(k, v) for k, v in query if k not in ("prefix", "wait", "wait_timeout")])
        cls: Any = redis.Redis if sync else aioredis.Redis
        # A burst beyond the pool waits (up to the timeout) for a connection instead of
        # failing at once: redis-py's asyncio pool refuses a 101st concurrent command.
        pool_class: Any = (
            redis.BlockingConnectionPool if sync else aioredis.BlockingConnectionPool
        )
        try:
            pool = pool_class.from_url(
                urlunsplit(parts._replace(query=rest)), max_connections=64, timeout=timeout,
                retry=retry, health_check_interval=30, **common,
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ConfigurationError("the Redis store URL is malformed") from exc
        client = cls(connection_pool=pool)
        fast = None if sync else _fast_get(client)
        where = f"{parts.hostname}:{parts.port or 6379}/{db or 0}"
        return NodeIO(client, fast=fast, where=where, wait_ms=wait_ms), chosen, replicas
    if scheme == "redis+cluster":
        if parts.path.strip("/"):
            raise ConfigurationError("a Redis Cluster URL has no database: redis+cluster://h:p/")
        if options:
            raise ConfigurationError(f"unknown Redis Cluster URL options: {sorted(options)}")
        user, password, seeds = _hosts(parts.netloc)
        return (
            ClusterIO(
                seeds, _node_links(sync, user, password, connect_timeout, timeout, common),
                wait_ms=wait_ms, pause=_blocking_pause if sync else asyncio.sleep,
            ),
            chosen,
            replicas,
        )  # fmt: skip
    if scheme == "redis+sentinel":
        path = [p for p in parts.path.split("/") if p]
        if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ConfigurationError(_URL_HELP)
        service, db_number = path[0], int(path[1]) if len(path) == 2 else 0
        sentinel_password = options.pop("sentinel_password", None)
        if options:
            raise ConfigurationError(f"unknown Redis Sentinel URL options: {sorted(options)}")
        user, password, hosts = _hosts(parts.netloc)
        client = sentinel_master(
            hosts, service, db=db_number, sync=sync, username=user, password=password,
            sentinel_password=sentinel_password, connect_timeout=connect_timeout,
            timeout=timeout,
        )  # fmt: skip
        where = "sentinel " + ",".join(f"{h}:{p}" for h, p in hosts) + f"/{service}/{db_number}"
        fast = None
        if not sync:
            # The lean GET too, connected to whichever server the sentinels name master.
            sentinels = client.connection_pool.sentinel_manager

            async def locate() -> tuple[str, int]:
                try:
                    host, port = await sentinels.discover_master(service)
                except RedisError as exc:
                    raise StoreUnavailable("no sentinel names a master") from exc
                return str(host), int(port)

            fast = FastGet(
                "", 0, db=db_number, username=user, password=password,
                connect_timeout=connect_timeout, timeout=timeout, locate=locate,
            )  # fmt: skip
        return NodeIO(client, fast=fast, where=where, wait_ms=wait_ms), chosen, replicas
    raise ConfigurationError(_URL_HELP)


async def subscriber(url: str, io: RedisIO, key: bytes) -> Any:
    """An asyncio client for pub/sub on the server ``io`` writes ``key`` to.

    One server: that server; Sentinel: the master the sentinels name now; a cluster:
    the master that owns ``key``'s slot (sharded pub/sub lives there). The client
    has no read timeout and never reconnects by itself: a subscriber that lost its
    connection may have missed messages, so the caller must see the failure.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    quiet: dict[str, Any] = {
        "socket_connect_timeout": 2, "socket_timeout": None, "retry": Retry(NoBackoff(), 0),
    }  # fmt: skip
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "redis+cluster" and isinstance(io, ClusterIO):
        _, link = await io._route(key)
        host, port = link.fast.address  # type: ignore[attr-defined]
        user, password, _ = _hosts(parts.netloc)
        return aioredis.Redis(host=host, port=port, username=user, password=password, **quiet)
    if scheme == "redis+sentinel":
        user, password, hosts = _hosts(parts.netloc)
        path = [p for p in parts.path.split("/") if p]
        options = dict(parse_qsl(parts.query))
        return sentinel_master(
            hosts, path[0], db=int(path[1]) if len(path) == 2 else 0, sync=False,
            username=user, password=password,
            sentinel_password=options.get("sentinel_password"), timeout=None, retry=False,
        )  # fmt: skip
    mine = ("prefix", "wait", "wait_timeout")
    rest = [(k, v) for k, v in parse_qsl(parts.query) if k not in mine]
    return aioredis.Redis.from_url(urlunsplit(parts._replace(query=urlencode(rest))), **quiet)


def sentinel_master(
    hosts: list[tuple[str, int]],
    service: str,
    *,
    db: int,
    sync: bool,
    username: str | None = None,
    password: str | None = None,
    sentinel_password: str | None = None,
    connect_timeout: float = 1.0,
    timeout: float | None = 2.0,
    retry: bool = True,
) -> Any:
    """A redis-py client for the master the sentinels name (asked again on failure)."""
    if sync:
        from redis.sentinel import Sentinel as SyncSentinel

        sentinel: Any = SyncSentinel(  # type: ignore[no-untyped-call]
            hosts, socket_connect_timeout=connect_timeout, socket_timeout=timeout or 2.0,
            password=sentinel_password,
        )  # fmt: skip
    else:
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            hosts, socket_connect_timeout=connect_timeout, socket_timeout=timeout or 2.0,
            password=sentinel_password,
        )  # fmt: skip
    if retry:
        again = _retry(sync)
    else:
        from redis.asyncio.retry import Retry as AsyncRetry
        from redis.backoff import NoBackoff
        from redis.retry import Retry as SyncRetry

        again = (SyncRetry if sync else AsyncRetry)(NoBackoff(), 0)
    # redis-py's asyncio pools refuse a command past max_connections (100 by default)
    # rather than wait; a Sentinel pool cannot be a blocking one, so it gets room.
    return sentinel.master_for(
        service, db=db, username=username, password=password,
        socket_connect_timeout=connect_timeout, socket_timeout=timeout,
        retry=again, decode_responses=False, max_connections=1024,
    )  # fmt: skip


def _retry(sync: bool) -> Any:
    # Only connection errors are retried, once: a timed-out write may have landed,
    # and replaying a compare-and-set could apply a change twice.
    if sync:
        from redis.retry import Retry
    else:
        from redis.asyncio.retry import Retry  # type: ignore[assignment]
    return Retry(ExponentialBackoff(cap=0.25, base=0.05), 1, (RedisConnectionError,))


async def _blocking_pause(seconds: float) -> None:
    # Under a blocking driver nothing may suspend (coatcheck.sync.run_sync).
    time.sleep(seconds)


def _node_links(
    sync: bool,
    username: str | None,
    password: str | None,
    connect_timeout: float,
    timeout: float,
    common: dict[str, Any],
) -> Callable[[str, int], _Link]:
    def lean(host: str, port: int) -> _Link:
        fast = FastGet(
            host, port, username=username, password=password,
            connect_timeout=connect_timeout, timeout=timeout,
        )  # fmt: skip
        return _LeanLink(fast)

    def blocking(host: str, port: int) -> _Link:
        client = redis.Redis(
            host=host, port=port, username=username, password=password, retry=_retry(True),
            **common,
        )  # fmt: skip
        return _PyLink(client)

    return blocking if sync else lean


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
    if not set(kwargs) <= _FAST_OPTIONS or kwargs.get("decode_responses"):
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
