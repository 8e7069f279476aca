"""The app's background loops, stopped with it even when a library swallows a cancellation.

A loop that waits inside redis-py (a pooled connection, a subscription) can miss the
cancellation meant to stop it: the library's own timeout races it and wins. A gateway that
then never exits on SIGTERM, or a test that never ends, is the result (both were seen). So the
loops here wait on a ``stopping`` event between their turns, and :meth:`Background.stop`
sets it first, then waits, and only then cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("okryu.background")

GRACE = 2.0  # seconds a loop has to see ``stopping`` and end its turn


class Background:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, loop: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Run ``loop()`` until stopped; it should test :attr:`stopping` between turns."""
        self._tasks.append(asyncio.create_task(loop(), name=name))

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if stopping; True when the loop should end."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    async def stop(self) -> None:
        """Ask every loop to end, then cancel what did not; never waits more than a few
        seconds in all."""
        self.stopping.set()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=GRACE)
        for task in late:
            task.cancel()
        if late:
            _, stuck = await asyncio.wait(late, timeout=GRACE)
            for task in stuck:
                log.warning("background loop %s did not stop", task.get_name())
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("background loop %s ended with an error", task.get_name())
        self._tasks.clear()
