"""The web handset's JSON API, over HTTP, against the real app: a phone per handle."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import keys
from gateway.auth import CallbackAuth
from gateway.settings import Settings
from gateway.simulator_web import SIMULATOR
from menus.screens import measure
from simulators.scenario import parse_scenario, run_scenario
from store.db import Database
from tests.simulator_web import ORDER, Clock, simulator_app

Client = TestClient[Any, Any]
Make = Callable[..., Awaitable[Client]]
API = "/simulator/api"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_simulator(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    gateway_settings: Settings,
    seeded_db: Database,
    clock: Clock,
) -> Make:
    """The real gateway plus the simulator, on the test clock; settings may be overridden."""

    async def make(simulator: dict[str, Any] | None = None, **overrides: Any) -> Client:
        app = simulator_app(gateway_settings, {"clock": clock, **(simulator or {})}, **overrides)
        return await aiohttp_client(app)

    return make


async def post(client: Client, path: str, body: Any = None, status: int = 200) -> Any:
    response = await client.post(f"{API}/{path}", json=body)
    data = await response.json()
    assert response.status == status, data
    return data


async def handset(client: Client, **body: Any) -> str:
    made = await post(client, "sessions", {"msisdn": "+8501912345678", **body})
    return str(made["handle"])


async def test_simulator_options_list_the_dialects_networks_and_defaults(
    make_simulator: Make,
) -> None:
    client = await make_simulator()
    response = await client.get(f"{API}/options")
    assert response.status == 200
    options = await response.json()
    slugs = [dialect["slug"] for dialect in options["dialects"]]
    assert slugs == ["africastalking", "hubtel", "arkesel", "nalo", "hollatags"]
    assert options["dialects"][0]["budget"] == {"gsm7": 160, "ucs2": 80}
    assert options["networks"] == ["good", "flaky"]
    assert (options["service_code"], options["msisdn"]) == ("*123#", "+8501912345678")


async def test_simulator_serves_the_page_and_its_files(make_simulator: Make) -> None:
    client = await make_simulator()
    page = await client.get("/simulator/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert 'src="handset.js"' in html and 'href="handset.css"' in html
    for name, kind in (("handset.js", "javascript"), ("handset.css", "text/css")):
        response = await client.get(f"/simulator/{name}")
        assert response.status == 200 and kind in response.content_type
    bare = await client.get("/simulator", allow_redirects=False)
    assert (bare.status, bare.headers["Location"]) == (308, "/simulator/")


@pytest.mark.parametrize("dialect", ["africastalking", "hubtel"])
async def test_simulator_shops_to_an_order_with_its_sms(make_simulator: Make, dialect: str) -> None:
    client = await make_simulator()
    made = await post(client, "sessions", {"msisdn": "0191 234 5678", "dialect": dialect})
    assert (made["msisdn"], made["dialect"], made["network"]) == ("+8501912345678", dialect, "good")
    handle = made["handle"]
    home = await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    assert home["text"].startswith("Okryu") and not home["end"] and home["status"] == 200
    assert (home["encoding"], home["limit"]) == ("gsm7", 160)
    assert home["units"] == measure(home["text"]).units
    assert [line.split()[1] for line in home["events"]] == ["dial", "screen"]
    for answer in ORDER[:-1]:
        screen = await post(client, f"sessions/{handle}/send", {"answer": answer})
        assert not screen["end"], screen["text"]
    placed = await post(client, f"sessions/{handle}/send", {"answer": ORDER[-1]})
    assert placed["end"] and placed["text"].startswith("Order ")
    code = placed["text"].split()[1]
    assert await client.app[keys.DISPATCHER].run_once() == 1
    inbox = await (await client.get("/dev/sms", params={"to": "+8501912345678"})).json()
    assert [m["body"].split()[2] for m in inbox["messages"]] == [code]


async def test_simulator_measures_korean_screens_in_ucs2(make_simulator: Make) -> None:
    client = await make_simulator()
    handle = await handset(client)
    english = await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    assert english["encoding"] == "gsm7" and english["units"] == measure(english["text"]).units
    languages = await post(client, f"sessions/{handle}/send", {"answer": "4"})
    assert languages["encoding"] == "ucs2"  # "조선말" is on the choice
    korean = await post(client, f"sessions/{handle}/send", {"answer": "2"})
    assert korean["text"].startswith("언어: 조선말")
    assert (korean["encoding"], korean["limit"]) == ("ucs2", 80)
    assert korean["units"] == len(korean["text"].encode("utf-16-le")) // 2


async def test_simulator_flaky_network_cuts_the_same_way_for_the_same_seed(
    make_simulator: Make,
) -> None:
    client = await make_simulator()
    runs = []
    for msisdn in ("+8501912345601", "+8501912345602"):
        handle = await handset(client, msisdn=msisdn, network="flaky", seed=11)
        seen = [await post(client, f"sessions/{handle}/dial", {"code": "*123#"})]
        for answer in ("1", "1", "1", "0", "0", "2", "0"):
            if seen[-1]["end"]:
                break
            seen.append(await post(client, f"sessions/{handle}/send", {"answer": answer}))
        runs.append(seen)
    first, second = ([(s["cut"], [e.split()[1] for e in s["events"]]) for s in run] for run in runs)
    assert first == second
    cut = runs[0][-1]
    assert cut["cut"] and cut["end"] and cut["encoding"] is None
    assert "the network cut the session" in cut["text"]
    assert "cut" in [event.split()[1] for event in cut["events"]]
    again = await post(client, f"sessions/{handle}/send", {"answer": "1"}, status=409)
    assert again == {"error": "no USSD session is open: dial first"}


async def test_simulator_network_cuts_a_subscriber_silent_for_thirty_seconds(
    make_simulator: Make, clock: Clock
) -> None:
    client = await make_simulator()
    handle = await handset(client)
    await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    clock.advance(31)
    cut = await post(client, f"sessions/{handle}/send", {"answer": "1"})
    assert cut["cut"] and "no answer within 30s (the subscriber took 31.0s)" in cut["text"]


async def test_simulator_transcript_holds_every_screen_and_answer(make_simulator: Make) -> None:
    client = await make_simulator()
    handle = await handset(client)
    home = await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    await post(client, f"sessions/{handle}/send", {"answer": "4"})
    await post(client, f"sessions/{handle}/send", {"answer": "2"})
    await post(client, f"sessions/{handle}/cancel")
    response = await client.get(f"{API}/sessions/{handle}/transcript")
    assert response.status == 200 and response.content_type == "text/plain"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="okryu-8501912345678-africastalking.txt"'
    )
    text = await response.text()
    assert text.startswith("Okryu web handset transcript\nphone +8501912345678, dialect ")
    steps = [line for line in text.splitlines() if line.startswith("> ")]
    assert steps == ["> dial *123#", "> send '4'", "> send '2'", "> cancel"]
    assert f"| {home['text'].splitlines()[0]}" in text
    assert f"GSM-7 {home['units']}/160" in text
    assert "| 언어: 조선말" in text and "UCS-2 " in text


async def test_simulator_signs_hops_for_a_channel_with_a_secret(make_simulator: Make) -> None:
    client = await make_simulator(callback_auth={"hubtel": CallbackAuth(secret="s3cret")})
    handle = await handset(client, dialect="hubtel")
    home = await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    assert home["status"] == 200 and home["text"].startswith("Okryu")


async def test_simulator_shows_an_unreachable_gateway_as_a_connection_problem(
    make_simulator: Make,
) -> None:
    client = await make_simulator({"base_url": "http://127.0.0.1:1/"})  # nothing listens there
    made = await post(client, "sessions", {})
    shown = await post(client, f"sessions/{made['handle']}/dial", {"code": "*123#"})
    assert shown["error"] and shown["end"] and not shown["cut"]
    assert shown["text"].startswith("Connection problem: cannot reach http://127.0.0.1:1/ussd/")
    assert [line.split()[1] for line in shown["events"]] == ["dial", "error"]


BAD_SESSIONS = [
    ({"dialect": "vodafone"}, "unknown dialect 'vodafone'; known: africastalking, hubtel"),
    ({"network": "lossy"}, "unknown network 'lossy'; known: good, flaky"),
    ({"msisdn": "12"}, "phone number is not a possible number"),
    ({"msisdn": ""}, "phone number is missing"),
    ({"msisdn": 8501912345678}, "msisdn must be a string"),
    ({"seed": "7"}, "seed must be a whole number"),
    ({"seed": -1}, "seed must be a whole number"),
    ([1, 2], "the body must be a JSON object"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_SESSIONS)
async def test_simulator_refuses_a_bad_session_with_a_reason(
    make_simulator: Make, body: Any, reason: str
) -> None:
    client = await make_simulator()
    refused = await post(client, "sessions", body, status=400)
    assert refused["error"].startswith(reason)


async def test_simulator_refuses_bad_dials_and_answers_with_a_reason(make_simulator: Make) -> None:
    client = await make_simulator()
    handle = await handset(client)
    garbled = await client.post(f"{API}/sessions/{handle}/dial", data=b"{not json")
    assert (garbled.status, await garbled.json()) == (
        400,
        {"error": "the body must be a JSON object"},
    )
    for code in ("123", "*123", "*#06#", "*123#; rm", ""):
        refused = await post(client, f"sessions/{handle}/dial", {"code": code}, status=400)
        assert refused["error"].startswith("dial a service code like *123#")
    early = await post(client, f"sessions/{handle}/send", {"answer": "1"}, status=409)
    assert early["error"] == "no USSD session is open: dial first"
    await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    for answer in ("1" * 183, "1\n2", 1):
        refused = await post(client, f"sessions/{handle}/send", {"answer": answer}, status=400)
        assert "answer" in refused["error"]


@pytest.mark.parametrize("action", ["dial", "send", "cancel", "transcript"])
async def test_simulator_answers_404_for_an_unknown_handle(
    make_simulator: Make, action: str
) -> None:
    client = await make_simulator()
    path = f"{API}/sessions/nobody/{action}"
    if action == "transcript":
        response = await client.get(path)
    else:
        response = await client.post(path, json={"code": "*123#", "answer": "1"})
    assert response.status == 404
    assert await response.json() == {"error": "unknown or expired handset: start a new session"}


async def test_simulator_handles_expire_after_half_an_hour_unused(
    make_simulator: Make, clock: Clock
) -> None:
    client = await make_simulator()
    handle = await handset(client)
    clock.advance(1799)
    await post(client, f"sessions/{handle}/dial", {"code": "*123#"})  # used: kept 30 min more
    clock.advance(1801)
    expired = await post(client, f"sessions/{handle}/send", {"answer": "1"}, status=404)
    assert expired["error"] == "unknown or expired handset: start a new session"
    assert len(client.app[SIMULATOR].handsets) == 0


async def test_simulator_lets_the_least_recently_used_handle_go_when_full(
    make_simulator: Make,
) -> None:
    client = await make_simulator({"capacity": 2})
    first, second = await handset(client), await handset(client)
    await post(client, f"sessions/{first}/dial", {"code": "*123#"})  # second is now the oldest
    third = await handset(client)
    await post(client, f"sessions/{second}/dial", {"code": "*123#"}, status=404)
    for kept in (first, third):
        await post(client, f"sessions/{kept}/dial", {"code": "*123#"})


async def test_simulator_closes_its_handsets_with_the_app(make_simulator: Make) -> None:
    client = await make_simulator()
    await handset(client)
    handsets = client.app[SIMULATOR].handsets
    assert len(handsets) == 1
    await client.close()
    assert len(handsets) == 0


async def test_simulator_session_saves_as_a_scenario_that_replays(make_simulator: Make) -> None:
    client = await make_simulator()
    handle = await handset(client)
    await post(client, f"sessions/{handle}/dial", {"code": "*123#"})
    for answer in ["1", "1", "1"]:
        await post(client, f"sessions/{handle}/send", {"answer": answer})
    response = await client.get(f"{API}/sessions/{handle}/scenario")
    assert response.status == 200
    text = await response.text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["dial *123#", "< Okryu Shop", "> 1", "< Categories", "> 1", "< Food",
                     "> 1", "< Corn noodles"]  # fmt: skip
    parsed = parse_scenario(text, "recorded.scn")
    result = await run_scenario(
        parsed, url=str(client.make_url("/ussd/africastalking")), msisdn="+8501912340077",
        dialect="africastalking",
    )  # fmt: skip
    assert result.passed, result.transcript


def test_simulator_is_refused_outside_demo_mode(gateway_settings: Settings) -> None:
    from gateway.app import create_app
    from gateway.settings import SettingsError

    live = dataclasses.replace(gateway_settings, demo=False, simulator=True, admin_token="x")
    with pytest.raises(SettingsError, match="needs OKRYU_DEMO=1"):
        create_app(live)
