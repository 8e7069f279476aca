"""Every screen, page and re-prompt of the shop fits every budget, with worst-case values: the
fullest cart and order list, the longest address, and two catalogs: the demo one, and one
whose every name fills its column (at the budgets a network really sets, 160/80 and up)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import Settings
from menus.check import budget_problems
from menus.flow import flow_of
from menus.ports import Catalog
from menus.screens import Budget
from menus.shop import Home, ProductPage, QuantityPrompt, Shop, ShopScreen
from store.catalog import widest_catalog
from store.seed import demo_catalog

CASES = [
    (demo_catalog(), Budget(160, 80)),
    (demo_catalog(), Budget(182, 80)),
    (demo_catalog(), Budget(140, 70)),
    (widest_catalog(), Budget(160, 80)),
    (widest_catalog(), Budget(182, 80)),
]


@pytest.mark.parametrize(("catalog", "budget"), CASES, ids=lambda v: getattr(v, "version", v))
def test_budget_every_screen_page_and_reprompt_fits(catalog: Catalog, budget: Budget) -> None:
    assert budget_problems(flow_of(Shop), [catalog], [budget], Settings()) == []


@pytest.mark.parametrize(
    ("screen", "key"),
    [
        (ProductPage, ()),  # every product's page under one key
        (ProductPage, lambda view: (view.ctx.product,)),  # whether one more fits, left out
        (QuantityPrompt, lambda view: (view.ctx.product,)),  # how many fit, left out
        (Home, ()),  # the cart's size, left out
    ],
    ids=["product-page-one-key", "product-page-without-room", "quantity-without-room", "home"],
)
def test_budget_a_cache_key_that_leaves_out_what_a_screen_shows_is_named(
    monkeypatch: pytest.MonkeyPatch, screen: type[ShopScreen], key: Any
) -> None:
    """A session shown the screen cached for another under the same key would see the other's:
    the check renders samples that differ in what the key must hold, and names the screen."""
    made = key if callable(key) else lambda view: key
    monkeypatch.setattr(screen, "cache_key", lambda self, view: made(view))
    problems = budget_problems(flow_of(Shop), [demo_catalog()], [Budget(160, 80)], Settings())
    assert problems
    assert all(f"screen {screen.__name__} (" in p and "leaves out" in p for p in problems)
