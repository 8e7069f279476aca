"""The load runner: a short run of many handsets against the real app, and its report."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from simulators.load import (
    ERROR_KINDS,
    LoadConfig,
    LoadError,
    ProgressBar,
    Tally,
    parse_mix,
    percentile,
    phone_numbers,
    run_load,
)
from simulators.network import FLAKY
from simulators.phone import DIALECTS
from simulators.shopper import tells_answers_apart
from simulators.ussdc import SMPP
from store.db import Database
from store.models import Order
from tests.gateway_fixtures import SMPP_PROFILES, SmppRig

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
SUBSCRIBERS = 8
SECONDS = 1.5
# A flaky network cuts sessions and slows typists: in 1.5 s on a busy CI machine no order
# journey of 8 subscribers finished now and then. The assertions need one that does.
FLAKY_SECONDS = 4.0
REPORT_KEYS = {
    "url",
    "dialect",
    "network",
    "subscribers",
    "duration_s",
    "mix",
    "seed",
    "hops",
    "hops_per_s",
    "journeys",
    "journeys_per_s",
    "orders_placed",
    "orders_pending",
    "orders_unseen",
    "sold_out",
    "latency_ms",
    "errors",
    "error_samples",
    "screens_over_budget",
    "loadgen_cpu",
    "loadgen_cpu_s",
    "warnings",
}


def config(
    client: TestClient[Any, Any], dialect: str = "africastalking", **more: Any
) -> LoadConfig:
    return LoadConfig(
        str(client.make_url(f"/ussd/{dialect}")),
        subscribers=SUBSCRIBERS,
        duration=FLAKY_SECONDS if more.get("network") is FLAKY else SECONDS,
        mix={"browse": 50, "order": 50},
        dialect=dialect,
        retry_window=0.0,
        **more,
    )


async def codes_of(db: Database, numbers: list[str]) -> list[str]:
    async with db.session() as s:
        orders = (await s.exec(select(Order).where(col(Order.msisdn).in_(numbers)))).all()
    return [order.code for order in orders]


async def test_load_short_run_places_orders_without_errors(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway(retry_window=0.0)
    report = await run_load(config(client))
    assert report.hops > 0 and report.hops_per_s > 0
    assert report.orders_placed > 0 and report.journeys["browse"] > 0
    assert report.errors == dict.fromkeys(ERROR_KINDS, 0), report.error_samples
    assert report.screens_over_budget == 0
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p95"] <= report.latency_ms["p99"]
    placed = await codes_of(seeded_db, phone_numbers(SUBSCRIBERS, 0))
    assert set(report.codes) <= set(placed) and len(report.codes) == len(placed)
    data = json.loads(report.to_json())
    assert set(data) == REPORT_KEYS
    assert set(data["errors"]) == set(ERROR_KINDS)
    assert set(data["latency_ms"]) == {"p50", "p95", "p99", "max"}
    text = report.render()
    assert "orders placed" in text and "load generator CPU" in text


@pytest.mark.parametrize("dialect", ["africastalking", "hubtel"])
async def test_load_flaky_network_loses_no_order_and_answers_no_5xx(
    make_gateway: Make, seeded_db: Database, dialect: str
) -> None:
    client = await make_gateway(retry_window=0.0)
    report = await run_load(config(client, dialect, network=FLAKY, seed=3))
    assert report.errors["http_5xx"] == 0, report.error_samples
    assert report.errors["cut_sessions"] > 0  # the network did its worst
    assert report.orders_placed > 0
    placed = await codes_of(seeded_db, phone_numbers(SUBSCRIBERS, 3))
    assert set(report.codes) <= set(placed), "an order seen placed is not in the database"


@pytest.mark.parametrize("profile", list(SMPP_PROFILES))
async def test_load_over_the_operator_s_smpp_bind_loses_no_order(
    make_smpp_gateway: Callable[..., Awaitable[SmppRig]], seeded_db: Database, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    load = dataclasses.replace(
        config(rig.client, network=FLAKY, seed=5),
        url=rig.handset_url,
        dialect=SMPP,
    )  # the flaky network's 4 s: in 1.5 s on a busy machine no order finished now and then
    report = await run_load(load)
    assert report.errors["http_5xx"] == 0, report.error_samples
    assert report.orders_placed > 0 and report.screens_over_budget == 0
    placed = await codes_of(seeded_db, phone_numbers(SUBSCRIBERS, 5))
    assert set(report.codes) <= set(placed), "an order seen placed is not in the database"
    assert rig.centre.refused_screens == [] and len(rig.centre.binds) == 1


def test_load_mix_parses_and_refuses_nonsense() -> None:
    assert parse_mix("browse:70, order:30") == {"browse": 70, "order": 30}
    with pytest.raises(LoadError, match="unknown journey 'shop'"):
        parse_mix("shop:10")
    with pytest.raises(LoadError, match="a weight for each journey"):
        parse_mix("browse")
    with pytest.raises(LoadError, match="above 0"):
        parse_mix("browse:0")


def test_load_phone_numbers_are_distinct_and_fixed_by_the_seed() -> None:
    numbers = phone_numbers(100, 7)
    assert numbers == phone_numbers(100, 7) != phone_numbers(100, 8)
    assert len(set(numbers)) == 100
    assert all(n.startswith("+8501919") and len(n) == 14 for n in numbers)


def test_load_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 99) == 0.0


def test_load_paces_only_dialects_that_cannot_tell_a_retry() -> None:
    assert {name for name, d in DIALECTS.items() if not tells_answers_apart(d)} == {
        "arkesel",
        "nalo",
        "hollatags",
    }


def test_load_progress_bar_rewrites_one_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, duration=10)
    tally = Tally(latencies=[0.01] * 5)
    tally.outcomes["placed"] = 2
    bar.update(tally)
    bar.close()
    written = stream.getvalue()
    assert written.startswith("\r[") and "5 hops" in written and "2 orders" in written
    assert "\n" not in written and written.endswith("\r\x1b[K")
