"""Drive the engine the way the gateway does, with answers from a small in-memory store."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.settings import Settings
from menus.engine import Engine, NeedData, Turn
from menus.ports import (
    CancelOrder,
    CardView,
    Catalog,
    Category,
    CheckPin,
    CustomerProfile,
    FindOrder,
    GetOrder,
    ListCards,
    ListOrders,
    LoadCustomer,
    OrderDetail,
    OrderLineView,
    OrderPending,
    OrderPlaced,
    OrderSummary,
    OutOfStock,
    PinChecked,
    PlaceOrder,
    Product,
    Request,
    SaveLanguage,
    Zone,
)
from menus.screens import Budget
from menus.shop import Shop

MSISDN = "+8501912345678"


def small_catalog(version: str = "1") -> Catalog:
    categories = (Category(1, "Food", "식료품"), Category(2, "Medicine", "의약품"))
    products = {
        pid: Product(
            id=pid,
            sku=f"SKU{pid}",
            category_id=1 if pid <= 9 else 2,
            name_en=f"Product number {pid}",
            name_ko=f"상품{pid}",
            description_en="A fine thing for the whole family, packed with care in Pyongyang",
            description_ko="온 가족을 위한 좋은 물건",
            price=1000 * pid,
            stock=0 if pid == 5 else 3,
        )
        for pid in range(1, 12)
    }
    by_category = {1: tuple(range(1, 10)), 2: (10, 11)}
    zones = tuple(Zone(z, f"District {z}", f"구역{z}", 500 * z) for z in range(1, 10))
    return Catalog(version, categories, products, by_category, zones)


@dataclass
class FakeStore:
    """Answers the engine's requests the way store/ would, and records what was asked."""

    profile: CustomerProfile | None = None
    out_of_stock: tuple[int, ...] = ()
    slow: bool = False  # PlaceOrder answers OrderPending (and places nothing)
    cancellable: bool = True
    asked: list[Request] = field(default_factory=list)
    orders: dict[str, OrderDetail] = field(default_factory=dict)
    by_key: dict[str, OrderPlaced] = field(default_factory=dict)
    cards: tuple[CardView, ...] = ()
    pins: dict[int, str] = field(default_factory=dict)  # card id -> its PIN

    def answer(self, request: Request, catalog: Catalog) -> Any:
        self.asked.append(request)
        if isinstance(request, LoadCustomer):
            return self.profile
        if isinstance(request, SaveLanguage):
            return None
        if isinstance(request, CancelOrder):
            order = self.orders.get(request.code)
            if order is None or not self.cancellable:
                return False
            self.orders[request.code] = dataclasses.replace(order, status="cancelled")
            return True
        if isinstance(request, FindOrder):
            return self.by_key.get(request.idempotency_key)
        if isinstance(request, PlaceOrder):
            if request.idempotency_key in self.by_key:
                return self.by_key[request.idempotency_key]
            if self.slow:
                return OrderPending(request.idempotency_key)
            if self.out_of_stock:
                return OutOfStock(self.out_of_stock)
            subtotal = sum(
                catalog.products[ln.product_id].price * ln.quantity for ln in request.lines
            )
            fee = next(z.fee for z in catalog.zones if z.id == request.zone_id)
            code = f"K{len(self.orders) + 2:05d}".replace("0", "A").replace("1", "B")
            self.orders[code] = OrderDetail(
                code,
                "placed",
                tuple(
                    OrderLineView(
                        catalog.products[ln.product_id].name_en,
                        catalog.products[ln.product_id].name_ko,
                        ln.quantity,
                        catalog.products[ln.product_id].price,
                    )
                    for ln in request.lines
                ),
                subtotal,
                fee,
                subtotal + fee,
                "District",
                "구역",
                request.address,
                datetime(2026, 11, 28),
            )
            placed = self.by_key[request.idempotency_key] = OrderPlaced(
                code, subtotal, fee, subtotal + fee
            )
            return placed
        if isinstance(request, ListOrders):
            return tuple(
                OrderSummary(d.code, d.status, d.total, d.created_at)
                for d in reversed(self.orders.values())
            )
        if isinstance(request, GetOrder):
            return self.orders.get(request.code)
        if isinstance(request, ListCards):
            return self.cards  # the real store's cards: tests/journeys/test_cards.py
        if isinstance(request, CheckPin):
            ok = self.pins.get(request.card) == request.pin
            return PinChecked(ok=True) if ok else PinChecked(ok=False, left=2)
        raise AssertionError(request)


class Driver:
    """A subscriber's session held as the gateway holds it: JSON between steps."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        budget: Budget | None = None,
        store: FakeStore | None = None,
        settings: Settings | None = None,
        ref: str = "s1",
    ):
        self.catalog = catalog or small_catalog()
        self.store = store or FakeStore()
        self.engine = Engine(Shop(), budget or Budget(), settings or Settings())
        self.ref = ref
        self.state = ""
        self.ctx: dict[str, Any] = {}
        self.turn: Turn | None = None

    def _resolve(self, run: Any) -> Turn:
        data: dict[tuple[int, Request], Any] = {}
        for _ in range(6):
            try:
                return run(data)  # type: ignore[no-any-return]
            except NeedData as need:
                data[need.key] = self.store.answer(need.request, self.catalog)
        raise AssertionError("too many requests")

    def dial(self, *inputs: str, ref: str | None = None, resume: bool = False) -> str:
        """A new session; with ``resume``, as the gateway does within the resume window."""
        self.ref = ref or self.ref
        ctx = json.loads(json.dumps(self.ctx))
        left_at = self.state if resume else None
        turn = self._resolve(
            lambda d: self.engine.start(
                json.loads(json.dumps(ctx)),
                msisdn=MSISDN,
                session_ref=self.ref,
                catalog=self.catalog,
                data=d,
                inputs=inputs,
                resume=left_at,
            )
        )
        return self._keep(turn)

    def send(self, *inputs: str) -> str:
        frozen = json.dumps(self.ctx)
        turn = self._resolve(
            lambda d: self.engine.step(
                self.state,
                json.loads(frozen),
                inputs,
                msisdn=MSISDN,
                session_ref=self.ref,
                catalog=self.catalog,
                data=d,
            )
        )
        return self._keep(turn)

    def _keep(self, turn: Turn) -> str:
        self.turn = turn
        self.state = turn.state
        self.ctx = json.loads(json.dumps(turn.ctx))  # what Redis would hand back
        return turn.text
