from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import select

from gateway import keys
from gateway.numbers import mask
from gateway.settings import Settings, SettingsError
from gateway.sms.africastalking import AfricasTalkingProvider
from gateway.sms.dispatcher import LEASE_MARGIN, Dispatcher
from gateway.sms.factory import make_provider
from gateway.sms.log import LogProvider
from gateway.sms.pacer import Pacer
from gateway.sms.provider import SendResult
from simulators.smsink import SmsSink
from store import outbox
from store.db import Database
from store.models import OutboundMessage, utcnow

KEY = "test-api-key"
TO = "+254711000111"

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class Clock:
    """The dispatcher's time, moved by hand."""

    def __init__(self) -> None:
        # A minute from now: rows the test queues are due at once, and young.
        self.start = self.now = utcnow() + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Watched:
    """A provider wrapper that counts sends and can be awaited until it has sent n."""

    def __init__(self, inner: AfricasTalkingProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.send_timeout = inner.send_timeout
        self.sends = 0
        self._changed = asyncio.Event()

    async def send(self, to: str, body: str) -> SendResult:
        result = await self.inner.send(to, body)
        self.sends += 1
        self._changed.set()
        return result

    async def until(self, sends: int) -> None:
        async with asyncio.timeout(5):
            while self.sends < sends:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def sink(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[SmsSink, str]]:
    sms_sink = SmsSink(KEY)
    server = await aiohttp_server(sms_sink.app)
    yield sms_sink, str(server.make_url("/version1/messaging"))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def provider(sink: tuple[SmsSink, str], http: aiohttp.ClientSession) -> AfricasTalkingProvider:
    return AfricasTalkingProvider(http, sink[1], "sandbox", KEY, "OKRYU")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def dispatcher(db: Database, provider: object, clock: Clock, **options: object) -> Dispatcher:
    return Dispatcher(db, provider, clock=clock, rand=random.Random(7), **options)  # type: ignore[arg-type]


async def queue(db: Database, body: str = "Order OK-4F2A placed", key: str = "order:1") -> int:
    async with db.write() as session:
        await outbox.enqueue(session, to=TO, body=body, kind="order_placed", idempotency_key=key)
    return (await rows(db))[-1].id or 0


async def rows(db: Database) -> list[OutboundMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboundMessage).order_by("id"))).all())


async def row(db: Database, id_: int) -> OutboundMessage:
    [found] = [r for r in await rows(db) if r.id == id_]
    return found


def closed_port_url() -> str:
    with socket.socket() as sock:  # nobody listens once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/version1/messaging"


# --- providers ----------------------------------------------------------------------------


async def test_at_provider_success_returns_the_message_id(
    sink: tuple[SmsSink, str], provider: AfricasTalkingProvider
) -> None:
    sms_sink, _ = sink
    result = await provider.send(TO, "Order OK-4F2A placed")
    [received] = sms_sink.messages
    assert result == SendResult(ok=True, message_id=received.id)
    assert received.id.startswith("ATXid_")
    assert (received.to, received.message, received.sender, received.username) == (
        TO,
        "Order OK-4F2A placed",
        "OKRYU",
        "sandbox",
    )
    [headers] = sms_sink.request_headers
    assert (headers["apiKey"], headers["Accept"]) == (KEY, "application/json")


async def test_at_provider_without_sender_omits_from(
    sink: tuple[SmsSink, str], http: aiohttp.ClientSession
) -> None:
    sms_sink, url = sink
    result = await AfricasTalkingProvider(http, url, "sandbox", KEY, None).send(TO, "hi")
    assert result.ok
    assert sms_sink.messages[0].sender is None


async def test_at_provider_http_500_is_retryable(
    sink: tuple[SmsSink, str], provider: AfricasTalkingProvider
) -> None:
    sink[0].fail_next(1, status=500)
    result = await provider.send(TO, "hi")
    assert (result.ok, result.permanent) == (False, False)
    assert result.error is not None and "HTTP 500" in result.error
    assert sink[0].messages == []


