"""Hostile callers and careless networks, over HTTP against the real app: no 5xx, nothing
half-stored, no SMS pumped to numbers the shop does not serve, no callback open by mistake."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlmodel import select

from gateway import keys
from gateway.app import create_app
from gateway.auth import CallbackAuth
from gateway.callbacks import warn_open
from gateway.edge import edged
from gateway.settings import Settings, SettingsError
from store.db import Database
from store.models import Customer, InboundMessage, Order, OutboundMessage, UssdSessionEnd
from tests.gateway.test_callbacks import EVENTS, end_form
from tests.gateway.test_sms_commands import Texter, ordered
from tests.gateway.test_ussd import MSISDN, ORDER_PATH, count, hop, post, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
FOREIGN = "+447700900123"
SMS = "/sms/africastalking"
DLR = "/sms/africastalking/dlr"
PRODUCTION = Settings(demo=False, admin_token="t0ken", host="0.0.0.0")


# --- callbacks are authenticated by default -------------------------------------------------


def test_production_refuses_to_start_with_open_callbacks() -> None:
    with pytest.raises(SettingsError) as error:
        create_app(PRODUCTION)
    message = str(error.value)
    for name in ("africastalking", "hubtel", "arkesel", "nalo", "hollatags"):
        assert name in message
    for variable in ("OKRYU_CALLBACK_SECRETS", "OKRYU_CALLBACK_ALLOW", "OKRYU_CALLBACK_OPEN"):
        assert variable in message


def test_production_starts_once_every_served_callback_is_authenticated() -> None:
    with pytest.raises(SettingsError, match="hubtel"):  # one left open is one too many
        create_app(
            dataclasses.replace(
                PRODUCTION,
                channels=("africastalking", "hubtel"),
                callback_auth={"africastalking": CallbackAuth(secret="x")},
            )
        )
    create_app(
        dataclasses.replace(
            PRODUCTION,
            channels=("africastalking", "hubtel"),
            callback_auth={
                "africastalking": CallbackAuth(secret="x"),
                "hubtel": CallbackAuth(secret="y"),
            },
        )
    )
    with pytest.raises(SettingsError, match="OKRYU_CHANNELS names unknown channels nope"):
        create_app(dataclasses.replace(PRODUCTION, channels=("nope",)))


def test_production_runs_open_only_when_told_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(dataclasses.replace(PRODUCTION, callback_open=frozenset({"*"})))
    with caplog.at_level(logging.WARNING, logger="okryu.callbacks"):
        warn_open(app)  # okryu serve says it once it serves
    assert "callbacks on africastalking, arkesel, hollatags, hubtel, nalo are open" in caplog.text
    create_app(dataclasses.replace(PRODUCTION, channels=("nalo",), callback_open={"nalo"}))
    with pytest.raises(SettingsError, match="nalo"):
        create_app(dataclasses.replace(PRODUCTION, channels=("nalo",), callback_open={"hubtel"}))


def test_settings_read_the_callback_and_reply_policy_variables() -> None:
    settings = Settings.from_env(
        {
            "OKRYU_CALLBACK_OPEN": "hubtel, nalo",
            "OKRYU_CHANNELS": "hubtel,nalo",
            "OKRYU_SMS_REGIONS": "kp, cn",
            "OKRYU_SMS_REPLIES_PER_SENDER": "3",
            "OKRYU_SMS_REPLIES_PER_HOUR": "50",
        }
    )
    assert settings.callback_open == {"hubtel", "nalo"}
    assert settings.channels == ("hubtel", "nalo")
    assert settings.reply_regions == ("KP", "CN")
    assert (settings.sms_replies_per_sender, settings.sms_replies_per_hour) == (3, 50)
    assert Settings.from_env({}).reply_regions == ("KP",)  # the default region
    with pytest.raises(SettingsError, match="OKRYU_SMS_REGIONS takes ISO 3166 region codes"):
        Settings.from_env({"OKRYU_SMS_REGIONS": "Korea"})


async def test_loopback_production_takes_no_proxied_request_on_an_open_callback(
    make_gateway: Make,
) -> None:
    # Listening on loopback only, an open callback is reachable from this host alone; a
    # request a reverse proxy forwards came from anywhere, and is refused.
    client = await make_gateway(demo=False, admin_token="t0ken", host="127.0.0.1")
    assert (await client.post("/ussd/africastalking", data=hop(""))).status == 200
    proxied = await client.post(
        "/ussd/africastalking", data=hop(""), headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert (proxied.status, await proxied.text()) == (403, "forbidden")


async def test_unserved_channels_have_no_endpoint(make_gateway: Make) -> None:
    client = await make_gateway(channels=("hubtel",))
    assert (await client.post("/ussd/africastalking", data=hop(""))).status == 404
    assert (await client.post(SMS, data={"from": MSISDN, "text": "HELP"})).status == 404
    assert (await client.post(EVENTS, data=end_form())).status == 404


async def raw_post(client: TestClient[Any, Any], path: str, headers: bytes, body: bytes) -> bytes:
    """A request written byte by byte: headers no HTTP client library will send."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + headers
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer.split(b"\r\n", 1)[0]


