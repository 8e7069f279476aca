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
        await database.drop_all()
        await database.create_all()
        yield database
        await database.drop_all()
    finally:
        await database.close()


@pytest.fixture
async def seeded_db(db: Database) -> Database:
    """``db`` with the demo catalog loaded."""
    await seed(db)
    return db
