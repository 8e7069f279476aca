"""Prometheus metrics at /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.test_ussd import ORDER_PATH, post, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


async def scrape(
    client: TestClient[Any, Any],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_metrics_count_hops_sessions_orders_and_sms(make_gateway: Make) -> None:
    client = await make_gateway()
    await walk(client, [*ORDER_PATH, "1"])
    await post(client, "", session="ATUid_2")
    m = await scrape(client)
    assert m[("okryu_hops_total", (("channel", "africastalking"), ("screen", "categories")))] == 1
    assert m[("okryu_hops_total", (("channel", "africastalking"), ("screen", "placed")))] == 1
    assert m[("okryu_sessions_total", (("event", "started"),))] == 2
    assert m[("okryu_orders", (("status", "placed"),))] == 1
    assert m[("okryu_sms", (("state", "queued"),))] == 1
    assert m[("okryu_hop_seconds_count", (("channel", "africastalking"),))] == len(ORDER_PATH) + 3


async def test_metrics_count_resumed_sessions(make_gateway: Make) -> None:
    client = await make_gateway()
    await walk(client, ["1", "1"])
    await post(client, "", session="ATUid_2")
    await post(client, "1", session="ATUid_2")  # yes, continue
    m = await scrape(client)
    assert m[("okryu_sessions_total", (("event", "resumed"),))] == 1
