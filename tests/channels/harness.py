"""One harness for every channel adapter: a table of cases, each a real HTTP request.

Every adapter's table names the same cases (``LABELS``); a case that cannot happen on an
aggregator's wire is listed as ``NotApplicable`` with the reason, so a missing case is a
decision someone wrote down, never an oversight. The app under test is the adapter alone:
``/ussd/<slug>`` parses, answers an ``Inbound`` with ``Echo: <inputs>`` and a notice with
``render(request, None)``, and records what ``parse`` returned.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.channels import Channel
from gateway.messages import BadRequest, Inbound, Reply, SessionEnd
from gateway.settings import Settings

SETTINGS = Settings(service_codes=("*123#",), default_region="KP")
MSISDN = "+8501912345678"
DIGITS = MSISDN.removeprefix("+")  # as the aggregators that drop the "+" send it
LABELS = (
    "new session",
    "continue",
    "shortcut dial",
    "user ends",
    "network timeout notice",
    "missing field",
    "bad phone number",
    "final screen rendering",
    "wrong content type",
    "wrong method",
    # Hostile or broken input: what the store cannot keep is refused, what a subscriber typed
    # re-prompts (control bytes reach the screen as U+FFFD), and nothing answers 5xx.
    "session id too long",
    "control byte in an id",
    "phone number too long",
    "control byte in the input",
    "nested too deeply",
)
DROP = object()  # a field value that removes the field

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass(frozen=True)
class Call:
    """The HTTP request an aggregator makes."""

    method: str = "POST"
    query: Mapping[str, str] | None = None
    json: Mapping[str, object] | None = None
    form: Mapping[str, str] | None = None
    raw: bytes | None = None  # a body sent as it is, as application/json


def changed(base: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with ``changes`` made; a change to ``DROP`` removes that field."""
    fields = {**base, **changes}
    return {name: value for name, value in fields.items() if value is not DROP}


def post_json(base: Mapping[str, Any], **changes: Any) -> Call:
    return Call(json=changed(base, **changes))


def post_form(base: Mapping[str, Any], **changes: Any) -> Call:
    return Call(form=changed(base, **changes))


def get(base: Mapping[str, Any], **changes: Any) -> Call:
    return Call(method="GET", query=changed(base, **changes))


@dataclass(frozen=True)
class Case:
    """One request, what ``parse`` must make of it and the exact answer."""

    label: str
    call: Call
    parsed: Inbound | SessionEnd | None  # None: parse refuses the request
    status: int = 200
    content_type: str = "application/json"
    body: str | Mapping[str, object] = ""  # a mapping is compared as the JSON it dumps to
    end: bool = False  # whether the echo reply closes the session


@dataclass(frozen=True)
class NotApplicable:
    """A standard case that the aggregator's wire format cannot produce."""

    label: str
    reason: str


Table = Sequence[Case | NotApplicable]


@dataclass
class Echo:
    """What the harness app saw, and how it answers."""

    seen: list[Inbound | SessionEnd] = field(default_factory=list)
    end: bool = False


ECHO = web.AppKey("echo", Echo)


def channel_app(channel: Channel, echo: Echo) -> web.Application:
    """``channel`` alone at ``/ussd/<slug>``, answering every hop with its inputs."""

    async def hop(request: web.Request) -> web.Response:
        try:
            parsed = await channel.parse(request, SETTINGS)
        except BadRequest as error:
            return web.Response(status=error.status, text=error.reason)
        echo.seen.append(parsed)
        # The gateway awaits Redis here: let concurrent requests interleave, as they do live.
        await asyncio.sleep(0)
        if isinstance(parsed, SessionEnd):
            return channel.render(request, None)
        return channel.render(request, Reply("Echo: " + repr(parsed.inputs), end=echo.end))

    app = web.Application()
    app[ECHO] = echo
    app.router.add_route(channel.method, f"/ussd/{channel.slug}", hop)
    return app


async def send(client: TestClient[Any, Any], slug: str, call: Call) -> tuple[int, str, str]:
    """Make ``call`` to ``/ussd/<slug>``: the status, content type and body of the answer."""
    data: Any = call.form
    headers = None
    if call.raw is not None:
        data, headers = call.raw, {"Content-Type": "application/json"}
    async with client.request(
        call.method, f"/ussd/{slug}", params=call.query, json=call.json, data=data, headers=headers
    ) as response:
        return response.status, response.content_type, await response.text()


async def run(make_client: ClientFactory, channel: Channel, case: Case) -> None:
    """Run ``case`` against ``channel`` and check everything it says."""
    echo = Echo(end=case.end)
    before = copy.deepcopy(vars(channel))
    client = await make_client(channel_app(channel, echo))
    status, content_type, body = await send(client, channel.slug, case.call)
    assert echo.seen == ([case.parsed] if case.parsed is not None else [])
    expected = case.body if isinstance(case.body, str) else json.dumps(case.body)
    assert (status, content_type, body) == (case.status, case.content_type, expected)
    assert vars(channel) == before, "the adapter kept per-request data on itself"


def cases(tables: Mapping[str, tuple[Channel, Table]]) -> list[Any]:
    """One pytest parameter per runnable case, named ``<table>: <label>``."""
    return [
        pytest.param(channel, case, id=f"{name}: {case.label}")
        for name, (channel, table) in tables.items()
        for case in table
        if isinstance(case, Case)
    ]


def missing_labels(table: Table) -> list[str]:
    """The standard labels a table neither runs nor marks as not applicable."""
    named = {case.label for case in table}
    return [label for label in LABELS if label not in named]
