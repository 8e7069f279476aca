"""Schema migrations with Alembic: ``okryu migrate``, and on every ``okryu serve`` start.

A database made by ``create_all`` has the tables but no ``alembic_version``: one that already
matches the models (the tests build theirs so) is stamped at the newest revision; an older
one, made before migrations existed, at the first revision, whose schema it has, and is
upgraded from there. The tests compare the migrated schema with the models, so a model
change without a migration fails the suite.

Every gateway process migrates when it starts, and a fleet starts several at once: the
upgrade runs under a lock, so one migrates and the others, let in after it, find the schema
at the newest revision and do nothing. On PostgreSQL the lock is a transaction-level advisory
lock (``pg_advisory_xact_lock``), released by the upgrade's commit or rollback, or by the
connection's end if the process dies; on SQLite (one machine) an exclusive ``flock`` on a file
next to the database, released by the kernel when its holder exits however it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from store.db import Database

SCRIPTS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema create_all made before migrations existed
# The advisory lock's key: any number no other part of the application locks ("okryu mig").
LOCK_KEY = 0x6F6B7279755F6D69


def config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> str | None:
    tables = set(inspect(connection).get_table_names())
    cfg = config(connection)
    if "alembic_version" not in tables and "orders" in tables:
        matches = not compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        command.stamp(cfg, "head" if matches else BASELINE)
    command.upgrade(cfg, "head")
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database) -> str | None:
    """Bring the schema to the newest revision; the revision it is at afterwards. Another
    process upgrading the same database at the same time waits for this one."""
    async with _sqlite_lock(db), db.engine.begin() as connection:
        if not db.is_sqlite:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        revision: str | None = await connection.run_sync(_upgrade)
    return revision


@contextlib.asynccontextmanager
async def _sqlite_lock(db: Database) -> AsyncIterator[None]:
    path = db.url.split(":///", 1)[-1] if db.is_sqlite else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        yield  # no file to share with another process
        return
    descriptor = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # flock blocks: a thread waits for it, and the loop goes on meanwhile.
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def head() -> str | None:
    """The newest revision in store/migrations."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _current(connection: Connection) -> Any:
    return MigrationContext.configure(connection).get_current_revision()


async def current(db: Database) -> str | None:
    async with db.engine.connect() as connection:
        revision: str | None = await connection.run_sync(_current)
    return revision
