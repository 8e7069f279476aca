"""One USSD hop: load the session, replay or step the engine, save, answer.

Two Redis round trips for every browsing hop (``GET``, then the compare-and-set) and no SQL:
the catalog is in-process. Only hops whose screen needs the store (the first dial of an
unknown subscriber, placing an order, the order history, a language change) touch it, and
placing an order is the only wait that may outlast the hop's deadline: then the subscriber
is told an SMS will confirm, and the order completes (exactly once) on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import greenlet
import orjson

from gateway.cardless import Cardless
from gateway.catalog import CatalogCache, CatalogVersions
from gateway.deadlines import Deadlines
from gateway.errors import GatewayError
from gateway.funnel import FunnelCounter, reach
from gateway.logs import describe
from gateway.messages import Inbound, Reply
from gateway.metrics import Metrics
from gateway.promises import Promises
from gateway.sessions import MASK, Record, SessionStore, masked_path, trail
from menus import sms
from menus.engine import RESUME, Engine, NeedData, Turn
from menus.ports import (
    CancelOrder,
    CardDeclined,
    CardView,
    Catalog,
    ChangePin,
    CheckPin,
    FindOrder,
    GetOrder,
    ListCards,
    ListOrders,
    LoadCustomer,
    OrderPending,
    OrderPlaced,
    OutOfStock,
    PlaceOrder,
    Request,
    SaveLanguage,
)
from menus.screens import Budget
from store import cards, lifecycle, orders, outbox
from store.db import Database
from store.errors import StoreError
from store.models import utc_at

log = logging.getLogger("okryu.hop")

MAX_REQUESTS_PER_HOP = 6
MAX_SAVE_ATTEMPTS = 4
NONCE_BYTES = 4  # a record's nonce: 8 hex characters, one draw per new record
IDLE_STEPS = 64  # step greenlets kept idle (as many as steps that waited on the store at once)
RECENT_SESSIONS = 4
SAVE_MARGIN = 0.25  # seconds of the deadline kept for rendering and saving after the store


class HopFailed(GatewayError):
    """The hop could not be answered (a bug, or the store answered nonsense)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What this hop is, given the stored session."""

    kind: Literal["replay", "start", "continue", "late"]
    inputs: tuple[str, ...] = ()  # the inputs this hop adds
    # The session's inputs once this hop is applied (sessions.Record's depth, last), and
    # the whole path when the aggregator sends it (its digest, secret inputs masked, is the
    # record's trail), with the positions of the secret inputs before this hop.
    depth: int = 0
    last: str = ""
    path: tuple[str, ...] | None = None
    masked: tuple[int, ...] = ()

    def kept(self, secret: Sequence[int]) -> tuple[str, str, list[int]]:
        """The record's trail, last input and masked positions once this hop is applied,
        ``secret`` being the positions among its inputs that were typed on a secret screen
        (a PIN): those are never kept, not even in the path's digest."""
        base = self.depth - len(self.inputs)
        masked = [*self.masked, *(base + i for i in secret)]
        last = MASK if self.inputs and len(self.inputs) - 1 in secret else self.last
        path = self.path
        if path is None:
            return "", last, []  # nothing of the path is kept but the last input
        return trail(masked_path(path, masked)), last, masked


def _after(
    record: Record | None, inputs: tuple[str, ...], path: tuple[str, ...] | None, kind: Any
) -> _Plan:
    """The plan that applies ``inputs`` after what ``record`` applied (None: from nothing).
    ``path``: the session's whole path once applied, when the aggregator sends it (the
    digest compared on the next hop); None for aggregators that send only the latest."""
    depth, last, masked = (
        (0, "", ()) if record is None else (record.depth, record.last, tuple(record.masked))
    )
    return _Plan(
        kind,
        inputs,
        depth + len(inputs),
        inputs[-1] if inputs else last,
        path,
        masked if path is not None else (),
    )


