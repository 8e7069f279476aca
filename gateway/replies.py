"""Which SMS replies may go out: the guard against SMS pumping.

Anyone can put any sender on an inbound SMS, and every reply costs the shop money. So a reply
to an inbound message goes only to numbers of the regions the shop serves
(``OKRYU_SMS_REGIONS``), at most ``OKRYU_SMS_REPLIES_PER_SENDER`` to one number an hour and
``OKRYU_SMS_REPLIES_PER_HOUR`` to everyone. What is held back is counted, by reason, in
``/metrics``. Order confirmations and status changes are not replies: they go to the number
that placed the order, whatever this guard says.

The counters are fixed one-hour windows in Redis, so every gateway process shares them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import phonenumbers

from gateway.redis_clients import Client

# KEYS[1] = the window's counter; ARGV[1] = its lifetime. One round trip, and a counter that
# can never be left without an expiry.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
WINDOW = 3600  # seconds


class ReplyGuard:
    def __init__(
        self,
        redis: Client,
        prefix: str,
        *,
        regions: Sequence[str],
        per_sender: int,
        per_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.regions = frozenset(regions)
        self.per_sender = per_sender
        self.per_hour = per_hour
        self.prefix = prefix
        self.clock = clock
        self._count = redis.register_script(_COUNT)

    def serves(self, msisdn: str) -> bool:
        """Whether ``msisdn`` (E.164) belongs to a region the shop serves."""
        try:
            number = phonenumbers.parse(msisdn)
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.region_code_for_number(number) in self.regions

    async def refusal(self, msisdn: str) -> str | None:
        """Why no reply may go to ``msisdn`` now (``region``, ``sender``, ``total``), or None.

        A reply refused for its sender does not count against the total, so a flood from one
        number cannot use up everyone's allowance.
        """
        if not self.serves(msisdn):
            return "region"
        window = int(self.clock() // WINDOW)
        if await self._bump(f"{self.prefix}replies:{{{msisdn}}}:{window}") > self.per_sender:
            return "sender"
        if await self._bump(f"{self.prefix}replies:all:{window}") > self.per_hour:
            return "total"
        return None

    async def _bump(self, key: str) -> int:
        count: int = await self._count(keys=[key], args=[WINDOW])
        return count
