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
