"""Inbound SMS: recorded once each, answered in the same transaction that records them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from store.db import Database
from store.models import Customer, InboundMessage
from store.orders import _upsert_customer
from store.outbox import enqueue


@dataclass(frozen=True, slots=True)
class Answer:
    """What to do about one inbound message."""

    reply: str | None
    reminders: bool | None = None  # opt in (True) or out (False) of cart reminders


Decide = Callable[[str, str], Answer]  # (text, the customer's language) -> Answer


async def receive(
    db: Database,
    *,
    msisdn: str,
    to: str,
    text: str,
    provider_message_id: str | None,
    decide: Decide,
    default_language: str,
) -> bool:
    """Record the message, act on it and queue the reply, all at once. False for a repeat."""
    try:
        async with db.write() as session:
            if provider_message_id is not None:
                seen = select(InboundMessage.id).where(
                    col(InboundMessage.provider_message_id) == provider_message_id
                )
                if (await session.exec(seen)).first() is not None:
                    return False  # the provider retried a message already answered
            message = InboundMessage(
                msisdn=msisdn, to=to[:32], text=text[:1000], provider_message_id=provider_message_id
            )
            session.add(message)
            await session.flush()
            query = select(Customer.language).where(Customer.msisdn == msisdn)
            language = (await session.exec(query)).first() or default_language
            answer = decide(text, language)
            if answer.reminders is not None:
                await _upsert_customer(
                    session, db.is_sqlite, msisdn, reminders_opt_out=not answer.reminders
                )
            if answer.reply is not None:
                await enqueue(
                    session,
                    to=msisdn,
                    body=answer.reply,
                    kind="reply",
                    idempotency_key=f"reply:{message.id}",
                )
    except IntegrityError:
        return False  # the same provider id, recorded concurrently
    return True
