"""Schema migrations with Alembic: ``okryu migrate``, and on every ``okryu serve`` start.

A database made by ``create_all`` has the tables but no ``alembic_version``: one that already
matches the models (the tests build theirs so) is stamped at the newest revision; an older
one, made before migrations existed, at the first revision, whose schema it has, and is
upgraded from there. The tests compare the migrated schema with the models, so a model
change without a migration fails the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from store.db import Database

SCRIPTS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema create_all made before migrations existed


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
    """Bring the schema to the newest revision; the revision it is at afterwards."""
    async with db.engine.begin() as connection:
        revision: str | None = await connection.run_sync(_upgrade)
    return revision


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
