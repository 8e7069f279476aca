"""Callback authentication and Africa's Talking's end-of-session notifications, over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from gateway.auth import CallbackAuth, parse_networks
from store import outbox
from store.db import Database
from store.models import OutboundMessage, UssdSessionEnd, utcnow
from tests.gateway.test_ussd import MSISDN, hop, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
EVENTS = "/ussd/africastalking/events"


def end_form(status: str = "Incomplete", session: str = "ATUid_1") -> dict[str, str]:
    return {
        "date": "2026-11-28 15:00:00",
        "sessionId": session,
        "serviceCode": "*123#",
        "phoneNumber": MSISDN,
        "networkCode": "99999",
        "status": status,
        "cost": "KES 0.10",
        "durationInMillis": "41234",
        "hopsCount": "6",
        "input": "1*1*1*1*2",
        "lastAppResponse": "CON Cart (1): KPW 9,000",
    }


async def test_at_events_record_the_end_and_remind_of_the_cart(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, ["1", "1", "1", "1", "2"])
    response = await client.post(EVENTS, data=end_form())
    assert (response.status, await response.text()) == (200, "OK")
    async with seeded_db.session() as s:
        (end,) = (await s.exec(select(UssdSessionEnd))).all()
        (reminder,) = (await s.exec(select(OutboundMessage))).all()
    assert (end.status, end.hops, end.duration_ms, end.last_screen) == (
        "abandoned",
        6,
        41234,
        "CON Cart (1): KPW 9,000",
    )
    assert reminder.kind == "cart_reminder"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "Lost"}, "status must be one of"),
        ({"phoneNumber": "x"}, "phone number"),
        ({"sessionId": ""}, "sessionId is empty"),
    ],
)
async def test_at_events_bad_fields_get_400(
    make_gateway: Make, change: dict[str, str], reason: str
) -> None:
    client = await make_gateway()
    response = await client.post(EVENTS, data={**end_form(), **change})
    assert response.status == 400 and reason in await response.text()


async def test_callback_secret_is_required_when_configured(
    make_gateway: Make, caplog: pytest.LogCaptureFixture
) -> None:
    auth = {"africastalking": CallbackAuth(secret="s3cr3t")}
    client = await make_gateway(callback_auth=auth)
    with caplog.at_level(logging.WARNING):
        refused = await client.post("/ussd/africastalking", data=hop(""))
        wrong = await client.post(
            "/ussd/africastalking", data=hop(""), headers={"X-Okryu-Secret": "nope"}
        )
    assert (refused.status, await refused.text()) == (403, "forbidden")
    assert wrong.status == 403
    assert MSISDN not in caplog.text and "8501912345678" not in caplog.text  # no body in logs
    by_header = await client.post(
        "/ussd/africastalking", data=hop(""), headers={"X-Okryu-Secret": "s3cr3t"}
    )
    by_query = await client.post(
        "/ussd/africastalking?secret=s3cr3t", data=hop("", session="ATUid_2")
    )
    assert by_header.status == 200 and by_query.status == 200
    assert (await client.post(EVENTS, data=end_form())).status == 403  # its events too
    assert (
        await client.post("/sms/africastalking", data={"from": MSISDN, "text": "HELP"})
    ).status == 403


async def test_callback_allowlist_refuses_other_addresses(make_gateway: Make) -> None:
    elsewhere = {"africastalking": CallbackAuth(allow=parse_networks("192.0.2.0/24"))}
    client = await make_gateway(callback_auth=elsewhere)
    assert (await client.post("/ussd/africastalking", data=hop(""))).status == 403
    here = {"africastalking": CallbackAuth(allow=parse_networks("127.0.0.1 ::1"))}
    client = await make_gateway(callback_auth=here)
    assert (await client.post("/ussd/africastalking", data=hop(""))).status == 200


async def test_callback_auth_of_one_channel_leaves_others_open(make_gateway: Make) -> None:
    client = await make_gateway(callback_auth={"hubtel": CallbackAuth(secret="x")})
    assert (await client.post("/ussd/africastalking", data=hop(""))).status == 200


async def test_at_delivery_reports_settle_the_outbox_row(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, ["1", "1", "1", "1", "2", "1", "1", "Changjon street 5", "1"])
    async with seeded_db.session() as s:
        row = (await s.exec(select(OutboundMessage))).one()
    await outbox.mark_sent(seeded_db, row.id or 0, "africastalking", "ATXid_42", utcnow())
    dlr = {"id": "ATXid_42", "phoneNumber": MSISDN, "networkCode": "99999", "retryCount": "0"}
    assert (
        await client.post("/sms/africastalking/dlr", data={**dlr, "status": "Buffered"})
    ).status == 200
    assert (
        await client.post("/sms/africastalking/dlr", data={**dlr, "status": "Success"})
    ).status == 200
    # out of order: a late in-progress report must not undo the final one
    assert (
        await client.post("/sms/africastalking/dlr", data={**dlr, "status": "Submitted"})
    ).status == 200
    async with seeded_db.session() as s:
        row = (await s.exec(select(OutboundMessage))).one()
    assert row.status == "delivered" and row.delivered_at is not None
    bad = await client.post("/sms/africastalking/dlr", data={**dlr, "status": "Lost"})
    assert bad.status == 400 and "status must be one of" in await bad.text()
    unknown = await client.post(
        "/sms/africastalking/dlr", data={**dlr, "id": "nope", "status": "Failed"}
    )
    # Someone else's message, or one whose send is not recorded yet: kept a while, no change.
    assert unknown.status == 200
