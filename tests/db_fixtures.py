"""Databases for tests: a fresh SQLite file per test, and PostgreSQL when configured.

``db`` is parametrised: ``db[sqlite]`` always runs; ``db[postgresql]`` runs too when
``OKRYU_TEST_DATABASE_URL`` names a PostgreSQL database (``postgresql+asyncpg://...``). That
database is emptied before and after each test, so point it at one used for nothing else.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from store.db import Database
from store.seed import seed

__all__ = ["db", "seeded_db"]

_POSTGRES_ENV = "OKRYU_TEST_DATABASE_URL"


def _backends() -> list[object]:
    backends: list[object] = ["sqlite"]
    if os.environ.get(_POSTGRES_ENV):
        backends.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return backends


@pytest.fixture(params=_backends())
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A Database with every table created and empty."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'okryu.db'}")
        try:
            await database.create_all()
            yield database
        finally:
            await database.close()
        return
    database = Database(os.environ[_POSTGRES_ENV])
    try:
        # Drop first too: a run killed mid-test leaves its tables behind.
        await _drop_all(database)
        await database.create_all()
        yield database
        await _drop_all(database)
    finally:
        await database.close()


async def _drop_all(database: Database) -> None:
    """Every table, Alembic's too: a revision stamped by an older checkout's run would have
    the next start migrate these tables (made by ``create_all``) to what they already are."""
    await database.drop_all()
    async with database.engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
async def seeded_db(db: Database) -> Database:
    """``db`` with the demo catalog loaded."""
    await seed(db)
    return db
