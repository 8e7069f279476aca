"""Paying with a shop card and its PIN, end to end: real HTTP, real Redis, a real database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlmodel import SQLModel, col, select

from gateway import keys
from gateway.sessions import Record, trail
from menus import sms
from simulators.phone import Phone
from store import cards, orders
from store.db import Database
from store.models import Card, LedgerMovement, Order, OutboundMessage
from tests.gateway.test_sms_commands import Texter
from tests.gateway.test_ussd import MSISDN, post

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
PIN = "739146"  # six digits that appear nowhere else in a journey
NEW_PIN = "582637"
WRONG = "908172"
CHECKOUT = ["1", "1", "1", "1", "2", "1", "1", "Changjon street 5"]  # to the payment screen
TOTAL = 10_000  # what CHECKOUT's cart and district cost


async def card_for(db: Database, amount: int, msisdn: str = MSISDN) -> Card:
    issued = await cards.issue_card(db, msisdn, PIN)
    await cards.top_up(db, issued.number, amount, f"CASH-{issued.number}", actor="staff:kim",
                       render_sms=sms.card_topup)  # fmt: skip
    async with db.session() as session:
        return (await session.exec(select(Card).where(col(Card.number) == issued.number))).one()


async def balance(db: Database, card: Card) -> int:
    async with db.session() as session:
        found = (await session.exec(select(Card.balance).where(col(Card.id) == card.id))).one()
    return int(found)


async def walk(client: TestClient[Any, Any], path: list[str], session: str = "ATUid_1") -> str:
    """Every hop of ``path`` as Africa's Talking sends it: the whole path each time."""
    _, body = await post(client, "", session=session)
    for i in range(1, len(path) + 1):
        status, body = await post(client, "*".join(path[:i]), session=session)
        assert status == 200, body
    return body


async def sms_to(db: Database, msisdn: str = MSISDN) -> list[tuple[str, str]]:
    async with db.session() as session:
        query = select(OutboundMessage).where(OutboundMessage.to == msisdn)
        found = (await session.exec(query.order_by(col(OutboundMessage.id)))).all()
    return [(m.kind, m.body) for m in found]


