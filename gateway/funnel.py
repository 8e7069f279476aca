"""The shopping funnel: how many sessions reached each screen, and where they dropped off.

Each session record carries the set of screens it has reached (a bitmask), so a session is
counted once per screen however often it comes back. Counts gather in memory and are added
to the database every few seconds by every process: the hop itself spends no extra round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from menus.engine import RESUME
from menus.shop import Shop
from store import reports
from store.db import Database
from store.models import utc_at

log = logging.getLogger("okryu.funnel")

# The order journey, in order (a session that reached a later step passed the earlier ones),
# then every other state of the chart and the engine's resume screen: each gets a bit, so the
# funnel covers every state the journey declares.
STEPS: tuple[str, ...] = Shop.funnel
BITS = {
    screen: 1 << i
    for i, screen in enumerate(
        dict.fromkeys([*STEPS, *(state.id for state in Shop.chart.states), RESUME])
    )
}


def reach(seen: int, screen: str) -> tuple[int, bool]:
    """The mask with ``screen`` added, and whether it is new for this session."""
    bit = BITS.get(screen, 0)
    return seen | bit, bit != 0 and not seen & bit


class FunnelCounter:
    """Counts first arrivals per (hour, screen) and adds them to the database now and then."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock  # epoch seconds
        # By the hour's number since the epoch: a hop counts with one division (two datetimes
        # a screen, made and rounded, cost it a few microseconds).
        self._counts: Counter[tuple[int, str]] = Counter()

    def reached(self, screen: str) -> None:
        self._counts[(int(self.clock() // 3600), screen)] += 1

    async def flush(self) -> None:
        counts, self._counts = self._counts, Counter()
        by_hour: Counter[tuple[datetime, str]] = Counter()
        for (hour, screen), count in counts.items():
            by_hour[(utc_at(hour * 3600), screen)] += count
        try:
            await reports.add_funnel(self.db, by_hour)
        except Exception:
            self._counts.update(counts)  # keep them for the next try
            raise

    async def run(self, interval: float, stopping: asyncio.Event | None = None) -> None:
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
            if stopping.is_set():
                return  # close() saves the last counts
            try:
                await self.flush()
            except Exception:
                log.exception("could not save funnel counts; will try again")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()


@dataclass(frozen=True)
class Step:
    screen: str
    sessions: int
    dropped: int  # reached this step but not the next


def report(reached: dict[str, int]) -> list[Step]:
    """The funnel along the order journey, with the drop-off after each step."""
    counts = [reached.get(screen, 0) for screen in STEPS]
    # A session that reached a step passed every step before it, even one it was not shown
    # (a screen with a choice of one is passed without a hop; a shortcut dial lands further).
    for i in range(len(counts) - 2, -1, -1):
        counts[i] = max(counts[i], counts[i + 1])
    following: list[int | None] = [*counts[1:], None]
    return [
        Step(screen, count, 0 if after is None else max(0, count - after))
        for screen, count, after in zip(STEPS, counts, following, strict=True)
    ]


def format_report(steps: list[Step]) -> str:
    """The funnel as a text table, with each step's share of the sessions that started."""
    top = steps[0].sessions if steps and steps[0].sessions else 1
    lines = [f"{'screen':<12}{'sessions':>9}{'share':>8}{'dropped':>9}"]
    for step in steps:
        share = f"{100 * step.sessions / top:.0f}%"
        lines.append(f"{step.screen:<12}{step.sessions:>9}{share:>8}{step.dropped:>9}")
    return "\n".join(lines)
