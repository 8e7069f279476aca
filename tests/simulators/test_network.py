"""The simulated network, against a tiny app that logs every request it really receives."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulators.network import (
    FLAKY,
    GOOD,
    Event,
    Network,
    NetworkProfile,
    SessionCut,
    VirtualClock,
    network_profile,
)
from simulators.phone import Phone, PhoneError
from simulators.terminal import CUT, run_terminal

MSISDN = "+254711000111"


@dataclass
class Log:
    """What the app received, in order of arrival: (route, what the hop carried)."""

    hops: list[tuple[str, str]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)  # Africa's Talking's sessionId of each

    def texts(self, route: str = "at") -> list[str]:
        return [carried for where, carried in self.hops if where == route]


LOG = web.AppKey("log", Log)


async def at_hop(request: web.Request) -> web.Response:
    """Africa's Talking's dialect: answers with the path it was sent; ``9`` ends."""
    form = await request.post()
    text = str(form["text"])
    request.app[LOG].hops.append(("at", text))
    request.app[LOG].sessions.append(str(form["sessionId"]))
    kind = "END" if text.endswith("9") else "CON"
    return web.Response(text=f"{kind} at [{text}]", content_type="text/plain")


async def hubtel_hop(request: web.Request) -> web.Response:
    """Hubtel's dialect: answers with the hop number and message it was sent."""
    data = await request.json()
    request.app[LOG].hops.append(("hubtel", f"{data['Sequence']}:{data['Message']}"))
    return web.json_response({"Type": "Response", "Message": f"hop {data['Sequence']}"})


async def broken_hop(request: web.Request) -> web.Response:
    return web.Response(status=500, text="Internal Server Error")


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
async def server(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], log: Log
) -> TestServer:
    app = web.Application()
    app[LOG] = log
    app.router.add_post("/ussd/africastalking", at_hop)
    app.router.add_post("/ussd/hubtel", hubtel_hop)
    app.router.add_post("/ussd/broken", broken_hop)
    return await aiohttp_server(app)


def phone(server: TestServer, dialect: str = "africastalking") -> Phone:
    return Phone(str(server.make_url(f"/ussd/{dialect}")), MSISDN, dialect=dialect)


def only(**chances: Any) -> NetworkProfile:
    """A network that plays only the given tricks."""
    return dataclasses.replace(GOOD, name="test", **chances)


async def test_network_good_passes_hops_through_once(server: TestServer, log: Log) -> None:
    async with phone(server) as handset:
        network = Network(handset, GOOD, seed=1)
        await network.dial("*123#")
        screen = await network.send("1")
        screen = await network.send("2")
    assert log.texts() == ["", "1", "1*2"]
    assert screen.text == "at [1*2]" and not screen.end
    assert [e.kind for e in network.transcript] == ["dial", "screen", *["sent", "screen"] * 2]


async def test_network_duplicate_is_sent_twice_over_http(server: TestServer, log: Log) -> None:
    async with phone(server) as handset:
        network = Network(handset, only(duplicate=1.0), seed=2)
        await network.dial("*123#")
        shown = await network.send("1")
    assert Counter(log.texts()) == {"": 2, "1": 2}
    assert shown.text == "at [1]"
    assert [e.kind for e in network.transcript].count("duplicate") == 2
    assert len(network.responses) == 4


@pytest.mark.parametrize("seed", range(6))  # concurrent or one after the other, by the dice
async def test_network_duplicate_speaks_the_phones_dialect(
    server: TestServer, log: Log, seed: int
) -> None:
    async with phone(server, "hubtel") as handset:
        network = Network(handset, only(duplicate=1.0), seed=seed)
        await network.dial("*123#")
        await network.send("1")
    # The same JSON body twice: the retry carries the original's Sequence.
    assert Counter(log.texts("hubtel")) == {"1:*123#": 2, "2:1": 2}


async def test_network_late_hop_arrives_after_later_ones(server: TestServer, log: Log) -> None:
    async with phone(server) as handset:
        network = Network(handset, only(late=1.0), seed=3)
        await network.dial("*123#")
        await network.send("1")  # the dial's hop arrives again, late
        shown = await network.send("2")  # "" or "1" arrives again, late
    texts = log.texts()
    assert texts[:4] == ["", "1", "", "1*2"]
    assert texts[4] in ("", "1") and len(texts) == 5
    assert shown.text == "at [1*2]"  # the handset never sees a late hop's answer
    assert [e.kind for e in network.transcript].count("late") == 2


async def test_network_stale_hop_of_the_cut_session_arrives_after_the_redial(
    server: TestServer, log: Log
) -> None:
    async with phone(server) as handset:
        network = Network(handset, only(stale=1.0), seed=3)
        await network.dial("*123#")  # no session before: nothing stale
        await network.send("1")
        await network.send("2")
        network.hang_up()
        shown = await network.dial("*123#")
    assert log.texts()[:4] == ["", "1", "1*2", ""]
    assert log.texts()[4] in ("", "1", "1*2") and len(log.texts()) == 5
    first, second = log.sessions[0], log.sessions[3]
    assert first != second and log.sessions == [first, first, first, second, first]
    assert shown.text == "at []"
    assert [e.kind for e in network.transcript].count("stale") == 1


