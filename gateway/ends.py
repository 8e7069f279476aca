"""Ended sessions: recorded as the aggregator tells them, and one reminder per abandoned cart."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from gateway.messages import SessionEnd
from gateway.numbers import mask
from gateway.sessions import Record, SessionStore
from menus import sms
from menus.shop import Shop
from store import orders, outbox
from store.db import Database
from store.models import ERROR_TEXT_WIDTH, SCREEN_TEXT_WIDTH, UssdSessionEnd, utcnow

log = logging.getLogger("okryu.ends")


class SessionEnds:
    def __init__(
        self,
        *,
        db: Database,
        sessions: SessionStore,
        dial: str,
        reminder_delay: timedelta,
        default_language: str,
        notify: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
        journey: Shop | None = None,
        serves: Callable[[str], bool] = lambda msisdn: True,
    ) -> None:
        self.journey = journey or Shop()
        self.serves = serves  # a reminder is an SMS like a reply: only to numbers served
        self.db = db
        self.sessions = sessions
        self.dial = dial
        self.reminder_delay = reminder_delay
        self.default_language = default_language
        self.notify = notify
        self.clock = clock

    async def record(self, end: SessionEnd) -> bool:
        """Keep the end for reports; remind of a cart left behind. True if a reminder was queued."""
        async with self.db.write() as session:
            session.add(
                UssdSessionEnd(
                    channel=end.channel,
                    session_ref=end.session_ref,
                    msisdn=end.msisdn,
                    service_code=end.service_code,
                    status=end.status,
                    hops=end.hops,
                    duration_ms=end.duration_ms,
                    last_screen=end.last_screen[:SCREEN_TEXT_WIDTH],
                    error=end.error[:ERROR_TEXT_WIDTH],
                    ended_at=self.clock(),
                )
            )
        if end.status != "abandoned":
            return False
        return await self._remind(end)

    async def _remind(self, end: SessionEnd) -> bool:
        record = Record.loads(
            await self.sessions.load(self.sessions.key(end.service_code, end.msisdn))
        )
        if record is None or not self.serves(end.msisdn):
            return False
        ctx = self.journey.context.load(record.ctx)
        cart = self.journey.abandoned_cart(ctx)
        if cart is None or not await orders.wants_reminders(self.db, end.msisdn):
            return False
        lang = ctx.lang if "lang" in record.ctx else self.default_language
        # Sent after a delay: a subscriber who redials and orders first never gets it (placing
        # the order cancels it); the key makes it one reminder per cart, however often the
        # sessions around that cart are cut.
        queued = await outbox.enqueue_once(
            self.db,
            to=end.msisdn,
            body=sms.cart_reminder(lang, self.dial),
            kind="cart_reminder",
            idempotency_key=f"cart_reminder:{end.msisdn}:{cart}",
            not_before=self.clock() + self.reminder_delay,
        )
        if queued:
            log.info("queued a cart reminder for %s", mask(end.msisdn))
            if self.notify is not None:
                await self.notify()
        return queued
