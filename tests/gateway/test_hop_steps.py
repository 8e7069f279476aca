"""A step that needs the store runs once: it waits where it asks (gateway.hop._resolve)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import greenlet
import pytest
from aiohttp.test_utils import TestClient

from gateway import keys
from gateway.errors import GatewayError
from menus.engine import Engine, Turn
from menus.journey import View
from menus.ports import LoadCustomer, Request
from store import orders
from tests.gateway.test_ussd import ORDER_PATH, post, walk

Make = Callable[..., Awaitable[TestClient[Any, Any]]]


def _view(answers: Any) -> View[Any]:
    """A view with nothing but the hop's answers: enough to ask the store."""
    nothing: Any = None
    return View(
        msisdn="", session_ref="", ctx=nothing, catalog=nothing, data=answers, settings=None
    )


@pytest.fixture
def step_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The state each run of a step started from, in order."""
    runs: list[str] = []
    step = Engine.step

    def counted(engine: Engine, state: str, *args: Any, **kwargs: Any) -> Turn:
        runs.append(state)
        return step(engine, state, *args, **kwargs)

    monkeypatch.setattr(Engine, "step", counted)
    return runs


async def test_hops_that_ask_the_store_run_their_step_once(
    make_gateway: Make, step_runs: list[str]
) -> None:
    client = await make_gateway()
    confirm = "*".join([*ORDER_PATH, "1"])
    for n, (session, phone) in enumerate([("A1", "+8501912345601"), ("A2", "+8501912345602")]):
        await walk(client, ORDER_PATH[:-1], session=session, phone=phone)
        step_runs.clear()
        # The address: the payment screen reads the subscriber's cards (ListCards).
        await post(client, "*".join(ORDER_PATH), session=session, phone=phone)
        asked_cards = list(step_runs)
        step_runs.clear()
        status, body = await post(client, confirm, session=session, phone=phone)  # PlaceOrder
        assert status == 200 and body.startswith("END Order "), body
        if n == 0:  # the first time from each screen: run plainly, asked, run again
            assert (asked_cards, step_runs) == (["address"] * 2, ["confirm"] * 2)
        else:  # from then on: once, waiting where it asks
            assert (asked_cards, step_runs) == (["address"], ["confirm"])


async def test_a_step_gets_its_answers_in_the_order_it_asks(make_gateway: Make) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    numbers = [f"+85019123450{i}" for i in range(10, 13)]
    await orders.save_language(client.app[keys.DATABASE], numbers[1], "ko")  # a customer now
    data: dict[tuple[int, Request], Any] = {}

    def run(answers: Any) -> Any:
        view = _view(answers)
        return [view.fetch(LoadCustomer(number)) for number in numbers]

    found = await gateway._resolve(run, data, give_up_at=float("inf"))
    assert [profile and profile.lang for profile in found] == [None, "ko", None]
    assert len(data) == 3  # kept for a save retried after a lost race: not asked again


async def test_a_step_that_keeps_asking_fails_and_its_greenlet_ends(make_gateway: Make) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    ended: list[bool] = []

    def run(answers: Any) -> Any:
        view = _view(answers)
        try:
            return [view.fetch(LoadCustomer(f"+85019123460{i:02d}")) for i in range(50)]
        finally:
            ended.append(True)

    with pytest.raises(GatewayError, match="kept asking"):
        await gateway._resolve(run, {}, give_up_at=float("inf"))
    assert ended == [True]


async def test_a_failed_answer_fails_the_hop_and_ends_the_step(make_gateway: Make) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    ended: list[bool] = []

    class Unknown:  # a request nobody fulfils
        pass

    def run(answers: Any) -> Any:
        view = _view(answers)
        try:
            return view.fetch(Unknown())  # type: ignore[arg-type]
        finally:
            ended.append(True)

    with pytest.raises(GatewayError, match="no one fulfils Unknown"):
        await gateway._resolve(run, {}, give_up_at=float("inf"))
    assert ended == [True]


async def test_a_state_whose_step_stopped_asking_runs_plainly_again(
    make_gateway: Make, step_runs: list[str]
) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    address = ("continue", "address")
    for session in ("B1", "B2"):  # the first checkout reads the cards: none
        await walk(client, ORDER_PATH[:-1], session=session)
        step_runs.clear()
        await post(client, "*".join(ORDER_PATH), session=session)
        assert step_runs == (["address"] * 2 if session == "B1" else ["address"])
        assert (address in gateway._asking) == (session == "B1")  # B2 knew: asked nothing
        await post(client, "*".join([*ORDER_PATH, "00"]), session=session)  # home: no resume


async def test_a_hop_cancelled_while_its_step_waits_ends_the_step(
    make_gateway: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    waiting, ended = asyncio.Event(), []

    async def never(request: Request, give_up_at: float | None = None) -> Any:
        waiting.set()
        await asyncio.Event().wait()  # a store that never answers

    monkeypatch.setattr(gateway, "fulfil", never)

    def run(answers: Any) -> Any:
        try:
            return _view(answers).fetch(LoadCustomer("+8501912346001"))
        finally:
            ended.append(True)

    hop = asyncio.create_task(gateway._resolve(run, {}, give_up_at=float("inf")))
    await waiting.wait()
    hop.cancel()  # the hop's deadline, say
    with pytest.raises(asyncio.CancelledError):
        await hop
    assert ended == [True]


async def test_steps_run_in_kept_greenlets_and_a_failed_one_is_not_kept(
    make_gateway: Make,
) -> None:
    # A new greenlet asks the system for a frame stack of its own (an mmap, a page fault and
    # an munmap a step): a step runs in the greenlet the last one finished in.
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    ran_in: list[greenlet.greenlet] = []

    def run(answers: Any) -> Any:
        ran_in.append(greenlet.getcurrent())
        return _view(answers).fetch(LoadCustomer("+8501912346101"))

    def broken(answers: Any) -> Any:
        ran_in.append(greenlet.getcurrent())
        _view(answers).fetch(LoadCustomer("+8501912346102"))
        raise RuntimeError("a step with a bug")

    assert await gateway._resolve(run, {}, give_up_at=float("inf")) is None
    assert await gateway._resolve(run, {}, give_up_at=float("inf")) is None
    with pytest.raises(RuntimeError, match="a step with a bug"):
        await gateway._resolve(broken, {}, give_up_at=float("inf"))
    assert await gateway._resolve(run, {}, give_up_at=float("inf")) is None
    first, second, failed, after = ran_in
    assert first is second is failed  # kept between steps
    assert after is not failed and failed.dead  # the one a step failed in ended with it


async def test_steps_waiting_at_once_each_get_their_own_answers(
    make_gateway: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    release, all_waiting = asyncio.Event(), asyncio.Event()
    asked: list[str] = []

    async def slow(request: Request, give_up_at: float | None = None) -> Any:
        assert isinstance(request, LoadCustomer)
        asked.append(request.msisdn)
        if len(asked) == len(numbers):
            all_waiting.set()  # every step waits on the store at the same time
        await release.wait()
        return f"profile of {request.msisdn}"

    monkeypatch.setattr(gateway, "fulfil", slow)
    numbers = [f"+85019123462{i:02d}" for i in range(5)]

    def run_for(number: str) -> Callable[[Any], Any]:
        def run(answers: Any) -> Any:
            view = _view(answers)
            return (view.fetch(LoadCustomer(number)), view.fetch(LoadCustomer(number + "9")))

        return run

    kept: list[set[greenlet.greenlet]] = []
    for _ in range(2):  # the second time, in the greenlets the first five left
        asked.clear()
        release.clear()
        all_waiting.clear()
        hops = [
            asyncio.create_task(gateway._resolve(run_for(n), {}, give_up_at=float("inf")))
            for n in numbers
        ]
        await all_waiting.wait()
        release.set()
        found = await asyncio.gather(*hops)
        assert found == [(f"profile of {n}", f"profile of {n}9") for n in numbers]
        kept.append(set(gateway._steps.idle))
    assert len(kept[0]) == 5 and kept[1] == kept[0]


async def test_a_kept_greenlet_holds_nothing_of_its_last_step_and_closing_ends_it(
    make_gateway: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An idle greenlet waits for years on a quiet process: what its last step had (the
    # subscriber's answers, the turn, the gateway behind the step) must not wait with it.
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    seen = contextvars.ContextVar[str]("seen", default="")

    class Turned:  # stands for a turn: collectable once the hop has it and lets it go
        pass

    async def answer(request: Request, give_up_at: float | None = None) -> Any:
        return Turned()

    monkeypatch.setattr(gateway, "fulfil", answer)
    context_seen: list[str] = []

    def run(answers: Any) -> Any:
        context_seen.append(seen.get())
        seen.set("set by a step")
        return _view(answers).fetch(LoadCustomer("+8501912346301"))

    def step(answers: Any) -> Any:  # a step of its own, as each hop's is (it holds the hop)
        return run(answers)

    turn = await gateway._resolve(step, {}, give_up_at=float("inf"))
    gone, step_gone = weakref.ref(turn), weakref.ref(step)
    del turn, step
    gc.collect()
    assert gone() is None and step_gone() is None
    assert await gateway._resolve(run, {}, give_up_at=float("inf")) is not None
    assert context_seen == ["", ""]  # each step in a context of its own
    (idle,) = gateway._steps.idle
    await gateway.close()
    assert idle.dead and gateway._steps.idle == []


async def test_a_cancelled_hop_leaves_no_greenlet_to_reuse(
    make_gateway: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_gateway()
    gateway = client.app[keys.GATEWAY]
    waiting = asyncio.Event()

    async def never(request: Request, give_up_at: float | None = None) -> Any:
        waiting.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(gateway, "fulfil", never)
    hop = asyncio.create_task(
        gateway._resolve(
            lambda answers: _view(answers).fetch(LoadCustomer("+8501912346401")),
            {},
            give_up_at=float("inf"),
        )
    )
    await waiting.wait()
    hop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hop
    assert gateway._steps.idle == []  # ended where it waited, not kept half way