async def test_at_provider_invalid_phone_number_is_permanent(
    sink: tuple[SmsSink, str], provider: AfricasTalkingProvider
) -> None:
    sink[0].reject_next(1, status_code=403, status="InvalidPhoneNumber")
    result = await provider.send(TO, "hi")
    assert result == SendResult(
        ok=False, permanent=True, error="recipient status 403 InvalidPhoneNumber"
    )


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        (404, "UnsupportedNumberType", True),
        (406, "UserInBlacklist", True),
        (405, "InsufficientBalance", False),
        (407, "CouldNotRoute", False),
        (500, "InternalServerError", False),
    ],
)
async def test_at_provider_recipient_status_decides_retry(
    sink: tuple[SmsSink, str],
    provider: AfricasTalkingProvider,
    code: int,
    status: str,
    permanent: bool,
) -> None:
    sink[0].reject_next(1, status_code=code, status=status)
    result = await provider.send(TO, "hi")
    assert (result.ok, result.permanent) == (False, permanent)
    assert result.error == f"recipient status {code} {status}"


async def test_at_provider_bad_key_is_a_retryable_config_error(
    sink: tuple[SmsSink, str], http: aiohttp.ClientSession
) -> None:
    secret = "wrong-key-do-not-print"
    result = await AfricasTalkingProvider(http, sink[1], "sandbox", secret, None).send(TO, "hi")
    assert (result.ok, result.permanent) == (False, False)
    assert result.error == "HTTP 401 from provider, check username and api key"
    assert secret not in result.error
    assert sink[0].messages == []  # the body ("The supplied authentication ...") is not kept


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("<html>gateway says hi</html>", "non-JSON answer from provider"),
        ('{"SMSMessageData": {"Recipients": [{"status": "Success"}]}}', "unexpected JSON"),
        ('{"unexpected": true}', "unexpected JSON"),
        (
            '{"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}',
            "no recipient accepted: InvalidSenderId",  # one of AT's words: kept
        ),
        (
            '{"SMSMessageData": {"Message": "Bad sender OKRYU", "Recipients": []}}',
            "no recipient accepted",  # any other text may be an echo: left out
        ),
        (
            '{"SMSMessageData": {"Recipients": [{"statusCode": 8501912345678}]}}',
            "unexpected JSON",  # no code of AT's, and shaped like a number: left out
        ),
    ],
)
async def test_at_provider_odd_answer_is_retryable(
    aiohttp_server: ServerFactory, http: aiohttp.ClientSession, body: str, error: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/version1/messaging", answer)
    server = await aiohttp_server(app)
    url = str(server.make_url("/version1/messaging"))
    result = await AfricasTalkingProvider(http, url, "sandbox", KEY, None).send(TO, "hi")
    assert (result.ok, result.permanent) == (False, False)
    assert result.error is not None and result.error.startswith(error)
    assert "gateway says" not in result.error and "OKRYU" not in result.error
    assert "8501912345678" not in result.error


async def test_at_provider_timeout_is_retryable(
    aiohttp_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_post("/version1/messaging", hang)
    server = await aiohttp_server(app)
    url = str(server.make_url("/version1/messaging"))
    provider = AfricasTalkingProvider(http, url, "sandbox", KEY, None, timeout=0.05)
    result = await provider.send(TO, "hi")
    assert result == SendResult(ok=False, error="timed out after 0.05s")


async def test_at_provider_connection_error_is_retryable(http: aiohttp.ClientSession) -> None:
    provider = AfricasTalkingProvider(http, closed_port_url(), "sandbox", KEY, None)
    result = await provider.send(TO, "hi")
    assert (result.ok, result.permanent) == (False, False)
    assert result.error is not None and result.error.startswith("connection error:")


def test_at_provider_repr_hides_the_key(http: aiohttp.ClientSession) -> None:
    provider = AfricasTalkingProvider(http, "http://sms.example/", "sandbox", KEY, None)
    assert KEY not in repr(provider)


async def test_log_provider_masks_the_number_and_numbers_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = LogProvider()
    with caplog.at_level(logging.INFO, logger="okryu.sms"):
        first = await provider.send(TO, "Order OK-4F2A placed")
        second = await provider.send(TO, "Order OK-4F2A delivered")
    assert (first, second) == (
        SendResult(ok=True, message_id="log-1"),
        SendResult(ok=True, message_id="log-2"),
    )
    assert f"to {mask(TO)}:" in caplog.text and TO not in caplog.text


async def test_make_provider_picks_the_configured_provider(http: aiohttp.ClientSession) -> None:
    assert isinstance(make_provider(Settings(), http), LogProvider)
    at = make_provider(Settings(sms_provider="africastalking", at_api_key=KEY), http)
    assert isinstance(at, AfricasTalkingProvider)


def test_sms_give_up_setting_is_seconds_and_defaults_to_six_hours() -> None:
    assert Settings.from_env({}).sms_give_up == 6 * 3600
    assert Settings.from_env({"OKRYU_SMS_GIVE_UP": "900"}).sms_give_up == 900
    with pytest.raises(SettingsError, match="OKRYU_SMS_GIVE_UP"):
        Settings.from_env({"OKRYU_SMS_GIVE_UP": "6h"})


async def test_the_apps_dispatcher_gives_up_after_okryu_sms_give_up(
    make_gateway: Callable[..., Awaitable[Any]],
) -> None:
    client = await make_gateway(sms_give_up=900.0)
    assert client.app[keys.DISPATCHER].give_up == timedelta(seconds=900)


def test_make_provider_refuses_africastalking_without_a_key() -> None:
    with pytest.raises(SettingsError, match="OKRYU_AT_API_KEY"):
        make_provider(Settings(sms_provider="africastalking"), None)


# --- dispatcher ---------------------------------------------------------------------------


async def test_dispatcher_sends_a_queued_message_exactly_once(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    id_ = await queue(db)
    worker = dispatcher(db, provider, clock)
    assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0
    [received] = sink[0].messages
    assert (received.to, received.message) == (TO, "Order OK-4F2A placed")
    sent = await row(db, id_)
    assert (sent.status, sent.provider, sent.provider_message_id) == (
        "sent",
        "africastalking",
        received.id,
    )
    assert (sent.attempts, sent.sent_at) == (1, clock.start)


async def test_dispatcher_retries_after_the_backoff_then_succeeds(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    sink[0].fail_next(1, status=500)
    id_ = await queue(db)
    worker = dispatcher(db, provider, clock)
    assert await worker.run_once() == 1
    waiting = await row(db, id_)
    assert (waiting.status, waiting.attempts) == ("queued", 1)
    assert waiting.last_error is not None and "HTTP 500" in waiting.last_error
    # Equal jitter on a 2 s first delay: due again between 1 s and 2 s from now.
    assert timedelta(seconds=1) <= waiting.next_attempt_at - clock.start <= timedelta(seconds=2)
    clock.advance(0.9)
    assert await worker.run_once() == 0
    clock.advance(1.2)
    assert await worker.run_once() == 1
    assert (await row(db, id_)).status == "sent"
    assert (sink[0].requests, len(sink[0].messages)) == (2, 1)


async def test_dispatcher_marks_a_permanent_failure_failed(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    sink[0].reject_next(1, status_code=403, status="InvalidPhoneNumber")
    id_ = await queue(db)
    worker = dispatcher(db, provider, clock)
    assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0
    failed = await row(db, id_)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error == "recipient status 403 InvalidPhoneNumber"
    assert sink[0].requests == 1


async def test_dispatcher_keeps_retrying_past_the_old_attempt_limit(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    sink[0].fail_next(9, status=503)  # 8 attempts used to fail the message
    id_ = await queue(db)
    worker = dispatcher(db, provider, clock)
    for _ in range(40):  # 20 minutes
        await worker.run_once()
        if (await row(db, id_)).status != "queued":
            break
        clock.advance(30)
    sent = await row(db, id_)
    assert (sent.status, sent.attempts) == ("sent", 10)
    assert (sink[0].requests, len(sink[0].messages)) == (10, 1)


async def test_dispatcher_gives_up_on_a_message_once_it_is_older_than_give_up(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    sink[0].fail_next(100, status=503)
    id_ = await queue(db)
    created = (await row(db, id_)).created_at
    worker = dispatcher(db, provider, clock, give_up=timedelta(hours=6))
    clock.now = created + timedelta(hours=6, seconds=-1)
    assert await worker.run_once() == 1  # still tried
    assert (await row(db, id_)).status == "queued"
    clock.now = created + timedelta(hours=6, seconds=1)
    assert await worker.run_once() == 0
    failed = await row(db, id_)
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error.startswith("not sent in time: HTTP 503")
    assert sink[0].requests == 1


async def test_dispatcher_fails_an_old_message_without_sending_it(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    id_ = await queue(db)  # e.g. every dispatcher was stopped for a day
    clock.now = (await row(db, id_)).created_at + timedelta(days=1)
    assert await dispatcher(db, provider, clock).run_once() == 0
    failed = await row(db, id_)
    assert (failed.status, failed.last_error) == ("failed", "not sent in time: never tried")
    assert sink[0].requests == 0


async def test_dispatcher_backoff_grows_and_is_capped(db: Database, clock: Clock) -> None:
    worker = dispatcher(db, LogProvider(), clock, backoff_base=2.0, backoff_cap=10.0)
    for attempts, low, high in [(1, 1, 2), (2, 2, 4), (3, 4, 8), (4, 5, 10), (9, 5, 10)]:
        delay = worker.backoff(attempts).total_seconds()
        assert low <= delay <= high, (attempts, delay)


class DiesAfterSending:
    """The gateway killed (-9) right after the provider accepted: nothing is recorded."""

    def __init__(self, inner: AfricasTalkingProvider) -> None:
        self.name = inner.name
        self.send_timeout = inner.send_timeout
        self.inner = inner
        self.accepted = asyncio.Event()

    async def send(self, to: str, body: str) -> SendResult:
        await self.inner.send(to, body)
        self.accepted.set()
        await asyncio.Event().wait()  # never returns: the process is gone
        raise AssertionError("unreachable")


async def test_dispatcher_lease_is_the_providers_answer_time_plus_a_margin(
    db: Database, provider: AfricasTalkingProvider, http: aiohttp.ClientSession
) -> None:
    assert provider.send_timeout == 10.0  # AfricasTalkingProvider's default HTTP timeout
    assert Dispatcher(db, provider).lease == timedelta(seconds=10 + LEASE_MARGIN)
    quick = AfricasTalkingProvider(http, "http://sms.example/", "sandbox", KEY, None, timeout=3)
    assert Dispatcher(db, quick).lease == timedelta(seconds=3 + LEASE_MARGIN)
    assert Dispatcher(db, LogProvider()).lease == timedelta(seconds=LEASE_MARGIN)


async def test_dispatcher_resends_a_crashed_claim_after_its_lease_and_not_before(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    id_ = await queue(db)
    dying = DiesAfterSending(provider)
    crashed = asyncio.create_task(dispatcher(db, dying, clock).run_once())
    async with asyncio.timeout(5):
        await dying.accepted.wait()
    crashed.cancel()  # kill -9 between the provider's accept and recording it
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    assert (await row(db, id_)).status == "sending"

    restarted = dispatcher(db, provider, clock)
    clock.advance(restarted.lease.total_seconds() - 0.01)
    assert await restarted.run_once() == 0  # the first send may still be answered
    clock.advance(0.02)
    assert await restarted.run_once() == 1
    sent = await row(db, id_)
    assert (sent.status, sent.attempts, sent.provider_message_id) == ("sent", 2, "ATXid_2")
    # The duplicate the README's delivery guarantee owns up to.
    assert [m.message for m in sink[0].messages] == ["Order OK-4F2A placed"] * 2


async def test_dispatcher_counts_a_provider_exception_as_retryable(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding:
        name = "exploding"
        send_timeout = 1.0

        async def send(self, to: str, body: str) -> SendResult:
            raise RuntimeError(f"boom sending to {to}: {body}")  # text a bug could carry

    id_ = await queue(db)
    with caplog.at_level(logging.ERROR, logger="okryu.sms"):
        assert await dispatcher(db, Exploding(), clock).run_once() == 1
    waiting = await row(db, id_)
    assert (waiting.status, waiting.last_error) == (
        "queued",
        "provider raised RuntimeError (message withheld)",
    )
    assert "provider exploding raised" in caplog.text


async def test_dispatcher_notify_wakes_run(
    db: Database, provider: AfricasTalkingProvider, sink: tuple[SmsSink, str], clock: Clock
) -> None:
    watched = Watched(provider)
    worker = dispatcher(db, watched, clock)
    await queue(db, "first", key="order:1")
    task = asyncio.create_task(worker.run(poll_interval=3600))
    try:
        await watched.until(1)
        # An hour-long poll: only notify() can get the second message out within the test.
        await queue(db, "second", key="order:2")
        worker.notify()
        await watched.until(2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
    assert [m.message for m in sink[0].messages] == ["first", "second"]


async def test_dispatcher_run_drains_full_batches_without_waiting(
    db: Database, provider: AfricasTalkingProvider, sink: tuple[SmsSink, str], clock: Clock
) -> None:
    watched = Watched(provider)
    for n in range(3):
        await queue(db, f"message {n}", key=f"order:{n}")
    task = asyncio.create_task(dispatcher(db, watched, clock, batch=2).run(poll_interval=3600))
    try:
        await watched.until(3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert sorted(m.message for m in sink[0].messages) == ["message 0", "message 1", "message 2"]


async def test_dispatcher_run_survives_a_failing_batch(
    db: Database,
    provider: AfricasTalkingProvider,
    sink: tuple[SmsSink, str],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_claim = outbox.claim_due
    calls = 0

    async def claim_once_broken(*args: object, **kwargs: object) -> list[outbox.OutboxItem]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database is down")
        return await real_claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "claim_due", claim_once_broken)
    watched = Watched(provider)
    await queue(db)
    task = asyncio.create_task(dispatcher(db, watched, clock).run(poll_interval=0))
    try:
        with caplog.at_level(logging.ERROR, logger="okryu.sms"):
            await watched.until(1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "batch failed" in caplog.text and "database is down" in caplog.text
    assert calls == 2 and len(sink[0].messages) == 1


async def test_pacer_spaces_sends_to_the_rate() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        await pacer.take()
    assert now[0] == pytest.approx(1.0)  # five sends at 4/s: the fifth a second after the first
    assert waits == pytest.approx([0.25, 0.25, 0.25, 0.25])
    now[0] += 10  # idle time earns no burst beyond one slot
    await pacer.take()
    assert len(waits) == 4


async def test_dispatcher_with_a_pacer_sends_no_faster_than_the_rate(
    db: Database, sink: tuple[SmsSink, str], provider: AfricasTalkingProvider, clock: Clock
) -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    for n in range(6):
        await queue(db, key=f"order:{n}")
    paced = Dispatcher(
        db, provider, clock=clock, pacer=Pacer(2.0, clock=lambda: now[0], sleep=sleep)
    )
    assert await paced.run_once() == 6
    assert len(sink[0].messages) == 6
    assert now[0] == pytest.approx(2.5)  # six sends at 2/s span two and a half seconds


async def test_dispatcher_with_a_pacer_holds_each_row_until_its_send_can_be_answered(
    db: Database, clock: Clock
) -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        clock.advance(seconds)

    class Probe:
        """A provider that, at each send, has a second worker try to take the rows."""

        name = "probe"
        send_timeout = 2.0

        def __init__(self) -> None:
            self.slack: list[timedelta] = []  # each sending row's lease left, at its send
            self.taken: list[outbox.OutboxItem] = []

        async def send(self, to: str, body: str) -> SendResult:
            [leased] = [r for r in await rows(db) if r.body == body]
            assert leased.lease_until is not None
            self.slack.append(leased.lease_until - clock())
            self.taken += await outbox.claim_due(db, clock(), 20, timedelta(seconds=1))
            return SendResult(ok=True, message_id=body)

    probe = Probe()
    paced = Dispatcher(db, probe, clock=clock, pacer=Pacer(0.5, clock=lambda: now[0], sleep=sleep))
    assert paced.lease == timedelta(seconds=2 + LEASE_MARGIN)
    for batch in range(2):  # batches of 3: slots 2 s apart fill one lease of 7 s
        for n in range(3):
            await queue(db, f"message {batch}.{n}", key=f"order:{batch}.{n}")
        assert await paced.run_once() == 3
    assert len(probe.slack) == 6 and probe.taken == []
    assert min(probe.slack) >= paced.lease  # waiting for a slot never ate into a send's lease
    assert {(r.status, r.attempts) for r in await rows(db)} == {("sent", 1)}
