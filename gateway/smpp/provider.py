"""The SMPP provider: sends each SMS as one or more submit_sm over a kept-up bind.

``send()`` never raises: unbound, throttled or refused, it answers a ``SendResult`` for the
dispatcher to retry or give up. A message split into parts is resumed, not restarted: when
part 2 of 3 fails, the retry sends parts 2 and 3 with the same concatenation reference, so
the handset still sees one message. Receipts go to ``on_receipt`` (``receipts.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from gateway.numbers import mask
from gateway.smpp.codec import (
    DATA_SM,
    DELIVER_SM,
    DIGITS,
    ESM_CLASS_UDHI,
    ESME_RINVBNDSTS,
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RX_P_APPN,
    ESME_RX_R_APPN,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    RESPONSE,
    SUBMIT_SM,
    BodyReader,
    DeliverSm,
    Encoded,
    MessageTooLong,
    Pdu,
    SmppError,
    concatenation_header,
    decode_data_sm,
    decode_deliver_sm,
    encode_text,
    source_address,
    status_name,
    submit_sm_body,
)
from gateway.smpp.link import Binding, Link
from gateway.smpp.receipts import ReceiptHandler, RetryReceipt, parse_receipt
from gateway.sms.provider import SendResult, retry, wait

if TYPE_CHECKING:
    from gateway.settings import Settings

logger = logging.getLogger("okryu.smpp")

# The SMSC is overloaded: pause, then send again.
_THROTTLING = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# Sending the same message again cannot help. Configuration errors (a bad source address,
# a refused system_id) stay retryable, so the queue survives until an operator fixes them.
_PERMANENT = frozenset({ESME_RINVMSGLEN, ESME_RINVDSTADR, ESME_RX_P_APPN, ESME_RX_R_APPN})
# After a reconnect attempt is due, the time to connect and bind before sends can go out.
_BIND_TIME = 1.0

# What a subscriber sent over the bind (a USSD hop, an SMS), handled by the app; answers the
# command_status of the deliver_sm_resp (ESME_RX_T_APPN: deliver it again later).
MobileHandler = Callable[[DeliverSm], Awaitable[int]]


@dataclass
class _Progress:
    """How far a split message got: its concatenation reference and the ids of parts sent."""

    reference: int
    ids: list[str] = field(default_factory=list)


_NAMES = {DELIVER_SM: "deliver_sm", DATA_SM: "data_sm"}


class SmppProvider(Binding):
    """Sends SMS over one SMPP transceiver bind, kept alive and re-established on its own.

    The bind is a :class:`~gateway.smpp.link.Binding`: ``start()`` binds in the background
    and keeps it. ``send()`` never raises: unbound, throttled or refused, it answers a
    ``SendResult`` for the dispatcher to retry or give up. Receipts go to ``on_receipt``.
    ``clock`` and ``sleep`` measure and wait for every delay here except the SMSC's response
    and connect timeouts, so tests can run a minute of outage in no time.
    ``send_timeout`` (the response timeout) bounds a whole ``send()``, every part included:
    the outbox lease is derived from it.
    """

    name = "smpp"

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        sender: str = "OKRYU",
        enquire_interval: float = 30.0,
        on_receipt: ReceiptHandler | None = None,
        response_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        window: int = 10,
        reconnect_base: float = 1.0,
        reconnect_cap: float = 60.0,
        throttle_base: float = 1.0,
        throttle_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: random.Random | None = None,
    ) -> None:
        rand = rand or random.Random()
        super().__init__(
            host,
            port,
            system_id,
            password,
            on_deliver=self._receive,
            system_type=system_type,
            enquire_interval=enquire_interval,
            response_timeout=response_timeout,
            connect_timeout=connect_timeout,
            reconnect_base=reconnect_base,
            reconnect_cap=reconnect_cap,
            clock=clock,
            sleep=sleep,
            rand=rand,
        )
        self.source = source_address(sender)
        self.on_receipt = on_receipt
        self.on_mobile: MobileHandler | None = None  # set by the app once it can answer
        self.send_timeout = response_timeout
        self._window = asyncio.Semaphore(window)
        self._throttle_base = throttle_base
        self._throttle_cap = throttle_cap
        self._reference = rand.randrange(256)
        self._receipts: set[asyncio.Task[None]] = set()
        self._paused_until = float("-inf")
        self._throttles = 0  # consecutive throttled submits: the pause doubles with each
        self._partial: OrderedDict[tuple[str, str], _Progress] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: Settings, on_receipt: ReceiptHandler | None = None
    ) -> SmppProvider:
        """A provider for the ``OKRYU_SMPP_*`` settings, sending as ``OKRYU_SMS_SENDER``."""
        return cls(
            settings.smpp_host,
            settings.smpp_port,
            settings.smpp_system_id,
            settings.smpp_password,
            system_type=settings.smpp_system_type,
            sender=settings.sms_sender,
            enquire_interval=settings.smpp_enquire_interval,
            on_receipt=on_receipt,
        )

    @classmethod
    def from_ussd_settings(cls, settings: Settings) -> SmppProvider:
        """The bind of the ``OKRYU_USSD_SMPP_*`` settings: USSD dialogues, and SMS too when
        ``OKRYU_SMS_PROVIDER=smpp`` shares it (sending as ``OKRYU_SMS_SENDER``)."""
        return cls(
            settings.ussd_smpp_host,
            settings.ussd_smpp_port,
            settings.ussd_smpp_system_id,
            settings.ussd_smpp_password,
            system_type=settings.ussd_smpp_system_type,
            sender=settings.sms_sender,
            enquire_interval=settings.smpp_enquire_interval,
        )

    async def close(self) -> None:
        """Unbind politely, stop reconnecting and wait for every task to end."""
        await super().close()
        for task in list(self._receipts):
            task.cancel()
        await asyncio.gather(*self._receipts, return_exceptions=True)

    # --- receipts -------------------------------------------------------------------------

    def _receive(self, link: Link, pdu: Pdu) -> None:
        """A deliver_sm arrived: handle it beside the link's reading, which must go on."""
        task = asyncio.create_task(self._deliver(link, pdu))
        self._receipts.add(task)
        task.add_done_callback(self._receipts.discard)

    async def _deliver(self, link: Link, pdu: Pdu) -> None:
        """Hand a receipt to ``on_receipt`` and anything else to ``on_mobile``, then
        acknowledge it (or ask for it again). A data_sm is answered data_sm_resp."""
        response = pdu.command_id | RESPONSE
        status = ESME_ROK
        try:
            message = (
                decode_data_sm(pdu.body)
                if pdu.command_id == DATA_SM
                else decode_deliver_sm(pdu.body)
            )
            receipt = parse_receipt(message)
        except SmppError as exc:
            logger.warning("smpp: malformed %s: %s", _NAMES[pdu.command_id], exc)
            link.reply(pdu, response, ESME_RSYSERR, b"\x00")
            return
        if receipt is None:
            if self.on_mobile is None:
                # Not ready to answer yet (the app is starting): the SMSC keeps it for later.
                status = ESME_RX_T_APPN
            else:
                try:
                    status = await self.on_mobile(message)
                except Exception:
                    logger.exception("smpp: handling a mobile-originated message failed")
                    status = ESME_RX_T_APPN
        elif self.on_receipt is not None:
            try:
                await self.on_receipt(receipt.message_id, receipt.state)
            except RetryReceipt:
                status = ESME_RX_T_APPN
            except Exception:
                logger.exception("smpp: receipt handler failed for %s", receipt.message_id)
                status = ESME_RX_T_APPN
        link.reply(pdu, response, status, b"\x00")

    async def submit(self, command_id: int, body: bytes, deadline: float) -> Pdu:
        """Send one request (a USSD screen) within ``deadline`` seconds, window and throttling
        respected: a throttled request is sent again after the pause while time remains, an
        unbound one once the bind is back. Raises ``TimeoutError`` or :class:`SmppError`."""
        async with asyncio.timeout(deadline):
            while True:
                pause = self._paused_until - self._clock()
                if pause > 0:
                    await self._sleep(pause)
                    continue
                link = self._link
                if link is None or not link.open:
                    await self.wait_until(lambda: self.bound)
                    continue
                async with self._window:
                    response = await link.request(command_id, body, self._response_timeout)
                if response.status in _THROTTLING:
                    self._pause()
                    continue
                if response.status == ESME_ROK:
                    self._throttles = 0
                return response

    # --- sending --------------------------------------------------------------------------

    async def send(self, to: str, body: str) -> SendResult:
        """Submit ``body`` to the E.164 number ``to``; the first part's id and every part's.

        The first part's id is the message's (``message_id``): the handset shows the message
        only when every part, the first included, arrived. ``parts`` lists every part's id,
        on a failure those accepted before it, for their receipts to find the message.
        Throttled, paused or unbound, it answers ``retry_after`` without trying.
        """
        destination = to.removeprefix("+")
        if not DIGITS.fullmatch(destination):
            return SendResult(ok=False, permanent=True, error=f"invalid number {mask(to)}")
        try:
            encoded = encode_text(body)
        except MessageTooLong as exc:
            return SendResult(ok=False, permanent=True, error=f"message too long: {exc}")
        now = self._clock()
        remaining = self._paused_until - now
        if remaining > 0:
            return wait(f"throttled by the SMSC, pausing {remaining:.1f}s more", remaining)
        link = self._link
        if link is None or not link.open:
            return wait(
                f"not bound to the SMSC at {self.host}:{self.port}",
                max(self._next_connect - now, 0.0) + _BIND_TIME,
            )
        key = (destination, body)
        progress = self._partial.pop(key, None) or _Progress(self._next_reference())
        total = len(encoded.parts)
        failure: SendResult | None = None
        try:
            async with asyncio.timeout(self.send_timeout):
                for index in range(len(progress.ids), total):
                    failure = await self._submit(link, destination, encoded, index, progress)
                    if failure is not None:
                        break
        except TimeoutError:
            where = f" (part {len(progress.ids) + 1} of {total})" if total > 1 else ""
            failure = retry(f"no submit_sm_resp within {self.send_timeout:g}s{where}")
        if failure is not None:
            if progress.ids and not failure.permanent:
                self._remember(key, progress)
            return replace(failure, parts=tuple(progress.ids))
        self._throttles = 0
        return SendResult(ok=True, message_id=progress.ids[0], parts=tuple(progress.ids))

    async def _submit(
        self, link: Link, destination: str, encoded: Encoded, index: int, progress: _Progress
    ) -> SendResult | None:
        """Submit part ``index``; None when accepted (its id appended), else the failure."""
        total = len(encoded.parts)
        if total == 1:
            short_message, esm_class = encoded.parts[0], 0
        else:
            header = concatenation_header(progress.reference, total, index + 1)
            short_message, esm_class = header + encoded.parts[index], ESM_CLASS_UDHI
        body = submit_sm_body(
            source=self.source,
            destination=destination,
            data_coding=encoded.data_coding,
            short_message=short_message,
            esm_class=esm_class,
        )
        where = f" (part {index + 1} of {total})" if total > 1 else ""
        try:
            async with self._window:
                response = await link.request(SUBMIT_SM, body, self._response_timeout)
        except TimeoutError:
            return retry(f"no submit_sm_resp within {self._response_timeout:g}s{where}")
        except SmppError as exc:
            return retry(f"connection lost: {exc}{where}")
        if response.command_id == GENERIC_NACK:
            return retry(f"SMSC answered generic_nack {status_name(response.status)}{where}")
        if response.status in _THROTTLING:
            pause = self._pause()
            return wait(
                f"SMSC throttled: {status_name(response.status)}{where}, pausing {pause:.1f}s",
                pause,
            )
        if response.status != ESME_ROK:
            error = f"SMSC refused: {status_name(response.status)}{where}"
            if response.status == ESME_RINVBNDSTS:
                await link.close()  # the SMSC forgot our bind: bind again
            if response.status in _PERMANENT:
                return SendResult(ok=False, permanent=True, error=error)
            return retry(error)
        try:
            message_id = BodyReader(response.body).cstring()
        except SmppError:
            message_id = ""
        if not message_id:
            return retry(f"submit_sm_resp without a message_id{where}")
        progress.ids.append(message_id)
        return None

    def _pause(self) -> float:
        """Stop submitting for a while, twice as long as last time while throttling goes on."""
        self._throttles += 1
        pause = min(self._throttle_cap, self._throttle_base * 2.0 ** (self._throttles - 1))
        self._paused_until = max(self._paused_until, self._clock() + pause)
        return pause

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    def _remember(self, key: tuple[str, str], progress: _Progress) -> None:
        self._partial[key] = progress
        while len(self._partial) > 256:  # messages the dispatcher gave up on
            self._partial.popitem(last=False)
