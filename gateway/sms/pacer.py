"""At most so many sends a second, for operators that cap what a gateway may submit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
