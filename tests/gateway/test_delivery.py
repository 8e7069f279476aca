"""Delivery receipts over Africa's Talking, end to end: the gateway's app, the AT sink and the
database, over real sockets. A receipt attaches to its message whatever state it is in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import keys
from gateway.sms.dispatcher import Dispatcher
from simulators.smsink import SinkReport, SmsSink
from store import outbox
from store.db import Database
from store.models import PROVIDER_ID_WIDTH
from tests.gateway.test_sms import Clock, queue, row

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
KEY = "k3y"


async def at_gateway(
    make_gateway: Make, aiohttp_server: ServerFactory, sink: SmsSink
) -> TestClient[Any, Any]:
    """The gateway sending through ``sink``, which posts its delivery reports back to it."""
    server = await aiohttp_server(sink.app)
    client = await make_gateway(
        sms_provider="africastalking",
        at_sms_url=str(server.make_url("/version1/messaging")),
        at_api_key=KEY,
    )
    sink.dlr_url = str(client.make_url("/sms/africastalking/dlr"))
    return client


async def test_an_early_delivery_report_settles_the_message_once_its_send_is_recorded(
    make_gateway: Make, aiohttp_server: ServerFactory, seeded_db: Database
) -> None:
    sink = SmsSink(KEY)
    client = await at_gateway(make_gateway, aiohttp_server, sink)
    sink.report_before_answer(1, "Success")  # AT's report overtakes its answer to the send
    id_ = await queue(seeded_db)

    assert await client.app[keys.DISPATCHER].run_once() == 1

    [message] = sink.messages
    assert sink.reports == [SinkReport(message.id, "Success", 200)]  # posted before the answer
    sent = await row(seeded_db, id_)
    assert (sent.status, sent.provider_message_id) == ("delivered", message.id)
    assert sent.delivered_at is not None


async def test_an_early_failure_report_fails_the_message_and_a_late_success_changes_nothing(
    make_gateway: Make, aiohttp_server: ServerFactory, seeded_db: Database
) -> None:
    sink = SmsSink(KEY)
    client = await at_gateway(make_gateway, aiohttp_server, sink)
    sink.report_before_answer(1, "Failed")
    id_ = await queue(seeded_db)

    assert await client.app[keys.DISPATCHER].run_once() == 1
    [message] = sink.messages
    assert await sink.report(message.id, "Success") == 200  # out of order: the final one stands

    failed = await row(seeded_db, id_)
    assert (failed.status, failed.last_error, failed.delivered_at) == (
        "failed",
        "receipt: failed",
        None,
    )


async def test_a_150_character_message_id_is_sent_once_and_its_receipt_attaches(
    make_gateway: Make, aiohttp_server: ServerFactory, seeded_db: Database
) -> None:
    sink = SmsSink(KEY, id_prefix="ATXid_" + "7" * 143)  # and a serial number: 150 characters
    client = await at_gateway(make_gateway, aiohttp_server, sink)
    clock = Clock()
    worker = Dispatcher(seeded_db, client.app[keys.DISPATCHER].provider, clock=clock)
    id_ = await queue(seeded_db)

    assert await worker.run_once() == 1  # the database keeps the answer: no paid duplicate ...
    clock.advance((worker.lease + timedelta(minutes=1)).total_seconds())
    assert await worker.run_once() == 0  # ... after the lease either
    [message] = sink.messages
    assert len(message.id) == 150

    assert await sink.report(message.id, "Success") == 200

    delivered = await row(seeded_db, id_)
    assert delivered.status == "delivered"
    stored = delivered.provider_message_id
    assert stored == outbox.stored_id(message.id) and stored is not None
    assert len(stored) <= PROVIDER_ID_WIDTH and stored.startswith("ATXid_7777")
