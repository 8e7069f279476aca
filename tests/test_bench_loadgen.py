"""bench/hop.py's load generator: its handsets drive whole journeys over real sockets, and
count what goes wrong instead of measuring it."""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

import pytest
from aiohttp import web

import bench.hop
from bench.hop import CONFIRMED, HOME_SCREEN, ORDER_JOURNEY, Target, subscriber
from simulators.load import Tally, Window

ALWAYS = Window(0.0, math.inf)


def _answer(text: str, step: int) -> str:
    if step == 0:
        return HOME_SCREEN + "1. Shop"
    if step == len(ORDER_JOURNEY) - 1:
        return "END Order ABC123 placed"
    return f"CON screen for {text!r}"


class Stub:
    """A USSD endpoint answering the order journey as the gateway would; ``misbehave`` turns
    one hop of it into something else."""

    def __init__(self, misbehave: dict[str, Any] | None = None) -> None:
        self.seen: list[tuple[str, str]] = []  # (session id, text) of every hop
        self.misbehave = misbehave or {}
        self.release = asyncio.Event()  # lets the hops it holds go, at the end

    async def hop(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        session, text = str(form["sessionId"]), str(form["text"])
        self.seen.append((session, text))
        step = ORDER_JOURNEY.index(text)
        if self.misbehave.get("drop_at") == step:
            assert request.transport is not None
            request.transport.close()  # the connection lost with the hop out
            return web.Response(text="never read")
        if self.misbehave.get("hold_at") == step and session == self.seen[0][0]:
            await self.release.wait()  # the first session's hop: never answered in time
        body = _answer(text, step)
        if self.misbehave.get("off_script_at") == step:
            body = "END Sorry, something went wrong"
        return web.Response(text=body)


async def _drive(aiohttp_server: Any, stub: Stub, sessions: int) -> Tally:
    app = web.Application()
    app.router.add_post("/ussd/africastalking", stub.hop)
    server = await aiohttp_server(app)
    target = Target("gateway", "sqlite", server.port, 0, list, cast(Any, None))
    tally = Tally()
    await subscriber(target, "order", 0, ALWAYS, tally, sessions_left=[sessions])
    return tally


async def test_handset_drives_each_journey_through_in_its_own_session(aiohttp_server: Any) -> None:
    stub = Stub()
    tally = await _drive(aiohttp_server, stub, sessions=3)
    assert [text for _, text in stub.seen] == list(ORDER_JOURNEY) * 3
    assert len({session for session, _ in stub.seen}) == 3
    assert len(tally.latencies) == 3 * len(ORDER_JOURNEY)
    assert tally.outcomes[CONFIRMED] == 3 and tally.journeys["order"] == 3
    assert tally.error_count == 0


async def test_an_answer_off_the_script_is_counted_and_a_fresh_session_starts(
    aiohttp_server: Any,
) -> None:
    stub = Stub({"off_script_at": 3})
    tally = await _drive(aiohttp_server, stub, sessions=2)
    assert tally.errors["unexpected_screens"] == 2
    assert [text for _, text in stub.seen] == list(ORDER_JOURNEY[:4]) * 2
    assert len({session for session, _ in stub.seen}) == 2
    assert len(tally.latencies) == 2 * 3  # the off-script answers are not measured
    assert tally.outcomes[CONFIRMED] == 0


async def test_a_connection_lost_with_a_hop_out_is_an_error_and_the_session_is_given_up(
    aiohttp_server: Any,
) -> None:
    stub = Stub({"drop_at": 5})
    tally = await _drive(aiohttp_server, stub, sessions=2)
    assert tally.errors["connection_errors"] == 2
    assert "'1*1*2*1*2'" in tally.error_samples[0]  # the hop that was out
    assert [text for _, text in stub.seen] == list(ORDER_JOURNEY[:6]) * 2
    assert len({session for session, _ in stub.seen}) == 2


async def test_a_hop_past_the_timeout_is_an_error_and_its_late_close_touches_nothing(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.hop, "HOP_TIMEOUT", 0.05)
    monkeypatch.setattr(bench.hop, "WATCHDOG_INTERVAL", 0.01)
    stub = Stub({"hold_at": 2})
    try:
        tally = await _drive(aiohttp_server, stub, sessions=3)
    finally:
        stub.release.set()
    # One hop timed out; the closing of its connection, reported later, is not a second
    # error for the next session's hops.
    assert tally.errors == {"connection_errors": 1}
    assert "TimeoutError" in tally.error_samples[0]
    assert tally.journeys["order"] == 2
    assert [text for _, text in stub.seen] == list(ORDER_JOURNEY[:3]) + list(ORDER_JOURNEY) * 2
