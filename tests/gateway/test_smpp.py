"""The SMPP provider against the SMSC simulator, over real TCP, in virtual time."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from gateway.metrics import Metrics
from gateway.settings import Settings, SettingsError
from gateway.smpp.codec import (
    DATA_CODING_DEFAULT,
    DATA_CODING_UCS2,
    SUBMIT_SM,
    DeliverSm,
    Pdu,
    encode_text,
    source_address,
    submit_sm_body,
)
from gateway.smpp.provider import SmppProvider
from gateway.smpp.receipts import Receipt, RetryReceipt, outbox_receipts, parse_receipt
from gateway.sms.dispatcher import LEASE_MARGIN, Dispatcher
from gateway.sms.factory import make_provider
from gateway.sms.provider import SendResult
from menus.screens import measure, sms_parts
from simulators.smsc import DEFAULT_PASSWORD, DEFAULT_SYSTEM_ID, Smsc
from store import outbox
from store.db import Database
from store.models import OutboundMessage, utcnow

TO = "+821012345678"
START = datetime(2030, 1, 1, 12, 0)  # when receipts are recorded in the mark_delivery tests


class VirtualTime:
    """The provider's and the dispatcher's time: moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0
        # A minute from now: rows the test queues are due at once, and young.
        self.start = utcnow() + timedelta(minutes=1)
        self._moved = asyncio.Event()

    def monotonic(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return self.start + timedelta(seconds=self.now)

    async def sleep(self, delay: float) -> None:
        deadline = self.now + delay
        while self.now < deadline:
            await self._moved.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()


class Receipts:
    """An ``on_receipt`` that records what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._arrived = asyncio.Event()

    async def __call__(self, message_id: str, state: str) -> None:
        self.seen.append((message_id, state))
        self._arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.seen) < count:
                self._arrived.clear()
                await self._arrived.wait()


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    async with Smsc(receipts="manual") as simulator:
        yield simulator


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def receipts() -> Receipts:
    return Receipts()


def make(smsc: Smsc, vtime: VirtualTime, **options: Any) -> SmppProvider:
    settings: dict[str, Any] = {
        "clock": vtime.monotonic,
        "sleep": vtime.sleep,
        "rand": random.Random(7),
        "response_timeout": 5.0,
    }
    settings.update(options)
    return SmppProvider("127.0.0.1", smsc.port, DEFAULT_SYSTEM_ID, DEFAULT_PASSWORD, **settings)


@pytest.fixture
async def provider(
    smsc: Smsc, vtime: VirtualTime, receipts: Receipts
) -> AsyncIterator[SmppProvider]:
    smpp = make(smsc, vtime, on_receipt=receipts)
    await smpp.start()
    try:
        yield smpp
    finally:
        await smpp.close()


async def until(provider: SmppProvider, condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        await provider.wait_until(condition)


async def rebind(provider: SmppProvider, vtime: VirtualTime) -> None:
    """Move virtual time through the reconnect backoffs until the provider is bound again."""
    async with asyncio.timeout(5):
        while not provider.bound:
            await provider.wait_until(lambda: provider.reconnecting or provider.bound)
            if not provider.bound:
                vtime.advance(60)  # the reconnect backoff's cap
                await provider.wait_until(lambda: not provider.reconnecting)


def submits(smsc: Smsc) -> int:
    """Every submit_sm the simulator answered, accepted or refused."""
    return len(smsc.parts) + len(smsc.refused)


# --- the wire -----------------------------------------------------------------------------


def test_smpp_submit_sm_bytes_match_the_module_docstring() -> None:
    body = submit_sm_body(
        source=source_address("OKRYU"),
        destination="821012345678",
        data_coding=DATA_CODING_DEFAULT,
        short_message="Order OK-4F2A placed".encode("gsm03.38"),
    )
    assert Pdu(SUBMIT_SM, 2, 0, body).encode() == bytes.fromhex(
        "00000046 00000004 00000000 00000002"
        "00 05 00 4f4b52595500"
        "01 01 38323130313233343536373800"
        "00 00 00 00 00 01 00 00 00"
        "14 4f72646572204f4b2d3446324120706c61636564"
    )


@pytest.mark.parametrize(
    ("text", "data_coding", "sizes"),
    [
        ("a" * 160, DATA_CODING_DEFAULT, [160]),
        ("a" * 161, DATA_CODING_DEFAULT, [153, 8]),
        ("€" * 80, DATA_CODING_DEFAULT, [160]),  # 160 septets: still one SMS
        ("€" * 81, DATA_CODING_DEFAULT, [152, 10]),  # 77 x € would be 154 septets
        ("a" * 152 + "€" + "b" * 10, DATA_CODING_DEFAULT, [152, 12]),  # ESC never ends a part
        ("{" * 80 + "}", DATA_CODING_DEFAULT, [152, 10]),
        ("가" * 70, DATA_CODING_UCS2, [140]),
        ("가" * 71, DATA_CODING_UCS2, [134, 8]),
        ("가" * 66 + "😀" + "나" * 5, DATA_CODING_UCS2, [132, 14]),  # a surrogate pair stays whole
    ],
)
def test_smpp_encode_text_splits_between_characters(
    text: str, data_coding: int, sizes: list[int]
) -> None:
    encoded = encode_text(text)
    assert encoded.data_coding == data_coding
    assert [len(part) for part in encoded.parts] == sizes
    assert len(encoded.parts) == sms_parts(text)
    codec = "gsm03.38" if data_coding == DATA_CODING_DEFAULT else "utf-16-be"
    assert "".join(part.decode(codec) for part in encoded.parts) == text


def test_smpp_encode_text_agrees_with_sms_parts_on_every_length() -> None:
    for alphabet in ("ab€", "가😀b", "x{"):
        for length in range(1, 400, 7):
            text = (alphabet * length)[:length]
            assert len(encode_text(text).parts) == sms_parts(text), text


@pytest.mark.parametrize(
    ("esm_class", "text", "tlvs", "expected"),
    [
        (
            0x04,
            b"id:7F sub:001 dlvrd:001 stat:DELIVRD err:000 text:hi",
            {},
            Receipt("7F", "delivered"),
        ),
        (0x04, b"id:7F stat:UNDELIV err:001", {}, Receipt("7F", "undeliverable")),
        (0x04, b"id:7F stat:EXPIRED", {}, Receipt("7F", "expired")),
        (0x04, b"id:7F stat:REJECTD", {}, Receipt("7F", "rejected")),
        (0x04, b"id:7F stat:ACCEPTD", {}, Receipt("7F", "accepted")),
        (0x20, b"id:7F stat:ENROUTE", {}, Receipt("7F", "enroute")),
        # The TLVs win over the text.
        (
            0x04,
            b"id:other stat:ENROUTE",
            {0x001E: b"7F\x00", 0x0427: b"\x02"},
            Receipt("7F", "delivered"),
        ),
        (0x04, b"", {0x001E: b"7F\x00", 0x0427: b"\x05"}, Receipt("7F", "undeliverable")),
        # An SMSC that leaves esm_class at 0 still sends a receipt's text.
        (0x00, b"id:7F sub:001 dlvrd:000 stat:FAILED err:069", {}, Receipt("7F", "failed")),
        # A mobile-originated message is no receipt.
        (0x00, b"Hello, is my order coming?", {}, None),
    ],
)
def test_smpp_parse_receipt_reads_tlvs_and_text(
    esm_class: int, text: bytes, tlvs: dict[int, bytes], expected: Receipt | None
) -> None:
    message = DeliverSm("821012345678", "OKRYU", esm_class, 0, text, tlvs)
    assert parse_receipt(message) == expected


def test_smpp_source_address_ton() -> None:
    assert source_address("OKRYU") == (5, 0, "OKRYU")
    assert source_address("+821099990000") == (1, 1, "821099990000")


# --- binding ------------------------------------------------------------------------------


async def test_smpp_binds_as_transceiver(smsc: Smsc, provider: SmppProvider) -> None:
    assert provider.bound
    assert smsc.binds == [("trx", DEFAULT_SYSTEM_ID, 0)]


async def test_smpp_wrong_password_is_refused_and_sends_are_retryable(
    smsc: Smsc, vtime: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wrong-password-do-not-log"
    smpp = SmppProvider(
        "127.0.0.1", smsc.port, DEFAULT_SYSTEM_ID, secret, clock=vtime.monotonic, sleep=vtime.sleep
    )
    with caplog.at_level(logging.DEBUG, logger="okryu.smpp"):
        await smpp.start()
        try:
            assert not smpp.bound
            assert smsc.binds == [("trx", DEFAULT_SYSTEM_ID, 0x0E)]  # ESME_RINVPASWD
            result = await smpp.send(TO, "hi")
        finally:
            await smpp.close()
    assert (result.ok, result.permanent) == (False, False)
    assert result.error is not None and "not bound" in result.error
    assert "ESME_RINVPASWD" in caplog.text
    assert secret not in caplog.text and secret not in repr(smpp)


async def test_smpp_close_unbinds(smsc: Smsc, vtime: VirtualTime) -> None:
    smpp = make(smsc, vtime)
    await smpp.start()
    await smpp.close()
    await smsc.wait_for(lambda: smsc.unbinds == 1 and smsc.sessions == 0)
    assert not smpp.bound


async def test_smpp_enquire_link_every_interval(
    smsc: Smsc, vtime: VirtualTime, provider: SmppProvider
) -> None:
    assert smsc.enquire_links == 0
    vtime.advance(29)
    vtime.advance(1)  # 30 s, the default interval
    await smsc.wait_for(lambda: smsc.enquire_links == 1)
    vtime.advance(30)
    await smsc.wait_for(lambda: smsc.enquire_links == 2)
    assert provider.bound
    assert await smsc.enquire_link() == [0]  # and it answers the SMSC's


async def test_smpp_enquire_interval_is_configurable(smsc: Smsc, vtime: VirtualTime) -> None:
    smpp = make(smsc, vtime, enquire_interval=5.0)
    await smpp.start()
    try:
        vtime.advance(5)
        await smsc.wait_for(lambda: smsc.enquire_links == 1)
    finally:
        await smpp.close()


# --- sending ------------------------------------------------------------------------------


async def test_smpp_sends_a_short_gsm7_message(smsc: Smsc, provider: SmppProvider) -> None:
    result = await provider.send(TO, "Order OK-4F2A placed: 2 x rice @ 5,000")
    [message] = smsc.messages
    assert result == SendResult(ok=True, message_id=message.message_id, parts=(message.message_id,))
    assert message.text == "Order OK-4F2A placed: 2 x rice @ 5,000"
    assert (message.data_coding, message.registered_delivery) == (0, 1)
    [part] = message.parts
    assert (part.esm_class, part.udh) == (0, b"")
    assert (part.destination, part.dest_ton, part.dest_npi) == ("821012345678", 1, 1)
    assert (part.source, part.source_ton, part.source_npi) == ("OKRYU", 5, 0)


async def test_smpp_numeric_sender_is_international(smsc: Smsc, vtime: VirtualTime) -> None:
    smpp = make(smsc, vtime, sender="+821099990000")
    await smpp.start()
    try:
        assert (await smpp.send(TO, "hi")).ok
    finally:
        await smpp.close()
    [part] = smsc.parts
    assert (part.source, part.source_ton, part.source_npi) == ("821099990000", 1, 1)


async def test_smpp_sends_korean_as_ucs2(smsc: Smsc, provider: SmppProvider) -> None:
    text = "주문 OK-4F2A 접수: 쌀 2포대"
    assert (await provider.send(TO, text)).ok
    [message] = smsc.messages
    assert (message.text, message.data_coding) == (text, DATA_CODING_UCS2)
    assert message.parts[0].payload == text.encode("utf-16-be")


@pytest.mark.parametrize(
    "text",
    [
        "a" * 152 + "€" + "b" * 30,  # € lands on the part boundary
        "Order {OK-4F2A}: " + "rice [5kg] ~ €12 | " * 12,
        "{" * 77 + "} " + "x" * 200,
    ],
)
async def test_smpp_long_gsm7_message_is_concatenated_with_udh(
    smsc: Smsc, provider: SmppProvider, text: str
) -> None:
    result = await provider.send(TO, text)
    [message] = smsc.messages
    assert result.ok and result.message_id == message.message_id
    assert result.parts == tuple(part.message_id for part in message.parts)  # all, in order
    assert message.text == text
    assert len(message.parts) == sms_parts(text) > 1
    reference = message.parts[0].udh[3]
    for number, part in enumerate(message.parts, start=1):
        assert part.esm_class == 0x40
        assert part.udh == bytes([5, 0, 3, reference, len(message.parts), number])
        assert len(part.payload) <= 153  # septets
        assert not part.payload.endswith(b"\x1b")  # no escape pair split
    assert sum(len(p.payload) for p in message.parts) == measure(text).units


async def test_smpp_long_ucs2_message_keeps_surrogate_pairs(
    smsc: Smsc, provider: SmppProvider
) -> None:
    text = "주문" * 33 + "😀" + "감사합니다" * 10
    assert (await provider.send(TO, text)).ok
    [message] = smsc.messages
    assert message.text == text
    assert len(message.parts) == sms_parts(text) == 2
    assert [len(p.payload) for p in message.parts] == [132, 104]  # the emoji moved on


async def test_smpp_split_messages_use_fresh_references(smsc: Smsc, provider: SmppProvider) -> None:
    for _ in range(2):
        assert (await provider.send(TO, "x" * 200)).ok
    first, second = smsc.messages
    assert first.parts[0].udh[3] != second.parts[0].udh[3]


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (0x0B, True),  # ESME_RINVDSTADR
        (0x01, True),  # ESME_RINVMSGLEN
        (0x08, False),  # ESME_RSYSERR
        (0x45, False),  # ESME_RSUBMITFAIL
        (0x0A, False),  # ESME_RINVSRCADR: configuration, keep the queue
    ],
)
async def test_smpp_refusal_status_decides_retry(
    smsc: Smsc, provider: SmppProvider, status: int, permanent: bool
) -> None:
    smsc.fail_next(1, status)
    result = await provider.send(TO, "hi")
    assert (result.ok, result.permanent) == (False, permanent)
    assert result.error is not None and f"0x{status:08X}" in result.error
    assert (await provider.send(TO, "hi")).ok  # no pause for a refusal


async def test_smpp_invalid_number_is_permanent_without_a_submit(
    smsc: Smsc, provider: SmppProvider
) -> None:
    result = await provider.send("+82-10-1234", "hi")
    assert (result.ok, result.permanent) == (False, True)
    assert submits(smsc) == 0


# --- throttling ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "name"), [(0x58, "ESME_RTHROTTLED"), (0x14, "ESME_RMSGQFUL")])
async def test_smpp_throttling_is_retryable_and_pauses_the_provider(
    smsc: Smsc, vtime: VirtualTime, provider: SmppProvider, status: int, name: str
) -> None:
    smsc.fail_next(1, status)
    throttled = await provider.send(TO, "one")
    assert (throttled.ok, throttled.permanent) == (False, False)
    assert throttled.error is not None and name in throttled.error
    # Paused: the next send does not reach the SMSC.
    paused = await provider.send(TO, "two")
    assert (paused.ok, paused.permanent) == (False, False)
    assert paused.error is not None and "pausing" in paused.error
    assert submits(smsc) == 1
    vtime.advance(1.0)  # the first pause: throttle_base
    assert (await provider.send(TO, "two")).ok


async def test_smpp_throttle_pause_doubles_while_throttling_goes_on(
    smsc: Smsc, vtime: VirtualTime, provider: SmppProvider
) -> None:
    smsc.throttle_next(3)
    for pause in (1.0, 2.0, 4.0):
        assert not (await provider.send(TO, "hi")).ok
        vtime.advance(pause - 0.1)
        assert "pausing" in ((await provider.send(TO, "hi")).error or "")
        vtime.advance(0.1)
    assert (await provider.send(TO, "hi")).ok
    # Success resets the pause.
    smsc.throttle_next(1)
    assert not (await provider.send(TO, "hi")).ok
    vtime.advance(1.0)
    assert (await provider.send(TO, "hi")).ok


async def test_smpp_a_split_message_resumes_where_it_stopped(
    smsc: Smsc, vtime: VirtualTime, provider: SmppProvider
) -> None:
    text = "".join(f"line {n:03d} of the order; " for n in range(18))  # 3 parts
    assert sms_parts(text) == 3
    smsc.throttle_next(1, after=1)  # part 1 accepted, part 2 throttled
    first = await provider.send(TO, text)
    assert (first.ok, first.permanent, first.retry_after) == (False, False, 1.0)
    assert first.error is not None and "part 2 of 3" in first.error
    assert first.parts == (smsc.parts[0].message_id,)  # part 1's receipt must find the row
    vtime.advance(1.0)
    second = await provider.send(TO, text)
    [message] = smsc.messages
    ids = tuple(part.message_id for part in message.parts)
    assert second == SendResult(ok=True, message_id=ids[0], parts=ids)
    assert message.text == text
    assert len(smsc.parts) == 3  # part 1 was not sent twice
    assert len({part.udh[3] for part in message.parts}) == 1


# --- receipts -----------------------------------------------------------------------------


async def test_smpp_receipts_reach_on_receipt(
    smsc: Smsc, provider: SmppProvider, receipts: Receipts
) -> None:
    delivered = await provider.send(TO, "one")
    failed = await provider.send(TO, "two")
    assert await smsc.send_receipt(delivered.message_id or "", "DELIVRD")
    assert await smsc.send_receipt(failed.message_id or "", "UNDELIV")
    assert receipts.seen == [
        (delivered.message_id, "delivered"),
        (failed.message_id, "undeliverable"),
    ]


@pytest.mark.parametrize(("tlvs", "esm_class"), [(False, 0x04), (True, 0x00), (False, 0x00)])
async def test_smpp_receipts_without_tlvs_or_esm_class_are_read_from_the_text(
    smsc: Smsc, provider: SmppProvider, receipts: Receipts, tlvs: bool, esm_class: int
) -> None:
    smsc.receipt_tlvs, smsc.receipt_esm_class = tlvs, esm_class
    result = await provider.send(TO, "one")
    assert await smsc.deliver_receipts("EXPIRED") == 1
    assert receipts.seen == [(result.message_id, "expired")]


async def test_smpp_immediate_receipts_arrive_without_asking(
    smsc: Smsc, provider: SmppProvider, receipts: Receipts
) -> None:
    smsc.receipt_mode = "immediate"
    result = await provider.send(TO, "one")
    await receipts.wait_for(1)
    assert receipts.seen == [(result.message_id, "delivered")]


async def test_smpp_a_receipt_the_handler_cannot_take_is_delivered_again(
    smsc: Smsc, vtime: VirtualTime
) -> None:
    seen: list[tuple[str, str]] = []

    async def not_yet(message_id: str, state: str) -> None:
        seen.append((message_id, state))
        if len(seen) == 1:
            raise RetryReceipt  # e.g. the outbox row is not marked sent yet

    smpp = make(smsc, vtime, on_receipt=not_yet)
    await smpp.start()
    try:
        result = await smpp.send(TO, "one")
        assert await smsc.deliver_receipts() == 0
        assert smsc.receipts[-1].status == 0x64  # ESME_RX_T_APPN: try again later
        assert await smsc.deliver_receipts() == 1
    finally:
        await smpp.close()
    assert seen == [(result.message_id, "delivered")] * 2


# --- connection loss ----------------------------------------------------------------------


async def test_smpp_reconnects_after_a_disconnect(
    smsc: Smsc, vtime: VirtualTime, provider: SmppProvider
) -> None:
    assert (await provider.send(TO, "before")).ok
    await smsc.disconnect()
    await until(provider, lambda: provider.reconnecting)
    lost = await provider.send(TO, "during")
    assert (lost.ok, lost.permanent) == (False, False)
    assert lost.error is not None and "not bound" in lost.error
    await rebind(provider, vtime)
    assert (await provider.send(TO, "after")).ok
    assert [m.text for m in smsc.messages] == ["before", "after"]
    assert [mode for mode, _, status in smsc.binds if status == 0] == ["trx", "trx"]


async def test_smpp_reconnect_backoff_grows_and_is_capped(smsc: Smsc, vtime: VirtualTime) -> None:
    smpp = make(smsc, vtime, reconnect_base=1.0, reconnect_cap=60.0)
    for failures, low, high in [(1, 0.5, 1), (2, 1, 2), (3, 2, 4), (7, 30, 60), (20, 30, 60)]:
        assert low <= smpp.reconnect_delay(failures) <= high


async def test_smpp_send_during_a_dropped_connection_is_retryable(
    smsc: Smsc, vtime: VirtualTime, provider: SmppProvider
) -> None:
    await smsc.stop()
    await until(provider, lambda: provider.reconnecting)
    results = await asyncio.gather(*(provider.send(TO, f"m{n}") for n in range(3)))
    assert all(not r.ok and not r.permanent for r in results)


# --- the outbox, end to end ---------------------------------------------------------------


async def rows(db: Database) -> list[OutboundMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboundMessage).order_by("id"))).all())


async def test_smpp_every_queued_sms_arrives_exactly_once_across_an_smsc_outage(
    db: Database, smsc: Smsc, vtime: VirtualTime
) -> None:
    bodies = [
        "Order OK-4F2A placed",
        "주문 OK-7C1B 접수되었습니다",
        "Order OK-9D3E: " + "rice 5kg x 2 @ €12 {express}; " * 8,  # 2 parts
        "Order OK-1A2B dispatched",
        "Order OK-5E6F delivered",
    ]
    async with db.write() as session:
        for n, body in enumerate(bodies):
            await outbox.enqueue(
                session, to=TO, body=body, kind="order_placed", idempotency_key=f"order:{n}"
            )

    smpp = make(smsc, vtime, on_receipt=outbox_receipts(db, clock=vtime.datetime))
    dispatcher = Dispatcher(db, smpp, clock=vtime.datetime, rand=random.Random(7))
    await smpp.start()
    try:
        await smsc.stop()  # the SMSC goes down before anything was sent
        await until(smpp, lambda: smpp.reconnecting)
        # Five minutes of outage: the dispatcher keeps asking, the provider answers "not
        # bound" without trying, and that costs no attempt (8 used to fail the messages).
        for _ in range(60):
            await dispatcher.run_once()
            vtime.advance(5)
        waiting = await rows(db)
        assert {r.status for r in waiting} == {"queued"}
        assert all(r.attempts == 0 for r in waiting)
        assert all(r.last_error and "not bound" in r.last_error for r in waiting)
        assert submits(smsc) == 0

        await smsc.start()  # back, on the same port
        await rebind(smpp, vtime)
        # Each row waited for the next reconnect, not for a backoff grown by the outage.
        vtime.advance(1.0)
        assert await dispatcher.run_once() == len(bodies)

        sent = await rows(db)
        assert sorted(m.text for m in smsc.messages) == sorted(bodies)
        assert len(smsc.parts) == len(bodies) + 1  # the long one has two parts, nothing twice
        ids = {m.text: m.message_id for m in smsc.messages}
        assert [(r.status, r.provider, r.provider_message_id) for r in sent] == [
            ("sent", "smpp", ids[r.body]) for r in sent
        ]

        # Receipts for every part; the first part's id is the row's.
        assert await smsc.deliver_receipts() == len(smsc.parts)
        delivered = await rows(db)
        assert [(r.status, r.delivered_at) for r in delivered] == [
            ("delivered", vtime.datetime()) for _ in delivered
        ]
    finally:
        await smpp.close()


# --- mark_delivery ------------------------------------------------------------------------


async def sent_row(db: Database, provider_message_id: str = "0000000A") -> int:
    async with db.write() as session:
        await outbox.enqueue(session, to=TO, body="hi", kind="test", idempotency_key="k")
    [row] = await rows(db)
    assert row.id is not None
    await outbox.mark_sent(db, row.id, "smpp", provider_message_id, START)
    return row.id


async def test_mark_delivery_records_delivered(db: Database) -> None:
    await sent_row(db)
    assert await outbox.mark_delivery(db, "0000000A", "delivered", START + timedelta(minutes=1))
    [row] = await rows(db)
    assert (row.status, row.delivered_at) == ("delivered", START + timedelta(minutes=1))


@pytest.mark.parametrize("state", ["failed", "rejected", "expired", "undeliverable", "deleted"])
async def test_mark_delivery_records_a_failure(db: Database, state: str) -> None:
    await sent_row(db)
    assert await outbox.mark_delivery(db, "0000000A", state, START)
    [row] = await rows(db)
    assert (row.status, row.last_error, row.delivered_at) == ("failed", f"receipt: {state}", None)


@pytest.mark.parametrize("state", ["enroute", "accepted", "unknown"])
async def test_mark_delivery_ignores_states_on_the_way(db: Database, state: str) -> None:
    await sent_row(db)
    assert not await outbox.mark_delivery(db, "0000000A", state, START)
    [row] = await rows(db)
    assert row.status == "sent"


async def test_mark_delivery_never_undoes_a_final_state(db: Database) -> None:
    await sent_row(db)
    assert await outbox.mark_delivery(db, "0000000A", "delivered", START)
    # Out of order: an ENROUTE, then a late failure, after the DELIVRD.
    assert not await outbox.mark_delivery(db, "0000000A", "enroute", START)
    assert not await outbox.mark_delivery(db, "0000000A", "undeliverable", START)
    [row] = await rows(db)
    assert (row.status, row.delivered_at, row.last_error) == ("delivered", START, None)


async def test_mark_delivery_of_an_unknown_id_changes_nothing(db: Database) -> None:
    await sent_row(db)
    assert not await outbox.mark_delivery(db, "FFFFFFFF", "delivered", START)
    [row] = await rows(db)
    assert row.status == "sent"


# --- settings -----------------------------------------------------------------------------


def test_smpp_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "OKRYU_SMS_PROVIDER": "smpp",
            "OKRYU_SMPP_HOST": "smsc.example",
            "OKRYU_SMPP_PORT": "2776",
            "OKRYU_SMPP_SYSTEM_ID": "okryu",
            "OKRYU_SMPP_PASSWORD": "s3cret-password",
            "OKRYU_SMPP_SYSTEM_TYPE": "VMA",
            "OKRYU_SMPP_ENQUIRE_INTERVAL": "45",
        }
    )
    assert (settings.smpp_host, settings.smpp_port, settings.smpp_system_id) == (
        "smsc.example",
        2776,
        "okryu",
    )
    assert (settings.smpp_system_type, settings.smpp_enquire_interval) == ("VMA", 45.0)
    assert "s3cret-password" not in repr(settings)
    provider = make_provider(settings, None)
    assert isinstance(provider, SmppProvider)
    assert (provider.host, provider.port, provider.enquire_interval) == ("smsc.example", 2776, 45)
    assert provider.source == (5, 0, "OKRYU")
    assert "s3cret-password" not in repr(provider)


def test_smpp_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.smpp_host, settings.smpp_port, settings.smpp_enquire_interval) == (
        "127.0.0.1",
        2775,
        30.0,
    )


def test_make_provider_refuses_smpp_without_a_system_id() -> None:
    with pytest.raises(SettingsError, match="OKRYU_SMPP_SYSTEM_ID"):
        make_provider(Settings(sms_provider="smpp"), None)


TWO_PARTS = "Order OK-9D3E: " + "rice 5kg x 2 @ €12 {express}; " * 8


async def test_smpp_a_link_drop_between_two_parts_still_ends_delivered(
    db: Database, smsc: Smsc, vtime: VirtualTime
) -> None:
    assert sms_parts(TWO_PARTS) == 2
    async with db.write() as session:
        await outbox.enqueue(
            session, to=TO, body=TWO_PARTS, kind="order_placed", idempotency_key="k"
        )
    metrics = Metrics()
    smpp = make(smsc, vtime, on_receipt=outbox_receipts(db, metrics, vtime.datetime))
    dispatcher = Dispatcher(db, smpp, clock=vtime.datetime, rand=random.Random(7))
    await smpp.start()
    try:
        smsc.drop_next(after=1)  # part 1 accepted, then the link falls at part 2
        assert await dispatcher.run_once() == 1
        [row] = await rows(db)
        assert row.status == "queued" and len(smsc.parts) == 1
        await rebind(smpp, vtime)
        # Part 1's receipt reaches a message that is back in the queue.
        assert await smsc.deliver_receipts() == 1
        assert [r.status for r in smsc.receipts] == [0]
        vtime.advance(300)  # past the backoff
        assert await dispatcher.run_once() == 1
        [message] = smsc.messages
        assert message.text == TWO_PARTS and len(smsc.parts) == 2
        [row] = await rows(db)
        assert (row.status, row.provider_message_id) == ("sent", message.message_id)
        assert await smsc.deliver_receipts() == 1  # part 2's
        [row] = await rows(db)
        assert (row.status, row.delivered_at) == ("delivered", vtime.datetime())
        # Both parts' receipts were recorded, and counted.
        assert metrics.sms_receipts.labels("delivered")._value.get() == 2
    finally:
        await smpp.close()


async def queued_row(db: Database, body: str = "Order OK-4F2A placed") -> int:
    async with db.write() as session:
        await outbox.enqueue(session, to=TO, body=body, kind="order_placed", idempotency_key="k")
    [row] = await rows(db)
    assert row.id is not None
    return row.id


async def test_smpp_a_receipt_before_sent_is_recorded_is_asked_for_again(
    db: Database, smsc: Smsc, vtime: VirtualTime
) -> None:
    id_ = await queued_row(db, TWO_PARTS)
    smpp = make(smsc, vtime, on_receipt=outbox_receipts(db, clock=vtime.datetime))
    await smpp.start()
    try:
        [item] = await outbox.claim_due(db, vtime.datetime(), 1, timedelta(seconds=15))
        result = await smpp.send(item.to, item.body)  # accepted; "sent" not recorded yet
        assert await smsc.deliver_receipts() == 0
        assert [r.status for r in smsc.receipts] == [0x64, 0x64]  # ESME_RX_T_APPN: again later
        await outbox.mark_sent(db, id_, "smpp", result.message_id, vtime.datetime(), result.parts)
        assert await smsc.deliver_receipts() == 2
        [row] = await rows(db)
        assert row.status == "delivered"
    finally:
        await smpp.close()


async def test_smpp_a_receipt_nobody_can_match_is_acknowledged_once_nothing_is_sending(
    db: Database, smsc: Smsc, vtime: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    smpp = make(smsc, vtime, on_receipt=outbox_receipts(db, clock=vtime.datetime))
    await smpp.start()
    try:
        result = await smpp.send(TO, "sent by a worker that died before recording it")
        with caplog.at_level(logging.INFO, logger="okryu.smpp"):
            assert await smsc.deliver_receipts() == 1  # not asked for forever
    finally:
        await smpp.close()
    assert f"receipt for unknown message id {result.message_id}" in caplog.text


async def test_smpp_throttling_costs_no_attempt_and_waits_out_the_pause(
    db: Database, smsc: Smsc, vtime: VirtualTime, provider: SmppProvider
) -> None:
    id_ = await queued_row(db)
    dispatcher = Dispatcher(db, provider, clock=vtime.datetime, rand=random.Random(7))
    smsc.throttle_next(3)
    for pause in (1.0, 2.0, 4.0):  # the provider's pause doubles while throttling goes on
        assert await dispatcher.run_once() == 1
        [row] = await rows(db)
        assert (row.status, row.attempts) == ("queued", 0)
        assert row.next_attempt_at == vtime.datetime() + timedelta(seconds=pause)
        vtime.advance(pause - 0.5)
        assert await dispatcher.run_once() == 0  # not due before the pause is over
        vtime.advance(0.5)
    assert await dispatcher.run_once() == 1
    [row] = await rows(db)
    assert (row.status, row.attempts) == ("sent", 1)
    assert len(smsc.refused) == 3 and len(smsc.parts) == 1
    assert id_ == row.id


async def test_smpp_a_send_is_bounded_by_send_timeout_and_keeps_the_parts_accepted(
    db: Database, smsc: Smsc, vtime: VirtualTime
) -> None:
    smpp = make(smsc, vtime, response_timeout=0.2)  # real seconds: the SMSC's answer
    assert smpp.send_timeout == 0.2
    assert Dispatcher(db, smpp).lease == timedelta(seconds=0.2 + LEASE_MARGIN)
    await smpp.start()
    try:
        smsc.stall_next(after=1)  # part 1 answered, part 2 never
        stalled = await smpp.send(TO, TWO_PARTS)
        assert (stalled.ok, stalled.permanent, stalled.retry_after) == (False, False, None)
        assert stalled.error is not None and "(part 2 of 2)" in stalled.error
        assert stalled.parts == (smsc.parts[0].message_id,)
        resumed = await smpp.send(TO, TWO_PARTS)
    finally:
        await smpp.close()
    assert resumed.ok and resumed.parts == tuple(part.message_id for part in smsc.parts)
    [message] = smsc.messages
    assert message.text == TWO_PARTS
