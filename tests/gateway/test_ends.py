"""Ended sessions are recorded; an abandoned cart gets one reminder, and STOP stops them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from gateway import keys
from gateway.messages import SessionEnd
from store.db import Database
from store.models import Customer, OutboundMessage, UssdSessionEnd
from tests.gateway.test_ussd import MSISDN, post, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


def ended(status: str, session: str = "ATUid_1") -> SessionEnd:
    return SessionEnd(
        "africastalking",
        session,
        MSISDN,
        "*123#",
        status,
        hops=6,
        duration_ms=42_000,
        last_screen="Cart (1): KPW 9,000",
    )


async def messages(db: Database, kind: str | None = None) -> list[OutboundMessage]:
    async with db.session() as s:
        query = select(OutboundMessage).order_by(col(OutboundMessage.id))
        rows = (await s.exec(query)).all()
    return [m for m in rows if kind is None or m.kind == kind]


async def test_ends_are_recorded_with_status_hops_screen_and_duration(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await post(client, "")
    assert not await client.app[keys.ENDS].record(ended("completed"))
    async with seeded_db.session() as s:
        (row,) = (await s.exec(select(UssdSessionEnd))).all()
    assert (row.status, row.hops, row.duration_ms, row.last_screen) == (
        "completed",
        6,
        42_000,
        "Cart (1): KPW 9,000",
    )


async def test_ends_abandoned_cart_gets_one_reminder_per_cart(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    ends = client.app[keys.ENDS]
    await walk(client, ["1", "1", "1", "1", "2"])
    assert await ends.record(ended("abandoned"))
    assert not await ends.record(ended("abandoned"))  # the same cart, cut again
    _, _ = await post(client, "", session="ATUid_2")
    assert not await ends.record(ended("abandoned", session="ATUid_2"))
    (reminder,) = await messages(seeded_db, "cart_reminder")
    assert reminder.to == MSISDN and "Dial *123# to finish" in reminder.body
    assert reminder.next_attempt_at > reminder.created_at  # after a delay, not at once


async def test_ends_no_reminder_without_a_cart_or_when_not_abandoned(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    ends = client.app[keys.ENDS]
    await walk(client, ["1", "1"])
    assert not await ends.record(ended("abandoned"))  # nothing in the cart
    await walk(client, ["1", "1", "1", "1", "2"], session="ATUid_2")
    assert not await ends.record(ended("released", session="ATUid_2"))
    assert await messages(seeded_db, "cart_reminder") == []


async def test_ends_placing_the_order_cancels_a_queued_reminder(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, ["1", "1", "1", "1", "2"])
    assert await client.app[keys.ENDS].record(ended("abandoned"))
    await post(client, "", session="ATUid_2")
    await post(client, "2", session="ATUid_2")  # start again: home, cart kept
    await walk(client, ["2", "1", "1", "Changjon street 5", "1"], session="ATUid_3")
    (reminder,) = await messages(seeded_db, "cart_reminder")
    assert reminder.status == "cancelled"


async def test_sms_stop_opts_out_of_reminders_and_is_answered_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    form = {"from": MSISDN, "to": "12345", "text": " #stop ", "id": "ATXid_1", "date": "2026-11-28"}
    for _ in range(2):  # the provider retries: one opt-out, one reply
        response = await client.post("/sms/africastalking", data=form)
        assert response.status == 200
    async with seeded_db.session() as s:
        customer = (await s.exec(select(Customer).where(Customer.msisdn == MSISDN))).one()
    assert customer.reminders_opt_out
    (reply,) = await messages(seeded_db, "reply")
    assert reply.body.startswith("Okryu: you will get no more reminders.")
    await walk(client, ["1", "1", "1", "1", "2"])
    assert not await client.app[keys.ENDS].record(ended("abandoned"))


async def test_sms_anything_else_gets_help(make_gateway: Make, seeded_db: Database) -> None:
    client = await make_gateway()
    response = await client.post(
        "/sms/africastalking", data={"from": MSISDN, "to": "1", "text": "hello?"}
    )
    assert response.status == 200
    (reply,) = await messages(seeded_db, "reply")
    assert reply.body.startswith("Okryu: dial *123# to shop.")


async def test_sms_inbound_missing_sender_gets_400(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.post("/sms/africastalking", data={"text": "STOP"})
    assert response.status == 400 and "from" in await response.text()