async def test_network_cuts_when_the_subscriber_outlasts_the_timeout(
    server: TestServer, log: Log
) -> None:
    clock = VirtualClock(1000.0)
    async with phone(server) as handset:
        network = Network(handset, GOOD, seed=4, clock=clock)
        await network.dial("*123#", think=0)
        await network.send("1", think=30)  # on the timeout: still in time
        with pytest.raises(SessionCut, match="no answer within 30s"):
            await network.send("2", think=30.5)
        assert not network.in_session
        with pytest.raises(PhoneError, match="dial again"):
            await network.send("2", think=1)
        screen = await network.dial("*123#", think=5)
    assert log.texts() == ["", "1", ""]  # the late answer never left the handset
    assert screen.text == "at []"
    assert clock() == 1000.0 + 30 + 30.5 + 5
    assert network.transcript[-3].kind == "cut"


async def test_network_slow_typist_is_cut_by_drawn_think_time(server: TestServer, log: Log) -> None:
    clock = VirtualClock(0.0)
    async with phone(server) as handset:
        network = Network(handset, only(slow_typist=1.0), seed=5, clock=clock)
        await network.dial("*123#", think=0)
        with pytest.raises(SessionCut):
            await network.send("1")
    assert clock() > GOOD.timeout
    assert log.texts() == [""]


async def test_network_cuts_a_dialogue_past_its_lifetime(server: TestServer, log: Log) -> None:
    async with phone(server) as handset:
        network = Network(handset, only(session_limit=60), seed=6)
        await network.dial("*123#", think=0)
        await network.send("1", think=29)
        await network.send("2", think=29)
        with pytest.raises(SessionCut, match="outlived 60s"):
            await network.send("3", think=3)
    assert log.texts() == ["", "1", "1*2"]


async def test_network_drop_loses_the_screen_after_the_gateway_answered(
    server: TestServer, log: Log
) -> None:
    async with phone(server) as handset:
        network = Network(handset, only(drop=1.0), seed=7)
        with pytest.raises(SessionCut, match="dropped"):
            await network.dial("*123#")
        assert not network.in_session
    assert log.texts() == [""]  # the gateway did answer
    assert [e.kind for e in network.transcript] == ["dial", "screen", "cut"]
    assert network.transcript[1].detail.startswith("(never shown) 200 CON")


async def test_network_keeps_a_retry_answered_with_5xx_among_the_responses(
    server: TestServer,
) -> None:
    async with Phone(str(server.make_url("/ussd/broken")), MSISDN) as handset:
        network = Network(handset, only(duplicate=1.0), seed=8)
        screen = await network.dial("*123#")
    assert screen.status == 500 and screen.end
    assert [s.status for s in network.responses] == [500, 500]


async def run_scripted(server: TestServer, seed: int) -> list[Event]:
    """A subscriber who redials whenever cut, under the flaky network."""
    async with phone(server) as handset:
        network = Network(handset, FLAKY, seed=seed)
        answers = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
        screen = None
        while answers:
            try:
                if not network.in_session:
                    screen = await network.dial("*123#")
                    continue
                screen = await network.send(answers.pop(0))
            except SessionCut:
                continue
        assert screen is None or screen.text.startswith("at [")
        return network.transcript


async def test_network_same_seed_same_transcript(server: TestServer) -> None:
    first = await run_scripted(server, 11)
    again = await run_scripted(server, 11)
    other = await run_scripted(server, 12)
    assert first == again
    assert first != other
    assert {e.kind for e in first + other} >= {"cut", "duplicate", "late"}


def test_network_profiles_by_name_and_checked() -> None:
    assert network_profile("flaky") is FLAKY and network_profile("good") is GOOD
    assert (FLAKY.drop, FLAKY.duplicate, FLAKY.late, FLAKY.slow_typist) == (0.1, 0.2, 0.1, 0.05)
    assert FLAKY.stale > 0  # hops of a cut session arriving after the redial (see test_flaky)
    with pytest.raises(ValueError, match="known: good, flaky"):
        network_profile("carrier-pigeon")
    with pytest.raises(ValueError, match="drop is a probability"):
        NetworkProfile(drop=1.5)
    with pytest.raises(ValueError, match="think"):
        NetworkProfile(think=(5.0, 1.0))


def test_virtual_clock_moves_only_forward_when_told() -> None:
    clock = VirtualClock(10.0)
    clock.advance(2.5)
    assert clock() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_terminal_over_a_dropping_network_says_to_dial_again(
    server: TestServer, log: Log
) -> None:
    written: list[str] = []
    await run_terminal(
        str(server.make_url("/ussd/africastalking")),
        MSISDN,
        "*123#",
        iter(["", "1", "", "q"]),
        written.append,
        poll_sms=False,
        network=only(drop=1.0),
        seed=9,
    )
    assert written[1] == "(network: test, seed 9)"
    assert written.count(CUT) == 2
    assert "(network: the session dropped before the screen arrived)" in written
    assert "No session. Press Enter to dial *123#." in written  # the "1" after the cut
    assert log.texts() == ["", ""]


async def test_terminal_speaks_the_dialect_it_is_given(server: TestServer, log: Log) -> None:
    written: list[str] = []
    await run_terminal(
        str(server.make_url("/ussd/hubtel")),
        MSISDN,
        "*123#",
        iter(["", "1"]),
        written.append,
        poll_sms=False,
        dialect="hubtel",
        network="good",
        seed=1,
    )
    assert log.texts("hubtel") == ["1:*123#", "2:1"]
    assert "| hop 2" in "\n".join(written)
