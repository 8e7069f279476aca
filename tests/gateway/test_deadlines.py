"""One timer keeps every hop's deadline (gateway.deadlines), as asyncio.timeout would."""

from __future__ import annotations

import asyncio

import pytest

from gateway.deadlines import Deadlines


async def never() -> None:
    await asyncio.Event().wait()  # what a hop stuck on a dead store looks like


async def test_deadlines_an_overdue_hop_ends_in_timeout_error_within_a_tick() -> None:
    deadlines = Deadlines(0.05, tick=0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        with deadlines.watch():
            await never()
    assert 0.05 <= loop.time() - started < 0.05 + 0.5  # the tick, and a loaded machine's slack
    assert deadlines._due == {}  # nothing left behind


async def test_deadlines_a_hop_in_time_leaves_nothing_behind_and_the_timer_stops() -> None:
    deadlines = Deadlines(5.0, tick=0.01)
    with deadlines.watch():
        await asyncio.sleep(0)
    assert deadlines._due == {}
    timer = deadlines._timer
    assert timer is not None  # armed while the hop was in flight
    timer.cancel()
    deadlines._check()  # its wake-up, now
    assert deadlines._timer is None  # no hop in flight: not armed again


async def test_deadlines_only_the_overdue_are_cancelled_and_the_rest_finish() -> None:
    deadlines = Deadlines(0.05, tick=0.01)
    done = asyncio.Event()

    async def hop(stuck: bool) -> str:
        with deadlines.watch():
            await (never() if stuck else done.wait())
        return "answered"

    stuck = [asyncio.create_task(hop(True)) for _ in range(3)]
    await asyncio.wait(stuck)  # each gives up at its deadline
    later = asyncio.create_task(hop(False))  # watched from now: not overdue yet
    done.set()
    assert await later == "answered"
    assert all(isinstance(task.exception(), TimeoutError) for task in stuck)


async def test_deadlines_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(5.0, tick=0.01)
    entered = asyncio.Event()

    async def hop() -> None:
        with deadlines.watch():
            entered.set()
            await never()

    task = asyncio.create_task(hop())
    await entered.wait()
    task.cancel()  # the server shutting down, say
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._due == {}


async def test_deadlines_outside_a_task_says_so() -> None:
    deadlines = Deadlines(1.0)
    loop = asyncio.get_running_loop()
    refused: asyncio.Future[BaseException] = loop.create_future()

    def from_a_callback() -> None:
        try:
            deadlines.watch().__enter__()
        except RuntimeError as error:
            refused.set_result(error)

    loop.call_soon(from_a_callback)
    assert "task" in str(await refused)
