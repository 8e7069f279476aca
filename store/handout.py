"""PostgreSQL connections handed out for one statement each: the hot path's reads and an
order's one call.

asyncpg's own pool does more than these calls need, on every call: its release is shielded in
a task of its own, its acquire goes through a queue and a holder, and it checks for
transactions the calls never open. Measured on this project's machine (2 cores), client CPU per
``SELECT 1``: 77 us through ``Pool.fetchrow``, 16-28 us on a bare connection; an order's
``okryu_place_order`` call, 102-109 us against 44. Here a statement takes an idle connection,
runs, and gives it back: no task, no queue, no reset (each call is a single statement that
leaves no session state: no SET, LISTEN, advisory lock or open transaction).

A call that ends any other way than with the server's answer (cancelled by its hop's deadline
while the statement ran, the connection lost) leaves the connection in a state not worth
reading: it is closed, never handed out again, and the next call beyond those open opens
another. An error the server answered (a unique key, a raised exception) leaves the
connection ready for the next statement, and it is given back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

# The server answered; the connection is ready for the next statement. These are not: the
# connection itself failed, or the server is going away.
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
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # idle, lent, or being opened
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    @property
    def open(self) -> int:
        """Connections open or being opened (idle and lent)."""
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

    async def _run(self, one: bool, sql: str, args: tuple[Any, ...]) -> Any:
        for attempt in range(2):
            connection = self._idle_one() or await self._take()
            try:
                if one:
                    found = await connection.fetchrow(sql, *args)
                else:
                    found = await connection.fetch(sql, *args)
            except asyncpg.exceptions.InternalClientError:
                # Ended by the server while idle, the ending read but the close not yet:
                # asyncpg refuses before it writes anything, so the statement was never sent
                # and runs on another connection (once: a second is no such accident).
                self._drop(connection)
                if attempt:
                    raise
                continue
            except BaseException as error:
                self._after_failure(connection, error)
                raise
            self._give_back(connection)
            return found
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the idle connections now; those lent close as they come back. Later calls
        raise asyncpg's ``InterfaceError``, and so do the callers still waiting."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_closed())
        for connection in idle:
            try:
                await connection.close(timeout=5)
            except Exception:  # closing anyway: a connection that will not say goodbye
                connection.terminate()

    # --- lending --------------------------------------------------------------------------

    def _idle_one(self) -> asyncpg.Connection | None:
        """An idle connection still open (one the server ended while idle is let go, as
        asyncpg's pool does: a restarted server costs no hop an error)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._open -= 1
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
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one(None)  # room again, for whoever waits
                    raise
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
            self._idle.append(connection)

    def _after_failure(self, connection: asyncpg.Connection, error: BaseException) -> None:
        if isinstance(error, asyncpg.PostgresError) and not isinstance(error, _CONNECTION_GONE):
            self._give_back(connection)  # the server answered: the connection is as it was
            return
        self._drop(connection)

    def _drop(self, connection: asyncpg.Connection) -> None:
        """Never lend ``connection`` again; its room goes to whoever waits."""
        connection.terminate()
        self._open -= 1
        if not self._closed:
            self._wake_one(None)

    def _wake_one(self, handed: asyncpg.Connection | None) -> bool:
        """Hand ``handed`` (or, with None, room to open one) to the first caller still
        waiting; whether there was one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return True
        return False
