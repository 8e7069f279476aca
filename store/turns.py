"""Turns for PostgreSQL's order calls: at most a few in flight per product, per process.

An order's call (``okryu_place_order``) holds its products' row locks through its commit, so
calls for one product run one after another in the server however many are sent. Beyond a
few, the rest only queue on the row lock there: each holds a connection of the hand-out the
hops' reads share (``store/handout.py``), and each waiting backend is put to sleep and woken on
a core the gateway needs. They wait here instead, in order, per product: an order for another
product never waits behind them.

An order takes a turn on each of its products in product id order, as its call takes their
row locks: two orders never hold a turn each that the other waits for. Card orders (the ORM's
transaction, ``store.orders._place_once``) and a cancellation's restock take the same row locks
without a turn: a call may still wait behind one of them in the server, as every call did
before. SQLite needs none: its writes already take turns in the process (``Database.write_now``).

There is no limit across products: with the rows of four or more products held at once (a
long import), their waiting calls can still take every connection of the hand-out, as any ten
calls could before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType


class _Line:
    """One product's turns: a semaphore, and how many orders hold or wait for one of them."""

    __slots__ = ("turns", "users")

    def __init__(self, size: int) -> None:
        self.turns = asyncio.Semaphore(size)
        self.users = 0


class Turns:
    """At most ``size`` order calls in flight per product; a line kept only while used."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("an order needs room for at least one call per product")
        self.size = size
        self._lines: dict[int, _Line] = {}

    def of(self, products: Iterable[int]) -> _Turn:
        """``async with turns.of(product_ids):`` a turn on every one of them."""
        return _Turn(self, sorted(set(products)))

    def in_line(self, product: int) -> int:
        """Orders holding or waiting for a turn on ``product`` (0: no line kept for it)."""
        line = self._lines.get(product)
        return 0 if line is None else line.users

    def _join(self, product: int) -> _Line:
        line = self._lines.get(product)
        if line is None:
            line = self._lines[product] = _Line(self.size)
        line.users += 1
        return line

    def _leave(self, product: int, line: _Line) -> None:
        line.users -= 1
        if not line.users:
            del self._lines[product]


class _Turn:
    """An order's turns on its products, taken in id order and given back in reverse."""

    __slots__ = ("_owner", "_products", "_taken")

    def __init__(self, owner: Turns, products: list[int]) -> None:
        self._owner = owner
        self._products = products
        self._taken: list[tuple[int, _Line]] = []

    async def __aenter__(self) -> None:
        owner = self._owner
        for product in self._products:
            line = owner._join(product)
            try:
                await line.turns.acquire()
            except BaseException:  # cancelled while waiting: this turn never held, the rest back
                owner._leave(product, line)
                self._give_back()
                raise
            self._taken.append((product, line))

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._give_back()

    def _give_back(self) -> None:
        taken, self._taken = self._taken, []
        for product, line in reversed(taken):
            line.turns.release()
            self._owner._leave(product, line)
