"""The okryu command line: reports read from the database it is configured with."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

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


@pytest.mark.parametrize("argv", [["migrate"], ["seed"]])
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


def test_cli_report_funnel_never_makes_a_database_where_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default URL is relative: run from another directory, the report used to create an
    # empty ./var/okryu.db and print zeros as if the shop had no visitors.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OKRYU_DATABASE_URL", raising=False)
    handlers = logging.getLogger().handlers[:]
    try:
        status = main(["report", "funnel"])
    finally:
        logging.getLogger().handlers[:] = handlers
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err.startswith(f"okryu: no database at {tmp_path / 'var' / 'okryu.db'} ")
    assert "OKRYU_DATABASE_URL" in err and err.count("\n") == 1
    assert not (tmp_path / "var").exists()


def test_cli_report_funnel_into_a_closed_pipe_ends_quietly(
    seeded_db: Database, tmp_path: Path
) -> None:
    # `okryu report funnel | head -1`: the reader leaves after one line. A real pipe and a
    # real process: BrokenPipeError is raised only by a real write to a closed pipe.
    if not seeded_db.url.startswith("sqlite"):
        pytest.skip("the report runs in a child process, which needs a database file")
    import shlex
    import subprocess
    import sys

    env = {**os.environ, "OKRYU_DATABASE_URL": seeded_db.url}
    errors = tmp_path / "stderr"
    # The reader (`true`) is gone long before Python has started and read the database, so
    # the report's first write meets a closed pipe, as `| head` meets it after a line.
    subprocess.run(
        f"{shlex.quote(sys.executable)} -m gateway.cli report funnel 2>{errors} | true",
        shell=True,
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert errors.read_text() == ""  # no BrokenPipeError, no traceback


async def test_cli_phone_takes_the_gateways_base_url_as_load_does(
    make_gateway: Callable[..., Awaitable[TestClient[Any, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `okryu phone --url http://host:port` used to post to the bare base URL and print 404.
    client = await make_gateway(sms_dispatch=True)
    base = f"http://{client.server.host}:{client.server.port}"
    scenario = str(Path(__file__).parents[2] / "scenarios" / "order_english.scn")
    handlers = logging.getLogger().handlers[:]
    try:
        status = await _run(["phone", "--url", base, "--script", scenario])
    finally:
        logging.getLogger().handlers[:] = handlers
    out = capsys.readouterr().out
    assert (status, out.split(" ", 2)[:2]) == (0, ["PASS", scenario]), out
