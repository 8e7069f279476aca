"""One connection to Redis on which the hops' batches are written back to back.

The pipeliner (gateway.pipeliner) gathers the commands of one loop turn into a batch. Sent
through redis-py, every batch took a pooled connection, a task, a ``wait_for`` for the write
(another task), one coroutine chain per reply and a timer: a fixed cost per batch that the
hops in flight share. With 50 subscribers in flight that was a seventh of a browsing hop's
CPU; with 12 (a worker of several, or a quiet hour) it was a fifth, and a worker served a
quarter fewer hops per CPU-second than one kept busy.

A lane is a plain ``asyncio.Protocol`` on one socket, the way ioredis auto-pipelines for Node:
a batch is one ``write``, and the replies, parsed by hiredis as they arrive, settle the
waiting futures in order. Nothing waits for a batch to finish before the next is written.
redis-py still does everything else (pub/sub, the catalog's reads, scripts' registration,
Redis Cluster, TLS): the lane takes its address, credentials, database and timeouts from the
client's pool, and :func:`lane_options` says when it cannot (a TLS or custom connection).

Failures: a connection that drops fails or resends what it carried (each command is sent at
most twice, as the client's own retry policy does); a server silent for the socket timeout
with replies owed fails them all with redis-py's ``TimeoutError`` and closes the lane. The
next batch opens a new one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
from hiredis import pack_command
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Lane", "LaneOptions", "Pending", "fail", "lane_options"]

# (the command, its reply, sent before: a command is sent at most twice)
Pending = tuple[tuple[Any, ...], asyncio.Future[Any], bool]


@dataclass(frozen=True)
class LaneOptions:
    """Where a lane connects and how it introduces itself, from a redis-py client's pool."""

    host: str | None
    port: int
    path: str | None  # a unix socket instead of host and port
    username: str | None
    password: str | None = field(repr=False)  # never in a log line or a traceback's repr
    db: int = 0
    connect_timeout: float | None = None
    timeout: float | None = None  # seconds a server owing replies may stay silent


def lane_options(redis: Redis) -> LaneOptions | None:
    """The lane's options for ``redis``'s server, or None when a lane cannot reach it the way
    the client does (TLS, a credential provider, a connection class of someone else's)."""
    pool = redis.connection_pool
    kind = pool.connection_class
    if issubclass(kind, SSLConnection) or not issubclass(
        kind, Connection | UnixDomainSocketConnection
    ):
        return None
    # What a connection of the pool would use, defaults included (made, never connected).
    probe = kind(**pool.connection_kwargs)
    if probe.credential_provider is not None:
        return None
    unix = isinstance(probe, UnixDomainSocketConnection)
    return LaneOptions(
        host=None if unix else str(getattr(probe, "host", "localhost")),
        port=0 if unix else int(getattr(probe, "port", 6379)),
        path=str(getattr(probe, "path", "")) if unix else None,
        username=probe.username,
        password=probe.password,
        db=int(probe.db or 0),
        connect_timeout=probe.socket_connect_timeout,
        timeout=probe.socket_timeout,
    )


def fail(batch: list[Pending], error: Exception) -> None:
    """Settle every command of ``batch`` still waiting with ``error``."""
    for _, reply, _ in batch:
        if not reply.done():
            reply.set_exception(error)


def _error(message: str) -> Exception:
    """redis-py's exception for an error reply (NOSCRIPT is a NoScriptError, and so on)."""
    error: Exception = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]
    return error


