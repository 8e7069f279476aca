"""The hot path's own PostgreSQL connections (Database.rows, an order's one call; lent by
store.handout) when the server drops its connections (a restart, an administrator): the next
hops are served on fresh connections, and nothing is logged as a failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from gateway.callbacks import _component, _is_outage
from store.db import Database

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


async def dials(client: TestClient[Any, Any], first: int, count: int) -> list[str]:
    """``count`` new subscribers dial at once (each dial reads a profile on the pool)."""

    async def dial(n: int) -> str:
        response = await client.post(
            "/ussd/africastalking",
            data={"sessionId": f"pg-{n}", "serviceCode": "*123#",
                  "phoneNumber": f"+8501913{n:06d}", "text": ""},
        )  # fmt: skip
        assert response.status == 200
        return await response.text()

    return list(await asyncio.gather(*(dial(n) for n in range(first, first + count))))


async def test_pg_pool_connections_dropped_by_the_server_are_replaced_unseen(
    make_gateway: Make, seeded_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if seeded_db.is_sqlite:
        pytest.skip("PostgreSQL's connections, lent by store.handout")
    client = await make_gateway()
    assert all(s.startswith("CON ") for s in await dials(client, 0, 5))

    # What a PostgreSQL restart or an administrator does to every session of the database.
    admin = await asyncpg.connect(**seeded_db.driver_options())
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert dropped >= 1

    after = await dials(client, 100, 5)

    # The hand-out lets go of an idle connection the server closed and opens another for the
    # next statement: no subscriber pays for it. (One cut mid-query fails that hop politely:
    # callbacks counts asyncpg's connection errors as the database being out of reach.)
    assert all(s.startswith("CON ") for s in after), after
    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert tracebacks == []


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ],
)
def test_pg_pool_errors_of_a_lost_server_count_as_the_database_unavailable(
    error: Exception,
) -> None:
    # A hop that fails so is told politely and logged as an outage line, not a traceback.
    assert _is_outage(error) and _component(error) == "database"
    assert not _is_outage(asyncpg.exceptions.UniqueViolationError("a query refused"))
