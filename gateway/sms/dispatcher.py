"""The dispatcher: drains the outbox through one provider, at least once, given up by age.

Delivery is at least once, and exactly once unless the gateway dies between the provider's
accept and the record of it: the row is claimed with a lease as long as the provider can take
to answer (``send_timeout``) plus ``LEASE_MARGIN``, and a row whose worker died is sent again
when that lease runs out.

A provider that is throttled, paused or not connected answers without trying
(``retry_after``): that costs no attempt. Attempts only spread retries out; a message is
given up by age (``give_up``), never by a count that an outage of a few minutes exhausts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from gateway.logs import describe
from gateway.sms.pacer import Pacer
from gateway.sms.provider import SendResult, SmsProvider
from store import outbox
from store.db import Database
from store.models import LAST_ERROR_WIDTH, utcnow

logger = logging.getLogger("okryu.sms")

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
            if result.message_id:  # as the row keeps it: bounded, what receipts are matched by
                logger.info("sms %d sent as %s", item.id, outbox.stored_id(result.message_id))
            else:
                logger.info("sms %d sent under no id: no receipt can find it", item.id)
            return
        error = (result.error or "unknown error")[:LAST_ERROR_WIDTH]
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

    async def run(self, poll_interval: float, stopping: asyncio.Event | None = None) -> None:
        """Send until ``stopping`` is set (or cancelled): after each batch, wait for
        ``notify()``, ``stopping`` or ``poll_interval``."""
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            # Cleared before claiming, so a notify() that lands during run_once is not lost.
            self._wake.clear()
            try:
                handled = await self.run_once()
            except Exception:
                logger.exception("sms dispatcher: batch failed, retrying in %gs", poll_interval)
                await _first(stopping.wait(), timeout=poll_interval)
                continue
            if handled >= self._batch:
                continue  # a full batch: more rows are probably due
            await _first(self._wake.wait(), stopping.wait(), timeout=poll_interval)


async def _first(*waits: Coroutine[Any, Any, Any], timeout: float) -> None:
    """Wait until one of ``waits`` ends or ``timeout`` passes; the others are cancelled."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