async def test_callback_secret_header_that_is_not_latin1_is_refused_not_a_500(
    make_gateway: Make,
) -> None:
    client = await make_gateway(callback_auth={"africastalking": CallbackAuth(secret="s3cr3t")})
    body = b"sessionId=s1&serviceCode=*123%23&phoneNumber=%2B8501912345678&text="
    for header in ("X-Okryu-Secret: 비밀\r\n".encode(), b"X-Okryu-Secret: \xff\xfe\r\n"):
        assert await raw_post(client, "/ussd/africastalking", header, body) == (
            b"HTTP/1.1 403 Forbidden"
        )


# --- no SMS pumping -------------------------------------------------------------------------


async def test_sms_from_a_foreign_number_gets_no_reply_and_is_counted(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    foreigner = Texter(client, seeded_db, FOREIGN)
    for _ in range(5):
        assert await foreigner.send("HELP") == []
    assert await count(seeded_db, InboundMessage) == 5  # kept, each answered (by nothing)
    metrics = await (await client.get("/metrics")).text()
    assert 'okryu_sms_replies_dropped_total{reason="region"} 5.0' in metrics


async def test_sms_replies_to_one_number_are_limited_per_hour(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway(sms_replies_per_sender=3)
    now = [1_800_000_000.0]
    client.app[keys.REPLIES].clock = lambda: now[0]
    texter = Texter(client, seeded_db)
    answered = [bool(await texter.send("HELP")) for _ in range(5)]
    assert answered == [True, True, True, False, False]
    assert bool(await Texter(client, seeded_db, "+8501912340009").send("HELP"))  # others: yes
    now[0] += 3600  # the next hour
    assert bool(await texter.send("HELP"))
    metrics = await (await client.get("/metrics")).text()
    assert 'okryu_sms_replies_dropped_total{reason="sender"} 2.0' in metrics


async def test_sms_replies_to_everyone_are_limited_per_hour(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway(sms_replies_per_hour=2)
    senders = [Texter(client, seeded_db, f"+85019123400{i:02d}") for i in range(4)]
    answered = [bool(await texter.send("HELP")) for texter in senders]
    assert answered == [True, True, False, False]


# --- no 5xx from a public endpoint -----------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"from": "+85019123\x0045678"}, "field from holds a control character"),
        ({"from": "850191234567890123"}, "phone number"),
        ({"id": "x" * 150}, "field id is too long (at most 100 characters)"),
        ({"id": "AT\x00X"}, "field id holds a control character"),
        ({"to": "1\x0034"}, "field to holds a control character"),
        ({"text": "x" * 1001}, "field text is too long (at most 1000 characters)"),
    ],
)
async def test_sms_inbound_odd_fields_get_400_with_the_reason(
    make_gateway: Make, seeded_db: Database, form: dict[str, str], reason: str
) -> None:
    client = await make_gateway()
    good = {"from": MSISDN, "to": "1234", "text": "HELP", "id": "ATX1"}
    response = await client.post(SMS, data={**good, **form})
    assert response.status == 400 and reason in await response.text()
    assert await count(seeded_db, InboundMessage) == 0  # nothing half-stored


async def test_sms_with_a_nul_byte_in_its_text_gets_the_help_text(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    [reply] = await Texter(client, seeded_db).send("STA\x00TUS")
    assert reply.startswith("Okryu: dial *123# to shop.")


async def test_sms_cancel_with_a_990_character_code_is_an_unknown_order(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    [reply] = await Texter(client, seeded_db).send("CANCEL " + "A" * 990)
    assert reply == "Okryu: there is no order AAAAAAAA for this number."


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"id": "AT\x00X"}, "field id holds a control character"),
        # Longer than the column is matched by its stored form; this long is nobody's id.
        ({"id": "x" * 1001}, "field id is too long (at most 1000 characters)"),
        ({"status": "Succ\x00ess"}, "field status holds a control character"),
    ],
)
async def test_delivery_report_odd_fields_get_400(
    make_gateway: Make, form: dict[str, str], reason: str
) -> None:
    client = await make_gateway()
    response = await client.post(DLR, data={"id": "ATX1", "status": "Success", **form})
    assert response.status == 400 and reason in await response.text()


