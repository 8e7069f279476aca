"""The hot path's PostgreSQL connections (store.handout), on a real server: each lent to one
statement, at most ``size`` open, none lent again in a state not worth reading."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from store import handout as handout_module
from store.db import DRIVER_OUTAGES, Database
from store.handout import Connections

pytestmark = pytest.mark.postgres

_URL = os.environ.get("OKRYU_TEST_DATABASE_URL", "")
if not _URL.startswith("postgresql"):
    pytest.skip("needs OKRYU_TEST_DATABASE_URL on PostgreSQL", allow_module_level=True)

LOCK = 770_001  # an advisory lock no other test takes
WAIT = f"SELECT pg_advisory_xact_lock_shared({LOCK}), pg_backend_pid()"  # held for the call only
PID = "SELECT pg_backend_pid()"


@pytest.fixture
async def options() -> AsyncIterator[dict[str, object]]:
    database = Database(_URL)
    try:
        yield database.driver_options()
    finally:
        await database.close()


@pytest.fixture
async def outside(options: dict[str, object]) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own: holds the lock the lent ones wait on, looks at them."""
    connection = await asyncpg.connect(**options)
    try:
        yield connection
    finally:
        await connection.close()


Lend = Callable[..., Connections]


@pytest.fixture
async def lend(options: dict[str, object]) -> AsyncIterator[Lend]:
    """``lend(size)``: a hand-out of ``size`` connections to the test database (``connect``
    to open them otherwise), closed when the test ends."""
    made: list[Connections] = []

    def make(
        size: int, connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None
    ) -> Connections:
        lent = Connections(connect or (lambda: asyncpg.connect(**options)), size)
        made.append(lent)
        return lent

    yield make
    for lent in made:
        await lent.close()


async def held_on_the_lock(
    outside: asyncpg.Connection, lent: Connections, calls: int, waiting: int
) -> list[asyncio.Task[asyncpg.Record | None]]:
    """``calls`` statements lent, held on LOCK (taken by ``outside``) until it is let go:
    once ``waiting`` of them wait on it at the server."""
    await outside.execute(f"SELECT pg_advisory_lock({LOCK})")
    held = [asyncio.create_task(lent.fetchrow(WAIT)) for _ in range(calls)]
    await waiting_on_the_lock(outside, waiting)
    return held


async def let_go(outside: asyncpg.Connection) -> None:
    await outside.execute(f"SELECT pg_advisory_unlock({LOCK})")


async def waiting_on_the_lock(outside: asyncpg.Connection, count: int) -> None:
    """Until ``count`` backends wait on LOCK (each look is a round trip, not a sleep)."""
    for _ in range(10_000):
        seen = await outside.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1"
            " AND NOT granted",
            LOCK,
        )
        if seen == count:
            return
    raise AssertionError(f"never saw {count} calls waiting on the lock")


async def test_calls_beyond_the_size_wait_for_a_connection_given_back(
    lend: Lend, outside: asyncpg.Connection
) -> None:
    lent = lend(2)
    calls = await held_on_the_lock(outside, lent, 3, 2)
    assert lent.open == 2  # the third waits for one of them, opening none
    await let_go(outside)
    rows = await asyncio.gather(*calls)
    assert len({row[1] for row in rows if row is not None}) == 2
    assert (lent.open, lent.idle) == (2, 2)


async def test_a_statement_the_server_refused_gives_its_connection_back(lend: Lend) -> None:
    lent = lend(1)
    pid = await lent.fetchrow(PID)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await lent.fetch("SELECT 1 / 0")
    assert await lent.fetchrow(PID) == pid  # the same connection, as ready as before
    assert lent.open == 1


async def test_a_call_cancelled_mid_statement_is_cancelled_on_the_server_too(
    lend: Lend, outside: asyncpg.Connection
) -> None:
    lent = lend(1)
    first = await lent.fetchrow(PID)
    [call] = await held_on_the_lock(outside, lent, 1, 1)
    call.cancel()  # as a hop's deadline does
    with pytest.raises(asyncio.CancelledError):
        await call
    # The lock is still held: only the server's cancelling the statement stops its wait
    # (a connection merely closed would leave the backend waiting, its slot taken).
    await waiting_on_the_lock(outside, 0)
    await lent.settled()
    assert (lent.open, lent.idle) == (1, 1)
    assert await lent.fetchrow(PID) == first  # settled, and lent again
    await let_go(outside)


async def test_a_connection_idle_too_long_is_closed_and_another_opened(
    lend: Lend, outside: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    lent = lend(1)
    first = await lent.fetchrow(PID)
    assert first is not None
    monkeypatch.setattr(handout_module, "IDLE_LIFETIME", -1.0)  # every idle one too long
    again = await lent.fetchrow(PID)
    assert again is not None and again[0] != first[0]
    await lent.settled()  # the old one's goodbye
    gone = await outside.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first[0])
    assert gone == 0 and lent.open == 1


async def test_a_caller_cancelled_while_waiting_loses_no_connection(
    lend: Lend, outside: asyncpg.Connection
) -> None:
    lent = lend(1)
    [holder] = await held_on_the_lock(outside, lent, 1, 1)
    waiter = asyncio.create_task(lent.fetchrow(PID))
    await asyncio.sleep(0)  # one loop turn: its first step queues it (no time passes)
    assert lent.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await let_go(outside)
    held = await holder
    assert held is not None
    assert (lent.open, lent.idle) == (1, 1)
    assert await lent.fetchrow(PID) == (held[1],)  # the same connection, lent again


async def test_connections_the_server_ended_while_idle_are_replaced_unseen(
    lend: Lend, outside: asyncpg.Connection
) -> None:
    lent = lend(2)
    held = await held_on_the_lock(outside, lent, 2, 2)
    await let_go(outside)
    pids = {row[1] for row in await asyncio.gather(*held) if row is not None}
    assert len(pids) == 2 and lent.idle == 2
    ended = await outside.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM unnest($1::int[]) AS pid", list(pids)
    )
    assert ended == 2  # a restart, or an administrator: every idle connection at once
    # Whether or not each end has reached the client by the next call (read and closed,
    # read and not yet closed, or still on the wire), that call runs on a new connection.
    again = await lent.fetchrow(PID)
    assert again is not None and again[0] not in pids
    assert lent.open == 1


async def test_a_failed_connect_leaves_room_for_the_next(
    lend: Lend, options: dict[str, object]
) -> None:
    refused = dict(options, port=1)  # nothing listens there
    attempts = 0

    async def connect() -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        return await asyncpg.connect(**(refused if attempts == 1 else options))

    lent = lend(1, connect)
    with pytest.raises(OSError):
        await lent.fetchrow(PID)
    assert lent.open == 0
    assert await lent.fetchrow("SELECT 1") == (1,)


async def test_closing_ends_idle_and_lent_connections_and_refuses_later_calls(
    lend: Lend, outside: asyncpg.Connection
) -> None:
    lent = lend(2)
    await lent.fetchrow(PID)  # one idle
    [busy] = await held_on_the_lock(outside, lent, 1, 1)
    await lent.close()
    assert lent.open == 1  # the lent one, still at work
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        await lent.fetchrow(PID)
    assert issubclass(asyncpg.InterfaceError, DRIVER_OUTAGES)  # the edge answers it so
    await let_go(outside)
    assert await busy is not None  # its statement finishes...
    assert lent.open == 0  # ...and its connection closes as it comes back