def plan(
    inbound: Inbound, record: Record | None, *, now: float = 0.0, retry_window: float = 0.0
) -> _Plan:
    """Classify a hop: a new session, the next step, a retry, or a late arrival."""
    if record is None or record.ref != inbound.session_ref:
        if record is not None and inbound.session_ref in record.recent:
            return _Plan("late")  # a hop of a session already over: the subscriber redialled
        if not inbound.new_session:
            # A session never seen opening (its first hop lost, or long forgotten): start
            # clean. Replaying its inputs from home could run a whole order again.
            return _Plan("start")
        path = inbound.inputs if inbound.mode == "path" else None
        return _after(None, inbound.inputs, path, "start")
    if inbound.mode == "path":
        seen = inbound.inputs[: record.depth]
        if len(seen) < record.depth or trail(masked_path(seen, record.masked)) != record.trail:
            return _Plan("late")  # an earlier hop that lost its way: the subscriber moved on
        if len(inbound.inputs) == record.depth:
            return _Plan("replay")
        return _after(record, inbound.inputs[record.depth :], inbound.inputs, "continue")
    # Aggregators that send only the latest answer: a hop number, when given, tells a retry
    # from a new answer. Without one, the same answer again within the retry window is taken
    # for the aggregator's retry: nobody reads a new screen and answers that fast.
    if inbound.sequence is not None:
        if inbound.sequence == record.hops:
            return _Plan("replay")
        if inbound.sequence < record.hops:
            return _Plan("late")
    elif inbound.new_session:
        return _Plan("replay")  # the session-opening request, sent again
    elif (
        record.depth and _again(inbound.inputs, record.last) and _soon(now, record.at, retry_window)
    ):
        return _Plan("replay")
    return _after(record, inbound.inputs, None, "continue")


def _soon(now: float, at: float, retry_window: float) -> bool:
    """Whether ``now`` falls within the retry window after ``at``. The record keeps ``at`` to
    the millisecond (and another process's clock may lag): an answer that reads a time before
    it is soon, but no window (0) takes nothing for a retry."""
    return retry_window > 0 and now - at < retry_window


def _again(inputs: tuple[str, ...], last: str) -> bool:
    """Whether ``inputs`` may be the last answer sent again. A secret one (a PIN) is not kept
    to compare with: any one answer within the retry window is taken for its retry, as nobody
    reads the next screen and answers that fast (a wrong PIN retried must not count twice)."""
    return inputs == (last,) or (last == MASK and len(inputs) == 1)


