"""Migrations build exactly the schema the models describe, and adopt older databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

from store import migrate
from store.db import Database
from store.models import Category
from store.seed import seed


async def empty(db: Database) -> None:
    await db.drop_all()
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))


async def test_migrations_build_the_schema_of_the_models(db: Database) -> None:
    await empty(db)
    assert await migrate.upgrade(db) == migrate.head()
    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []  # a model change needs a migration


async def test_migrations_adopt_a_database_made_before_them_and_keep_its_data(
    db: Database,
) -> None:
    await empty(db)
    await db.create_all()  # as the first builds did, without migrations
    await seed(db)
    assert await migrate.current(db) is None
    assert await migrate.upgrade(db) == migrate.head()
    assert await migrate.upgrade(db) == migrate.head()  # again: nothing to do
    async with db.session() as session:
        assert len((await session.exec(select(Category))).all()) == 6