@pytest.mark.parametrize("slug", ["hubtel", "arkesel", "nalo"])
async def test_json_nested_past_any_reason_gets_400(make_gateway: Make, slug: str) -> None:
    client = await make_gateway()
    response = await client.post(
        f"/ussd/{slug}", data=b"[" * 200_000, headers={"Content-Type": "application/json"}
    )
    assert (response.status, await response.text()) == (400, "the body is nested too deeply")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sessionId": "s" * 200}, "field sessionId is too long (at most 100 characters)"),
        ({"sessionId": "ATUid\x00"}, "field sessionId holds a control character"),
        ({"hopsCount": "²"}, "field hopsCount must be a whole number"),
        ({"hopsCount": str(10**30)}, "field hopsCount must be a whole number"),
        ({"durationInMillis": "-5"}, "field durationInMillis must be a whole number"),
        ({"lastAppResponse": "CON \x00"}, "field lastAppResponse holds a control character"),
    ],
)
async def test_at_events_odd_values_get_400_and_store_nothing(
    make_gateway: Make, seeded_db: Database, change: dict[str, str], reason: str
) -> None:
    client = await make_gateway()
    response = await client.post(EVENTS, data={**end_form(), **change})
    assert response.status == 400 and reason in await response.text()
    assert await count(seeded_db, UssdSessionEnd) == 0


# --- a typed value never ends a session ------------------------------------------------------


async def test_typed_odd_values_re_prompt_and_the_session_goes_on(make_gateway: Make) -> None:
    client = await make_gateway()
    await post(client, "")
    _, body = await post(client, "²")
    assert body.startswith("CON Invalid choice. Try again.\nOkryu Shop")
    _, body = await post(client, "²*1*1*1*1*٣")  # the quantity in Arabic-Indic digits
    assert body.startswith("CON Enter a number from 1 to ")
    path = "²*1*1*1*1*٣*2*1*1*ab\x00cd"
    _, body = await post(client, path)
    assert body.startswith("CON Type 3 to 60 characters.")
    _, body = await post(client, path + "*Changjon street 5")
    assert body.startswith("CON Please confirm\nTotal KPW")  # on it goes: Confirm (one way to pay)


