"""Where a SQLite database may be made: the directory of a relative path, never an absolute one;
and a write on SQLite holds the file's write lock from its first statement."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from store.db import Database
from store.models import Category, OutboundMessage


async def test_database_makes_the_directory_of_a_relative_sqlite_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = Database("sqlite+aiosqlite:///var/data/okryu.db")
    try:
        await db.create_all()
    finally:
        await db.close()

    assert (tmp_path / "var" / "data" / "okryu.db").is_file()


def test_database_makes_no_directory_an_absolute_sqlite_path_names(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "dir"
    with pytest.raises(FileNotFoundError) as error:
        Database(f"sqlite+aiosqlite:///{missing / 'okryu.db'}")

    assert (error.value.errno, error.value.filename) == (errno.ENOENT, str(missing))
    assert not (tmp_path / "typo").exists()


def test_database_refuses_an_absolute_sqlite_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        Database(f"sqlite+aiosqlite:///{tmp_path / 'file' / 'okryu.db'}")


def _another_process_writes(path: Path) -> None:
    """What a writer on another connection to the file (another worker) gets: it begins a
    write at once, or raises ``database is locked``."""
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    """A store on a SQLite file, and the file (for a writer of another process)."""
    path = tmp_path / "okryu.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.create_all()
        yield db, path
    finally:
        await db.close()


async def test_a_sqlite_write_locks_out_other_writers_from_its_first_read(
    sqlite_file: tuple[Database, Path],
) -> None:
    # A transaction that read, then wrote what it read (a PIN attempt counted, a message
    # claimed), would lose an update if another worker's writer could get in between.
    db, path = sqlite_file
    async with db.write() as session:
        await session.exec(select(OutboundMessage.id))  # read, nothing written yet
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _another_process_writes(path)
    _another_process_writes(path)  # committed: the lock is free again


async def test_a_sqlite_write_that_raises_leaves_nothing_and_frees_the_lock(
    sqlite_file: tuple[Database, Path],
) -> None:
    db, path = sqlite_file
    with pytest.raises(RuntimeError, match="midway"):
        async with db.write() as session:
            session.add(Category(slug="food", name_en="Food", name_ko="식품"))
            await session.flush()
            raise RuntimeError("midway")
    _another_process_writes(path)  # the lock is free
    async with db.write() as session:  # and the next write runs
        assert (await session.exec(select(Category))).all() == []
