"""Scenario files: parsed with clear errors, played through the handset against the real app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway import keys
from simulators.network import VirtualClock
from simulators.phone import DIALECTS, Phone
from simulators.scenario import (
    Recording,
    ScenarioError,
    SessionEvent,
    load_scenario,
    parse_scenario,
    run_scenario,
    save_scenario,
)
from simulators.terminal import run_terminal
from simulators.ussdc import SMPP
from tests.gateway_fixtures import SMPP_PROFILES, SmppRig

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.scn"))
MSISDN = "+8501912345678"


async def play(client: TestClient[Any, Any], text: str, dialect: str = "africastalking") -> Any:
    return await run_scenario(
        parse_scenario(text, "t.scn"),
        url=str(client.make_url(f"/ussd/{dialect}")),
        msisdn=MSISDN,
        dialect=dialect,
        drain=client.app[keys.DISPATCHER].run_once,
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("> 1", "t.scn:1: no session is open: dial before 'answer'"),
        ("< Okryu Shop", "t.scn:1: no screen to check yet: dial first"),
        ("# a comment\n\n> 1", "t.scn:3: no session is open: dial before 'answer'"),
        ("dial 123", "t.scn:1: dial needs a USSD code like *123# or *123*1#, not '123'"),
        ("dial", "t.scn:1: dial needs a USSD code like *123# or *123*1#, not ''"),
        ("dial *123#\n<", "t.scn:2: '<' needs the text the screen should show"),
        ("dial *123#\nend\n> 1", "t.scn:3: the session has ended: dial again before 'answer'"),
        ("dial *123#\nend\nend", "t.scn:3: the session has ended: dial again before 'end'"),
        ("dial *123#\nend now", "t.scn:2: 'end' takes nothing after it"),
        ("hangup", "t.scn:1: no open session to hang up"),
        ("dial *123#\nsms Okryu", "t.scn:2: an SMS line reads 'sms < TEXT'"),
        (
            "dial *123#\npress 1",
            "t.scn:2: unknown step 'press': a line is 'dial CODE', '> ANSWER', '< TEXT', "
            "'end', 'hangup', 'sms < TEXT' or a '#' comment",
        ),
        ("# only a comment\n", "t.scn: no steps"),
    ],
)
def test_scenario_parse_errors_name_file_and_line(text: str, error: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text, "t.scn")
    assert str(raised.value) == error


def test_scenario_parse_reads_every_kind_of_step() -> None:
    scenario = parse_scenario(
        "# c\ndial *123*1#\n< Categories\n>  two words \n>\nhangup\ndial *123#\nend\n"
        "sms < Okryu: order {code} placed.\n"
    )
    assert [(s.kind, s.text, s.line) for s in scenario.steps] == [
        ("dial", "*123*1#", 2),
        ("expect", "Categories", 3),
        ("answer", " two words", 4),
        ("answer", "", 5),
        ("hangup", "", 6),
        ("dial", "*123#", 7),
        ("end", "", 8),
        ("sms", "Okryu: order {code} placed.", 9),
    ]


def test_scenario_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nothing\.scn: cannot read: No such file"):
        load_scenario(tmp_path / "nothing.scn")


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario_files_pass_in_every_dialect(
    make_gateway: Make, path: Path, dialect: str
) -> None:
    # Machine-speed answers: no retry window (a person answers "1" twice a second apart).
    client = await make_gateway(retry_window=0.0)
    result = await run_scenario(
        load_scenario(path),
        url=str(client.make_url(f"/ussd/{dialect}")),
        msisdn=MSISDN,
        dialect=dialect,
        drain=client.app[keys.DISPATCHER].run_once,
    )
    assert result.passed, result.report()


@pytest.mark.parametrize("profile", list(SMPP_PROFILES))
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario_files_pass_over_the_operator_s_smpp_bind(
    make_smpp_gateway: Callable[..., Awaitable[SmppRig]], path: Path, profile: str
) -> None:
    rig = await make_smpp_gateway(profile)
    result = await run_scenario(
        load_scenario(path),
        url=rig.handset_url,  # the USSD centre, which talks SMPP to the gateway
        msisdn=MSISDN,
        dialect=SMPP,
        drain=rig.client.app[keys.DISPATCHER].run_once,
    )
    assert result.passed, result.report()


async def test_scenario_wrong_expectation_fails_with_the_transcript(make_gateway: Make) -> None:
    client = await make_gateway()
    result = await play(client, "dial *123#\n< Okryu Shop\n> 1\n< Catalogue\n> 1\n")
    assert not result.passed
    assert result.failure == "t.scn:4: expected the screen to show 'Catalogue'"
    assert result.report().splitlines()[1:] == [
        "dial *123#",
        "  [CON]",
        "  | Okryu Shop",
        "  | 1. Shop",
        "  | 2. Cart (0)",
        "  | 3. My orders",
        "  | 4. Language",
        "  | 5. Help",
        "  | 6. My card",
        "> 1",
        "  [CON]",
        "  | Categories",
        "  | 1. Food",
        "  | 2. Medicine",
        "  | 3. Bags",
        "  | 4. Cosmetics",
        "  | 5. Clothing",
        "  | 6. Household",
        "  | 0 Back 00 Home",
        "FAIL t.scn:4: expected the screen to show 'Catalogue'",
    ]


async def test_scenario_missing_sms_and_other_code_fail(make_gateway: Make) -> None:
    client = await make_gateway()
    text = (SCENARIOS[0].parent / "order_english.scn").read_text()
    wrong_code = text.replace("sms < Okryu: order {code} placed.", "sms < order {other}x placed")
    result = await play(client, wrong_code)
    assert not result.passed and result.failure is not None
    assert result.failure.endswith("no SMS showing 'order {other}x placed' arrived")
    assert any(line.startswith("  [SMS, not matched] Okryu: order ") for line in result.transcript)


async def test_scenario_answer_after_the_end_fails(make_gateway: Make) -> None:
    client = await make_gateway()
    text = (SCENARIOS[0].parent / "order_english.scn").read_text()
    last = text.index("end\n")
    result = await play(client, text[:last] + "> 1\n")
    assert not result.passed and result.failure is not None
    assert result.failure.endswith(": the session has ended: there is no screen to answer")
    assert result.transcript[-4].startswith("  | Order ")


async def test_scenario_survives_a_flaky_network(make_gateway: Make) -> None:
    client = await make_gateway(retry_window=0.0)
    clock = VirtualClock()
    client.app[keys.GATEWAY].clock = clock  # resume windows judged in the network's time
    result = await run_scenario(
        load_scenario(SCENARIOS[0].parent / "order_english.scn"),
        url=str(client.make_url("/ussd/africastalking")),
        msisdn=MSISDN,
        network="flaky",
        seed=4,
        clock=clock,
        drain=client.app[keys.DISPATCHER].run_once,
    )
    assert result.passed, result.report()
    assert "(cut off: dial *123# again)" in result.transcript, result.report()
    assert "network flaky (seed 4)" in result.transcript[0]


ORDER = ["1", "1", "3", "1", "2", "1", "1", "Changjon street 5", "1"]
SAVED = """\
# An order, recorded
dial *123#
< Okryu Shop
> 1
< Categories
> 1
< Food
> 3
< Instant noodles
> 1
< Instant noodles
> 2
< Cart (1): KPW 2,400
> 1
< Delivery district
> 1
< Delivery address?
> Changjon street 5
< Please confirm
> 1
< Order {code} placed.
end
sms < Okryu: order {code} placed.
"""


async def test_scenario_saved_from_a_recorded_session_replays(make_gateway: Make) -> None:
    client = await make_gateway(retry_window=0.0)
    url = str(client.make_url("/ussd/africastalking"))
    events: list[SessionEvent] = []
    async with Phone(url, "+8501912340001") as phone:
        handset = Recording(phone, events.append)
        await handset.dial("*123#")
        for answer in ORDER:
            await handset.send(answer)
        await client.app[keys.DISPATCHER].run_once()
        events += [SessionEvent("sms", sms.body) for sms in await phone.inbox()]
    saved = save_scenario(events, "An order, recorded")
    assert saved == SAVED
    result = await run_scenario(
        parse_scenario(saved, "saved.scn"),
        url=url,
        msisdn="+8501912340002",
        drain=client.app[keys.DISPATCHER].run_once,
    )
    assert result.passed, result.report()


async def test_scenario_recorded_from_the_terminal(echo_server: TestServer) -> None:
    events: list[SessionEvent] = []
    url = str(echo_server.make_url("/ussd/africastalking"))
    lines = ["", "2", "", "c", "", "1", "hello", "q"]
    await run_terminal(
        url, MSISDN, "*123#", iter(lines), lambda _: None, False, record=events.append
    )
    assert save_scenario(events) == "\n".join(
        [
            "# Recorded with okryu phone --record",
            "dial *123#",
            "< Echo service",
            "> 2",
            "< Bye",
            "end",
            "dial *123#",
            "< Echo service",
            "hangup",
            "dial *123#",
            "< Echo service",
            "> 1",
            "< Say something",
            "> hello",
            "< You said hello",
            "end",
            "sms < You said hello",
            "",
        ]
    )
