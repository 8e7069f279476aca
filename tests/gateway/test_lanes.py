"""USSD hops past the router (gateway.lanes): the same answers, and everything else routed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from gateway import keys
from tests.gateway.test_ussd import MSISDN

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
FORM = {"sessionId": "ATUid_lane", "serviceCode": "*123#", "phoneNumber": MSISDN}


async def test_lanes_a_hop_on_the_lane_and_one_through_the_router_answer_alike(
    make_gateway: Make,
) -> None:
    client = await make_gateway()
    server = client.server.runner.server  # type: ignore[union-attr]
    assert server is not None and server.request_handler.__qualname__.startswith("install.")
    lane = await client.post("/ussd/africastalking", data={**FORM, "text": ""})
    # A query string, or the path spelled with an escape, misses the lane: the router takes it.
    routed = await client.post("/ussd/africastalking?via=router", data={**FORM, "text": "1"})
    escaped = await client.post("/ussd/%61fricastalking", data={**FORM, "text": "1*0"})
    assert (lane.status, routed.status, escaped.status) == (200, 200, 200)
    assert (await lane.text()).startswith("CON Okryu Shop\n1. Shop")
    assert (await routed.text()).startswith("CON Categories\n1. Food")
    assert (await escaped.text()) == await lane.text()  # back home: the same screen


async def test_lanes_refusals_and_other_routes_are_as_the_router_gives_them(
    make_gateway: Make,
) -> None:
    client = await make_gateway()
    assert ("POST", "/ussd/africastalking") in client.app[keys.FAST_LANE]
    wrong_method = await client.get("/ussd/africastalking")
    odd_body = await client.post(
        "/ussd/africastalking",
        data=b"sessionId=x",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
    )
    health = await client.get("/healthz")
    admin = await client.get("/admin/api/nothing")
    assert wrong_method.status == 405 and "POST" in wrong_method.headers["Allow"]
    assert odd_body.status == 415
    assert health.status == 200 and (await health.json())["status"] == "ok"
    assert admin.status == 401 and (await admin.json())["error"]
