"""place_order under real concurrency: on PostgreSQL each call has its own connection."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any
from unittest.mock import AsyncMock

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.util import await_only

from menus.ports import Catalog, OrderPlaced, OutOfStock
from store import cards
from store.catalog import load_catalog
from store.db import ORDER_CALLS, Database
from store.models import Order, OrderLine, OutboundMessage
from store.orders import place_order
from tests.store.factories import (
    ALICE,
    BOB,
    count,
    first_zone,
    order_request,
    product_by_sku,
    render,
    rows,
    set_product,
    stock_of,
)


async def _race_for_last_unit(db: Database, callers: int) -> None:
    coat = await product_by_sku(db, "CL-PADDEDCOAT")
    zone = await first_zone(db)
    assert coat.id and zone.id
    await set_product(db, coat.id, stock=1)

    results = await asyncio.gather(
        *(
            place_order(db, order_request(f"k{i}", [(coat.id, 1)], zone.id), render)
            for i in range(callers)
        )
    )

    placed = [r for r in results if isinstance(r, OrderPlaced)]
    assert len(placed) == 1
    assert results.count(OutOfStock(product_ids=(coat.id,))) == callers - 1
    assert await stock_of(db, coat.id) == 0
    assert await count(db, Order) == 1
    assert await count(db, OutboundMessage) == 1


async def test_place_order_two_callers_racing_for_the_last_unit_sell_it_once(
    seeded_db: Database,
) -> None:
    await _race_for_last_unit(seeded_db, 2)


async def test_place_order_ten_callers_racing_for_the_last_unit_sell_it_once(
    seeded_db: Database,
) -> None:
    await _race_for_last_unit(seeded_db, 10)


async def test_place_order_concurrent_replays_of_one_key_place_one_order(
    seeded_db: Database,
) -> None:
    socks = await product_by_sku(seeded_db, "CL-SOCKS")
    zone = await first_zone(seeded_db)
    assert socks.id and zone.id
    request = order_request("one-key", [(socks.id, 2)], zone.id)

    results = await asyncio.gather(*(place_order(seeded_db, request, render) for _ in range(5)))

    assert all(isinstance(r, OrderPlaced) for r in results)
    assert len(set(results)) == 1
    assert await stock_of(seeded_db, socks.id) == socks.stock - 2
    assert await count(seeded_db, Order) == 1
    assert await count(seeded_db, OutboundMessage) == 1


async def test_place_order_concurrent_replays_of_one_key_for_the_last_unit(
    seeded_db: Database,
) -> None:
    # The loser of the row lock finds no stock left, yet its key did place an order.
    coat = await product_by_sku(seeded_db, "CL-PADDEDCOAT")
    zone = await first_zone(seeded_db)
    assert coat.id and zone.id
    await set_product(seeded_db, coat.id, stock=1)
    request = order_request("one-key", [(coat.id, 1)], zone.id)

    results = await asyncio.gather(*(place_order(seeded_db, request, render) for _ in range(5)))

    assert all(isinstance(r, OrderPlaced) for r in results)
    assert len(set(results)) == 1
    assert await stock_of(seeded_db, coat.id) == 0


async def test_place_order_crossed_lines_neither_deadlock_nor_oversell(
    seeded_db: Database,
) -> None:
    # Half the callers list A then B, half B then A: a deadlock if locks followed line order.
    gloves = await product_by_sku(seeded_db, "CL-GLOVES")
    hat = await product_by_sku(seeded_db, "CL-FURHAT")
    zone = await first_zone(seeded_db)
    assert gloves.id and hat.id and zone.id
    await set_product(seeded_db, gloves.id, stock=4)
    await set_product(seeded_db, hat.id, stock=4)
    pairs = [[(gloves.id, 1), (hat.id, 1)], [(hat.id, 1), (gloves.id, 1)]]

    results = await asyncio.gather(
        *(
            place_order(seeded_db, order_request(f"k{i}", pairs[i % 2], zone.id), render)
            for i in range(10)
        )
    )

    assert sum(isinstance(r, OrderPlaced) for r in results) == 4
    assert await stock_of(seeded_db, gloves.id) == 0
    assert await stock_of(seeded_db, hat.id) == 0
    assert {o.msisdn for o in await rows(seeded_db, Order)} == {ALICE}


class _RepricedBeforeTheCall:
    """asyncpg's pool, but the first ``okryu_place_order`` call waits for a price change
    committed on another connection: a staff member's edit between the order's read and its
    one call."""

    def __init__(self, pool: Any, reprice: Callable[[], Awaitable[None]]) -> None:
        self.pool, self.reprice, self.calls = pool, reprice, 0

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        if "okryu_place_order" in sql:
            self.calls += 1
            if self.calls == 1:
                await self.reprice()
        return await self.pool.fetchrow(sql, *args)


@pytest.mark.parametrize("payment", ["cod", "card"])
async def test_place_order_repriced_while_placing_is_charged_the_new_price(
    seeded_db: Database, payment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The order is written before its stock is taken (so a popular product's row lock is held
    # only for the decrement): a price changed in between must not slip through at the old
    # one. On PostgreSQL a cash order is one SQL call, a card order the ORM's transaction.
    if seeded_db.is_sqlite:
        pytest.skip("SQLite admits one writer at a time: nothing can reprice mid-order")
    rice = await product_by_sku(seeded_db, "FD-RICE5")
    zone = await first_zone(seeded_db)
    assert rice.id and zone.id
    rice_id = rice.id
    request = order_request("k1", [(rice_id, 2)], zone.id)
    if payment == "card":
        issued = await cards.issue_card(seeded_db, ALICE, "4821")
        await cards.top_up(seeded_db, issued.number, 500_000, "T-1", actor="staff",
                           render_sms=lambda *_: "topped up")  # fmt: skip
        [card] = await cards.list_cards(seeded_db, ALICE)
        request = dataclasses.replace(request, payment="card", card=card.id)

    async def reprice() -> None:
        await set_product(seeded_db, rice_id, price=31000)

    tries: list[str] = []  # the ORM path's decrements
    spy = _RepricedBeforeTheCall(await seeded_db.pool(), reprice)
    monkeypatch.setattr(seeded_db, "pool", AsyncMock(return_value=spy))

    def reprice_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE product SET stock"):
            tries.append(statement)
            if len(tries) == 1:  # another staff member, on another connection
                await_only(reprice())

    engine = seeded_db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", reprice_once)
    try:
        placed = await place_order(seeded_db, request, render)
    finally:
        event.remove(engine, "before_cursor_execute", reprice_once)

    assert (spy.calls, len(tries)) == ((2, 0) if payment == "cod" else (0, 2))  # tried again
    assert isinstance(placed, OrderPlaced) and placed.subtotal == 2 * 31000
    [line] = await rows(seeded_db, OrderLine)
    assert line.unit_price == 31000
    assert await stock_of(seeded_db, rice_id) == rice.stock - 2
    assert await count(seeded_db, Order) == 1
    sent = [m.body for m in await rows(seeded_db, OutboundMessage) if m.kind == "order_placed"]
    assert sent == [f"en {placed.code} total {placed.total}"]


_LOCK_WAITS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND query LIKE '%okryu_place_order%'"
)


async def _rice_on_postgres(db: Database) -> tuple[int, int, int, Catalog]:
    """The turns' tests' product id and stock, a zone's id and the catalog as shown (the order
    call then its only statement); skipped on SQLite, which places one order at a time."""
    if db.is_sqlite:
        pytest.skip("SQLite places one order at a time already")
    rice = await product_by_sku(db, "FD-RICE5")
    zone = await first_zone(db)
    assert rice.id and zone.id
    return rice.id, rice.stock, zone.id, await load_catalog(db, "1")


class _OrdersBehindALock:
    """A product's row locked by another connection (staff mid-edit), and ``orders`` orders
    of one unit of it sent meanwhile, each by a subscriber of its own (the customer rows'
    locks are not what is waited on), placed as shown; entered once ORDER_CALLS of them wait
    on the lock in the server. On the way out the lock goes and the orders are settled: none
    is left running into teardown."""

    def __init__(
        self, db: Database, shown: Catalog, product_id: int, zone_id: int, orders: int
    ) -> None:
        self.db, self.shown, self.product_id = db, shown, product_id
        self.requests = [
            order_request(f"k{i}", [(product_id, 1)], zone_id, msisdn=f"+85019123{i:05d}")
            for i in range(orders)
        ]
        self.placing: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> _OrdersBehindALock:
        options = self.db.driver_options()
        self.holder = await asyncpg.connect(**options)
        self.watcher = await asyncpg.connect(**options)
        self.lock = self.holder.transaction()
        self.held = True
        try:
            await self.lock.start()
            await self.holder.execute(
                "SELECT 1 FROM product WHERE id = $1 FOR UPDATE", self.product_id
            )
            self.placing = [
                asyncio.create_task(place_order(self.db, request, render, self.shown))
                for request in self.requests
            ]
            async with asyncio.timeout(10):
                while await self.waiting_in_server() < ORDER_CALLS:
                    pass  # each look is a round trip: the callers run meanwhile
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def waiting_in_server(self) -> int:
        found: int = await self.watcher.fetchval(_LOCK_WAITS)
        return found

    async def let_go(self) -> list[Any]:
        """The lock released; the orders' results, within a bound."""
        if self.held:
            self.held = False
            await self.lock.commit()
        try:
            async with asyncio.timeout(20):
                return await asyncio.gather(*self.placing)
        finally:
            for task in self.placing:
                task.cancel()
            await asyncio.gather(*self.placing, return_exceptions=True)

    async def __aexit__(self, *_: object) -> None:
        try:
            await self.let_go()
        finally:
            await self.holder.close()
            await self.watcher.close()