async def test_typed_lone_surrogate_in_json_re_prompts(make_gateway: Make) -> None:
    client = await make_gateway()

    async def hubtel(kind: str, message: str, sequence: int) -> dict[str, Any]:
        body = {
            "SessionId": "hub-9",
            "ServiceCode": "123",
            "Type": kind,
            "Message": message,
            "Mobile": "8501912345678",
            "Sequence": sequence,
        }
        response = await client.post("/ussd/hubtel", json=body)
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer

    await hubtel("Initiation", "*123#", 1)
    answer = await hubtel("Response", "\ud800", 2)
    assert answer["Message"].startswith("Invalid choice. Try again.\nOkryu Shop")
    answer = await hubtel("Response", "1", 3)
    assert answer["Message"].startswith("Categories")


async def test_long_session_ids_and_long_numbers_order_or_are_refused_whole(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    longest = "s" * 100  # the longest id the session store keeps: orders work
    await walk(client, [*ORDER_PATH, "1"], session=longest)
    assert await count(seeded_db, Order) == 1
    status, body = await post(client, "", session="s" * 101)
    assert (status, body) == (400, "field sessionId is too long (at most 100 characters)")
    fifteen = "+493012345678901"  # E.164's longest: dials, orders and changes language
    await walk(client, [*ORDER_PATH, "1"], session="ATUid_long", phone=fifteen)
    await walk(client, ["4", "2"], session="ATUid_long2", phone=fifteen)
    async with seeded_db.session() as s:
        customer = (await s.exec(select(Customer).where(Customer.msisdn == fifteen))).one()
    assert customer.language == "ko" and await count(seeded_db, Order) == 2
    status, body = await post(client, "", phone="+4930123456789012")
    assert (status, body) == (400, "phone number is longer than E.164 allows (15 digits)")


# --- small ones ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["*999#", "*" + "9*" * 99 + "#"])
async def test_unknown_service_code_ends_at_once_and_stores_nothing(
    make_gateway: Make, redis: Redis, redis_prefix: str, code: str
) -> None:
    client = await make_gateway()
    response = await client.post("/ussd/africastalking", data={**hop(""), "serviceCode": code})
    assert (response.status, await response.text()) == (
        200,
        "END This code is not in service. Check the number and dial again.",
    )
    assert [key async for key in redis.scan_iter(match=f"{redis_prefix}s:*")] == []
    ended = await client.post(EVENTS, data={**end_form(), "serviceCode": code})
    assert ended.status == 200


async def test_unknown_service_code_events_are_not_stored(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    assert (await client.post(EVENTS, data={**end_form(), "serviceCode": "*999#"})).status == 200
    assert await count(seeded_db, UssdSessionEnd) == 0


async def test_cancel_in_a_hop_of_several_inputs_shows_the_order_cancelled(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    code = await ordered(client, seeded_db)
    await post(client, "", session="ATUid_2")
    _, body = await post(client, "3*1*1*1", session="ATUid_2")  # orders, the order, cancel, yes
    assert body.startswith(f"CON Order cancelled.\nOrder {code}\nCancelled")
    assert "Cancel order" not in body
    async with seeded_db.session() as s:
        sms = (await s.exec(select(OutboundMessage.kind))).all()
    assert sorted(sms) == ["order_cancelled", "order_placed"]


async def test_hop_answers_are_json_safe_for_every_dialect(make_gateway: Make) -> None:
    # The echoed ids of Arkesel and Nalo go back as JSON, whatever the request held.
    client = await make_gateway()
    body = {
        "sessionID": "ark-7",
        "userID": "OK\ud800",
        "newSession": True,
        "msisdn": "8501912345678",
        "userData": "*123#",
    }
    response = await client.post("/ussd/arkesel", data=json.dumps(body), headers=JSON)
    assert (response.status, await response.text()) == (
        400,
        "field userID holds a control character or invalid text",
    )


JSON = {"Content-Type": "application/json"}


async def test_a_burst_beyond_the_redis_pool_waits_its_turn(make_gateway: Make) -> None:
    # 100 subscribers dial at once through 4 Redis connections: every one gets home, and
    # readiness holds under the same burst (it said 503 when the pool ran dry). The deadline
    # is the longest allowed: this is about waiting for a connection, not about speed (100
    # new subscribers' profile reads on a busy CI machine can outlast the default 2 s).
    client = await make_gateway(redis_connections=4, hop_deadline=15.0)
    dials = [post(client, "", session=f"burst-{i}", phone=f"+8501912{i:06d}") for i in range(100)]
    answers = await asyncio.gather(*dials, *(client.get("/readyz") for _ in range(50)))
    screens = [answer for answer in answers if isinstance(answer, tuple)]
    assert {status for status, _ in screens} == {200}
    assert all(body.startswith("CON Okryu Shop") for _, body in screens)
    assert {r.status for r in answers if not isinstance(r, tuple)} == {200}


@pytest.mark.parametrize("path", ["/ussd/africastalking", "/ussd/hubtel", SMS, DLR, EVENTS])
@pytest.mark.parametrize(
    ("headers", "answer"),
    [
        (
            {"Content-Type": "application/x-www-form-urlencoded; charset=bogus-9"},
            (400, "unknown charset 'bogus-9'"),
        ),
        (
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            (415, "Content-Encoding 'gzip' is not accepted: send the body as it is"),
        ),
        (
            {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "deflate"},
            (415, "Content-Encoding 'deflate' is not accepted: send the body as it is"),
        ),
    ],
    ids=["unknown charset", "gzip that is not", "deflate that is not"],
)
async def test_bodies_nothing_can_read_are_refused_with_the_reason(
    make_gateway: Make, path: str, headers: dict[str, str], answer: tuple[int, str]
) -> None:
    client = await make_gateway()
    response = await client.post(path, data=b"sessionId=s1&text=", headers=headers)
    assert (response.status, await response.text()) == answer


def test_every_route_meets_the_edge_first(gateway_settings: Settings) -> None:
    # The body checks and the BadRequest answers wrap each handler (no middleware: see
    # gateway.edge). A route added without them would answer odd bytes with a 500.
    settings = dataclasses.replace(gateway_settings, simulator=True, sms_provider="africastalking")
    apps, unedged, routes = [create_app(settings)], [], 0
    while apps:
        app = apps.pop()
        for resource in app.router.resources():
            info = resource.get_info()
            if "app" in info:  # the admin API, mounted under its prefix
                apps.append(info["app"])
            elif "directory" not in info:  # static files take no body
                for route in resource:
                    routes += 1
                    if not edged(route.handler):
                        unedged.append(f"{route.method} {resource.canonical}")
    assert routes > 30 and unedged == []


async def test_admin_bodies_nothing_can_read_are_refused_too(make_gateway: Make) -> None:
    client = await make_gateway()
    response = await client.post(
        "/admin/api/categories",
        data=b"{}",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 415


async def test_a_body_trickled_in_is_cut_off(
    make_gateway: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.edge.BODY_SECONDS", 0.2)
    client = await make_gateway()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /ussd/africastalking HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nsessi"
    )
    await writer.drain()
    async with asyncio.timeout(5):
        status = await reader.readline()
    writer.close()
    assert status.startswith(b"HTTP/1.1 408")


async def test_cart_reminders_go_only_to_numbers_the_shop_serves(
    make_gateway: Make, seeded_db: Database
) -> None:
    client = await make_gateway()
    for phone, session in ((FOREIGN, "ATUid_f"), (MSISDN, "ATUid_k")):
        await walk(client, ["1", "1", "1", "1", "2"], session=session, phone=phone)
        ended = {**end_form(session=session), "phoneNumber": phone}
        assert (await client.post(EVENTS, data=ended)).status == 200
    async with seeded_db.session() as s:
        reminded = (await s.exec(select(OutboundMessage.to))).all()
    assert reminded == [MSISDN]
