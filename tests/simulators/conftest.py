"""A tiny Africa's Talking-dialect USSD app with a development SMS inbox, for handset tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

MENU = "CON Echo service\n1. Echo\n2. Bye"


@dataclass
class EchoState:
    """What the app saw and what its inbox holds."""

    requests: list[dict[str, str]] = field(default_factory=list)
    inbox_queries: list[dict[str, str]] = field(default_factory=list)
    sms: list[tuple[int, str, str]] = field(default_factory=list)  # (id, to, body)

    def add_sms(self, to: str, body: str) -> None:
        self.sms.append((len(self.sms) + 1, to, body))


STATE = web.AppKey("echo_state", EchoState)


async def ussd(request: web.Request) -> web.Response:
    """Menu -> prompt -> echo (and an SMS); ``2`` ends at once."""
    form = {k: str(v) for k, v in (await request.post()).items()}
    state = request.app[STATE]
    state.requests.append(form)
    inputs = form["text"].split("*") if form["text"] else []
    if not inputs:
        body = MENU
    elif inputs == ["1"]:
        body = "CON Say something"
    elif inputs[0] == "1":
        said = "*".join(inputs[1:])
        state.add_sms(form["phoneNumber"], f"You said {said}")
        body = f"END You said {said}"
    elif inputs == ["2"]:
        body = "END Bye"
    else:
        body = "CON Invalid choice\n1. Echo\n2. Bye"
    return web.Response(text=body, content_type="text/plain")


async def dev_sms(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.inbox_queries.append(dict(request.query))
    to, after = request.query["to"], int(request.query.get("after", "0"))
    at = datetime(2026, 11, 28, 15, 0).isoformat()
    messages = [
        {"id": id_, "body": body, "at": at}
        for id_, dest, body in state.sms
        if dest == to and id_ > after
    ]
    return web.json_response({"messages": messages})


async def broken(request: web.Request) -> web.Response:
    return web.Response(status=500, text="Internal Server Error")


async def garbled(request: web.Request) -> web.Response:
    return web.Response(text="hello without a prefix")


def echo_app(state: EchoState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_post("/ussd/africastalking", ussd)
    app.router.add_post("/broken", broken)
    app.router.add_post("/garbled", garbled)
    app.router.add_get("/dev/sms", dev_sms)
    return app


@pytest.fixture
def echo_state() -> EchoState:
    return EchoState()


@pytest.fixture
async def echo_server(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], echo_state: EchoState
) -> TestServer:
    return await aiohttp_server(echo_app(echo_state))
