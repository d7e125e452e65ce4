"""A lean Redis connection for the per-request path: one pipelined connection, hiredis.

redis-py spends about 30 µs of client CPU on one asyncio ``GET`` here (a pool
checkout, retry and observability wrappers, response callbacks) where the socket
work itself is under 10 µs; on a session lookup per request that is most of the
cost. :class:`FastGet` keeps one connection per event loop, writes ``GET`` commands
on it without waiting for earlier replies (RESP answers in order, so a FIFO of
futures matches them), and parses with hiredis. On a single server everything else
in :class:`~coatcheck.stores.RedisStore` (scripts, listings) stays on redis-py; on a
Redis Cluster every command goes over one :class:`FastGet` per node
(:mod:`coatcheck.stores._redis_io`), which is why it also sends any command
(:meth:`FastGet.execute`) and several on one connection (:meth:`FastGet.execute_many`,
so a ``WAIT`` follows the write it waits for).

Failure behaviour matches the store's redis-py client: a connection that fails or
drops fails every request waiting on it with
:class:`~coatcheck.errors.StoreUnavailable`, and the next request connects again;
a request whose connection dropped is retried once on a new connection (``GET``
is idempotent); a request that sees no reply within ``timeout`` fails, and the
connection is closed, since the replies still owed on it can no longer be matched.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis

from ..errors import StoreError, StoreUnavailable

__all__ = ["FastGet", "ReplyError", "pack_command"]

ReplyError = hiredis.ReplyError


def pack_command(*parts: bytes | str | int | float) -> bytes:
    """One RESP array of bulk strings (the form Redis reads commands in)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if not isinstance(part, bytes):
            part = (part if isinstance(part, str) else repr(part)).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(part), part))
    return b"".join(out)


class _Lost(Exception):
    """The connection went away before the reply came.

    ``sent`` is False when the request never left (the connection was already gone):
    then even a write may be sent again.
    """

    def __init__(self, sent: bool = True) -> None:
        super().__init__()
        self.sent = sent