async def test_cards_pay_for_an_order_with_card_and_pin(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    card = await card_for(seeded_db, 25_000)
    last4 = card.number[-4:]
    assert await walk(client, CHECKOUT) == (
        f"CON Payment\n1. Okryu card {last4} (KPW 25,000)\n2. Cash on delivery\n0 Back 00 Home"
    )
    assert await walk(client, [*CHECKOUT, "1"]) == (
        f"CON Pay KPW 10,000 with card {last4}\nBalance KPW 25,000\nEnter your PIN:\n0 Back 00 Home"
    )
    _, end = await post(client, "*".join([*CHECKOUT, "1", PIN]))
    assert end.startswith("END Order ") and f"Paid KPW 10,000 by card {last4}." in end
    code = end.split()[2]
    assert await balance(seeded_db, card) == 15_000
    assert (await sms_to(seeded_db))[-1] == (
        "order_placed",
        f"Okryu: order {code} placed. Paid KPW 10,000 by card {last4}; left on it:"
        f" KPW 15,000. We will SMS when it is on the way. Reply STATUS {code}",
    )


async def test_cards_pay_in_korean_and_see_the_refund_when_cancelling_by_ussd(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await orders.save_language(seeded_db, MSISDN, "ko")
    card = await card_for(seeded_db, 10_000)
    last4 = card.number[-4:]
    assert await walk(client, [*CHECKOUT, "1"]) == (
        f"CON 카드 {last4}로 10,000원 지불\n잔액 10,000원\n비밀번호:\n0 뒤로 00 처음"
    )
    _, end = await post(client, "*".join([*CHECKOUT, "1", PIN]))
    assert end.startswith("END 주문 ") and await balance(seeded_db, card) == 0
    code = end.split()[2]
    # My orders -> the order -> cancel -> yes, in a new session.
    screen = await walk(client, ["3", "1", "1", "1"], session="ATUid_2")
    assert screen.startswith("CON 주문을 취소했습니다.")
    assert await balance(seeded_db, card) == 10_000
    assert (await sms_to(seeded_db))[-1] == (
        "order_cancelled",
        f"옥류: 주문 {code} 취소. 10,000원을 카드 {last4}에 돌려드렸습니다. 잔액 10,000원.",
    )


async def test_cards_short_balance_is_refused_before_the_pin(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    card = await card_for(seeded_db, 9_999)
    screen = await walk(client, [*CHECKOUT, "1"])
    assert screen.startswith("CON Not enough on that card.\nPayment\n1. Okryu card")
    assert await balance(seeded_db, card) == 9_999
    _, cash = await post(client, "*".join([*CHECKOUT, "1", "2"]))  # cash on delivery still
    assert cash.startswith("CON Please confirm\nTotal KPW 10,000")


async def test_cards_replayed_or_raced_pin_hop_debits_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    card = await card_for(seeded_db, 50_000)
    await walk(client, [*CHECKOUT, "1"])
    pin_hop = "*".join([*CHECKOUT, "1", PIN])
    answers = await asyncio.gather(*(post(client, pin_hop) for _ in range(6)))
    again = await post(client, pin_hop)  # the aggregator's retry, after the fact
    assert {body for _, body in [*answers, again]} == {answers[0][1]}
    assert answers[0][1].startswith("END Order ")
    assert await balance(seeded_db, card) == 40_000
    async with seeded_db.session() as session:
        assert len((await session.exec(select(Order))).all()) == 1
        kinds = (await session.exec(select(LedgerMovement.kind))).all()
    assert sorted(kinds) == ["payment", "topup"]


async def test_cards_three_wrong_pins_lock_the_card_and_send_an_sms(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway(pin_lock=600)
    now = [1_800_000_000.0]
    client.app[keys.GATEWAY].clock = lambda: now[0]
    card = await card_for(seeded_db, 50_000)
    path = [*CHECKOUT, "1"]
    await walk(client, path)
    screens = []
    for wrong in ("1111", "2222", "3333"):
        path.append(wrong)
        screens.append((await post(client, "*".join(path)))[1])
    assert screens[0].startswith("CON Wrong PIN. 2 tries left.\nPay KPW 10,000")
    assert screens[1].startswith("CON Wrong PIN. 1 tries left.")
    assert screens[2].startswith("CON Card locked for 10 min.\nPay KPW 10,000")
    locked_sms = [body for kind, body in await sms_to(seeded_db) if kind == "card_locked"]
    assert locked_sms == [
        f"Okryu: 3 wrong PINs. Card {card.number[-4:]} is locked for 10 minutes."
        " Not you? Tell the shop."
    ]
    now[0] += 599  # still locked: the right PIN is refused too, and nothing is paid
    path.append(PIN)
    assert (await post(client, "*".join(path)))[1].startswith("CON Card locked for 1 min.")
    assert await balance(seeded_db, card) == 50_000
    now[0] += 1  # the lock is over
    path.append(PIN)
    assert (await post(client, "*".join(path)))[1].startswith("END Order ")
    assert await balance(seeded_db, card) == 40_000


async def test_cards_my_card_shows_the_balance_and_changes_the_pin_asking_the_old_one(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    card = await card_for(seeded_db, 17_000)
    last4 = card.number[-4:]
    assert await walk(client, ["6"]) == (
        f"CON My Okryu cards\nChoose one to change its PIN\n1. {last4}: KPW 17,000\n0 Back 00 Home"
    )
    assert (await post(client, "6*1"))[1] == (
        f"CON Card {last4}\nEnter your current PIN:\n0 Back 00 Home"
    )
    assert (await post(client, "6*1*0000"))[1].startswith("CON Wrong PIN. 2 tries left.")
    assert (await post(client, f"6*1*0000*{PIN}"))[1] == (
        f"CON Card {last4}\nEnter a new PIN (4-6 digits):\n0 Back 00 Home"
    )
    assert (await post(client, f"6*1*0000*{PIN}*12"))[1].startswith("CON A PIN is 4 to 6")
    _, done = await post(client, f"6*1*0000*{PIN}*12*{NEW_PIN}")
    assert done.startswith(
        f"CON PIN changed.\nMy Okryu cards\nChoose one to change its PIN\n1. {last4}"
    )
    # The new PIN pays; the old one no longer does (a new session: "2" starts again).
    path = ["2", *CHECKOUT, "1", PIN]
    await walk(client, path[:-1], session="ATUid_2")
    assert (await post(client, "*".join(path), session="ATUid_2"))[1].startswith("CON Wrong PIN")
    _, end = await post(client, "*".join([*path, NEW_PIN]), session="ATUid_2")
    assert end.startswith("END Order ") and await balance(seeded_db, card) == 7_000


async def test_cards_without_a_card_payment_is_cash_as_before(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    assert await walk(client, ["6"]) == (
        "CON You have no Okryu card. Ask for one at the shop counter.\n0 Back 00 Home"
    )
    # One way to pay: the payment screen is passed (issue 12), Confirm says cash.
    confirm = await walk(client, ["2", *CHECKOUT], session="ATUid_2")
    assert (
        confirm.startswith("CON Please confirm\nTotal KPW 10,000") and "Okryu card" not in confirm
    )
    assert confirm.splitlines()[2] == "Cash on delivery"


async def test_cards_balance_by_sms_in_english_and_korean(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    me = Texter(client, seeded_db)
    assert await me.send("BALANCE") == [
        "Okryu: you have no Okryu card. Ask for one at the shop counter."
    ]
    card = await card_for(seeded_db, 12_345)
    assert await me.send(" #balance ") == [f"Okryu: card {card.number[-4:]} balance KPW 12,345."]
    await orders.save_language(seeded_db, MSISDN, "ko")
    assert await me.send("잔액") == [f"옥류: 카드 {card.number[-4:]} 잔액 12,345원."]


async def test_cards_cancel_by_sms_refunds_once_and_says_so(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    card = await card_for(seeded_db, 10_000)
    await walk(client, [*CHECKOUT, "1"])
    _, end = await post(client, "*".join([*CHECKOUT, "1", PIN]))
    code = end.split()[2]
    me = Texter(client, seeded_db)
    sent = await me.send(f"CANCEL {code}")
    assert sent == [
        f"Okryu: order {code} is cancelled. KPW 10,000 is back on card {card.number[-4:]};"
        " balance KPW 10,000."
    ]
    assert await me.send(f"CANCEL {code}") == [
        f"Okryu: order {code} is cancelled; it can no longer be cancelled."
    ]
    assert await balance(seeded_db, card) == 10_000


# --- the PIN is secret everywhere -----------------------------------------------------------------


async def everything_in_redis(redis: Redis, prefix: str) -> str:
    found = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=500):
        found.append(key.decode(errors="replace"))
        kind = (await redis.type(key)).decode()
        if kind == "string":
            found.append((await redis.get(key) or b"").decode(errors="replace"))
        elif kind == "hash":
            found.append(repr(await redis.hgetall(key)))
        elif kind == "list":
            found.append(repr(await redis.lrange(key, 0, -1)))
        elif kind == "set":
            found.append(repr(await redis.smembers(key)))
        elif kind == "zset":
            found.append(repr(await redis.zrange(key, 0, -1, withscores=True)))
        elif kind == "stream":
            found.append(repr(await redis.xrange(key)))
    return "\n".join(found)


async def everything_in_the_database(db: Database) -> str:
    found = []
    async with db.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            result = await connection.execute(text(f'SELECT * FROM "{table.name}"'))
            found += [repr(tuple(row)) for row in result]
    return "\n".join(found)


@pytest.mark.parametrize("dialect", ["africastalking", "hubtel"])
async def test_cards_pin_is_nowhere_in_clear_after_a_full_journey(
    make_gateway: Make,
    seeded_db: Database,
    redis: Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    dialect: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_gateway(access_log=True)
    card = await card_for(seeded_db, 30_000)
    async with Phone(str(client.make_url(f"/ussd/{dialect}")), MSISDN, dialect=dialect) as phone:
        await phone.dial("*123#")
        for answer in [*CHECKOUT, "1", WRONG, PIN]:  # a wrong PIN, then the right one
            screen = await phone.send(answer)
        assert screen.text.startswith("Order ") and screen.end
        await phone.dial("*123#")
        for answer in ["6", "1", PIN, NEW_PIN]:  # and the PIN changed
            screen = await phone.send(answer)
        assert screen.text.startswith("PIN changed.")
    assert await balance(seeded_db, card) == 20_000
    stored = await everything_in_redis(redis, redis_prefix)
    assert MSISDN in stored  # the scan reads what the sessions keep
    logged = "\n".join([record.getMessage() for record in caplog.records] + [caplog.text])
    assert "/ussd/" in logged  # the access log was on and captured
    rows = await everything_in_the_database(seeded_db)
    assert card.pin_hash in rows or card.number in rows  # the scan reads every table
    for secret in (PIN, NEW_PIN, WRONG):
        assert secret not in stored, "a PIN in Redis"
        assert secret not in logged, "a PIN in the logs"
        assert secret not in rows, "a PIN in the database"
    # Nor in a form that gives it away for the asking: the digest of the path that holds it.
    record = Record.loads(await redis.get(f"{redis_prefix}s:{{*123#:{MSISDN}}}"))
    assert record is not None and record.last not in (PIN, NEW_PIN)
    assert record.trail not in (trail(["6", "1", PIN, NEW_PIN]), trail(["6", "1", PIN]))
    metrics = await (await client.get("/metrics")).text()
    assert all(secret not in metrics for secret in (PIN, NEW_PIN, WRONG))


async def test_cards_scenarios_pay_in_english_then_korean_and_cancel_with_a_refund(
    make_gateway: Make, seeded_db: Database
) -> None:
    from pathlib import Path

    from simulators.scenario import parse_scenario, run_scenario

    client = await make_gateway()
    card = await cards.issue_card(seeded_db, MSISDN, "2468")
    await cards.top_up(seeded_db, card.number, 30_000, "DEMO-1", actor="staff",
                       render_sms=sms.card_topup)  # fmt: skip
    folder = Path(__file__).parents[2] / "scenarios" / "cards"
    for name in ("pay_by_card_english.scn", "pay_by_card_korean.scn"):
        result = await run_scenario(
            parse_scenario((folder / name).read_text(), name),
            url=str(client.make_url("/ussd/africastalking")),
            msisdn=MSISDN,
            dialect="africastalking",
            drain=client.app[keys.DISPATCHER].run_once,
        )
        assert result.passed, result.report()
    assert (await cards.get_card(seeded_db, card.number)).balance == 26_600


async def test_cards_wrong_pin_retried_by_an_aggregator_without_hop_numbers_counts_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    now = [1_800_000_000.0]
    client.app[keys.GATEWAY].clock = lambda: now[0]
    card = await card_for(seeded_db, 50_000)

    async def arkesel(data: str, new: bool = False) -> str:
        body = {"sessionID": "ark-1", "userID": "OKRYU", "newSession": new,
                "msisdn": MSISDN[1:], "userData": data, "network": "MTN"}  # fmt: skip
        response = await client.post("/ussd/arkesel", json=body)
        assert response.status == 200
        message: str = (await response.json())["message"]
        return message

    await arkesel("*123#", new=True)
    for answer in [*CHECKOUT, "1"]:
        now[0] += 5  # a subscriber reading and typing
        await arkesel(answer)
    now[0] += 5
    first = await arkesel("1111")
    now[0] += 0.3  # the aggregator's retry: the same hop, before any human could answer
    assert (
        await arkesel("1111")
        == first
        == (
            f"Wrong PIN. 2 tries left.\nPay KPW 10,000 with card {card.number[-4:]}\n"
            "Balance KPW 50,000\nEnter your PIN:\n0 Back 00 Home"
        )
    )
    async with seeded_db.session() as session:
        tries = (await session.exec(select(Card.failed_pins).where(col(Card.id) == card.id))).one()
    assert tries == 1
    now[0] += 5
    assert (await arkesel(PIN)).startswith("Order ")
