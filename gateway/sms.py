"""Outbound SMS: providers that send one message, and the dispatcher that drains the outbox.

Africa's Talking send API (form-encoded POST, headers ``apiKey`` and ``Accept``)::

    POST /version1/messaging
    username=sandbox&to=%2B254711000111&message=Order+OK-4F2A+placed&from=OKRYU

    {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
      "Recipients": [{"statusCode": 101, "number": "+254711000111", "status": "Success",
                      "cost": "KES 0.8000", "messageId": "ATXid_5c2b..."}]}}

The dispatcher never composes text: bodies come from the outbox rows, written in the same
transaction as the order they announce. Delivery is at least once, and exactly once unless
the gateway dies between the provider's accept and the record of it: the row is claimed with
a lease as long as the provider can take to answer (``send_timeout``) plus ``LEASE_MARGIN``,
and a row whose worker died is sent again when that lease runs out.

A provider that is throttled, paused or not connected answers without trying
(``retry_after``): that costs no attempt. Attempts only spread retries out; a message is
given up by age (``give_up``), never by a count that an outage of a few minutes exhausts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp

from gateway.logs import describe
from gateway.numbers import mask
from gateway.settings import Settings, SettingsError
from store import outbox
from store.db import Database
from store.models import utcnow

logger = logging.getLogger("okryu.sms")

# Per-recipient statusCode values (PROTOCOLS.md §3.1).
_ACCEPTED = frozenset({100, 101, 102})  # Processed, Sent, Queued
# Sending again cannot help: InvalidPhoneNumber, UnsupportedNumberType, UserInBlacklist.
_PERMANENT = frozenset({403, 404, 406})
_MAX_ERROR = 300  # the width of OutboundMessage.last_error


@dataclass(frozen=True)
class SendResult:
    """What a provider made of one send: accepted, or why not and whether to retry."""

    ok: bool
    message_id: str | None = None
    permanent: bool = False
    error: str | None = None
    # Every part's id, in order, when the provider sends parts itself (SMPP): all of them on
    # success, those accepted before the failure otherwise. Receipts name parts.
    parts: tuple[str, ...] = ()
    # Set when the provider did not try (throttled, paused, not connected): seconds to wait
    # before asking again. Not an attempt.
    retry_after: float | None = None

    @property
    def part_ids(self) -> tuple[str, ...]:
        """The ids receipts will name: ``parts``, else the one ``message_id``."""
        if self.parts:
            return self.parts
        return (self.message_id,) if self.message_id else ()


class SmsProvider(Protocol):
    """Sends one SMS; reports failures as a ``SendResult`` rather than raising."""

    name: str
    # Seconds within which send() always answers: the outbox lease is derived from it.
    send_timeout: float

    async def send(self, to: str, body: str) -> SendResult:
        """Send ``body`` to the E.164 number ``to``."""
        ...


class LogProvider:
    """The development provider: logs each message and accepts it.

    The development inbox (``GET /dev/sms``) reads the sent rows of the outbox, so logging is
    all this provider has to do.
    """

    name = "log"
    send_timeout = 0.0  # answers at once

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    async def send(self, to: str, body: str) -> SendResult:
        """Log that a message went (not what it says) and answer with a fresh ``log-<n>`` id."""
        message_id = f"log-{next(self._ids)}"
        logger.info("sms %s to %s: %d characters", message_id, mask(to), len(body))
        return SendResult(ok=True, message_id=message_id)


class AfricasTalkingProvider:
    """Sends through Africa's Talking's (or a compatible aggregator's) messaging API."""

    name = "africastalking"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        username: str,
        api_key: str,
        sender: str | None,
        timeout: float = 10,
    ) -> None:
        self._session = session
        self._url = url
        self._username = username
        self._api_key = api_key
        self._sender = sender
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.send_timeout = timeout

    def __repr__(self) -> str:
        # Spelled out so that no repr of this object can leak the api key into a log.
        return f"AfricasTalkingProvider(url={self._url!r}, username={self._username!r})"

    async def send(self, to: str, body: str) -> SendResult:
        """POST one message; never raises for network or provider errors."""
        form = {"username": self._username, "to": to, "message": body}
        if self._sender:
            form["from"] = self._sender
        headers = {"apiKey": self._api_key, "Accept": "application/json"}
        try:
            async with self._session.post(
                self._url, data=form, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                text = await response.text()
        except TimeoutError:
            return _retry(f"timed out after {self._timeout.total:g}s")
        except aiohttp.ClientError as exc:
            return _retry(f"connection error: {type(exc).__name__}: {exc}")
        if status >= 500:
            return _retry(f"HTTP {status} from provider: {_snippet(text)}")
        if status >= 400:
            # Usually a bad username or api key: retry, so the queue survives until an
            # operator fixes the configuration, but say plainly what to fix.
            return _retry(
                f"HTTP {status} from provider, check username and api key: {_snippet(text)}"
            )
        return _parse_recipient(text)


def _parse_recipient(text: str) -> SendResult:
    """Read the single recipient's outcome from an AT JSON answer."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return _retry(f"non-JSON answer from provider: {_snippet(text)}")
    try:
        payload = data["SMSMessageData"]
        recipients = payload["Recipients"]
        if not recipients:
            # AT answers an empty list (with a reason in Message) when it accepted nobody.
            return _retry(f"no recipient accepted: {_snippet(str(payload.get('Message')))}")
        recipient = recipients[0]
        code = int(recipient["statusCode"])
        status = str(recipient.get("status", ""))
        message_id = recipient.get("messageId")
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return _retry(f"unexpected JSON from provider: {_snippet(text)}")
    if code in _ACCEPTED:
        return SendResult(ok=True, message_id=str(message_id) if message_id else None)
    error = f"recipient status {code} {status}".rstrip()
    if code in _PERMANENT:
        return SendResult(ok=False, permanent=True, error=error)
    return _retry(error)


def _retry(error: str) -> SendResult:
    return SendResult(ok=False, error=error[:_MAX_ERROR])


def _snippet(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def make_provider(settings: Settings, session: aiohttp.ClientSession | None) -> SmsProvider:
    """Build the provider that ``settings.sms_provider`` names."""
    if settings.sms_provider == "log":
        return LogProvider()
    if settings.sms_provider == "africastalking":
        if not settings.at_api_key:
            raise SettingsError(
                "OKRYU_AT_API_KEY is required with OKRYU_SMS_PROVIDER=africastalking"
            )
        if session is None:
            raise ValueError("the africastalking provider needs an aiohttp ClientSession")
        return AfricasTalkingProvider(
            session,
            settings.at_sms_url,
            settings.at_username,
            settings.at_api_key,
            settings.sms_sender or None,
        )
    if settings.sms_provider == "smpp":
        if not settings.smpp_system_id:
            raise SettingsError("OKRYU_SMPP_SYSTEM_ID is required with OKRYU_SMS_PROVIDER=smpp")
        # Imported here: gateway.smpp imports SendResult from this module.
        from gateway.smpp import SmppProvider

        # Not bound yet: the app starts it (start()/close()) and wires on_receipt.
        return SmppProvider.from_settings(settings)
    raise SettingsError(f"unknown SMS provider {settings.sms_provider!r}")


class Pacer:
    """At most ``rate`` sends a second: each send waits for its own slot (a leaky bucket).

    Operators cap what a gateway may submit (SMPP binds are often 10-50 messages a second);
    sending faster only earns throttling replies.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = -float("inf")

    async def take(self) -> None:
        """Wait for the next free slot."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)


# What a lease covers beyond the provider's answer time: recording the outcome (one database
# write, normally milliseconds) and the clocks of dispatchers on other hosts disagreeing.
LEASE_MARGIN = 5.0
DEFAULT_GIVE_UP = timedelta(hours=6)


class Dispatcher:
    """Drains the outbox: claims due rows, sends them, records the outcome."""

    def __init__(
        self,
        db: Database,
        provider: SmsProvider,
        *,
        clock: Callable[[], datetime] = utcnow,
        give_up: timedelta = DEFAULT_GIVE_UP,
        batch: int = 20,
        lease: timedelta | None = None,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        rand: random.Random | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.db = db
        self.provider = provider
        self._pacer = pacer
        # As short as the provider's answer time allows: a shorter lease would let another
        # worker send a row whose first send may still be answered.
        self.lease = lease or timedelta(seconds=provider.send_timeout + LEASE_MARGIN)
        self._claim_lease = self.lease
        if pacer is not None:
            # A paced batch waits for its slots while claimed: no more than one lease of
            # slots, and the claim lasts that much longer, so no other worker takes (and
            # sends again) a row still waiting for its slot.
            batch = max(1, min(batch, int(self.lease.total_seconds() / pacer.interval)))
            self._claim_lease = self.lease + timedelta(seconds=batch * pacer.interval)
        self._clock = clock
        self.give_up = give_up
        self._batch = batch
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._rand = rand or random.Random()
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Wake ``run()`` now, e.g. right after an order queued its confirmation."""
        self._wake.set()

    def backoff(self, attempts: int) -> timedelta:
        """The wait before attempt ``attempts + 1``: exponential, capped, equal jitter.

        Equal jitter keeps at least half the exponential delay (so a provider outage is not
        hammered) while spreading retries that failed together.
        """
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** max(attempts - 1, 0))
        half = ceiling / 2
        return timedelta(seconds=half + self._rand.uniform(0, half))

    async def run_once(self) -> int:
        """Fail rows too old to send, claim a batch of due rows, send it; how many were claimed."""
        now = self._clock()
        for id_ in await outbox.give_up(self.db, now, now - self.give_up):
            logger.warning("sms %d failed: not sent within %s of being queued", id_, self.give_up)
        items = await outbox.claim_due(self.db, now, self._batch, self._claim_lease)
        # Concurrently: sent one after another, a slow provider would outlast the lease.
        outcomes = await asyncio.gather(
            *(self._handle(item) for item in items), return_exceptions=True
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            # A row whose outcome could not be recorded stays claimed and is retried after
            # its lease; surface the failure (typically the database) to the caller.
            raise errors[0]
        return len(items)

    async def _handle(self, item: outbox.OutboxItem) -> None:
        if self._pacer is not None:
            await self._pacer.take()
        try:
            result = await self.provider.send(item.to, item.body)
        except Exception as exc:
            # A provider bug must not stop the queue: count it as a retryable failure.
            logger.exception("sms %d: provider %s raised", item.id, self.provider.name)
            # Stored as the error and logged: the exception's class, never its text.
            result = SendResult(ok=False, error=f"provider raised {describe(exc)}")
        now = self._clock()
        parts = result.part_ids
        if result.ok:
            await outbox.mark_sent(
                self.db, item.id, self.provider.name, result.message_id, now, parts
            )
            logger.info("sms %d sent as %s", item.id, result.message_id)
            return
        error = (result.error or "unknown error")[:_MAX_ERROR]
        if result.permanent:
            await outbox.mark_failed(self.db, item.id, error, parts)
            logger.warning("sms %d failed for good: %s", item.id, error)
            return
        if result.retry_after is not None:
            retry_at = now + timedelta(seconds=max(result.retry_after, 0.0))
            await outbox.mark_retry(self.db, item.id, error, retry_at, parts, attempted=False)
            logger.info("sms %d waits for the provider until %s: %s", item.id, retry_at, error)
            return
        retry_at = now + self.backoff(item.attempts)
        await outbox.mark_retry(self.db, item.id, error, retry_at, parts)
        logger.info(
            "sms %d attempt %d failed, retry at %s: %s", item.id, item.attempts, retry_at, error
        )

    async def run(self, poll_interval: float) -> None:
        """Send until cancelled: after each batch, wait for ``notify()`` or ``poll_interval``."""
        while True:
            # Cleared before claiming, so a notify() that lands during run_once is not lost.
            self._wake.clear()
            try:
                handled = await self.run_once()
            except Exception:
                logger.exception("sms dispatcher: batch failed, retrying in %gs", poll_interval)
                await asyncio.sleep(poll_interval)
                continue
            if handled >= self._batch:
                continue  # a full batch: more rows are probably due
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_interval):
                    await self._wake.wait()
