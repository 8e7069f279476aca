"""Deploys don't break sessions in flight: the chart changes between two hops of a session.

A session records the version of the journey it started on. When its next hop meets another
version whose chart renamed or removed the state it was at, it continues where ``moved`` says
(or at home), with a one-line notice and everything it chose; never on an error screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine import State, StateChart

from gateway.settings import Settings
from menus.engine import Engine, Turn
from menus.journey import Context, Journey, Option, Screen
from menus.screens import Budget
from tests.menus.helpers import MSISDN, small_catalog

NOTICE = "The menu has changed since your last step."


@dataclass
class Basket(Context):
    items: list[str] = field(default_factory=list)

    def on_take(self) -> None:
        self.items.append("noodles")


@dataclass
class PlainBasket(Context):
    """The same basket, in a release whose chart has no shelf (so nothing takes)."""

    items: list[str] = field(default_factory=list)


class BasketScreen(Screen[Any]):
    pass


def basket_journey(shelf: str | None, moved: Mapping[str, str] | None = None) -> Journey[Any]:
    """home -> ``shelf`` (where "take" adds to the basket), or home alone when ``shelf`` is
    None: the same journey before and after a deploy."""
    states: dict[str, Any] = {"home": State(initial=True)}
    if shelf is not None:
        states[shelf] = State()
        states["browse"] = states["home"].to(states[shelf])
        states["take"] = states[shelf].to(states[shelf])
        states["back"] = states[shelf].to(states["home"])
    states["go_home"] = states["home"].from_.any()
    chart = type(f"Chart_{shelf}", (StateChart,), states)

    class Base(BasketScreen):
        pass

    options = (Option("home.shop", "browse"),) if shelf else ()
    # Kept referenced: a class only its base's __subclasses__() knows of may be collected.
    Base.made = [  # type: ignore[attr-defined]
        type("Home", (Base,), {"state": "home", "title": "home.title", "nav": False,
                               "options": options}),
    ]  # fmt: skip
    if shelf is not None:
        Base.made.append(  # type: ignore[attr-defined]
            type(
                "Shelf",
                (Base,),
                {
                    "state": shelf,
                    "title": "categories.title",
                    "options": (Option("home.shop", "take"),),
                },
            )  # fmt: skip
        )

    class Shopping(Journey[Any]):
        pass

    context = Basket if shelf is not None else PlainBasket
    Shopping.chart, Shopping.context, Shopping.screen_base = chart, context, Base
    Shopping.home, Shopping.moved = "home", moved or {}
    return Shopping()


def hop(engine: Engine, state: str, ctx: dict[str, Any], *inputs: str) -> Turn:
    common: dict[str, Any] = {
        "msisdn": MSISDN, "session_ref": "s1", "catalog": small_catalog(), "data": {},
    }  # fmt: skip
    if not state:
        return engine.start(ctx, inputs=inputs, **common)
    return engine.step(state, ctx, inputs, **common)


def engine(journey: Journey[Any]) -> Engine:
    return Engine(journey, Budget(), Settings())


def items(turn: Turn, journey: Journey[Any]) -> list[str]:
    loaded = journey.context.load(turn.ctx)
    assert isinstance(loaded, Basket | PlainBasket)
    return loaded.items


def test_deploy_renamed_state_continues_at_its_new_name_with_the_basket() -> None:
    before = basket_journey("shelf")
    turn = hop(engine(before), "", {}, "1", "1")  # home, the shelf, take
    assert (turn.state, items(turn, before)) == ("shelf", ["noodles"])
    after = basket_journey("aisle", moved={"shelf": "aisle"})
    again = hop(engine(after), turn.state, turn.ctx, "1")
    assert again.state == "aisle"
    assert again.text == f"{NOTICE}\nCategories\n1. Shop\n0 Back 00 Home"
    assert items(again, after) == ["noodles"]  # the "1" answered a screen that changed: unused
    later = hop(engine(after), again.state, again.ctx, "1")
    assert items(later, after) == ["noodles", "noodles"] and later.text.startswith("Categories")


def test_deploy_removed_state_continues_at_home_with_a_notice() -> None:
    before = basket_journey("shelf")
    turn = hop(engine(before), "", {}, "1", "1")
    after = basket_journey(None)
    again = hop(engine(after), turn.state, turn.ctx, "1")
    assert (again.state, again.text) == ("home", f"{NOTICE}\nOkryu Shop")
    assert items(again, after) == ["noodles"]


def test_deploy_a_state_that_survived_continues_as_if_nothing_happened() -> None:
    before = basket_journey("shelf")
    turn = hop(engine(before), "", {}, "1")
    started_on = {**turn.ctx, "journey": "0ld0ld00"}  # another version, with a shelf too
    again = hop(engine(before), turn.state, started_on, "1")
    assert again.state == "shelf" and items(again, before) == ["noodles"]
    assert NOTICE not in again.text


def test_deploy_resume_after_the_state_was_removed_offers_home_with_the_basket() -> None:
    before = basket_journey("shelf")
    turn = hop(engine(before), "", {}, "1", "1")
    after = engine(basket_journey(None))
    common: dict[str, Any] = {
        "msisdn": MSISDN, "session_ref": "s2", "catalog": small_catalog(), "data": {},
    }  # fmt: skip
    again = after.start(turn.ctx, resume=turn.state, **common)
    assert (again.state, again.text) == ("home", f"{NOTICE}\nOkryu Shop")


def test_deploy_shop_reads_a_first_release_session() -> None:
    from menus.shop import Shop, ShopContext

    first_release = {
        "lang": "ko", "cart": [[1, 2]], "cid": "s1.0", "ck": "s1.0", "n": 3, "z": 2,
        "a": "Changjon street 5", "zone": 1, "addr": "Kim Il Sung Square", "hist": [["home", 0]],
    }  # fmt: skip
    ctx = Shop.context.load(first_release)
    assert isinstance(ctx, ShopContext)
    assert (ctx.cart, ctx.cart_id, ctx.checkout_key, ctx.orders_placed) == ([[1, 2]], "s1.0",
                                                                          "s1.0", 3)  # fmt: skip
    assert (ctx.zone, ctx.address, ctx.saved_zone, ctx.saved_address, ctx.known) == (
        2, "Changjon street 5", 1, "Kim Il Sung Square", True,
    )  # fmt: skip
    assert Shop().abandoned_cart(ctx) == "s1.0"
