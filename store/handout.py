"""PostgreSQL connections handed out for one statement each: the hot path's reads and an
order's one call.

asyncpg's own pool does more than these calls need, on every call: its release is shielded in
a task of its own, its acquire goes through a queue and a holder, and it checks for
transactions the calls never open. Measured on this project's machine (2 cores), client CPU per
``SELECT 1``: 77 us through ``Pool.fetchrow``, 16-28 us on a bare connection; an order's
``okryu_place_order`` call, 102-109 us against 44. Here a statement takes an idle connection,
runs, and gives it back: no task, no queue, no reset (each call is a single statement that
leaves no session state: no SET, LISTEN, advisory lock or open transaction).

An error the server answered (a unique key, a raised exception) leaves the connection ready
for the next statement: it is given back. A call cancelled while its statement ran (its hop's
deadline) leaves asyncpg asking the server to cancel it: the connection is lent again only
once that is done and a ``SELECT 1`` has come back on it, which happens in the background (a
connection terminated at once would leave the statement running on the server, its backend
holding a connection slot, while a new one is opened). A connection lost, or one that does
not settle within ``SETTLE`` seconds, is closed and never lent again; the next call beyond
those open opens another. A connection idle for ``IDLE_LIFETIME`` is closed as asyncpg's
pool closes one (a firewall or NAT between may have forgotten it).

A statement whose connection turns out to have been ended by the server while idle runs once
more on a new one. It may in principle have run (a backend ended between its commit and its
answer): every statement lent here is a read or the order's call, idempotent on its key.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

SETTLE = 5.0  # seconds a cancelled statement's connection has to come back ready
IDLE_LIFETIME = 300.0  # seconds idle before a connection is closed (asyncpg's pool's default)
# The server answered; the connection is ready for the next statement. These are not: the
# connection itself failed, or the server is going away.
# A connection the server ended while it sat idle, found out only by the statement lent it.
_STALE = (asyncpg.exceptions.InternalClientError, asyncpg.ConnectionDoesNotExistError)
_CONNECTION_GONE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


def _closed() -> asyncpg.InterfaceError:
    """What a call after :meth:`Connections.close` raises: as asyncpg's pool says it, an
    interface error (the edge answers it as the database out of reach)."""
    return asyncpg.InterfaceError("the connection hand-out is closed")


class Connections:
    """At most ``size`` connections made by ``connect``, each lent to one statement at a time;
    callers beyond them wait their turn, first come first served."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int) -> None:
        if size < 1:
            raise ValueError("a hand-out needs room for at least one connection")
        self._connect = connect
        self._size = size
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # with when each went idle
        self._open = 0  # idle, lent, settling, or being opened
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._background: set[asyncio.Task[None]] = set()  # settling or saying goodbye
        self._closed = False

    @property
    def open(self) -> int:
        """Connections open or being opened (idle, lent, or settling after a cancel)."""
        return self._open

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection."""
        return sum(not waiter.done() for waiter in self._waiters)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        found: list[asyncpg.Record] = await self._run(False, sql, args)
        return found

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        found: asyncpg.Record | None = await self._run(True, sql, args)
        return found

    async def settled(self) -> None:
        """Until the connections settling after a cancel (or closing) are done with."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def close(self) -> None:
        """Close the idle connections now, and those settling; those lent close as they come
        back. Later calls raise asyncpg's ``InterfaceError``, and so do the callers still
        waiting."""
        self._closed = True
        idle = [connection for connection, _ in self._idle]
        self._idle = []
        self._open -= len(idle)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_closed())
        for task in self._background:
            task.cancel()
        try:
            await asyncio.gather(
                *(_goodbye(connection) for connection in idle),
                *self._background,
                return_exceptions=True,
            )
        finally:
            for connection in idle:  # close() itself cancelled: no goodbye for the rest
                if not connection.is_closed():
                    connection.terminate()

    async def _run(self, one: bool, sql: str, args: tuple[Any, ...]) -> Any:
        for attempt in range(2):
            connection = self._idle_one() or await self._take()
            try:
                if one:
                    found = await connection.fetchrow(sql, *args)
                else:
                    found = await connection.fetch(sql, *args)
            except _STALE as error:
                if attempt or type(error) not in _STALE:
                    # InternalClientError's subclasses (an outdated schema cache, a protocol
                    # error) come after the server ran the statement: never sent again.
                    self._after_failure(connection, error)
                    raise
                # The server ended the connection while it was idle (a restart, an
                # administrator), the ending read but the close not yet (asyncpg refuses
                # before it writes) or not read at all (the backend was gone before it read
                # the statement). The others idle then heard the same: all are let go, and
                # the statement runs once more, on a connection opened for it.
                self._drop(connection)
                self._drop_idle()
                continue
            except BaseException as error:
                self._after_failure(connection, error)
                raise
            self._give_back(connection)
            return found
        raise AssertionError("unreachable")

    # --- lending --------------------------------------------------------------------------

    def _idle_one(self) -> asyncpg.Connection | None:
        """An idle connection still open and not idle too long (one the server ended while
        idle is let go, as asyncpg's pool does: a restarted server costs no hop an error)."""
        while self._idle:
            connection, since = self._idle.pop()
            if connection.is_closed():
                self._open -= 1
            elif asyncio.get_running_loop().time() - since > IDLE_LIFETIME:
                self._open -= 1
                self._in_background(_goodbye(connection))
            else:
                return connection
        return None

    async def _take(self) -> asyncpg.Connection:
        """A connection when none is idle: a new one if there is room, else the next one
        given back (or room, when one is closed)."""
        while True:
            if self._closed:
                raise _closed()
            idle = self._idle_one()
            if idle is not None:
                return idle
            if self._open < self._size:
                self._open += 1
                try:
                    connection = await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one(None)  # room again, for whoever waits
                    raise
                if self._closed:  # closed while it was being opened
                    self._drop(connection)
                    raise _closed()
                return connection
            waiter: asyncio.Future[asyncpg.Connection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # Handed one just as this caller was cancelled: pass it on.
                    given = waiter.result()
                    if given is not None:
                        self._give_back(given)
                    else:
                        self._wake_one(None)
                raise
            if handed is not None:
                return handed
            # None: a connection was closed, so there is room to open one; go round.

    def _give_back(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed():
            self._drop(connection)
            return
        if not self._wake_one(connection):
            self._idle.append((connection, asyncio.get_running_loop().time()))

    def _after_failure(self, connection: asyncpg.Connection, error: BaseException) -> None:
        if isinstance(error, asyncpg.PostgresError) and not isinstance(error, _CONNECTION_GONE):
            self._give_back(connection)  # the server answered: the connection is as it was
        elif isinstance(error, asyncio.CancelledError) and not connection.is_closed():
            self._in_background(self._settle(connection))
        else:
            self._drop(connection)

    async def _settle(self, connection: asyncpg.Connection) -> None:
        """A cancelled statement's connection, lent again once asyncpg's cancel has gone
        through and the connection answers (asyncpg waits for the one before the other)."""
        try:
            async with asyncio.timeout(SETTLE):
                await connection.fetchrow("SELECT 1")
        except BaseException:
            self._drop(connection)
            raise
        self._give_back(connection)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(_forget(self._background))

    def _drop(self, connection: asyncpg.Connection) -> None:
        """Never lend ``connection`` again; its room goes to whoever waits."""
        connection.terminate()
        self._open -= 1
        if not self._closed:
            self._wake_one(None)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._drop(connection)

    def _wake_one(self, handed: asyncpg.Connection | None) -> bool:
        """Hand ``handed`` (or, with None, room to open one) to the first caller still
        waiting; whether there was one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return True
        return False


async def _goodbye(connection: asyncpg.Connection) -> None:
    """Close ``connection`` politely, or at once if it will not say goodbye."""
    try:
        await connection.close(timeout=SETTLE)
    except BaseException:
        connection.terminate()
        raise


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def forget(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a settle that failed has closed its connection

    return forget
