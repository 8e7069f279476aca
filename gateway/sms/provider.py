"""What every SMS provider promises the dispatcher: one send, answered, never raised.

A provider that is throttled, paused or not connected answers without trying
(``retry_after``): that costs no attempt. Attempts only spread retries out; a message is
given up by age, never by a count that an outage of a few minutes exhausts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from store.models import LAST_ERROR_WIDTH


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


def retry(error: str) -> SendResult:
    """Tried and failed, worth trying again: ``error`` cut to what the outbox keeps."""
    return SendResult(ok=False, error=error[:LAST_ERROR_WIDTH])


def wait(error: str, seconds: float) -> SendResult:
    """Not tried (throttled, paused, unbound): ask again in ``seconds``, costing no attempt."""
    return SendResult(ok=False, error=error[:LAST_ERROR_WIDTH], retry_after=seconds)
