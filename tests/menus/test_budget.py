"""Every screen, page and re-prompt of the shop fits every budget, with worst-case values: the
fullest cart and order list, the longest address, and two catalogs: the demo one, and one
whose every name fills its column (at the budgets a network really sets, 160/80 and up)."""

from __future__ import annotations

import pytest

from gateway.settings import Settings
from menus.check import budget_problems
from menus.flow import flow_of
from menus.ports import Catalog
from menus.screens import Budget
from menus.shop import Shop
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
