"""What the gateway writes to its logs: never a subscriber's number, address, SMS or secret.

The database errors here are real ones from the real database: each backend's own words for a
duplicate number, a value too long, a NUL byte and a failed CHECK, caught and logged the way
the gateway's code logs them, through the handlers ``okryu serve`` installs.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from gateway.logs import AccessLogger, Redact, configure, mask_phones
from gateway.messages import BadRequest
from gateway.sms.africastalking import AfricasTalkingProvider
from gateway.sms.dispatcher import Dispatcher
from menus import sms
from simulators.smsink import SmsSink
from store.db import Database
from store.errors import StoreError
from store.models import Category, Customer, InboundMessage, OutboundMessage, Product
from tests.gateway.test_sms import Clock, queue, row
from tests.gateway.test_ussd import ORDER_PATH, post, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]
log = logging.getLogger("okryu.test")

PHONE = "+8501912345678"
NATIONAL = "1912345678"  # what is left of PHONE in any format: 850..., 0191..., 191 234 5678
ADDRESS = "Ryomyong street 12, flat 7"
SMS_BODY = "Okryu: the courier waits at the bakery"
SECRET = "zq-4711-hush"


class Captured:
    """What the root handler wrote, as text a person would read (JSON strings decoded)."""

    def __init__(self, fmt: str, stream: io.StringIO) -> None:
        self.fmt = fmt
        self.stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        if self.fmt == "text":
            return self.stream.getvalue()
        return "\n".join(str(value) for line in self.lines() for value in line.values())


@pytest.fixture(params=["json", "text"])
def captured(request: pytest.FixtureRequest) -> Iterator[Captured]:
    """The logging ``okryu serve`` configures, writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook, threading.excepthook
    stream = io.StringIO()
    configure(request.param)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield Captured(request.param, stream)
    finally:
        root.handlers[:], level, sys.excepthook, threading.excepthook = saved
        root.setLevel(level)


def assert_no_subscriber_data(text: str) -> None:
    digits = r"[\s\-.()/]*".join(NATIONAL)  # the number with any spacing or punctuation
    assert not re.search(digits, text), "a phone number reached the log"
    assert "ryomyong" not in text.lower(), "an address reached the log"
    assert "bakery" not in text, "an SMS body reached the log"
    assert SECRET not in text, "a planted secret reached the log"


def assert_traceback_kept(text: str, function: str) -> None:
    """The frames are still there: a bug stays findable by file, line and function."""
    assert "Traceback (most recent call last):" in text
    assert re.search(r'File ".*test_logs\.py", line \d+, in ' + function, text), text


async def _insert(db: Database, *rows: SQLModel) -> None:
    async with db.write() as session:
        session.add_all(rows)


async def _provoke(db: Database, *rows: SQLModel) -> str:
    """Insert rows the database refuses and log the error as the gateway does; its class."""
    try:
        await _insert(db, *rows)
    except SQLAlchemyError as error:
        log.exception("could not save the rows")
        return type(error).__name__
    pytest.fail("the database accepted the rows")


def _customer(address: str = ADDRESS) -> Customer:
    return Customer(msisdn=PHONE, address=address)


async def test_logs_withhold_subscriber_data_from_a_unique_violation(
    db: Database, captured: Captured
) -> None:
    await _insert(db, _customer())
    assert await _provoke(db, _customer()) == "IntegrityError"
    text = captured.text()
    assert_no_subscriber_data(text)
    assert "could not save the rows" in text
    assert_traceback_kept(text, "_insert")
    assert "IntegrityError" in text


