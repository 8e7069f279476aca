"""Inbound SMS: each recorded once, and answered once however often the provider retries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from store.db import Database
from store.models import SMS_BODY_WIDTH, SMS_TO_WIDTH, InboundMessage, utcnow


@dataclass(frozen=True, slots=True)
class Received:
    id: int
    handled: bool  # already answered: nothing more to do


async def record(
    db: Database, *, msisdn: str, to: str, text: str, provider_message_id: str | None
) -> Received:
    """Keep the message (once per provider id) and say whether it was already answered."""
    for _ in range(2):
        try:
            async with db.write() as session:
                if provider_message_id is not None:
                    query = select(InboundMessage).where(
                        col(InboundMessage.provider_message_id) == provider_message_id
                    )
                    seen = (await session.exec(query)).first()
                    if seen is not None:
                        assert seen.id is not None
                        return Received(seen.id, seen.handled_at is not None)
                message = InboundMessage(
                    msisdn=msisdn,
                    to=to[:SMS_TO_WIDTH],
                    text=text[:SMS_BODY_WIDTH],
                    provider_message_id=provider_message_id,
                )
                session.add(message)
                await session.flush()
                assert message.id is not None
                return Received(message.id, False)
        except IntegrityError:
            continue  # the same provider id recorded concurrently: read it on the next pass
    raise RuntimeError("could not record an inbound message")


async def mark_handled(db: Database, message_id: int) -> None:
    async with db.write() as session:
        await session.exec(
            update(InboundMessage)
            .where(col(InboundMessage.id) == message_id)
            .values(handled_at=utcnow())
        )
