"""The okryu command line: reports read from the database it is configured with."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from store import migrate, reports
from store.db import Database
from store.models import utcnow


async def test_cli_report_funnel_prints_the_steps(
    seeded_db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    await reports.add_funnel(seeded_db, {(hour, "home"): 4, (hour, "categories"): 3})
    monkeypatch.setenv("OKRYU_DATABASE_URL", seeded_db.url)
    handlers = logging.getLogger().handlers[:]
    try:
        since = (hour - timedelta(hours=1)).isoformat()
        until = (hour + timedelta(hours=1)).isoformat()
        status = await _run(["report", "funnel", "--from", since, "--to", until, "--json"])
    finally:
        logging.getLogger().handlers[:] = handlers
    assert status == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert steps[0] == {"screen": "home", "sessions": 4, "dropped": 1}


async def _run(argv: list[str]) -> int:
    # main() runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(main, argv)


def test_cli_bad_report_dates_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    handlers = logging.getLogger().handlers[:]
    try:
        assert main(["report", "funnel", "--from", "yesterday"]) == 2
    finally:
        logging.getLogger().handlers[:] = handlers
    assert "--from/--to" in capsys.readouterr().err


async def test_cli_migrate_brings_an_empty_database_to_the_newest_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OKRYU_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    handlers = logging.getLogger().handlers[:]
    try:
        assert await _run(["migrate"]) == 0
        assert await _run(["migrate"]) == 0
    finally:
        logging.getLogger().handlers[:] = handlers
    first, second = capsys.readouterr().out.splitlines()
    assert first == f"schema at revision {migrate.head()} (was empty)"
    assert second == f"schema at revision {migrate.head()}"


@pytest.mark.parametrize("argv", [["migrate"], ["seed"], ["report", "funnel"]])
def test_cli_database_commands_say_an_unreachable_database_in_one_line(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no" / "such"
    monkeypatch.setenv("OKRYU_DATABASE_URL", f"sqlite+aiosqlite:///{missing / 'okryu.db'}")
    handlers = logging.getLogger().handlers[:]
    try:
        status = main(argv)
    finally:
        logging.getLogger().handlers[:] = handlers

    assert (status, *capsys.readouterr()) == (
        1,
        "",
        f"okryu: cannot reach the database (OKRYU_DATABASE_URL): no such file or directory: "
        f"{missing}\n",
    )
    assert not (tmp_path / "no").exists()


async def test_cli_report_ledger_prints_each_day_and_proves_the_sum_is_zero(
    seeded_db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import text

    from store import cards

    card = await cards.issue_card(seeded_db, "+8501912345678", "4821")
    await cards.top_up(seeded_db, card.number, 7000, "R-1", actor="staff",
                       render_sms=lambda *_: "sms")  # fmt: skip
    await cards.adjust(seeded_db, card.number, -500, "FIX-1", actor="staff")
    monkeypatch.setenv("OKRYU_DATABASE_URL", seeded_db.url)
    handlers = logging.getLogger().handlers[:]
    try:
        status = await _run(["report", "ledger", "--since", "2020-01-01"])
        plain = capsys.readouterr().out
        assert await _run(["report", "ledger", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        async with seeded_db.write() as session:  # a cached balance that drifted
            await session.exec(text("UPDATE card SET balance = 1"))  # type: ignore[call-overload]
        drifted = await _run(["report", "ledger"])
        told = capsys.readouterr().out
        assert await _run(["report", "ledger", "--since", "last week"]) == 2
    finally:
        logging.getLogger().handlers[:] = handlers
    assert status == 0
    today = utcnow().date().isoformat()
    assert f"{today}         7,000             0             0        -500         6,500" in plain
    assert "entries: 4; sum of every entry: 0" in plain and "the ledger balances" in plain
    assert report["days"] == [{"day": today, "topups": 7000, "payments": 0, "refunds": 0,
                               "adjustments": -500, "balances": 6500}]  # fmt: skip
    assert report["total"] == 0 and report["balances"] is True
    assert drifted == 1 and "cards whose balance is not the sum of their entries: 1" in told
