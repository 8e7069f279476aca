"""Who holds no shop card: their checkout's card list, answered without the database.

Every checkout asks for the subscriber's cards (the payment screen offers them), and almost
nobody holds one: on PostgreSQL that read was one of an order journey's three round trips
(issue 10). A process remembers who was found with none, while the cards version stays the
same (``CatalogVersions.cards_tag``: the admin API bumps it when it issues a card, and every
process hears of it) and for at most ``TTL`` seconds: a card issued where the bump could not
be told (Redis out of reach, a row written in SQL) is offered within that time. Holders are
never remembered: their balances move with every order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TTL = 60.0  # seconds a "no card" answer is trusted, whatever the version says
SIZE = 10_000  # subscribers remembered per process (those checking out now, not everyone)


class Cardless:
    def __init__(
        self,
        version: Callable[[], bytes],
        *,
        ttl: float = TTL,
        size: int = SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.version = version
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._seen: dict[str, tuple[bytes, float]] = {}  # msisdn -> (version, when), oldest first

    def holds_none(self, msisdn: str) -> bool:
        """Whether ``msisdn`` was found with no card, at this version, within the TTL."""
        seen = self._seen.get(msisdn)
        return seen is not None and seen[0] == self.version() and self.clock() - seen[1] < self.ttl

    def found(self, msisdn: str, version: bytes, cards: int) -> None:
        """What a read begun at ``version`` found: ``cards`` active cards."""
        self._seen.pop(msisdn, None)  # re-inserted last: the oldest go first
        if cards or version != self.version():
            return  # a holder, or a card issued while it read: ask again next time
        if len(self._seen) >= self.size:
            del self._seen[next(iter(self._seen))]
        self._seen[msisdn] = (version, self.clock())