class _Protocol(asyncio.Protocol):
    __slots__ = ("_loop", "_reader", "_transport", "_waiters", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self.closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader, waiters = self._reader, self._waiters
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError:
                self._fail(StoreUnavailable("Redis sent a reply that cannot be parsed"))
                return
            if reply is False:
                return
            if not waiters:
                self._fail(StoreUnavailable("Redis sent a reply nobody asked for"))
                return
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled request still owns its reply
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_waiters(_Lost())

    def _fail_waiters(self, exc: Exception) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def _fail(self, exc: Exception) -> None:
        # Replies can no longer be matched to requests: drop the connection.
        self.closed = True
        self._fail_waiters(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        transport, self._transport = self._transport, None
        if transport is not None:
            # The loop it belongs to may be closed already (tests, forks): nothing to do.
            with contextlib.suppress(RuntimeError):
                transport.abort()

    async def request(self, payload: bytes, timeout: float | None, replies: int = 1) -> Any:
        """The reply to ``payload``; a list of ``replies`` replies when it holds several."""
        transport = self._transport
        if self.closed or transport is None:
            raise _Lost(sent=False)
        waiter = self._loop.create_future()
        if replies == 1:
            self._waiters.append(waiter)
        else:
            # The replies of a batch are collected in order, then handed over at once.
            batch = _Batch(waiter, replies)
            self._waiters.extend([batch] * replies)  # type: ignore[list-item]
        transport.write(payload)
        if timeout is None:
            return await waiter
        timer = self._loop.call_later(timeout, self._timed_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _timed_out(self, waiter: asyncio.Future[Any]) -> None:
        if not waiter.done():
            self._fail(StoreUnavailable("Redis did not answer in time"))


class _Batch:
    """Stands in the waiter queue once per command of a pipelined batch."""

    __slots__ = ("_replies", "_target", "_total")

    def __init__(self, target: asyncio.Future[Any], total: int) -> None:
        self._target, self._total = target, total
        self._replies: list[Any] = []

    def done(self) -> bool:
        return self._target.done()

    def set_result(self, value: Any) -> None:
        self._replies.append(value)
        if len(self._replies) == self._total:
            self._target.set_result(self._replies)

    def set_exception(self, exc: BaseException) -> None:
        if not self._target.done():
            self._target.set_exception(exc)


def _check(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        if str(reply).startswith("LOADING"):
            raise StoreUnavailable("Redis is loading its data set")
        raise StoreError("Redis refused a read")
    return reply


class FastGet:
    """``GET`` over one pipelined connection per event loop (see the module docstring).

    ``host``/``port``/``db``/``username``/``password`` as for redis-py; timeouts in
    seconds (``None``: wait forever). ``locate``, when given, is asked for the
    ``(host, port)`` before each new connection (a Sentinel group's current master);
    the server must then say it is a master (``ROLE``), or the connection fails.
    :meth:`get` raises StoreUnavailable when Redis cannot be reached or does not
    answer in time, StoreError when it refuses.
    """

    __slots__ = (
        "_connect_timeout",
        "_connecting",
        "_handshake",
        "_host",
        "_locate",
        "_port",
        "_protocols",
        "_timeout",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        locate: Callable[[], Awaitable[tuple[str, int]]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._locate = locate
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        handshake = []
        if password is not None:
            auth = [b"AUTH"] + ([username.encode()] if username else []) + [password.encode()]
            handshake.append(pack_command(*auth))
        if db:
            handshake.append(pack_command(b"SELECT", str(int(db)).encode()))
        self._handshake = handshake
        # Keyed by event loop: a connection belongs to the loop that made it, and a
        # second loop (another thread) must never touch the first one's transport.
        self._protocols: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Protocol] = (
            weakref.WeakKeyDictionary()
        )
        self._connecting: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[_Protocol]
        ] = weakref.WeakKeyDictionary()

    async def get(self, key: bytes) -> bytes | None:
        """The value at ``key`` or ``None``. Raises StoreUnavailable / StoreError."""
        # get_raw's body, inline: this is the per-request read on a single server.
        payload = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key)
        protocol = self._protocols.get(asyncio.get_running_loop())
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        try:
            reply = await protocol.request(payload, self._timeout)
        except _Lost:
            reply = await self._again(payload, 1)
        return _check(reply)  # type: ignore[no-any-return]

    async def get_raw(self, key: bytes) -> Any:
        """``GET key``'s reply as it came: a value, ``None`` or a :data:`ReplyError`.

        Raises StoreUnavailable when Redis cannot be reached or does not answer in time.
        """
        payload = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key)
        protocol = self._protocols.get(asyncio.get_running_loop())
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        try:
            return await protocol.request(payload, self._timeout)
        except _Lost:
            # Dropped under us (a Redis restart, an idle connection cut): once more.
            return await self._again(payload, 1)

    async def execute(self, *args: bytes | str | int | float, idempotent: bool = False) -> Any:
        """One command's reply as it came (a :data:`ReplyError` is returned, not raised).

        A command that was sent on a connection that then dropped is sent again only
        when ``idempotent``; one that never left is always sent again. Raises
        StoreUnavailable when Redis cannot be reached or does not answer in time.
        """
        return await self._request(pack_command(*args), 1, idempotent)

    async def execute_many(
        self, commands: list[tuple[bytes | str | int | float, ...]], *, idempotent: bool = False
    ) -> list[Any]:
        """Several commands written at once on one connection; their replies, in order.

        Being on one connection is what makes ``WAIT`` after a write wait for that write.
        """
        payload = b"".join(pack_command(*command) for command in commands)
        replies: list[Any] = await self._request(payload, len(commands), idempotent)
        return replies

    async def _request(self, payload: bytes, replies: int, idempotent: bool) -> Any:
        protocol = self._protocols.get(asyncio.get_running_loop())
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        try:
            return await protocol.request(payload, self._timeout, replies)
        except _Lost as exc:
            if exc.sent and not idempotent:
                raise StoreUnavailable("the connection to Redis dropped") from exc
            return await self._again(payload, replies)

    async def _again(self, payload: bytes, replies: int) -> Any:
        protocol = await self._connect()
        try:
            return await protocol.request(payload, self._timeout, replies)
        except _Lost as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` this connects to."""
        return self._host, self._port

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        protocol = self._protocols.get(loop)
        if protocol is not None and not protocol.closed:
            return protocol  # another request connected while this one waited
        pending = self._connecting.get(loop)
        if pending is None or pending.done():
            pending = self._connecting[loop] = loop.create_task(self._open(loop))
        # Shielded: one request giving up must not cancel the connection others await.
        return await asyncio.shield(pending)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        old = self._protocols.pop(loop, None)
        if old is not None:
            old.close()  # same loop: safe
        if self._locate is not None:
            # Sentinel: whoever is master now (a failover closes our old connection).
            self._host, self._port = await self._locate()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(loop), self._host, self._port),
                self._connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            raise StoreUnavailable("Redis cannot be reached") from exc
        try:
            for command in self._handshake:
                reply = await protocol.request(command, self._timeout)
                if isinstance(reply, hiredis.ReplyError):
                    raise StoreUnavailable("Redis refused the connection (AUTH or SELECT)")
            if self._locate is not None:
                role = await protocol.request(b"*1\r\n$4\r\nROLE\r\n", self._timeout)
                if not isinstance(role, list) or not role or role[0] != b"master":
                    raise StoreUnavailable("the server the sentinels named is not a master")
        except _Lost as exc:
            protocol.close()
            raise StoreUnavailable("Redis cannot be reached") from exc
        except BaseException:
            protocol.close()
            raise
        self._protocols[loop] = protocol
        return protocol

    def close(self) -> None:
        """Close the connections (the next :meth:`get` opens a new one)."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, protocol in list(self._protocols.items()):
            if loop is current or loop.is_closed():
                protocol.close()
            else:  # another thread's loop: close it there
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(protocol.close)
        self._protocols.clear()
        for loop, pending in list(self._connecting.items()):
            if not pending.done() and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(pending.cancel)
        self._connecting.clear()
