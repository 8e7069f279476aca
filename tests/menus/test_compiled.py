"""The compiled transition table behaves exactly like python-statemachine's own engine."""

from __future__ import annotations

import json
import random

import pytest
from statemachine import State, StateChart

from gateway.settings import Settings
from menus.engine import Engine, InvalidJourney, Transitions
from menus.screens import Budget
from menus.shop import Shop, ShopChart
from tests.menus.helpers import Driver, FakeStore

ANSWERS = ["1", "1", "1", "2", "2", "3", "4", "5", "0", "00", "98", "x", "9", "Changjon street 5"]


def _twins(seed: int) -> tuple[Driver, Driver]:
    fast, slow = Driver(store=FakeStore()), Driver(store=FakeStore())
    slow.engine = Engine(Shop(), Budget(), Settings(), compiled=False)
    return fast, slow


@pytest.mark.parametrize("seed", range(40))
def test_compiled_engine_matches_the_library_on_random_walks(seed: int) -> None:
    rand = random.Random(seed)
    fast, slow = _twins(seed)
    assert fast.dial() == slow.dial()
    for step in range(150):
        answer = rand.choice(ANSWERS)
        if fast.turn is not None and fast.turn.end:
            ref = f"s{step}"
            assert fast.dial(ref=ref, resume=True) == slow.dial(ref=ref, resume=True)
            continue
        assert fast.send(answer) == slow.send(answer), (seed, step, answer)
        assert fast.state == slow.state
        assert json.dumps(fast.ctx, sort_keys=True) == json.dumps(slow.ctx, sort_keys=True)


def test_compiled_table_has_every_transition_of_the_chart() -> None:
    table = Transitions(ShopChart)
    declared = {
        (str(event), state.id, t.target.id)
        for state in ShopChart.states
        for t in state.transitions
        for event in t.events
    }
    compiled = {
        (e, src, dst) for e, by_source in table.targets.items() for src, dst in by_source.items()
    }
    assert compiled == declared and len(compiled) > 30


def test_compiled_table_refuses_what_it_cannot_run() -> None:
    class Guarded(StateChart):  # type: ignore[type-arg]
        a = State(initial=True)
        b = State()
        go = a.to(b, cond="ready") | b.to(a)

        def ready(self) -> bool:
            return True

    with pytest.raises(InvalidJourney, match="only plain transitions"):
        Transitions(Guarded)

    class Entering(StateChart):  # type: ignore[type-arg]
        a = State(initial=True)
        b = State()
        go = a.to(b) | b.to(a)

        def on_enter_b(self) -> None: ...

    with pytest.raises(InvalidJourney, match="unsupported callbacks"):
        Transitions(Entering)