async def test_place_order_calls_beyond_a_few_wait_their_turn_in_the_process(
    seeded_db: Database,
) -> None:
    # Orders for one product take turns on its row lock however many are sent: beyond
    # ORDER_CALLS they wait in the process, not asleep in the server's lock queue holding a
    # connection, and none is lost for it.
    rice_id, stock, zone_id, shown = await _rice_on_postgres(seeded_db)
    pool = await seeded_db.pool()
    callers = ORDER_CALLS + 5
    async with _OrdersBehindALock(seeded_db, shown, rice_id, zone_id, callers) as queue:
        assert pool.open == ORDER_CALLS  # the others never took a connection
        assert await queue.waiting_in_server() == ORDER_CALLS
        assert seeded_db.order_turns.in_line(rice_id) == callers
        results = await queue.let_go()

    assert all(isinstance(r, OrderPlaced) for r in results)
    assert await stock_of(seeded_db, rice_id) == stock - callers
    assert await count(seeded_db, Order) == callers


async def test_place_order_for_another_product_does_not_wait_behind_a_locked_one(
    seeded_db: Database,
) -> None:
    # The turns are per product: a product whose row is held (a long import, a card order)
    # keeps its own orders waiting, never those for another.
    rice_id, _, zone_id, shown = await _rice_on_postgres(seeded_db)
    socks = await product_by_sku(seeded_db, "CL-SOCKS")
    assert socks.id
    async with _OrdersBehindALock(seeded_db, shown, rice_id, zone_id, ORDER_CALLS + 2) as queue:
        request = order_request("socks", [(socks.id, 2)], zone_id, msisdn=BOB)
        async with asyncio.timeout(10):
            placed = await place_order(seeded_db, request, render, shown)

        assert isinstance(placed, OrderPlaced)
        assert await queue.waiting_in_server() == ORDER_CALLS  # rice's still waiting
        results = await queue.let_go()

    assert all(isinstance(r, OrderPlaced) for r in results)
    assert await stock_of(seeded_db, socks.id) == socks.stock - 2
    assert await count(seeded_db, Order) == ORDER_CALLS + 3
