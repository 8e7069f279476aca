"""The development provider: logs that a message went, and accepts it."""

from __future__ import annotations

import itertools
import logging

from gateway.numbers import mask
from gateway.sms.provider import SendResult

logger = logging.getLogger("okryu.sms")


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
