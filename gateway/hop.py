"""One USSD hop: load the session, replay or step the engine, save, answer.

Two Redis round trips for every browsing hop (``MGET``, then the compare-and-set) and no SQL:
the catalog is in-process. Only hops whose screen needs the store (the first dial of an
unknown subscriber, placing an order, the order history, a language change) touch it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.catalog import CatalogCache
from gateway.messages import Inbound, Reply
from gateway.sessions import Record, SessionStore
from menus import sms
from menus.engine import Engine, NeedData, Turn
from menus.ports import (
    Catalog,
    GetOrder,
    ListOrders,
    LoadCustomer,
    OrderPlaced,
    PlaceOrder,
    Request,
    SaveLanguage,
)
from menus.screens import Budget
from store import orders
from store.db import Database

log = logging.getLogger("okryu.hop")

MAX_REQUESTS_PER_HOP = 6
MAX_SAVE_ATTEMPTS = 4


class HopFailed(Exception):
    """The hop could not be answered (a bug, or the store answered nonsense)."""


class Gateway:
    """Answers hops for every channel. Holds no per-request state."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        catalogs: CatalogCache,
        db: Database,
        engine_for: Callable[[Budget], Engine],
        on_order_placed: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.catalogs = catalogs
        self.db = db
        self.engine_for = engine_for
        self.on_order_placed = on_order_placed
        self.clock = clock

    async def handle(self, inbound: Inbound, budget: Budget) -> Reply:
        key = self.sessions.key(inbound.service_code, inbound.msisdn)
        engine = self.engine_for(budget)
        data: dict[Request, Any] = {}  # the store's answers, kept across save retries
        for _ in range(MAX_SAVE_ATTEMPTS):
            raw, catalog_tag, stock_tag = await self.sessions.load(key)
            record = Record.loads(raw)
            if record is not None and record.ref == inbound.session_ref:
                if record.path == list(inbound.path):
                    return Reply(*record.reply)  # a retry of a hop already answered
            catalog = await self.catalogs.get(catalog_tag, stock_tag)
            turn, keep = await self._advance(engine, inbound, record, catalog, data)
            if not keep:
                return Reply(turn.text, turn.end)
            saved = Record(
                version=record.version if record is not None else 0,
                ref=inbound.session_ref,
                path=list(inbound.path),
                reply=(turn.text, turn.end),
                state=turn.state,
                ctx=turn.ctx,
                at=self.clock(),
            )
            if await self.sessions.save(key, saved):
                return Reply(turn.text, turn.end)
            log.info("session save lost a race; re-reading")
        raise HopFailed("could not save the session after several attempts")

    async def _advance(
        self,
        engine: Engine,
        inbound: Inbound,
        record: Record | None,
        catalog: Catalog,
        data: dict[Request, Any],
    ) -> tuple[Turn, bool]:
        """The step for this hop, and whether its result is to be saved."""
        msisdn, ref = inbound.msisdn, inbound.session_ref
        frozen = (record or Record()).dumps(0)  # every run of the step starts from the same record
        if record is None or record.ref != inbound.session_ref:

            def start(d: dict[Request, Any]) -> Turn:
                ctx = _thaw(frozen).ctx
                return engine.start(
                    ctx,
                    inputs=inbound.path,
                    msisdn=msisdn,
                    session_ref=ref,
                    catalog=catalog,
                    data=d,
                )

            return await self._resolve(start, data), True
        done = len(record.path)
        late = list(inbound.path[:done]) != record.path
        # A late hop from earlier in this session: the subscriber has moved on, so show where
        # they are now and change nothing.
        inputs = () if late else inbound.path[done:]

        def step(d: dict[Request, Any]) -> Turn:
            again = _thaw(frozen)
            return engine.step(
                again.state,
                again.ctx,
                inputs,
                msisdn=msisdn,
                session_ref=ref,
                catalog=catalog,
                data=d,
            )

        return await self._resolve(step, data), not late

    async def _resolve(
        self, run: Callable[[dict[Request, Any]], Turn], data: dict[Request, Any]
    ) -> Turn:
        """Run the step, fulfilling what it asks of the store, until it completes."""
        for _ in range(MAX_REQUESTS_PER_HOP):
            try:
                return run(data)
            except NeedData as need:
                data[need.request] = await self.fulfil(need.request)
        raise HopFailed("the step kept asking for data")

    async def fulfil(self, request: Request) -> Any:
        db = self.db
        if isinstance(request, LoadCustomer):
            return await orders.get_customer(db, request.msisdn)
        if isinstance(request, SaveLanguage):
            return await orders.save_language(db, request.msisdn, request.lang)
        if isinstance(request, ListOrders):
            return await orders.list_orders(db, request.msisdn, request.limit)
        if isinstance(request, GetOrder):
            return await orders.get_order(db, request.msisdn, request.code)
        if isinstance(request, PlaceOrder):
            result = await orders.place_order(db, request, sms.order_placed)
            if isinstance(result, OrderPlaced):
                await self.sessions.bump_stock()
                if self.on_order_placed is not None:
                    await self.on_order_placed()
            return result
        raise HopFailed(f"no one fulfils {type(request).__name__}")


def _thaw(frozen: bytes) -> Record:
    record = Record.loads(frozen)
    assert record is not None
    return record
