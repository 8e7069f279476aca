"""POST /ussd/africastalking against the real app, real Redis and a real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import event, func
from sqlmodel import select

from gateway import keys, sessions
from gateway.sessions import Record, SessionStore
from store.db import Database
from store.models import Order, OutboundMessage, Product
from tests.gateway_fixtures import AT_PATH, RoundTrips
from tests.store.factories import product_by_sku, set_product

MSISDN = "+8501912345678"
Make = Callable[..., Awaitable[TestClient[Any, Any]]]


def hop(text: str, session: str = "ATUid_1", phone: str = MSISDN) -> dict[str, str]:
    return {
        "sessionId": session,
        "serviceCode": "*123#",
        "phoneNumber": phone,
        "networkCode": "99999",
        "text": text,
    }


async def post(client: TestClient[Any, Any], text: str, **kw: str) -> tuple[int, str]:
    response = await client.post(AT_PATH, data=hop(text, **kw))
    return response.status, await response.text()


ORDER_PATH = ["1", "1", "1", "1", "2", "1", "1", "Changjon street 5"]  # then Confirm


async def walk(
    client: TestClient[Any, Any], inputs: list[str], session: str = "ATUid_1", phone: str = MSISDN
) -> str:
    status, body = await post(client, "", session=session, phone=phone)
    assert status == 200
    for i in range(1, len(inputs) + 1):
        status, body = await post(client, "*".join(inputs[:i]), session=session, phone=phone)
        assert status == 200, body
    return body


async def count(db: Database, model: Any) -> int:
    async with db.session() as s:
        return int((await s.exec(select(func.count()).select_from(model))).one())


async def test_ussd_first_hop_answers_con_home_screen(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.post(AT_PATH, data=hop(""))
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert (
        await response.text()
        == "CON Okryu Shop\n1. Shop\n2. Cart (0)\n3. My orders\n4. Language\n5. Help\n6. My card"
    )


async def test_ussd_order_ends_with_the_code_and_queues_one_sms(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    status, body = await post(client, "*".join([*ORDER_PATH, "1"]))
    assert status == 200 and body.startswith("END Order ")
    code = body.split()[2]
    async with seeded_db.session() as s:
        order = (await s.exec(select(Order))).one()
        sms = (await s.exec(select(OutboundMessage))).one()
    assert order.code == code and order.msisdn == MSISDN and order.address == "Changjon street 5"
    assert sms.to == MSISDN and code in sms.body and sms.status == "queued"


async def test_ussd_replayed_confirm_places_one_order_and_one_sms(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    confirm = "*".join([*ORDER_PATH, "1"])
    first = await post(client, confirm)
    again = await post(client, confirm)
    assert first == again
    assert await count(seeded_db, Order) == 1
    assert await count(seeded_db, OutboundMessage) == 1


async def test_ussd_session_id_used_again_after_the_record_expired_orders_anew(
    make_gateway: Make, seeded_db: Database
) -> None:
    # An aggregator that hands out a session id again once the subscriber's record is gone
    # (a day later, OKRYU_CART_TTL) must not have the new checkout answered with the old
    # order: its keys carry the record's own random part, not only the session id.
    client = await make_gateway()
    confirm = "*".join([*ORDER_PATH, "1"])
    await walk(client, ORDER_PATH)
    _, first = await post(client, confirm)
    gateway = client.app[keys.GATEWAY]
    await client.app[keys.REDIS].delete(gateway.sessions.key("*123#", MSISDN))  # expired

    await walk(client, ORDER_PATH)
    _, second = await post(client, confirm)

    assert first.startswith("END Order ") and second.startswith("END Order ")
    assert first.split()[2] != second.split()[2]  # a code of its own
    async with seeded_db.session() as s:
        codes = sorted(o.code for o in (await s.exec(select(Order))).all())
        sms = (await s.exec(select(OutboundMessage))).all()
    assert codes == sorted([first.split()[2], second.split()[2]])
    assert [m.kind for m in sms] == ["order_placed", "order_placed"]


async def test_ussd_first_hop_sent_twice_at_once_to_a_new_record_orders_once(
    make_gateway: Make, seeded_db: Database
) -> None:
    # A returning shopper whose record expired dials a shortcut to the confirm (the saved
    # address), and the aggregator sends that first hop again while the first is still out.
    # Both run with no record: they must key the order alike, and place it once.
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    await post(client, "*".join([*ORDER_PATH, "1"]))
    gateway = client.app[keys.GATEWAY]
    await client.app[keys.REDIS].delete(gateway.sessions.key("*123#", MSISDN))  # expired
    shortcut = "*123*" + "*".join([*ORDER_PATH[:-1], "1", "1"]) + "#"  # saved address, Confirm
    form = {**hop("", session="ATUid_9"), "serviceCode": shortcut}

    first, again = await asyncio.gather(
        client.post(AT_PATH, data=form), client.post(AT_PATH, data=form)
    )

    answers = {await first.text(), await again.text()}
    assert len(answers) == 1 and answers.pop().startswith("END Order ")
    assert await count(seeded_db, Order) == 2  # the first session's, and this one
    assert await count(seeded_db, OutboundMessage) == 2


async def test_ussd_replayed_browsing_hop_answers_the_same_and_moves_nothing(
    make_gateway: Make,
) -> None:
    client = await make_gateway()
    await post(client, "")
    first = await post(client, "1")
    assert await post(client, "1") == first
    # had the replay been applied as a new input, this would be a product list
    assert (await post(client, "1*2"))[1].startswith("CON Medicine")


async def test_ussd_late_hop_shows_the_current_screen_and_changes_nothing(
    make_gateway: Make,
) -> None:
    client = await make_gateway()
    await post(client, "")
    await post(client, "1")
    current = await post(client, "1*1")
    late = await post(client, "2")  # an earlier hop that lost its way in the network
    assert late == current
    assert (await post(client, "1*1*0"))[1].startswith("CON Categories")


async def test_ussd_cut_session_offers_to_resume_where_it_left_off(make_gateway: Make) -> None:
    client = await make_gateway()
    cart = await walk(client, ["1", "1", "1", "1", "2"])
    status, body = await post(client, "", session="ATUid_2")
    assert body == "CON Continue where you left off?\n1. Yes\n2. Start again"
    assert await post(client, "1", session="ATUid_2") == (status, cart)


async def test_ussd_start_again_goes_home_with_the_cart(make_gateway: Make) -> None:
    client = await make_gateway()
    await walk(client, ["1", "1", "1", "1", "2"])
    await post(client, "", session="ATUid_2")
    _, body = await post(client, "2", session="ATUid_2")
    assert body.startswith("CON Okryu Shop\n1. Shop\n2. Cart (1)")


async def test_ussd_no_resume_after_the_window_or_from_home(make_gateway: Make) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    now = [1_000_000.0]
    gateway.clock = lambda: now[0]
    await walk(client, ["1", "1"])
    now[0] += gateway.resume_ttl + 1
    _, body = await post(client, "", session="ATUid_2")
    assert body.startswith("CON Okryu Shop")  # too late to resume
    _, body = await post(client, "", session="ATUid_3")
    assert body.startswith("CON Okryu Shop")  # left at home: nothing to resume


async def test_ussd_finished_order_clears_the_resume_point(make_gateway: Make) -> None:
    client = await make_gateway()
    await walk(client, [*ORDER_PATH, "1"])
    _, body = await post(client, "", session="ATUid_2")
    assert body.startswith("CON Okryu Shop\n1. Shop\n2. Cart (0)")


async def test_ussd_subscribers_do_not_share_sessions(make_gateway: Make) -> None:
    client = await make_gateway()
    other = {"session": "ATUid_9", "phone": "+8501912340000"}
    await post(client, "")
    await post(client, "1")
    assert (await post(client, "", **other))[1].startswith("CON Okryu Shop")
    assert (await post(client, "4", **other))[1].startswith("CON Language")
    assert (await post(client, "1*1"))[1].startswith("CON Food")


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"serviceCode": "*123#", "phoneNumber": MSISDN, "text": ""}, "missing field sessionId"),
        ({"sessionId": "a", "phoneNumber": MSISDN, "text": ""}, "missing field serviceCode"),
        ({"sessionId": "a", "serviceCode": "*123#", "text": ""}, "missing field phoneNumber"),
        ({"sessionId": "a", "serviceCode": "*123#", "phoneNumber": MSISDN}, "missing field text"),
        ({**hop(""), "sessionId": " "}, "sessionId is empty"),
        ({**hop(""), "phoneNumber": "not-a-number"}, "phone number is not a phone number"),
        ({**hop(""), "phoneNumber": "+8501"}, "phone number is not a phone number"),
        ({**hop(""), "text": "1*" * 4500}, "field text is too long (at most 8000 characters)"),
    ],
)
async def test_ussd_bad_fields_get_400_with_the_reason(
    make_gateway: Make, form: dict[str, str], reason: str
) -> None:
    client = await make_gateway()
    response = await client.post(AT_PATH, data=form)
    assert response.status == 400
    assert await response.text() == reason


async def test_ussd_json_body_gets_415(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.post(AT_PATH, json=hop(""))
    assert response.status == 415
    assert "form-encoded" in await response.text()


async def test_ussd_unreadable_body_gets_400(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.post(
        AT_PATH,
        data=b"sessionId=%ff%fe&text=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status < 500


async def test_ussd_get_is_not_allowed(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.get(AT_PATH)
    assert response.status == 405


async def test_ussd_browsing_hop_costs_two_redis_trips_and_no_sql(
    make_gateway: Make, counting_redis: tuple[Any, RoundTrips]
) -> None:
    redis, trips = counting_redis
    client = await make_gateway(redis=redis, catalog_poll=3600.0)  # no re-read in the count
    db = client.app[keys.DATABASE]
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    await walk(client, ["1", "1"])  # warm: the customer is known, the catalog loaded
    for text in ["1*1*98", "1*1*98*1", "1*1*98*1*0", "1*1*98*1*0*00"]:
        trips.count, statements[:] = 0, []
        status, _ = await post(client, text)
        assert status == 200
        assert (trips.count, statements) == (2, []), text


async def test_ussd_catalog_change_reaches_the_next_hop(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await post(client, "")
    noodles = await product_by_sku(seeded_db, "FD-CORNNOODLE")  # the first product of Food
    await set_product(seeded_db, noodles.id, name_en="Renamed noodles")  # type: ignore[arg-type]
    await client.app[keys.GATEWAY].versions.bump("catalog")
    _, body = await post(client, "1*1")
    assert "1. Renamed noodles" in body


async def test_ussd_session_record_stays_small(make_gateway: Make, redis_prefix: str) -> None:
    client = await make_gateway()
    await walk(client, ["1", "1", "1", "1", "2", "0", "2", "1", "3", "0", "0", "2", "1", "1"])
    raw = await client.app[keys.REDIS].get(f"{redis_prefix}s:{{*123#:{MSISDN}}}")
    assert raw is not None and len(raw) < 1024


async def test_healthz_and_readyz(make_gateway: Make) -> None:
    client = await make_gateway()
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 200 and (await response.json())["status"] == "ok"


async def test_ussd_concurrent_retries_answer_alike_and_move_once(make_gateway: Make) -> None:
    client = await make_gateway()
    await post(client, "")
    await post(client, "1")
    answers = await asyncio.gather(*(post(client, "1*1") for _ in range(12)))
    assert len(set(answers)) == 1 and answers[0][1].startswith("CON Food")
    _, body = await post(client, "1*1*1")  # one step from Food: a product, not further
    assert body.startswith("CON Corn noodles\nKPW 4,500")


async def test_ussd_concurrent_confirms_place_one_order(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    await walk(client, ORDER_PATH)
    confirm = "*".join([*ORDER_PATH, "1"])
    answers = await asyncio.gather(*(post(client, confirm) for _ in range(8)))
    assert len(set(answers)) == 1 and answers[0][1].startswith("END Order ")
    assert await count(seeded_db, Order) == 1
    assert await count(seeded_db, OutboundMessage) == 1


async def test_session_store_compare_and_set_lets_one_writer_win(
    redis: Any, redis_prefix: str
) -> None:
    store = SessionStore(redis, redis_prefix, ttl=60)
    key = store.key("*123#", MSISDN)
    assert await store.save(key, Record(version=0, ref="a", state="home"))
    first = Record.loads(await store.load(key))
    assert first is not None and first.version == 1
    results = await asyncio.gather(
        store.save(key, Record(version=1, ref="a", state="categories")),
        store.save(key, Record(version=1, ref="a", state="cart")),
    )
    assert sorted(results) == [False, True]
    stored = Record.loads(await store.load(key))
    assert stored is not None and stored.version == 2
    assert stored.state in ("categories", "cart")
    assert not await store.save(key, Record(version=1, ref="a", state="help"))  # stale
    await store.close()


async def test_ussd_shortcut_dial_in_the_service_code_lands_in_one_hop(make_gateway: Make) -> None:
    client = await make_gateway()
    form = {**hop(""), "serviceCode": "*123*1*2#"}
    response = await client.post(AT_PATH, data=form)
    assert (await response.text()).startswith("CON Medicine\n1. ")
    response = await client.post(AT_PATH, data={**form, "text": "1"})  # then typed answers
    assert "1. Add to cart" in await response.text()


async def test_ussd_shortcut_that_turns_invalid_stops_with_the_reason(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.post(AT_PATH, data={**hop(""), "serviceCode": "*123*1*9*1#"})
    assert (await response.text()).startswith("CON Invalid choice. Try again.\nCategories\n1. Food")


async def test_ussd_customer_cancels_before_dispatch_and_is_told_by_sms(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    async with seeded_db.session() as s:
        before = (await s.exec(select(Product.stock).where(Product.sku == "FD-CORNNOODLE"))).one()
    await walk(client, [*ORDER_PATH, "1"])
    body = await walk(client, ["3", "1", "1", "1"], session="ATUid_2")
    assert body.startswith("CON Order cancelled.\nOrder ")
    async with seeded_db.session() as s:
        order = (await s.exec(select(Order))).one()
        after = (await s.exec(select(Product.stock).where(Product.sku == "FD-CORNNOODLE"))).one()
        kinds = [m.kind for m in (await s.exec(select(OutboundMessage))).all()]
    assert order.status == "cancelled" and after == before
    assert kinds == ["order_placed", "order_cancelled"]


async def test_ussd_session_of_the_first_release_goes_on_after_the_deploy(
    make_gateway: Make, redis: Redis, redis_prefix: str
) -> None:
    # A session saved by the first release (its context under the old names, no journey
    # version) at a screen this release renamed: the next hop lands home with one line
    # saying so, and the cart is still there.
    client = await make_gateway()
    store = SessionStore(redis, redis_prefix, 600)
    old = {"lang": "en", "cart": [[1, 2]], "cid": "ATUid_1.0", "hist": [["home", 0]], "z": 1}
    stored = sessions.walk(["2"])
    record = Record(ref="ATUid_1", **stored, hops=2, state="basket", ctx=old, at=time.time())
    assert await store.save(store.key("*123#", MSISDN), record)
    await store.close()
    _, body = await post(client, "2*1")
    assert body.startswith(
        "CON The menu has changed since your last step.\nOkryu Shop\n1. Shop\n2. Cart (1)"
    )
    _, body = await post(client, "2*1*2")
    assert body.startswith("CON Cart (1): KPW 9,000\n2 x Corn noodles")


async def test_ussd_a_long_session_goes_on_and_its_record_stays_small(
    make_gateway: Make, redis: Redis, redis_prefix: str
) -> None:
    # Africa's Talking repeats every input on every hop: 40 trips to the address and back,
    # each with a 60-character address, is a path of over 2,000 characters.
    client = await make_gateway()
    path = ORDER_PATH[:7]
    await walk(client, path)
    address = "Apartment 12-345, Ryomyong Street, Central District, Pyongya"
    for _ in range(40):
        path += [address, "0"]
        status, body = await post(client, "*".join(path))
        assert (status, body.startswith("CON Delivery address?")) == (200, True), body
    assert len("*".join(path)) > 2000
    raw = await redis.get(SessionStore(redis, redis_prefix, 600).key("*123#", MSISDN))
    assert raw is not None and len(raw) < 1024
