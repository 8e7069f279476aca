"""SMS keyword commands at POST /sms/africastalking, answered through the outbox."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from gateway import keys
from gateway.keywords import command
from store.db import Database
from store.models import Order, OutboundMessage
from tests.gateway.test_ussd import MSISDN, ORDER_PATH, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
OTHER = "+8501912340000"
_ids = itertools.count(1)


class Texter:
    """A subscriber sending SMS; reads back what the gateway queued for them."""

    def __init__(self, client: TestClient[Any, Any], db: Database, msisdn: str = MSISDN) -> None:
        self.client, self.db, self.msisdn = client, db, msisdn

    async def send(self, text: str, provider_id: str | None = None) -> list[str]:
        before = await self.inbox()
        form = {
            "from": self.msisdn,
            "to": "1234",
            "text": text,
            "id": provider_id or f"ATX{next(_ids)}",
        }
        response = await self.client.post("/sms/africastalking", data=form)
        assert response.status == 200
        return (await self.inbox())[len(before) :]

    async def inbox(self) -> list[str]:
        async with self.db.session() as s:
            query = select(OutboundMessage).where(OutboundMessage.to == self.msisdn)
            return [m.body for m in (await s.exec(query.order_by(col(OutboundMessage.id)))).all()]


async def ordered(client: TestClient[Any, Any], db: Database, session: str = "ATUid_1") -> str:
    await walk(client, [*ORDER_PATH, "1"], session=session)
    async with db.session() as s:
        return (await s.exec(select(Order).order_by(col(Order.id).desc()))).first().code  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" #status  abc234 ", ("STATUS", ["ABC234"])),
        ("Cancel XYZ", ("CANCEL", ["XYZ"])),
        ("상태", ("STATUS", [])),
        ("lang ko", ("LANG", ["KO"])),
        ("hello", ("", [])),
        ("", ("", [])),
    ],
)
def test_command_is_tolerant_of_case_spacing_and_hash(
    text: str, expected: tuple[str, list[str]]
) -> None:
    assert command(text) == expected


async def test_sms_status_of_my_order_and_of_my_latest(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    code = await ordered(client, seeded_db)
    me = Texter(client, seeded_db)
    assert await me.send(f"STATUS {code.lower()}") == [
        f"Okryu: order {code} is placed. Total KPW 10,000."
    ]
    assert await me.send("status") == [f"Okryu: order {code} is placed. Total KPW 10,000."]


async def test_sms_someone_elses_code_answers_like_an_unknown_one(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    code = await ordered(client, seeded_db)
    other = Texter(client, seeded_db, OTHER)
    theirs = await other.send(f"STATUS {code}")
    assert theirs == [f"Okryu: there is no order {code} for this number."]
    assert await other.send(f"CANCEL {code}") == theirs
    async with seeded_db.session() as s:
        assert (await s.exec(select(Order))).one().status == "placed"


async def test_sms_orders_lists_newest_first(make_gateway: Make, seeded_db: Database) -> None:
    client = await make_gateway()
    first = await ordered(client, seeded_db)
    second = await ordered(client, seeded_db, session="ATUid_2")
    me = Texter(client, seeded_db)
    assert await me.send("ORDERS") == [
        f"Okryu: your orders, newest first: {second} placed, {first} placed"
    ]
    assert await Texter(client, seeded_db, OTHER).send("orders") == [
        "Okryu: you have no orders yet. Dial *123# to shop."
    ]


async def test_sms_cancel_before_dispatch_and_refused_after(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    me = Texter(client, seeded_db)
    code = await ordered(client, seeded_db)
    versions = client.app[keys.GATEWAY].versions
    stock_version = await versions.redis.get(versions.keys["stock"])
    assert await me.send(f"cancel {code}") == [
        f"Okryu: order {code} is cancelled. You pay nothing."
    ]
    # the restock reaches the menus' stock figures, as a USSD or staff cancel does
    assert await versions.redis.get(versions.keys["stock"]) != stock_version
    assert await me.send(f"CANCEL {code}") == [
        f"Okryu: order {code} is cancelled; it can no longer be cancelled."
    ]
    assert await me.send("CANCEL") == [
        "Okryu: to cancel, send CANCEL and the order code, for example CANCEL ABC234."
    ]


async def test_sms_lang_switches_replies_to_korean_and_korean_keywords_work(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    code = await ordered(client, seeded_db)
    me = Texter(client, seeded_db)
    assert await me.send("LANG KO") == ["옥류: 이제부터 조선말로 보냅니다."]
    assert await me.send(f"상태 {code}") == [f"옥류: 주문 {code} 접수. 합계 10,000원."]
    assert (await me.send("도움"))[0].startswith("옥류: *123#을 눌러")
    assert await me.send("언어 영어") == ["Okryu: we will write to you in English."]


async def test_sms_anything_else_gets_help_and_retries_are_answered_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    me = Texter(client, seeded_db)
    first = await me.send("what is this", provider_id="ATXid_77")
    assert first == [
        "Okryu: dial *123# to shop. SMS commands: STATUS <code>, ORDERS, CANCEL <code>, "
        "BALANCE, LANG EN or KO, STOP (no cart reminders), HELP."
    ]
    assert await me.send("what is this", provider_id="ATXid_77") == []  # the provider retried
