import asyncio
import os

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.cluster_fixtures import *  # noqa: F403
from tests.db_fixtures import *  # noqa: F403
from tests.gateway_fixtures import *  # noqa: F403
from tests.redis_fixtures import *  # noqa: F403


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n``, as CI runs the suite), each worker gets a PostgreSQL database
    of its own, named after the configured one: the fixtures empty it before and after each
    test, so two workers must never share one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = os.environ.get("OKRYU_TEST_DATABASE_URL")
    if worker and url and url.startswith("postgresql"):
        os.environ["OKRYU_TEST_DATABASE_URL"] = asyncio.run(_database_of(url, worker))


async def _database_of(url: str, worker: str) -> str:
    """The URL of ``worker``'s database beside ``url``'s, created if it does not exist."""
    given = make_url(url)
    own = given.set(database=f"{given.database}_{worker}")
    connection = await asyncpg.connect(
        host=given.host, port=given.port, user=given.username, password=given.password,
        database=given.database,
    )  # fmt: skip
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", own.database
        )
        if not exists:
            try:
                await connection.execute(f'CREATE DATABASE "{own.database}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # another run made it meanwhile
    finally:
        await connection.close()
    return own.render_as_string(hide_password=False)
