"""USSD and SMS over one SMPP bind: the real app bound to the USSD centre simulator over TCP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlmodel import select

from gateway import keys
from simulators.phone import Phone
from simulators.ussdc import SMPP
from store.db import Database
from store.models import Order, UssdSessionEnd
from tests.gateway_fixtures import SMPP_PROFILES, SmppRig

MakeRig = Callable[..., Awaitable[SmppRig]]
MSISDN = "+8501912345678"
ORDER = ["1", "1", "1", "1", "2", "1", "1", "Changjon street 5", "1", "1"]
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
        await rig.client.app[keys.USSD_SMPP].settle()  # recorded beside the bind's reading
        handset.hang_up()
        again = await handset.dial("*123#")
    assert await ends_of(seeded_db) == ["abandoned"]
    assert again.text.startswith("Continue where you left off?"), again.text
    assert product.text != again.text


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
        await rig.centre.wait_for(lambda: bool(rig.centre.refused_screens))
        await rig.client.app[keys.USSD_SMPP].settle()
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
        await rig.centre.wait_for(lambda: len(rig.centre.refused_screens) > refused)
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
