"""Whole journeys through the headless handset, over real HTTP, against the real app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from gateway import keys
from menus.screens import Budget, fits
from simulators.phone import Display, Phone
from simulators.smsink import SmsSink
from store.db import Database
from store.models import Order, OutboundMessage, Product
from tests.gateway_fixtures import AT_PATH
from tests.store.factories import product_by_sku, set_product

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
BUDGET = Budget()


class Shopper:
    """A phone that checks every screen it is shown against the screen budget."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.screens: list[Display] = []

    async def dial(self) -> Display:
        return self._see(await self.phone.dial("*123#"))

    async def press(self, *answers: str) -> Display:
        screen: Display | None = None
        for answer in answers:
            screen = self._see(await self.phone.send(answer))
        assert screen is not None
        return screen

    def _see(self, screen: Display) -> Display:
        assert screen.status == 200, screen.raw
        assert fits(screen.text, BUDGET), screen.text
        self.screens.append(screen)
        return screen


def url(client: TestClient[Any, Any]) -> str:
    return str(client.make_url(AT_PATH))


async def order_journey(shopper: Shopper, address: str) -> Display:
    await shopper.dial()
    await shopper.press(
        "1", "1", "2", "1", "2", "1", "1"
    )  # food, 2nd product, 2 of them, checkout, district
    await shopper.press(address)  # cash on delivery, the one way to pay, is chosen for them
    return await shopper.press("1")  # confirm


async def test_journey_full_order_in_english_with_sms_in_the_inbox(make_gateway: Make) -> None:
    client = await make_gateway()
    async with Phone(url(client), "+8501912345678") as phone:
        shopper = Shopper(phone)
        placed = await order_journey(shopper, "Changjon street 5")
        assert placed.end and placed.text.startswith("Order ")
        code = placed.text.split()[1]
        assert await client.app[keys.DISPATCHER].run_once() == 1
        inbox = await phone.inbox()
    assert [sms.body.split()[2] for sms in inbox] == [code]
    assert inbox[0].body.startswith(f"Okryu: order {code} placed.")


async def test_journey_full_order_in_korean(make_gateway: Make, seeded_db: Database) -> None:
    client = await make_gateway()
    async with Phone(url(client), "+8501912345679") as phone:
        shopper = Shopper(phone)
        await shopper.dial()
        home = await shopper.press("4", "2")
        assert home.text.startswith("언어: 조선말\n옥류상점")
        phone.hang_up()
        placed = await order_journey(shopper, "평양시 중구역 창전거리 5")
        assert placed.end and placed.text.startswith("주문 ")
        code = placed.text.split()[1]
        await client.app[keys.DISPATCHER].run_once()
        (sms,) = await phone.inbox()
    assert sms.body.startswith(f"옥류: 주문 {code} 접수.")
    async with seeded_db.session() as s:
        order = (await s.exec(select(Order))).one()
    assert order.language == "ko" and order.address == "평양시 중구역 창전거리 5"


async def test_journey_sms_reaches_the_africastalking_url_exactly_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    sink = SmsSink(api_key="k3y")
    async with TestServer(sink.app) as sink_server:
        client = await make_gateway(
            sms_provider="africastalking",
            at_sms_url=str(sink_server.make_url("/version1/messaging")),
            at_username="okryu",
            at_api_key="k3y",
            sms_sender="OKRYU",
            sms_dispatch=True,  # the real background loop, woken by the order
        )
        sink.fail_next(1)  # the first attempt meets a 500 and is retried
        async with Phone(url(client), "+8501912345678") as phone:
            placed = await order_journey(Shopper(phone), "Changjon street 5")
        code = placed.text.split()[1]
        dispatcher = client.app[keys.DISPATCHER]
        messages = await sink.wait_for(1, timeout=15)
        for _ in range(3):  # more passes find nothing more to send
            await dispatcher.run_once()
        # The sink has the message once the background loop sent it; the loop records the
        # send after the answer. Read the row until it has (each read a round trip, no sleep).
        for _ in range(1000):
            async with seeded_db.session() as s:
                row = (await s.exec(select(OutboundMessage))).one()
            if row.status != "sending":
                break
    assert len(sink.messages) == 1
    assert messages[0].to == "+8501912345678" and code in messages[0].message
    assert messages[0].sender == "OKRYU" and messages[0].username == "okryu"
    assert (row.status, row.provider_message_id) == ("sent", messages[0].id)


async def test_journey_two_buyers_race_for_the_last_unit(
    make_gateway: Make, seeded_db: Database
) -> None:
    noodles = await product_by_sku(seeded_db, "FD-CORNNOODLE")  # the first product of Food
    product_id = noodles.id
    await set_product(seeded_db, product_id, stock=1)  # type: ignore[arg-type]
    client = await make_gateway()
    await client.app[keys.GATEWAY].versions.bump("catalog")
    shoppers = []
    for n in (1, 2):
        phone = Phone(url(client), f"+85019123456{n}0")
        shopper = Shopper(phone)
        await shopper.dial()
        await shopper.press("1", "1", "1", "1", "1", "1", "1", f"Street {n} house {n}")
        shoppers.append(shopper)
    try:
        results = await asyncio.gather(*(s.press("1") for s in shoppers))
    finally:
        for s in shoppers:
            await s.phone.close()
    placed = [r for r in results if r.end]
    refused = [r for r in results if not r.end]
    assert len(placed) == 1 and len(refused) == 1
    assert refused[0].text.startswith("Some items ran out; cart updated.\nYour cart is empty.")
    async with seeded_db.session() as s:
        assert len((await s.exec(select(Order))).all()) == 1
        assert (await s.get(Product, product_id)).stock == 0  # type: ignore[union-attr]


async def test_journey_my_orders_shows_only_my_orders(make_gateway: Make) -> None:
    client = await make_gateway()
    async with (
        Phone(url(client), "+8501912345678") as mine,
        Phone(url(client), "+8501912340000") as theirs,
    ):
        placed = await order_journey(Shopper(mine), "Changjon street 5")
        code = placed.text.split()[1]
        other = Shopper(theirs)
        await other.dial()
        assert (await other.press("3")).text.startswith("You have no orders yet.")
        me = Shopper(mine)
        await me.dial()
        listing = await me.press("3")
        assert listing.text.startswith(f"My orders\n1. {code} Placed")
        detail = await me.press("1")
        assert detail.text.startswith(f"Order {code}\nPlaced")
