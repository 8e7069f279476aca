"""The journey is checked as it is built: each way of declaring it wrong is named.

Adding a screen is one state (with its transitions), one screen class and two text entries.
A small journey shows it here, then drops each of those in turn: the check names what is
missing, the screen and the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from statemachine import State, StateChart

from menus import text
from menus.flow import Flow, flow_of
from menus.journey import Context, InvalidJourney, Journey, Option, Screen, View
from menus.shop import Shop

HERE = "tests/menus/test_flow.py"
TEXTS = {
    "en": 'a.title = "Start"\na.next = "On"\nb.title = "Next {n}"\nerror.choice = "Again."\n',
    "ko": 'a.title = "시작"\na.next = "다음"\nb.title = "다음 {n}"\nerror.choice = "다시."\n',
}


@pytest.fixture
def catalogs(tmp_path: Path) -> Iterator[Path]:
    """The message catalogs read from ``tmp_path`` (written per test), then the real ones."""
    for lang, body in TEXTS.items():
        (tmp_path / f"{lang}.toml").write_text(body)
    real = text._DIR
    text._DIR = tmp_path
    text.texts.cache_clear()
    yield tmp_path
    text._DIR = real
    text.texts.cache_clear()


class Chart(StateChart[Any]):
    a = State(initial=True)
    b = State()
    go = a.to(b)
    back = b.to(a)
    go_home = a.from_.any()  # type: ignore[no-untyped-call]


@dataclass
class Ctx(Context):
    seen: int = 0

    def on_go(self) -> None:
        self.seen += 1


def journey(
    chart: type[StateChart[Any]] = Chart,
    screens: Mapping[str, Mapping[str, Any]] | None = None,
    context: type[Context] = Ctx,
) -> Journey[Any]:
    """A two-screen journey: screen ``a`` (option "a.next" sends ``go``) and screen ``b``."""
    declared = screens if screens is not None else {"a": {}, "b": {}}

    class Base(Screen[Any]):
        pass

    defaults: dict[str, dict[str, Any]] = {
        "a": {"title": "a.title", "nav": False, "options": (Option("a.next", "go"),)},
        "b": {"title": "b.title"},
    }
    made = []  # kept referenced: a class only __subclasses__() knows of may be collected
    for state, overrides in declared.items():
        attributes = {"state": state, **defaults.get(state, {"title": "b.title"}), **overrides}
        made.append(type(f"Screen_{state}", (Base,), attributes))
    Base.made = made  # type: ignore[attr-defined]

    class Small(Journey[Any]):
        pass

    Small.chart, Small.context, Small.screen_base, Small.home = chart, context, Base, "a"
    return Small()


def problems(small: Journey[Any]) -> str:
    with pytest.raises(InvalidJourney) as error:
        Flow(small)
    return str(error.value)


def test_flow_a_complete_journey_builds_and_runs(catalogs: Path) -> None:
    flow = Flow(journey())
    assert flow.target("a", "go") == "b" and flow.target("b", "back") == "a"
    assert flow.effects["go"] is Ctx.on_go


def test_flow_a_state_without_a_screen_is_named(catalogs: Path) -> None:
    found = problems(journey(screens={"a": {}}))
    assert "state 'b' of Chart has no screen: declare a Base subclass with state = 'b'" in found


def test_flow_a_screen_without_a_state_is_named(catalogs: Path) -> None:
    found = problems(journey(screens={"a": {}, "b": {}, "c": {}}))
    assert f"{HERE}:" in found and "screen Screen_c: no state 'c' in Chart" in found


def test_flow_an_option_for_no_transition_is_named(catalogs: Path) -> None:
    stray = {"a": {"options": (Option("a.next", "go"), Option("a.next", "leave"))}, "b": {}}
    assert "screen Screen_a: sends 'leave', which is no event of the chart" in problems(
        journey(screens=stray)
    )
    wrong_state = {"a": {}, "b": {"options": (Option("a.next", "go"),)}}
    assert "sends 'go', which has no transition from 'b'" in problems(journey(screens=wrong_state))


def test_flow_a_transition_no_screen_sends_is_named(catalogs: Path) -> None:
    mute = {"a": {"options": ()}, "b": {}}
    assert "Chart: transition 'go' from 'a' is never sent" in problems(journey(screens=mute))


def test_flow_a_missing_text_is_named_with_its_file(catalogs: Path) -> None:
    (catalogs / "ko.toml").write_text(TEXTS["ko"].replace('b.title = "다음 {n}"\n', ""))
    text.texts.cache_clear()
    found = problems(journey())
    assert "menus/text/ko.toml: no text 'b.title' (used by screen Screen_b" in found
    assert HERE in found


def test_flow_a_text_with_other_placeholders_is_named(catalogs: Path) -> None:
    (catalogs / "ko.toml").write_text(TEXTS["ko"].replace("{n}", "{m}"))
    text.texts.cache_clear()
    assert "menus/text/ko.toml: text 'b.title' has placeholders ['m']" in problems(journey())


def test_flow_an_effect_for_no_event_is_named(catalogs: Path) -> None:
    @dataclass
    class Typo(Context):
        def on_gone(self) -> None: ...

    assert "Typo.on_gone: no event 'gone' in Chart" in problems(journey(context=Typo))


def test_flow_a_screen_with_back_but_no_back_transition_is_named(catalogs: Path) -> None:
    class NoBack(StateChart[Any]):
        a = State(initial=True)
        b = State()
        go = a.to(b)
        go_home = a.from_.any()  # type: ignore[no-untyped-call]

    found = problems(journey(chart=NoBack))
    assert "screen Screen_b: shows '0 Back' but the chart has no 'back' from 'b'" in found


def test_flow_refuses_what_its_tables_cannot_run(catalogs: Path) -> None:
    class Guarded(StateChart[Any]):
        a = State(initial=True)
        b = State()
        go = a.to(b, cond="ready")
        back = b.to(a)
        go_home = a.from_.any()  # type: ignore[no-untyped-call]

        def ready(self) -> bool:
            return True

        def on_enter_b(self) -> None: ...

    found = problems(journey(chart=Guarded))
    assert "Guarded: a: only plain transitions, one target each" in found
    assert "callbacks ['on_enter_b'] on the chart: effects belong on the context" in found


def test_flow_the_shop_holds_together_and_its_funnel_covers_every_state() -> None:
    from gateway.funnel import BITS

    flow = flow_of(Shop)
    assert set(flow.states) == set(flow.screens)
    assert set(flow.states) <= set(BITS) and len(set(BITS.values())) == len(BITS)


def test_flow_view_fetch_is_keyed_by_the_changes_before_it() -> None:
    from menus.ports import CancelOrder, GetOrder, ListOrders

    answers = {
        (0, GetOrder("+850", "A")): "before",
        (0, CancelOrder("+850", "A")): True,
        (1, GetOrder("+850", "A")): "after",
    }
    view = View(
        msisdn="+850",
        session_ref="s",
        ctx=Context(),
        catalog=None,  # type: ignore[arg-type]
        data=answers,
        settings=None,
    )
    assert view.fetch(GetOrder("+850", "A")) == "before"
    assert view.fetch(CancelOrder("+850", "A")) is True
    assert view.fetch(GetOrder("+850", "A")) == "after"
    with pytest.raises(Exception, match="ListOrders"):
        view.fetch(ListOrders("+850"))
