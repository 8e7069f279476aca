"""Every screen of the demo shop fits the screen budget, in both languages, even re-prompted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from gateway.settings import Settings
from menus.engine import RESUME, Engine, View
from menus.ports import (
    LANGS,
    Catalog,
    GetOrder,
    ListOrders,
    OrderDetail,
    OrderLineView,
    OrderSummary,
)
from menus.screens import Budget, fits
from menus.shop import Shop
from store.catalog import load_catalog
from store.db import Database

MSISDN = "+8501912345678"
LONG_ADDRESS = "Apartment 12, Block 7, Changjon Street, Central District 9"[:60].ljust(60, "x")


def _orders(catalog: Catalog) -> dict[Any, Any]:
    products = list(catalog.products.values())[:12]
    lines = tuple(OrderLineView(p.name_en, p.name_ko, 10, p.price) for p in products)
    when = datetime(2026, 11, 28)
    summaries = tuple(
        OrderSummary(f"ABC{n:03d}", s, 99_999_999, when)
        for n, s in enumerate(["placed", "confirmed", "dispatched", "delivered", "cancelled"] * 6)
    )
    detail = OrderDetail(
        "WWWWWW", "dispatched", lines, 9_999_999, 99_999, 10_099_998, "x", "y", LONG_ADDRESS, when
    )
    return {(0, ListOrders(MSISDN)): summaries, (0, GetOrder(MSISDN, "WWWWWW")): detail}


def _contexts(catalog: Catalog, lang: str) -> list[tuple[str, dict[str, Any]]]:
    big_cart = [[pid, 10] for pid in list(catalog.products)[:15]]
    base = {"lang": lang, "cart": big_cart, "hist": [], "page": 0}
    cases: list[tuple[str, dict[str, Any]]] = []
    for state in (
        "home",
        "categories",
        "cart",
        "remove_item",
        "zone",
        "payment",
        "orders",
        "order_detail",
        "language",
        "help",
    ):
        cases.append((state, {**base, "ord": "WWWWWW"}))
    cases.append(("cart", {**base, "cart": []}))
    for category in catalog.categories:
        cases.append(("products", {**base, "cat": category.id}))
    for pid in catalog.products:
        cases.append(("product", {**base, "prod": pid, "cart": []}))
        cases.append(("quantity", {**base, "prod": pid, "cart": []}))
    zone = catalog.zones[-1].id
    cases.append(("address", {**base, "addr": LONG_ADDRESS}))
    cases.append(("address", base))
    cases.append(("confirm", {**base, "z": zone, "a": LONG_ADDRESS, "pay": "cod"}))
    cases.append(("placed", {**base, "placed": ["WWWWWW", 99_999_999]}))
    cases.append(("pending", base))
    cases.append((RESUME, {**base, "resume": "cart"}))
    return cases


@pytest.mark.parametrize("budget", [Budget(160, 80), Budget(182, 80), Budget(140, 70)])
async def test_budget_every_screen_page_and_reprompt_fits(
    seeded_db: Database, budget: Budget
) -> None:
    catalog = await load_catalog(seeded_db, "1")
    engine = Engine(Shop(), budget, Settings())
    data = _orders(catalog)
    checked = 0
    for lang in LANGS:
        for state, ctx in _contexts(catalog, lang):
            view = View(
                msisdn=MSISDN,
                session_ref="s",
                ctx=dict(ctx),
                catalog=catalog,
                data=data,
                settings=Settings(),
            )
            content = engine._screen(state).content(view)
            pages = engine._pages_for(content, view)
            for page in range(len(pages)):
                view.ctx["page"] = page
                reasons = [None, *(view.t(k, **content.reason_args) for k in content.reasons)]
                for reason in reasons:
                    text, _ = engine.render(state, view, reason)
                    assert fits(text, budget), (lang, state, page, text)
                    checked += 1
            # every row is reachable on some page: nothing is cut away
            assert sum(stop - start for start, stop in pages) == len(content.rows)
    assert checked > 400
