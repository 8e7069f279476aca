"""USSD and SMS over one SMPP bind: the real app bound to the USSD centre simulator over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from gateway import keys
from gateway.app import create_app
from gateway.cli import main
from gateway.settings import Settings, SettingsError
from gateway.smpp.codec import DELIVER_SM, ESME_RINVCMDLEN, GENERIC_NACK, RESPONSE
from gateway.smpp.provider import SmppProvider
from gateway.smpp.ussd import USSD_SMPP
from gateway.workers import worker_settings
from menus.screens import Budget, fits
from simulators.phone import Phone
from simulators.ussdc import SMPP, UssdCentre
from store.db import Database
from store.models import Order, UssdSessionEnd
from tests.gateway_fixtures import SMPP_PROFILES, SmppRig
from tests.simulator_web import simulator_app

MakeRig = Callable[..., Awaitable[SmppRig]]
MSISDN = "+8501912345678"
ORDER = [
    "1",
    "1",
    "1",
    "1",
    "2",
    "1",
    "1",
    "Changjon street 5",
    "1",
]  # then Confirm (one way to pay: no payment screen)
PROFILES = list(SMPP_PROFILES)


def phone(rig: SmppRig, msisdn: str = MSISDN) -> Phone:
    return Phone(rig.handset_url, msisdn, dialect=SMPP)


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_dial_shows_home_and_an_answer_moves_on(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        home = await handset.dial("*123#")
        assert (home.ok, home.end) == (True, False)
        assert home.text.startswith("Okryu Shop\n1. Shop")
        catalogue = await handset.send("1")
    assert not catalogue.end and "1. Food" in catalogue.text
    # Every screen went back on its dialogue as a USSR request (2): none ended it.
    assert [screen.end for _, _, screen in rig.centre.screens] == [False, False]
    assert rig.centre.refused_screens == []


async def orders_of(db: Database, msisdn: str = MSISDN) -> list[Order]:
    async with db.session() as s:
        return list((await s.exec(select(Order).where(Order.msisdn == msisdn))).all())


async def ends_of(db: Database) -> list[str]:
    async with db.session() as s:
        return [row.status for row in (await s.exec(select(UssdSessionEnd))).all()]


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_order_is_confirmed_by_sms_over_the_same_bind(
    make_smpp_gateway: MakeRig, seeded_db: Database, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        for answer in ORDER[:-1]:
            screen = await handset.send(answer)
        placed = await handset.send(ORDER[-1])
        assert placed.end and placed.text.startswith("Order "), placed.text
        code = placed.text.split()[1]
        # The last screen ended the dialogue: a PSSR response (17).
        assert rig.centre.screens[-1][2].end and not screen.end
        assert await rig.client.app[keys.DISPATCHER].run_once() == 1
        inbox = await handset.inbox()  # the centre's: what came over the bind as SMS
    assert [o.code for o in await orders_of(seeded_db)] == [code]
    (message,) = rig.centre.messages
    assert message.destination == MSISDN.removeprefix("+") and code in message.text
    assert [sms.body for sms in inbox] == [message.text]
    assert rig.centre.binds == [("trx", "okryu", 0)]  # one bind carried both


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_shortcut_dial_lands_where_the_answers_would(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        typed = await handset.dial("*123#")
        typed = await handset.send("1")
        handset.hang_up()
    async with phone(rig, "+8501912345600") as other:
        shortcut = await other.dial("*123*1#")
    assert shortcut.text == typed.text


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_centre_timeout_closes_the_session_and_a_redial_resumes(
    make_smpp_gateway: MakeRig, seeded_db: Database, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        for answer in ["1", "1", "1"]:
            product = await handset.send(answer)
        session = handset.last_hop
        assert session is not None
        await rig.centre.time_out(session.session_id)  # the subscriber went quiet
        await rig.client.app[USSD_SMPP].settle()  # recorded beside the bind's reading
        handset.hang_up()
        again = await handset.dial("*123#")
    assert await ends_of(seeded_db) == ["abandoned"]
    assert again.text.startswith("Continue where you left off?"), again.text
    assert product.text != again.text


async def test_smpp_ussd_dialogue_numbers_come_round_again_for_the_same_subscriber(
    make_smpp_gateway: MakeRig,
) -> None:
    # its_session_info names a dialogue in one octet: the 257th dialogue of a subscriber who
    # keeps dialling reuses the number of the first (over long since). Its screens go to it.
    rig = await make_smpp_gateway("data_sm")
    for n in range(257):
        screen = await rig.centre.hop(f"s{n}", MSISDN, "*123#", "*123#", 1)
        await rig.centre.time_out(f"s{n}")
    first, last = rig.centre.dialogues["s0"], rig.centre.dialogues["s256"]
    assert first.number == last.number  # the number came round
    assert screen.text.startswith("Okryu Shop\n1. Shop"), screen.text
    assert rig.centre.refused_screens == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_screen_after_the_centre_gave_up_is_refused_and_nothing_breaks(
    make_smpp_gateway: MakeRig, seeded_db: Database, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        rig.centre.give_up_next()
        lost = await handset.send("1")
        # The handset saw the centre's timeout; the gateway's screen came after and was refused.
        await rig.centre.wait_for(lambda: bool(rig.centre.refused_screens), timeout=30)
        await rig.client.app[USSD_SMPP].settle()
        again = await handset.dial("*123#")
        then = await handset.send("1")
    assert (lost.status, lost.end) == (504, True)
    assert "gave up" in rig.centre.refused_screens[0][1]
    assert again.ok and not again.end and then.ok and "1. Food" in then.text
    assert "failed" in await ends_of(seeded_db)


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_redelivered_confirm_places_one_order(
    make_smpp_gateway: MakeRig, seeded_db: Database, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        for answer in ORDER:
            placed = await handset.send(answer)
        session = handset.last_hop
        assert session is not None and placed.end
        refused = len(rig.centre.refused_screens)
        # A redelivery comes at once: within the window, as its_session_info's unit says too.
        rig.client.app[keys.GATEWAY].retry_window = 60.0
        # The centre never heard our resp to the confirm, and sends it again.
        assert await rig.centre.redeliver(session.session_id) == 0
        await rig.centre.wait_for(lambda: len(rig.centre.refused_screens) > refused, timeout=30)
    assert len(await orders_of(seeded_db)) == 1


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_dialogue_survives_a_dropped_link(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        await rig.centre.disconnect()  # the centre's link falls between two screens
        await rig.centre.wait_for(lambda: rig.centre.sessions == 1, timeout=10)
        catalogue = await handset.send("1")
    assert catalogue.ok and "1. Food" in catalogue.text
    assert len(rig.centre.binds) == 2


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_throttled_screen_is_sent_again(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        rig.centre.throttle_next()
        home = await handset.dial("*123#")
    assert home.ok and home.text.startswith("Okryu Shop")
    assert rig.centre.refused == [0x58]


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_korean_screens_go_as_ucs2_within_80(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        korean = await handset.send("4")
        korean = await handset.send("2")
    assert korean.text.startswith("언어: 조선말\n옥류상점"), korean.text
    assert len(korean.text) <= 80 and rig.centre.refused_screens == []


async def place_order(rig: SmppRig, msisdn: str = MSISDN) -> str:
    async with phone(rig, msisdn) as handset:
        await handset.dial("*123#")
        for answer in ORDER:
            placed = await handset.send(answer)
    assert placed.end, placed.text
    return placed.text.split()[1]


async def replies_to(rig: SmppRig, msisdn: str) -> list[str]:
    await rig.client.app[keys.DISPATCHER].run_once()
    return [text for _, text in rig.centre.inbox(msisdn)]


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_sms_commands_work_over_the_bind_with_the_same_ownership_rules(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    code = await place_order(rig)
    confirmation = await replies_to(rig, MSISDN)
    assert await rig.centre.send_sms(MSISDN, f"status {code}") == 0
    (status,) = (await replies_to(rig, MSISDN))[len(confirmation) :]
    assert code in status
    stranger = "+8501912345601"  # someone else's code is answered like an unknown one
    assert await rig.centre.send_sms(stranger, f"STATUS {code}") == 0
    assert await rig.centre.send_sms(stranger, "STATUS QQQQ99") == 0
    theirs, unknown = await replies_to(rig, stranger)
    assert theirs == unknown.replace("QQQQ99", code) and theirs != status


async def test_smpp_sms_from_a_foreign_number_is_kept_and_not_answered(
    make_smpp_gateway: MakeRig, seeded_db: Database
) -> None:
    rig = await make_smpp_gateway()
    assert await rig.centre.send_sms("+14155550123", "HELP") == 0
    assert await rig.centre.send_sms("+8501912345678", "HELP\x00" + "x" * 150) == 0
    assert await replies_to(rig, "+14155550123") == []
    (help_text,) = await replies_to(rig, MSISDN)  # a stray NUL earns the help text
    assert "STATUS" in help_text
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'okryu_sms_replies_dropped_total{reason="region"} 1.0' in metrics


async def test_smpp_sms_that_cannot_be_kept_is_asked_again(
    make_smpp_gateway: MakeRig, seeded_db: Database
) -> None:
    rig = await make_smpp_gateway()
    # A source that is no phone number is refused; the centre is told, nothing is kept.
    assert await rig.centre.send_sms("12", "HELP") == 0x0A  # ESME_RINVSRCADR
    assert await replies_to(rig, "12") == []


# --- settings ------------------------------------------------------------------------------


def test_smpp_ussd_settings_read_every_variable() -> None:
    settings = Settings.from_env(
        {
            "OKRYU_USSD_SMPP_HOST": "ussdc.example",
            "OKRYU_USSD_SMPP_PORT": "2776",
            "OKRYU_USSD_SMPP_SYSTEM_ID": "okryu",
            "OKRYU_USSD_SMPP_PASSWORD": "s3cret",
            "OKRYU_USSD_SMPP_SYSTEM_TYPE": "USSD",
            "OKRYU_USSD_SMPP_PROFILE": "data_sm",
            "OKRYU_USSD_SMPP_DIALOGUE": "its_session_info",
            "OKRYU_SMS_PROVIDER": "smpp",
        }
    )
    assert settings.ussd_smpp and settings.sms_over_ussd_bind
    assert (settings.ussd_smpp_host, settings.ussd_smpp_port) == ("ussdc.example", 2776)
    assert (settings.ussd_smpp_system_id, settings.ussd_smpp_system_type) == ("okryu", "USSD")
    assert (settings.ussd_smpp_profile, settings.ussd_smpp_dialogue) == (
        "data_sm",
        "its_session_info",
    )
    assert "s3cret" not in repr(settings)
    assert not Settings.from_env({}).ussd_smpp  # no host: no channel


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OKRYU_USSD_SMPP_PORT": "0"}, "OKRYU_USSD_SMPP_PORT must be an integer from 1 to 65535"),
        ({"OKRYU_USSD_SMPP_PROFILE": "submit_sm"}, "OKRYU_USSD_SMPP_PROFILE must be deliver_sm or"),
        ({"OKRYU_USSD_SMPP_DIALOGUE": "umr"}, "OKRYU_USSD_SMPP_DIALOGUE must be user_message_"),
        ({"OKRYU_USSD_SMPP_HOST": "ussdc"}, "OKRYU_USSD_SMPP_SYSTEM_ID is required with"),
    ],
)
def test_smpp_ussd_settings_refuse_bad_values_naming_the_variable(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert str(error.value).startswith(says)


def test_smpp_sms_goes_over_the_ussd_bind_only_when_it_is_the_same_bind() -> None:
    base = {
        "OKRYU_USSD_SMPP_HOST": "ussdc",
        "OKRYU_USSD_SMPP_SYSTEM_ID": "okryu",
        "OKRYU_SMS_PROVIDER": "smpp",
    }
    assert Settings.from_env(base).sms_over_ussd_bind  # no SMSC of its own
    same = {"OKRYU_SMPP_HOST": "ussdc", "OKRYU_SMPP_SYSTEM_ID": "okryu"}
    assert Settings.from_env({**base, **same}).sms_over_ussd_bind
    other = {"OKRYU_SMPP_HOST": "smsc", "OKRYU_SMPP_SYSTEM_ID": "okryu"}
    assert not Settings.from_env({**base, **other}).sms_over_ussd_bind
    assert not Settings.from_env({**base, "OKRYU_SMS_PROVIDER": "log"}).sms_over_ussd_bind


def test_smpp_channel_takes_its_own_screen_budget() -> None:
    settings = Settings.from_env({"OKRYU_DEMO": "1", "OKRYU_SCREEN_BUDGETS": "smpp=182/80"})
    create_app(settings)  # "smpp" is a channel these settings may name
    assert settings.budget_for("smpp") == Budget(182, 80)


async def test_smpp_ussd_screens_take_the_channel_s_budget_up_to_182(
    make_smpp_gateway: MakeRig,
) -> None:
    pages = []
    for n, budget in enumerate((Budget(160, 80), Budget(182, 80))):
        rig = await make_smpp_gateway(channel_budgets={"smpp": budget})
        async with phone(rig, f"+850191234560{n}") as handset:
            await handset.dial("*123#")
            await handset.send("1")
            food = await handset.send("1")
        assert food.ok and rig.centre.refused_screens == []
        assert fits(food.text, budget)
        pages.append(food.text)
    assert len(pages[1].splitlines()) > len(pages[0].splitlines())  # more rows on a page


# --- the link ------------------------------------------------------------------------------


async def test_smpp_link_answers_garbage_with_generic_nack_and_binds_again() -> None:
    nacks: asyncio.Queue[tuple[int, int, int, int]] = asyncio.Queue()
    connections = 0

    async def centre(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        length, command_id, _, sequence = struct.unpack(">IIII", await reader.readexactly(16))
        await reader.readexactly(length - 16)  # the bind's body
        writer.write(struct.pack(">IIII", 20, command_id | RESPONSE, 0, sequence) + b"sim\x00")
        if connections == 1:  # a header no PDU can have: 7 octets long
            writer.write(struct.pack(">IIII", 7, DELIVER_SM, 0, 42))
            await nacks.put(struct.unpack(">IIII", await reader.readexactly(16)))
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(centre, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider = SmppProvider("127.0.0.1", port, "okryu", "secret", reconnect_base=0.01)
    try:
        await provider.start()
        assert await nacks.get() == (16, GENERIC_NACK, ESME_RINVCMDLEN, 42)
        await provider.wait_until(lambda: provider.attempts >= 2 and provider.bound)
    finally:
        await provider.close()
        server.close()
        await server.wait_closed()
    assert connections == 2


async def test_smpp_ussd_without_its_dialogue_tlv_is_refused_not_answered(
    make_smpp_gateway: MakeRig,
) -> None:
    # The gateway reads user_message_reference; this centre names dialogues otherwise.
    rig = await make_smpp_gateway(
        dialogue="its_session_info", ussd_smpp_dialogue="user_message_reference"
    )
    async with phone(rig) as handset:
        refused = await handset.dial("*123#")
    assert refused.status == 502 and not refused.ok
    assert rig.centre.mo_statuses == [0xC3]  # ESME_RMISSINGOPTPARAM


# --- okryu phone --dialect smpp --------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_cli_phone_dialect_smpp_shops_end_to_end(
    make_smpp_gateway: MakeRig, profile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = await make_smpp_gateway(profile, sms_dispatch=True)  # the SMS, sent by the app
    script = Path(__file__).parents[2] / "scenarios" / "order_english.scn"
    argv = ["phone", "--dialect", "smpp", "--url", rig.handset_url, "--script", str(script)]
    handlers = logging.getLogger().handlers[:]
    try:
        status = await asyncio.to_thread(main, argv)  # main() runs its own event loop
    finally:
        logging.getLogger().handlers[:] = handlers
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith(f"PASS {script} (smpp, +850"), out
    (message,) = rig.centre.messages  # the confirmation, over the same bind
    assert message.text.startswith("Okryu: order ")


# --- the web handset ---------------------------------------------------------------------


async def test_web_handset_shops_over_the_smpp_bind(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    gateway_settings: Settings,
    seeded_db: Database,
) -> None:
    async with UssdCentre() as centre:
        door = await aiohttp_server(centre.handset_app())
        app = simulator_app(
            gateway_settings,
            {"ussd_centre": str(door.make_url("/ussd"))},
            ussd_smpp_host=centre.host,
            ussd_smpp_port=centre.port,
            ussd_smpp_system_id=centre.system_id,
            ussd_smpp_password=centre.password,
            sms_provider="smpp",
            retry_window=0.0,
        )
        client = await aiohttp_client(app)
        await centre.wait_for(lambda: centre.sessions == 1)
        options = await (await client.get("/simulator/api/options")).json()
        assert "smpp" in [dialect["slug"] for dialect in options["dialects"]]
        made = await client.post(
            "/simulator/api/sessions", json={"msisdn": MSISDN, "dialect": "smpp"}
        )
        handle = (await made.json())["handle"]
        api = f"/simulator/api/sessions/{handle}"
        screen = await (await client.post(f"{api}/dial", json={"code": "*123#"})).json()
        assert screen["text"].startswith("Okryu Shop") and not screen["end"]
        for answer in ORDER:
            screen = await (await client.post(f"{api}/send", json={"answer": answer})).json()
        assert screen["end"] and screen["text"].startswith("Order "), screen
        assert len(await orders_of(seeded_db)) == 1
        assert centre.screens and centre.refused_screens == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_odd_input_reprompts_the_same_screen(
    make_smpp_gateway: MakeRig, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    async with phone(rig) as handset:
        home = await handset.dial("*123#")
        odd = await handset.send("²")  # a digit int() would take, sent as UCS-2
        long = await handset.send("9" * 182)
    menu = home.text.split("\n", 1)[1]
    for screen in (odd, long):
        assert screen.ok and not screen.end and screen.text != home.text
        assert screen.text.endswith(menu), screen.text


async def test_smpp_ussd_unknown_service_code_gets_one_ending_line(
    make_smpp_gateway: MakeRig, seeded_db: Database
) -> None:
    rig = await make_smpp_gateway()
    async with phone(rig) as handset:
        screen = await handset.dial("*999#")
    assert screen.ok and screen.end and "\n" not in screen.text
    assert rig.centre.screens[-1][2].end  # a PSSR response: the dialogue is over
    assert await orders_of(seeded_db) == [] and await ends_of(seeded_db) == []


def test_smpp_ussd_bind_runs_in_worker_0_only() -> None:
    settings = Settings.from_env(
        {
            "OKRYU_USSD_SMPP_HOST": "ussdc",
            "OKRYU_USSD_SMPP_SYSTEM_ID": "okryu",
            "OKRYU_SMS_PROVIDER": "smpp",
        }
    )
    first, second = worker_settings(settings, 0), worker_settings(settings, 1)
    assert first.ussd_smpp and first.sms_over_ussd_bind and first.sms_dispatch
    # The others neither bind nor send: a dialogue's messages all reach worker 0.
    assert not second.ussd_smpp and not second.sms_dispatch and second.sms_provider == "log"


@pytest.mark.parametrize("profile", PROFILES)
async def test_smpp_ussd_pin_is_masked_as_over_http(
    make_smpp_gateway: MakeRig,
    seeded_db: Database,
    redis: Any,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    profile: str,
) -> None:
    # Issue 13 masks what is typed on a secret screen where the hop keeps the path; issue 14's
    # channel brings one input per message through the same hop, so a PIN must be masked
    # there too: not in Redis (record, last answer, trail), not in the logs.
    from tests.journeys.test_cards import (
        CHECKOUT,
        NEW_PIN,
        PIN,
        WRONG,
        balance,
        card_for,
        everything_in_redis,
    )

    caplog.set_level(logging.DEBUG)
    rig = await make_smpp_gateway(profile)
    card = await card_for(seeded_db, 30_000)
    async with phone(rig) as handset:
        await handset.dial("*123#")
        for answer in [*CHECKOUT, "1"]:
            screen = await handset.send(answer)
        assert screen.text.startswith("Pay KPW 10,000 with card"), screen.text
        assert (await handset.send(WRONG)).text.startswith("Wrong PIN. 2 tries left.")
        mid_session = await everything_in_redis(redis, redis_prefix)  # the record is live
        placed = await handset.send(PIN)
        assert placed.end and placed.text.startswith("Order "), placed.text
        await handset.dial("*123#")
        for answer in ["6", "1", PIN, NEW_PIN]:
            screen = await handset.send(answer)
        assert screen.text.startswith("PIN changed."), screen.text
    assert await balance(seeded_db, card) == 20_000
    stored = await everything_in_redis(redis, redis_prefix) + mid_session
    assert MSISDN in mid_session  # the scan reads what the sessions keep
    logged = "\n".join([record.getMessage() for record in caplog.records] + [caplog.text])
    for secret in (PIN, NEW_PIN, WRONG):
        assert secret not in stored, "a PIN in Redis"
        assert secret not in logged, "a PIN in the logs"
