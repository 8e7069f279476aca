"""Migrations build exactly the schema the models describe, and adopt older databases."""

from __future__ import annotations

import asyncio
import sys
from asyncio.subprocess import PIPE
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

from store import migrate, outbox
from store.db import Database
from store.models import Category, OutboundMessage
from store.seed import seed

ROOT = Path(__file__).resolve().parents[2]


async def empty(db: Database) -> None:
    await db.drop_all()
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


async def first_release(db: Database) -> None:
    """The schema the first builds made with ``create_all``, before migrations existed."""
    await empty(db)

    def build(connection: Connection) -> None:
        command.upgrade(migrate.config(connection), migrate.BASELINE)

    async with db.engine.begin() as connection:
        await connection.run_sync(build)
        await connection.execute(text("DROP TABLE alembic_version"))


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
    await first_release(db)
    await seed(db)
    assert await migrate.current(db) is None
    assert await migrate.upgrade(db) == migrate.head()
    assert await migrate.upgrade(db) == migrate.head()  # again: nothing to do
    async with db.session() as session:
        assert len((await session.exec(select(Category))).all()) == 6


async def test_migrations_adopt_a_database_made_by_create_all_of_these_models(
    db: Database,
) -> None:
    await empty(db)
    await db.create_all()  # as the test fixtures do
    assert await migrate.upgrade(db) == migrate.head()
    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_migration_0002_makes_each_sent_sms_one_part_that_receipts_find(
    db: Database,
) -> None:
    await first_release(db)
    async with db.write() as session:
        session.add(
            OutboundMessage(to="+850191234567", body="hi", idempotency_key="k", status="sent",
                            provider="smpp", provider_message_id="0000002A")
        )  # fmt: skip
    assert await migrate.upgrade(db) == migrate.head()
    assert await outbox.mark_delivery(db, "0000002A", "delivered", datetime(2030, 1, 1))
    async with db.session() as session:
        row = (await session.exec(select(OutboundMessage))).one()
    assert (row.status, row.delivered_at) == ("delivered", datetime(2030, 1, 1))


# One gateway process of a fleet: it waits for a line on stdin (so both start migrating at
# the same moment), then migrates as okryu serve does when it starts.
_MIGRATE_ONE = """
import asyncio, sys
from store import migrate
from store.db import Database

async def main() -> None:
    db = Database(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        print(await migrate.upgrade(db))
    finally:
        await db.close()

asyncio.run(main())
"""


async def test_migrations_started_by_two_processes_at_once_run_once(db: Database) -> None:
    await empty(db)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _MIGRATE_ONE,
            db.url,
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            cwd=ROOT,
        )  # fmt: skip
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    for process in processes:  # both are ready and waiting: let them go together
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    outputs = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert [out.decode().strip() for out, _ in outputs] == [migrate.head()] * 2
    async with db.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [row[0] for row in rows] == [migrate.head()]
        assert await connection.run_sync(differences) == []