async def test_logs_withhold_subscriber_data_from_a_value_too_long(
    db: Database, captured: Captured
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite does not enforce column lengths")
    too_long = OutboundMessage(to=PHONE, body=f"{SMS_BODY}, {ADDRESS}. " * 20, idempotency_key="k")
    assert await _provoke(db, too_long) == "DBAPIError"
    text = captured.text()
    assert_no_subscriber_data(text)
    assert_traceback_kept(text, "_insert")
    assert "sqlstate=22001" in text  # string_data_right_truncation: the reason, not the value


async def test_logs_withhold_subscriber_data_from_a_nul_byte(
    db: Database, captured: Captured
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite stores NUL bytes")
    inbound = InboundMessage(msisdn=PHONE, to="12345", text=f"{SMS_BODY}\x00{ADDRESS}")
    assert await _provoke(db, inbound) == "DBAPIError"
    text = captured.text()
    assert_no_subscriber_data(text)
    assert_traceback_kept(text, "_insert")
    assert "sqlstate=22021" in text  # character_not_in_repertoire


async def test_logs_withhold_the_row_from_a_check_violation(
    db: Database, captured: Captured
) -> None:
    await _insert(db, Category(slug="food", name_en="Food", name_ko="식품"))
    product = Product(
        sku=SECRET,
        category_id=1,
        name_en="Ryomyong rice",
        name_ko="쌀",
        description_en=f"ask for {PHONE}",
        price=1200,
        stock=-1,
    )
    assert await _provoke(db, product) == "IntegrityError"
    text = captured.text()
    assert_no_subscriber_data(text)
    assert_traceback_kept(text, "_insert")
    assert "product_stock_not_negative" in text or "SQLITE_CONSTRAINT_CHECK" in text


def _failing(address: str) -> None:
    raise ValueError(f"no delivery zone for {address!r} ({PHONE})")


def test_logs_withhold_the_message_of_any_exception_not_known_safe(captured: Captured) -> None:
    try:
        try:
            _failing(ADDRESS)
        except ValueError as error:
            raise RuntimeError(f"order for {SMS_BODY} failed") from error
    except RuntimeError as error:
        log.exception("placing failed")
        log.warning("placing failed: %s (%r)", error, error.__cause__)
        log.error("placing failed: " + str(error), exc_info=error)
        log.error(error)
        log.info("retrying", extra={"who": PHONE})
    text = captured.text()
    assert_no_subscriber_data(text)
    assert_traceback_kept(text, "_failing")
    assert "The above exception was the direct cause of the following exception:" in text
    assert "ValueError (message withheld)" in text and "RuntimeError (message withheld)" in text
    assert text.count("placing failed") == 3
    assert re.search(r"okryu\.test\sRuntimeError \(message withheld\)", text)  # log.error(error)


def test_logs_keep_the_message_of_the_projects_safe_exceptions(captured: Captured) -> None:
    for error in (BadRequest("phone number is not a possible number"), StoreError(PHONE)):
        try:
            raise error
        except Exception:
            log.exception("refused")
    text = captured.text()
    assert_no_subscriber_data(text)
    assert "gateway.messages.BadRequest: phone number is not a possible number" in text
    assert "store.errors.StoreError: +850*******678" in text  # still masked


async def test_logs_withhold_a_task_exception_asyncio_quotes(captured: Captured) -> None:
    async def place() -> None:
        _failing(ADDRESS)

    task = asyncio.get_running_loop().create_task(place())
    await asyncio.wait([task])
    del task
    gc.collect()  # the task is freed with its exception unread: asyncio logs its repr
    text = captured.text()
    assert_no_subscriber_data(text)
    assert "Task exception was never retrieved" in text
    assert_traceback_kept(text, "_failing")


def test_logs_mask_numbers_in_a_stack(captured: Captured) -> None:
    log.warning("customer %s asked", mask_phones(PHONE), stack_info=True)  # +8501912345678
    text = captured.text()
    assert_no_subscriber_data(text)
    assert "Stack (most recent call last):" in text
    assert "in test_logs_mask_numbers_in_a_stack" in text


def test_logs_take_uncaught_exceptions_too(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        _failing(ADDRESS)
    except ValueError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    text = captured.text()
    assert_no_subscriber_data(text)
    assert "uncaught exception" in text
    assert_traceback_kept(text, "_failing")
    assert_no_subscriber_data(capsys.readouterr().err)


async def _refuse_inserts(db: Database, table: str) -> None:
    """Make the database refuse every new row of ``table`` with its own constraint error."""
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:  # PostgreSQL's DETAIL quotes the whole failing row
            await conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD CONSTRAINT refuse_{table} CHECK (id < 0) NOT VALID"
            )


async def test_logs_of_a_hop_failing_on_the_database_hold_no_subscriber_data(
    make_gateway: Make, db: Database, captured: Captured
) -> None:
    client = await make_gateway()
    await _refuse_inserts(db, "orders")  # the order's row holds the number and the address
    await _refuse_inserts(db, "outboundmessage")  # the "order failed" SMS: number and body
    path = [ADDRESS if step == "Changjon street 5" else step for step in ORDER_PATH]
    await walk(client, path)
    status, body = await post(client, "*".join([*path, "1"]))
    assert status == 200 and body.startswith("END "), body
    text = captured.text()
    assert_no_subscriber_data(text)
    assert "placing an order failed" in text
    assert "could not queue the order-failed SMS" in text
    assert "hop failed for +850*******678 on africastalking" in text
    assert re.search(r'File ".*store/orders\.py", line \d+, in place_order', text), text
    assert "IntegrityError (message withheld" in text
    failed_sms = sms.order_failed("en", "*123#")
    assert failed_sms not in text and "could not place your order" not in text


def test_logs_mask_phone_numbers_whoever_logs_them(captured: Captured) -> None:
    assert mask_phones(f"sms to {PHONE}: order ABC234") == "sms to +850*******678: order ABC234"
    log.warning("customer %s asked", PHONE)
    if captured.fmt == "json":
        (line,) = captured.lines()
        assert line["level"] == "WARNING" and line["logger"] == "okryu.test"
        assert line["message"] == "customer +850*******678 asked"
    else:
        assert captured.text().endswith(" WARNING okryu.test customer +850*******678 asked\n")
    assert isinstance(logging.getLogger().handlers[0].filters[0], Redact)


async def test_access_log_leaves_out_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    async def inbox(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/dev/sms", inbox)
    runner = web.AppRunner(app, access_log_class=AccessLogger)  # as `okryu serve` runs it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/dev/sms"
                async with http.get(url, params={"to": "+8501912345678"}) as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    assert "GET /dev/sms 200" in caplog.text
    assert "1912345678" not in caplog.text


# What a provider's answer may echo: the number it was sent to, the message it was asked to send.
ECHO = f"InvalidSenderId for 850-1912-345678 {ADDRESS}: {SMS_BODY}"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"fail": 401}, "HTTP 401 from provider, check username and api key"),
        ({"fail": 503}, "HTTP 503 from provider"),
        ({"fail": 200}, "non-JSON answer from provider"),
        ({"fail": 200, "json": True}, "unexpected JSON from provider"),
        ({"refuse": True}, "no recipient accepted"),
        ({"reject": 402}, "recipient status 402"),
    ],
)
async def test_logs_and_the_outbox_keep_no_free_text_of_a_providers_answer(
    db: Database,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    captured: Captured,
    answer: dict[str, Any],
    error: str,
) -> None:
    sink = SmsSink("k3y")
    if "fail" in answer:
        body = json.dumps({"SMSMessageData": ECHO}) if answer.get("json") else ECHO
        sink.fail_next(1, status=answer["fail"], body=body)
    elif "refuse" in answer:
        sink.refuse_next(1, message=ECHO)
    else:
        sink.reject_next(1, status_code=answer["reject"], status=ECHO)
    url = str((await aiohttp_server(sink.app)).make_url("/version1/messaging"))
    id_ = await queue(db)
    async with aiohttp.ClientSession() as http:
        provider = AfricasTalkingProvider(http, url, "sandbox", "k3y", "OKRYU")
        assert await Dispatcher(db, provider, clock=Clock()).run_once() == 1
    stored = (await row(db, id_)).last_error
    assert stored == error  # the provider's structured fields only
    text = captured.text()
    assert error in text
    assert_no_subscriber_data(text)
    assert_no_subscriber_data(stored)
    assert "8501912345678" not in text.replace("-", "")