class _Placement:
    """One order being placed, which hops (the original and its retries) may wait on."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        # A hop gave up waiting and told the subscriber an SMS will say how it ended. Set
        # and read without an await in between on either side, so no ending slips past it.
        self.promised = False


class Gateway:
    """Answers hops for every channel. Holds no per-request state."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        catalogs: CatalogCache,
        versions: CatalogVersions,
        db: Database,
        engine_for: Callable[[Budget], Engine],
        on_sms_queued: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
        resume_ttl: float = 600,
        deadline: float = 2.0,
        dial: str = "*123#",
        retry_window: float = 1.0,
        metrics: Metrics | None = None,
        funnel: FunnelCounter | None = None,
        promises: Promises | None = None,
        pin_lock: float = 900,
    ) -> None:
        self.sessions = sessions
        self.catalogs = catalogs
        self.versions = versions
        self.db = db
        self.engine_for = engine_for
        self.on_sms_queued = on_sms_queued
        self.clock = clock
        self.resume_ttl = resume_ttl
        self.deadline = deadline
        self.deadlines = Deadlines(deadline)  # the caller keeps each hop to it (answer_hop)
        self.dial = dial  # what the subscriber is told to dial to come back
        self.retry_window = retry_window
        self.metrics = metrics
        self.funnel = funnel
        self.promises = promises
        self.pin_lock = pin_lock  # seconds a card is locked after three wrong PINs
        self.cardless = Cardless(lambda: versions.cards_tag, clock=lambda: self.clock())
        self._placing: dict[str, _Placement] = {}
        # The (hop kind, state) pairs whose last step asked the store for something: their
        # steps run in a greenlet from the start (see _resolve); the others run plainly.
        self._asking: set[tuple[str, str]] = set()
        self._steps = _Steps()

    async def handle(self, inbound: Inbound, budget: Budget) -> Reply:
        """The answer to one hop, within the deadline (the caller enforces it)."""
        key = self.sessions.key(inbound.service_code, inbound.msisdn)
        engine = self.engine_for(budget)
        give_up_at = asyncio.get_running_loop().time() + self.deadline - SAVE_MARGIN
        # The store's answers, kept across save retries.
        data: dict[tuple[int, Request], Any] = {}
        for _ in range(MAX_SAVE_ATTEMPTS):
            record = Record.loads(await self.sessions.load(key))
            hop = plan(inbound, record, now=self.clock(), retry_window=self.retry_window)
            if hop.kind == "replay":
                assert record is not None
                return Reply(*record.reply, screen=record.state)  # a retry already answered
            versions = self.versions
            catalog = await self.catalogs.get(versions.catalog_tag, versions.stock_tag)
            step = functools.partial(self._step, engine, inbound, record, hop, catalog)
            asks = (hop.kind, record.state if record is not None else "")
            if asks in self._asking:
                turn = await self._resolve(step, data, give_up_at, asks)
            else:
                try:
                    turn = step(_Answers(data, self._known))  # browsing: nothing of the store
                except NeedData:
                    self._asking.add(asks)  # from now on, run where it can wait
                    turn = await self._resolve(step, data, give_up_at, asks)
            if hop.kind == "late":
                return Reply(turn.text, turn.end, turn.state)  # shown, not saved: no change
            seen = record.seen if record is not None and hop.kind == "continue" else 0
            seen, first_time = reach(seen, turn.state)
            kept_trail, last, masked = hop.kept(turn.secret)
            saved = Record(
                version=record.version if record is not None else 0,
                ref=inbound.session_ref,
                recent=_recent(record, inbound.session_ref),
                depth=hop.depth,
                trail=kept_trail,
                last=last,
                masked=masked,
                hops=(record.hops + 1) if record is not None and hop.kind == "continue" else 1,
                reply=(turn.text, turn.end),
                state=turn.state,
                ctx=turn.ctx,
                at=self.clock(),
                seen=seen,
                nonce=record.nonce if record is not None else secrets.token_hex(NONCE_BYTES),
            )
            if await self.sessions.save(key, saved):
                self._count(hop, record, turn)
                if first_time and self.funnel is not None:
                    self.funnel.reached(turn.state)
                return Reply(turn.text, turn.end, turn.state)
            log.info("session save lost a race; re-reading")
        raise HopFailed("could not save the session after several attempts")

    def _count(self, hop: _Plan, record: Record | None, turn: Turn) -> None:
        if self.metrics is None:
            return
        if hop.kind == "start":
            self.metrics.sessions.labels("started").inc()
        elif record is not None and record.state == RESUME and turn.state != RESUME:
            if turn.state != "home":
                self.metrics.sessions.labels("resumed").inc()

    def _step(
        self,
        engine: Engine,
        inbound: Inbound,
        record: Record | None,
        hop: _Plan,
        catalog: Catalog,
        data: dict[tuple[int, Request], Any],
    ) -> Turn:
        # Every run starts from the context as stored (a step may run again after NeedData,
        # and its effects change the lists it holds): a copy, the record itself untouched.
        again = record
        ctx = orjson.loads(orjson.dumps(record.ctx)) if record is not None else {}
        # The engine keys carts and orders by this: the session id, and the record's nonce.
        # A new record's first hop cannot be told from its own retry (the same id, the same
        # text), which may be running beside it with a nonce of its own: it keys by the session
        # id alone, as every hop did before nonces (a key it stores, a checkout's, stays).
        nonce = record.nonce if record is not None else ""
        ref = f"{inbound.session_ref}~{nonce}" if nonce else inbound.session_ref
        who = {"msisdn": inbound.msisdn, "session_ref": ref}
        if hop.kind == "start":
            resume = None
            if again is not None and self.clock() - again.at <= self.resume_ttl:
                resume = again.state
            return engine.start(
                ctx, inputs=hop.inputs, resume=resume, catalog=catalog, data=data, **who
            )
        assert again is not None
        return engine.step(again.state, ctx, hop.inputs, catalog=catalog, data=data, **who)

    async def _resolve(
        self,
        run: Callable[[dict[tuple[int, Request], Any]], Turn],
        data: dict[tuple[int, Request], Any],
        give_up_at: float,
        asks: tuple[str, str] = ("", ""),
    ) -> Turn:
        """Run the step once, fulfilling what it asks of the store on the way.

        The step runs in a greenlet: where it asks for an answer it does not have
        (``View.fetch``), it hands the request back here and waits; the loop serves other hops
        while the store answers, and the step goes on from where it asked. Run the way
        ``menus`` documents (raise ``NeedData``, run again from the start with the answer), a
        hop that placed an order built its Confirm screen twice. The greenlets are kept for
        the next step (``_Steps``); even so a switch in and out costs a little, so ``handle``
        runs a step in one only from where the last step asked (``asks``, a hop kind and
        state); one that asks unforeseen is run again in one, and a state whose step asked
        nothing this time is run plainly next time.
        """
        step = self._steps.take()
        asked = step.switch((run, _Answers(data, self._known)))
        answered = 0
        while asked is not _DONE:
            if answered > MAX_REQUESTS_PER_HOP:
                step.throw(greenlet.GreenletExit)
                raise HopFailed("the step kept asking for data")
            try:
                answer = await self.fulfil(asked, give_up_at)
            except BaseException:
                step.throw(greenlet.GreenletExit)  # the step ends where it waits, and its greenlet
                raise
            answered += 1
            asked = step.switch(answer)
        if not answered:
            self._asking.discard(asks)  # asked nothing this time: run plainly again
        turn: Turn = self._steps.give_back(step)
        return turn

    async def fulfil(self, request: Request, give_up_at: float | None = None) -> Any:
        db = self.db
        if isinstance(request, LoadCustomer):
            return await orders.get_customer(db, request.msisdn)
        if isinstance(request, SaveLanguage):
            return await orders.save_language(db, request.msisdn, request.lang)
        if isinstance(request, ListOrders):
            return await orders.list_orders(db, request.msisdn, request.limit)
        if isinstance(request, GetOrder):
            return await orders.get_order(db, request.msisdn, request.code)
        if isinstance(request, FindOrder):
            return await orders.find_order(db, request.msisdn, request.idempotency_key)
        if isinstance(request, PlaceOrder):
            return await self._place(request, give_up_at)
        if isinstance(request, CancelOrder):
            return await self._cancel(request)
        if isinstance(request, ListCards):
            return await self._cards(request.msisdn)
        if isinstance(request, CheckPin):
            return await cards.check_pin(
                db, request.msisdn, request.card, request.pin, now=self._now(),
                lock_for=timedelta(seconds=self.pin_lock), lang=request.lang,
                render_locked=sms.card_locked,
            )  # fmt: skip
        if isinstance(request, ChangePin):
            return await cards.change_pin(db, request.msisdn, request.card, request.pin)
        raise HopFailed(f"no one fulfils {type(request).__name__}")

    def _known(self, request: Request) -> Any:
        """The answer to ``request`` if this process knows it without I/O, else _NOT_KNOWN."""
        if isinstance(request, ListCards) and self.cardless.holds_none(request.msisdn):
            return ()  # found with no card lately: no read, and no greenlet to wait in
        return _NOT_KNOWN

    async def _cards(self, msisdn: str) -> tuple[CardView, ...]:
        """The subscriber's cards, read; remembered when there are none."""
        version = self.versions.cards_tag
        found = await cards.list_cards(self.db, msisdn, self._now())
        self.cardless.found(msisdn, version, len(found))
        return found

    def _now(self) -> datetime:
        """Now, by the gateway's clock (tests move it), as the store keeps times."""
        return utc_at(self.clock())

    async def _cancel(self, request: CancelOrder) -> bool:
        try:
            await self.change_status(
                request.code, "cancelled", actor=f"customer:{request.msisdn}", msisdn=request.msisdn
            )
        except (lifecycle.IllegalTransition, lifecycle.UnknownOrder):
            return False  # dispatched meanwhile, or not theirs: the screen says it cannot be
        return True

    async def change_status(
        self, code: str, status: str, *, actor: str, note: str = "", msisdn: str | None = None
    ) -> lifecycle.Changed:
        """Change an order's status (staff, USSD or SMS alike) and do what follows from it:
        the customer's SMS goes out now, and a cancellation's restock reaches the menus."""
        changed = await lifecycle.change_status(
            self.db, code, status, actor=actor, note=note, msisdn=msisdn,
            render_sms=sms.status_changed, render_refund=sms.order_refunded,
        )  # fmt: skip
        if status == "cancelled":
            await self.versions.stock_changed()  # the goods are back on the shelf
        if self.on_sms_queued is not None:
            await self.on_sms_queued()
        return changed

    async def _place(self, request: PlaceOrder, give_up_at: float | None) -> Any:
        """Place the order, or say it is pending when the store outlasts the hop's deadline.

        The placement runs as its own task, never cancelled by the hop: a hop that gives up (or is
        cancelled) never cancels a transaction half way, and a retried hop for the same order
        waits on the same task instead of starting another.
        """
        key = request.idempotency_key
        placement = self._start_placing(request)
        remaining = None
        if give_up_at is not None:
            remaining = max(0.0, give_up_at - asyncio.get_running_loop().time())
        try:
            # wait() never cancels the placement (a hop that gives up must not undo an order
            # half way); whether it finished is then read with no await before the promise.
            await asyncio.wait([placement.task], timeout=remaining)
        finally:
            if not placement.task.done():
                # Given up on, or the hop itself cancelled: whatever the subscriber was shown,
                # the order's own ending will be told by SMS.
                placement.promised = True
        if placement.task.done() and not _unsettled(placement.task):
            return placement.task.result()
        if self.promises is not None:
            # Written before the screen promises anything: a process that dies now leaves
            # the promise for another to keep (gateway/promises.py).
            await self.promises.make(request)
        log.warning("placing an order outlasted the hop; answering that it is pending")
        return OrderPending(key)

    def _start_placing(self, request: PlaceOrder, *, promised: bool = False) -> _Placement:
        """The placement of ``request`` under way in this process, started if need be."""
        key = request.idempotency_key
        placement = self._placing.get(key)
        if placement is None:
            placement = _Placement(asyncio.create_task(self._place_and_follow_up(request)))
            self._placing[key] = placement

            def settled(task: asyncio.Task[Any]) -> None:
                self._placing.pop(key, None)
                if not task.cancelled():
                    task.exception()  # retrieved: the placement logged its own failure

            placement.task.add_done_callback(settled)
        placement.promised = placement.promised or promised
        return placement

    async def keep_promises(self) -> int:
        """Keep the promises older than their grace (a process that made them may have died):
        drop those whose ending was told, place the others again. How many were dropped."""
        if self.promises is None:
            return 0
        kept = 0
        for request in await self.promises.due():
            placement = self._start_placing(request, promised=True)
            # wait() never cancels the placement (an awaited task would be cancelled with
            # the keeper, as the process stops); how it ended is logged and told by itself.
            await asyncio.wait([placement.task])
            if await self._told(request):
                await self.promises.drop(request.idempotency_key)
                kept += 1
        return kept

    async def _told(self, request: PlaceOrder) -> bool:
        """Whether the subscriber has been told how the order under this key ended."""
        key = request.idempotency_key
        if await orders.find_order(self.db, request.msisdn, key) is not None:
            return True  # its confirmation was queued in the same transaction
        return await outbox.queued(self.db, f"order_failed:{orders.stored_key(key)}")

    async def _place_and_follow_up(self, request: PlaceOrder) -> Any:
        placement_result: Any = None
        try:
            # Written as the shopper was shown it (this process's catalog): the order's
            # transaction checks every price and the fee, and reads them should one move.
            placement_result = await orders.place_order(
                self.db, request, sms.order_placed, self.catalogs.snapshot
            )
        except StoreError:
            log.exception("placing an order failed")  # refused before anything was written
            await self._tell_order_failed(request)
            raise
        except Exception as error:
            # The order may exist all the same: a connection lost after the commit, before
            # its answer. Its confirmation is queued with it; "could not place" would
            # contradict both.
            placed = await self._placed_after_all(request)
            if placed is None and orders.outcome_unknown(error):
                # Not there yet, and the server may still commit it: settled by the promise
                # keeper, which places it again on the same key (a replay if it committed).
                log.warning("an order's answer was lost (%s); it is promised", describe(error))
                raise _Unsettled from error
            if placed is None:
                log.exception("placing an order failed")
                await self._tell_order_failed(request)
                raise
            log.warning(
                "order %s was placed though its placement raised (%s)",
                placed.code, describe(error), exc_info=True,
            )  # fmt: skip
            placement_result = placed
        if isinstance(placement_result, OrderPlaced):
            self.versions.stock_changed()  # sent with this turn's commands, not waited for
            if self.on_sms_queued is not None:
                await self.on_sms_queued()
        elif isinstance(placement_result, OutOfStock | CardDeclined) and self._promised(request):
            await self._tell_order_failed(request)  # nobody is on the line to be told
        return placement_result

    async def _placed_after_all(self, request: PlaceOrder) -> OrderPlaced | None:
        """The order under the request's key if it exists after a failed placement (one read
        on a new connection); None if it does not, or if that cannot be read either."""
        try:
            return await orders.find_order(self.db, request.msisdn, request.idempotency_key)
        except Exception as error:
            log.warning(
                "could not look for an order after its placement failed (%s)", describe(error)
            )
            return None

    def _promised(self, request: PlaceOrder) -> bool:
        placement = self._placing.get(request.idempotency_key)
        return placement is not None and placement.promised

    async def _tell_order_failed(self, request: PlaceOrder) -> None:
        """An order that ended after its hop gave up: say so by SMS (the cart is kept)."""
        try:
            queued = await outbox.enqueue_once(
                self.db,
                to=request.msisdn,
                body=sms.order_failed(request.lang, self.dial),
                kind="order_failed",
                idempotency_key=f"order_failed:{orders.stored_key(request.idempotency_key)}",
            )
        except Exception:
            log.exception("could not queue the order-failed SMS")
            return
        if queued and self.on_sms_queued is not None:
            await self.on_sms_queued()  # wakes the dispatcher

    async def close(self) -> None:
        """Let orders in flight finish: they are never abandoned half way."""
        pending = [p.task for p in self._placing.values()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._steps.close()


class _Step(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet steps run in, one after another (see ``Gateway._resolve``): switched to
    with a step and its answers, it runs the step, keeps its turn in ``turn`` and hands back
    ``_DONE``, then waits for the next, holding nothing of the last (its subscriber's data,
    the gateway behind the step). A step that raises, or is thrown ``GreenletExit`` while it
    waits, ends it."""

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.turn: Any = None

    def _serve(self) -> None:
        work = self.parent.switch()  # parked: the first step comes with a switch, as the rest
        while True:
            run, answers = work
            work = None
            self.turn = run(answers)
            run = answers = None
            work = self.parent.switch(_DONE)


_DONE = object()  # what a step greenlet hands back when its step is done (its turn: .turn)


class _Steps:
    """Idle step greenlets, kept. A new greenlet gets a frame stack of its own from the system
    on its first call (CPython 3.11: a 16 KB mmap, a page fault, and the munmap when it ends):
    13-15 us a step on this machine, against 1.4-2.4 us to switch into a kept one."""

    def __init__(self, keep: int = IDLE_STEPS) -> None:
        self.keep = keep
        self.idle: list[_Step] = []

    def take(self) -> _Step:
        if self.idle:
            step = self.idle.pop()
            step.parent = greenlet.getcurrent()  # the hop's: where the step hands back to
        else:
            step = _Step()
            step.switch()  # runs to where it waits for a step
        # Each step in a context of its own, as in a new greenlet: nothing a step set is seen
        # by the next one that runs here.
        step.gr_context = contextvars.Context()
        return step

    def give_back(self, step: _Step) -> Any:
        """What ``step``'s step returned; the greenlet kept for the next if there is room."""
        turn, step.turn = step.turn, None
        if len(self.idle) < self.keep:
            self.idle.append(step)
        return turn

    def close(self) -> None:
        """End the idle greenlets."""
        idle, self.idle = self.idle, []
        for step in idle:
            step.throw(greenlet.GreenletExit)


class _Unsettled(GatewayError):
    """An order placement that lost its connection with the order not (yet) found: promised,
    and settled by the promise keeper."""


def _unsettled(task: asyncio.Task[Any]) -> bool:
    return not task.cancelled() and isinstance(task.exception(), _Unsettled)


_NOT_KNOWN = object()


class _Answers(dict[tuple[int, Request], Any]):
    """The store's answers for one hop, as a step reads them. An answer not yet had is taken
    from what the process knows (``known``, no I/O: a subscriber known to hold no card), or
    asked of the hop (from the step's greenlet), and kept: a save retried after a lost race
    runs the step again with the answers it already has."""

    def __init__(
        self, kept: dict[tuple[int, Request], Any], known: Callable[[Request], Any]
    ) -> None:
        super().__init__(kept)
        self.kept = kept
        self.known = known

    def __missing__(self, key: tuple[int, Request]) -> Any:
        answer = self.known(key[1])
        if answer is _NOT_KNOWN:
            here = greenlet.getcurrent()
            if not isinstance(here, _Step):
                raise KeyError(key)  # a plain run: View.fetch raises NeedData
            answer = here.parent.switch(key[1])
        self[key] = self.kept[key] = answer
        return answer


def _recent(record: Record | None, ref: str) -> list[str]:
    """The sessions before this one, newest first: their late hops must change nothing."""
    if record is None:
        return []
    if record.ref == ref:
        return record.recent
    return [record.ref, *record.recent][:RECENT_SESSIONS]
