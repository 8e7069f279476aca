"""Hops' deadlines, kept by one timer per process rather than one per hop.

``asyncio.timeout`` arms a timer handle, walks a small state machine and cancels the handle
on every hop: 3.5% of a browsing hop's CPU, profiled under the peer bench's load. Here a hop
notes its task and when it is due; one timer, armed only while hops are in flight, wakes every
``tick`` seconds and cancels the hops that are overdue. A hop may run up to ``tick`` past its
deadline. Every hop gets the same deadline, so the hops in flight are noted in the order they
fall due, and a wake-up stops at the first that is not.

Inside ``with deadlines.watch():`` an overdue hop's CancelledError becomes TimeoutError at the
block's end, as ``asyncio.timeout`` does (a cancellation from elsewhere stays a cancellation).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

TICK = 0.05  # seconds between wake-ups while hops are in flight


class Deadlines:
    def __init__(self, seconds: float, tick: float = TICK) -> None:
        self.seconds = seconds
        self.tick = tick
        # In the order they fall due; a hop the timer cancelled is no longer here.
        self._due: dict[asyncio.Task[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(self) -> _Watch:
        """A context for one hop: its task is cancelled once it outlasts ``seconds``."""
        return _Watch(self)

    def _check(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        overdue = []
        for task, due in self._due.items():
            if due > now:
                break
            overdue.append(task)
        for task in overdue:
            del self._due[task]
            task.cancel()
        if self._due:
            self._timer = loop.call_later(self.tick, self._check)


class _Watch:
    __slots__ = ("_deadlines", "_task", "_cancelling")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline is kept for a task")
        deadlines = self._deadlines
        loop = asyncio.get_running_loop()
        self._task = task
        self._cancelling = task.cancelling()
        deadlines._due[task] = loop.time() + deadlines.seconds
        if deadlines._timer is None:
            deadlines._timer = loop.call_later(deadlines.tick, deadlines._check)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = self._task
        if self._deadlines._due.pop(task, None) is not None:
            return  # finished in time; else the timer cancelled it
        if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