class Lane(asyncio.Protocol):
    """A connected lane: :meth:`send` a batch, its futures settle as the replies arrive."""

    def __init__(self, options: LaneOptions, on_lost: Callable[[Lane, list[Pending]], None]):
        self.options = options
        self.on_lost = on_lost  # told what was in flight when the lane died
        self.transport: asyncio.Transport | None = None
        self.alive = False
        # Error replies as redis-py's exceptions, nested ones in arrays too (as its parser).
        self._reader = hiredis.Reader(replyError=_error)
        self._waiting: deque[Pending] = deque()
        self._heard = 0  # reads from the socket so far: the watchdog's sign of life
        self._watch: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(
        cls, options: LaneOptions, on_lost: Callable[[Lane, list[Pending]], None]
    ) -> Lane:
        """Connect, authenticate and select the database; redis-py's ConnectionError if the
        server cannot be reached."""
        loop = asyncio.get_running_loop()
        lane = cls(options, on_lost)
        try:
            async with asyncio.timeout(options.connect_timeout):
                if options.path is not None:
                    await loop.create_unix_connection(lambda: lane, options.path)
                else:
                    await loop.create_connection(lambda: lane, str(options.host), options.port)
                hello: list[tuple[Any, ...]] = []
                if options.password is not None:
                    auth = (options.username,) if options.username else ()
                    hello.append(("AUTH", *auth, options.password))
                if options.db:
                    hello.append(("SELECT", options.db))
                if hello:
                    greeting = [(command, loop.create_future(), True) for command in hello]
                    lane.send(greeting)
                    await asyncio.gather(*(reply for _, reply, _ in greeting))
        except (OSError, TimeoutError) as error:
            lane.close()
            where = options.path or f"{options.host}:{options.port}"
            raise RedisConnectionError(f"cannot connect to Redis at {where}: {error}") from None
        except BaseException:
            lane.close()
            raise
        return lane

    # --- sending ---------------------------------------------------------------------------

    def send(self, batch: list[Pending]) -> None:
        """Write ``batch`` in one go; each future settles with its command's reply. A command
        hiredis cannot pack (an argument of no wire type: a caller's bug) fails alone."""
        assert self.transport is not None and self.alive
        chunks: list[bytes] = []
        sent: list[Pending] = []
        for pending in batch:
            try:
                chunks.append(pack_command(pending[0]))
            except (TypeError, ValueError) as error:
                if not pending[1].done():
                    pending[1].set_exception(DataError(f"cannot send that command: {error}"))
                continue
            sent.append(pending)
        if not sent:
            return
        self.transport.write(b"".join(chunks))
        if self._watch is None and self.options.timeout:
            self._arm(self._heard)  # one timer a lane, not one a batch
        self._waiting.extend(sent)

    def close(self) -> None:
        """Stop at once: nothing more is written, no reply more is read (a transport told to
        close would first flush what it holds, and a late reply could then meet a command
        written meanwhile). What is owed goes to ``on_lost`` when the socket is gone."""
        self.alive = False
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class
        self.alive = True

    def data_received(self, data: bytes) -> None:
        if not self.alive:
            return  # closed: whatever still arrives answers nothing owed now
        self._heard += 1  # a long reply arriving slowly is alive, not stalled
        reader = self._reader
        waiting = self._waiting
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                if not waiting:  # a reply nobody asked for: the lane is out of step
                    self.close()
                    return
                _, future, _ = waiting.popleft()
                if future.done():
                    continue  # its hop gave up (its deadline)
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except hiredis.ProtocolError:
            # Not Redis's protocol: what is owed may have run, so it fails rather than goes again.
            self._fail_owed(RedisConnectionError("the Redis server's reply could not be read"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self._watch is not None:
            self._watch.cancel()
        pending = list(self._waiting)
        self._waiting.clear()
        self.on_lost(self, pending)

    # --- the watchdog ----------------------------------------------------------------------

    def _arm(self, heard: int) -> None:
        assert self.options.timeout is not None
        self._watch = self._loop.call_later(self.options.timeout, self._check, heard)

    def _check(self, heard: int) -> None:
        """Owed replies and nothing heard for a whole timeout: fail them, drop the lane."""
        self._watch = None
        if not self._waiting or not self.alive:
            return
        if self._heard != heard:
            self._arm(self._heard)  # replies are coming: watch the next stretch
            return
        self._fail_owed(RedisTimeoutError("Timeout reading from Redis"))

    def _fail_owed(self, error: Exception) -> None:
        """Fail every reply owed with ``error`` and drop the lane."""
        pending = list(self._waiting)
        self._waiting.clear()
        fail(pending, error)
        self.close()
