"""Where a SQLite database may be made: the directory of a relative path, never an absolute one."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from store.db import Database


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
