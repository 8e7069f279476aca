"""store.turns: order calls take turns per product, in order, and give them back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from store.turns import Turns


async def _until(holds: Callable[[], bool]) -> None:
    """Let the loop run the tasks until ``holds()`` (no clock: each look is a loop turn)."""
    for _ in range(1000):
        if holds():
            return
        await asyncio.sleep(0)
    raise AssertionError("never held")


class _Orders:
    """Orders that take their turns and hold them until let go."""

    def __init__(self, turns: Turns) -> None:
        self.turns = turns
        self.holding: list[str] = []  # in the order they got their turns
        self.go = asyncio.Event()

    async def place(self, name: str, *products: int) -> str:
        async with self.turns.of(products):
            self.holding.append(name)
            await self.go.wait()
        return name


async def test_at_most_size_calls_per_product_the_rest_wait_in_order() -> None:
    turns = Turns(3)
    orders = _Orders(turns)
    tasks = [asyncio.create_task(orders.place(f"o{i}", 7)) for i in range(8)]

    await _until(lambda: turns.in_line(7) == 8)

    assert orders.holding == ["o0", "o1", "o2"]
    orders.go.set()
    assert await asyncio.gather(*tasks) == [f"o{i}" for i in range(8)]
    assert orders.holding == [f"o{i}" for i in range(8)]  # first come, first served
    assert turns.in_line(7) == 0  # no line kept for a product nobody orders


async def test_an_order_for_another_product_does_not_wait_behind_a_busy_one() -> None:
    turns = Turns(1)
    orders = _Orders(turns)
    busy = [asyncio.create_task(orders.place(f"rice{i}", 1)) for i in range(4)]
    await _until(lambda: turns.in_line(1) == 4)

    async with turns.of([2]):  # the coat's turn, at once
        assert turns.in_line(2) == 1

    assert orders.holding == ["rice0"]
    orders.go.set()
    await asyncio.gather(*busy)


async def test_crossed_orders_never_hold_a_turn_the_other_waits_for() -> None:
    turns = Turns(1)
    orders = _Orders(turns)
    holder = asyncio.create_task(orders.place("holder", 1))
    await _until(lambda: orders.holding == ["holder"])
    second = asyncio.create_task(orders.place("b", 1, 2))
    first = asyncio.create_task(orders.place("a", 2, 1, 2))  # a product twice: one turn
    await _until(lambda: turns.in_line(1) == 3)

    # a asks for 1 before 2, as b does: it holds nothing b will wait for.
    assert turns.in_line(2) == 0
    orders.go.set()
    async with asyncio.timeout(5):  # a deadlock would hang here
        assert await asyncio.gather(holder, second, first) == ["holder", "b", "a"]
    assert orders.holding == ["holder", "b", "a"]


async def test_an_order_cancelled_while_waiting_gives_back_what_it_held() -> None:
    turns = Turns(1)
    orders = _Orders(turns)
    holder = asyncio.create_task(orders.place("holder", 2))
    await _until(lambda: orders.holding == ["holder"])
    waiter = asyncio.create_task(orders.place("waiter", 1, 2))  # holds 1, waits for 2
    await _until(lambda: turns.in_line(2) == 2)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert (turns.in_line(1), turns.in_line(2)) == (0, 1)
    async with turns.of([1]):  # its turn on 1 was given back
        pass
    orders.go.set()
    await holder
    assert turns.in_line(2) == 0


async def test_an_order_whose_call_fails_gives_its_turns_back() -> None:
    turns = Turns(1)
    with pytest.raises(RuntimeError):
        async with turns.of([3, 4]):
            raise RuntimeError("the server refused it")

    assert (turns.in_line(3), turns.in_line(4)) == (0, 0)
    async with turns.of([3, 4]):
        assert (turns.in_line(3), turns.in_line(4)) == (1, 1)


def test_a_turn_needs_room_for_one_call() -> None:
    with pytest.raises(ValueError, match="at least one call"):
        Turns(0)
