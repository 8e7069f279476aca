"""The funnel: sessions counted once per screen reached, and where they dropped off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from gateway import keys
from gateway.funnel import STEPS, FunnelCounter, format_report, report
from store import reports
from store.db import Database
from store.models import utcnow
from tests.gateway.test_ussd import ORDER_PATH, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_funnel_counts_sessions_per_screen_once_and_the_drop_off(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, [*ORDER_PATH, "1"])  # an order, start to end
    await walk(client, ["1", "1", "0", "1", "98", "0", "00"], session="ATUid_2")  # browses, leaves
    await walk(
        client,
        ["1", "1", "1"],
        session="ATUid_3",
    )  # looks at a product
    await client.app[keys.GATEWAY].funnel.flush()  # type: ignore[union-attr]
    now = utcnow()
    reached = await reports.funnel(seeded_db, now - timedelta(hours=1), now + timedelta(hours=1))
    steps = {step.screen: step for step in report(reached)}
    assert steps["home"].sessions == 3
    assert steps["categories"].sessions == 3  # the browsing session came back twice: once
    assert steps["products"].sessions == 3
    assert (steps["product"].sessions, steps["product"].dropped) == (2, 1)
    assert steps["placed"].sessions == 1
    table = format_report(report(reached))
    assert table.splitlines()[1].split() == ["home", "3", "100%", "0"]
    assert [line.split()[0] for line in table.splitlines()[1:]] == list(STEPS)


async def test_funnel_counts_add_up_across_flushes(seeded_db: Database) -> None:
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    await reports.add_funnel(seeded_db, {(hour, "home"): 2})
    await reports.add_funnel(seeded_db, {(hour, "home"): 3, (hour, "cart"): 1})
    assert await reports.funnel(seeded_db, hour, hour + timedelta(hours=1)) == {
        "home": 5,
        "cart": 1,
    }
    assert (
        await reports.funnel(seeded_db, hour + timedelta(hours=1), hour + timedelta(hours=2)) == {}
    )


async def test_funnel_counts_each_arrival_in_the_hour_it_came(seeded_db: Database) -> None:
    hour = datetime(2026, 12, 1, 10)
    now = [hour.replace(tzinfo=UTC).timestamp() + 3599.5]  # 10:59:59.5
    counter = FunnelCounter(seeded_db, clock=lambda: now[0])
    counter.reached("home")
    now[0] += 1  # 11:00:00.5
    counter.reached("home")
    counter.reached("cart")
    await counter.flush()
    assert await reports.funnel(seeded_db, hour, hour + timedelta(hours=1)) == {"home": 1}
    later = hour + timedelta(hours=1)
    assert await reports.funnel(seeded_db, later, later + timedelta(hours=1)) == {
        "home": 1,
        "cart": 1,
    }
