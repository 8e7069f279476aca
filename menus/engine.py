"""The menu engine: what every screen shares, around one journey's state machine.

The engine stores nothing and performs no I/O. ``step`` takes a session's state and context
(plain JSON-able data), the new inputs of this hop and whatever the store already answered,
and returns the next state, context and screen. When a screen needs something only the store
has (or does), the step raises :class:`NeedData`; the caller fulfils the request and runs the
same step again with the answer added. A step is therefore safe to repeat.

Shared by every screen: ``0`` back (a history stack in the context), ``00`` home, ``98`` more,
numbered choices, free-text prompts, and the one-line reason above a re-prompted screen.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from statemachine import StateChart

from menus.ports import CancelOrder, Catalog, Lang, PlaceOrder, Request, SaveLanguage
from menus.screens import Budget, fits, measure, paginate
from menus.text import Texts, texts

BACK, HOME, MORE = "0", "00", "98"
RESUME = "resume"  # the engine's own screen: "Continue where you left off?"
HISTORY_LIMIT = 12


def is_digits(text: str) -> bool:
    """ASCII digits only: ``"²".isdigit()`` and ``"٣".isdigit()`` are true, yet no menu means
    them (and ``int("²")`` fails)."""
    return text.isascii() and text.isdigit()


# Requests that change the store. Whatever the step reads after one must be read afresh: an
# order shown after its cancellation, in the same hop, shows it cancelled.
CHANGES = (PlaceOrder, CancelOrder, SaveLanguage)
Answers = Mapping[tuple[int, Request], Any]  # (changes made before it, request) -> answer


class NeedData(Exception):
    """The step needs the answer to ``request`` before it can go on; the caller files the
    answer under ``key`` and runs the step again."""

    def __init__(self, request: Request, key: tuple[int, Request]) -> None:
        super().__init__(request)
        self.request = request
        self.key = key


@dataclass(frozen=True, slots=True)
class Go:
    """The user did something the machine understands: send ``event`` with ``args``."""

    event: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invalid:
    """The input is not acceptable here: show the same screen with this reason above it."""

    key: str = "error.choice"
    args: Mapping[str, Any] = field(default_factory=dict)


Outcome = Go | Invalid


@dataclass
class Content:
    """What a screen shows. ``rows`` are paginated; everything else is on every page."""

    title: str
    rows: Sequence[str] = ()
    numbered: bool = True  # rows are choices numbered 1..k on each page
    actions: Sequence[str] = ()  # choices numbered after the rows, on every page
    footer: str = ""
    nav: bool = True  # the "0 Back 00 Home" line
    end: bool = False  # the last screen of the session
    text_input: bool = False  # free text is expected (the screen parses it)
    reasons: Sequence[str] = ("error.choice",)  # catalog keys this screen may show above it
    reason_args: Mapping[str, Any] = field(default_factory=dict)
    elastic: str = ""  # replaces "{elastic}" in the title, shortened until the screen fits
    cache_key: tuple[Any, ...] | None = None  # same key, same pages (for catalog lists)


class View:
    """Everything a screen may read during one step. Built per step, never shared."""

    def __init__(
        self,
        *,
        msisdn: str,
        session_ref: str,
        ctx: dict[str, Any],
        catalog: Catalog,
        data: Answers,
        settings: Any,
    ) -> None:
        self.msisdn = msisdn
        self.session_ref = session_ref
        self.ctx = ctx
        self.catalog = catalog
        self.data = data
        self.settings = settings
        self._changes = 0  # store changes this step has made so far

    @property
    def lang(self) -> Lang:
        lang: Lang = self.ctx.get("lang", "en")
        return lang

    @property
    def t(self) -> Texts:
        return texts(self.lang)

    def fetch(self, request: Request) -> Any:
        """The store's answer to ``request``, or :class:`NeedData` if not yet asked.

        A step runs again from its start after every answer, so it asks the same things in
        the same order; answers are filed by how many changes came before them.
        """
        key = (self._changes, request)
        try:
            answer = self.data[key]
        except KeyError:
            raise NeedData(request, key) from None
        if isinstance(request, CHANGES):
            self._changes += 1
        return answer


class Screen(Protocol):
    def content(self, view: View) -> Content: ...

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome: ...

    def submit(self, view: View, text: str) -> Outcome: ...


class Journey(Protocol):
    """One journey: its machine class, the screen for each state, and where home is."""

    @property
    def chart(self) -> type[StateChart[Any]]: ...

    @property
    def screens(self) -> Mapping[str, Screen]: ...

    @property
    def home(self) -> str: ...

    def begin(self, view: View) -> None: ...

    def history_after(self, event: str) -> str | None: ...


class _Model:
    """The one mutable object the live machine is bound to; loaded afresh at every step."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.view: View | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    state: str
    ctx: dict[str, Any]
    text: str
    end: bool


class Engine:
    """Runs one journey. Holds one live machine; ``step`` is synchronous, so hops served by
    one event loop never interleave inside it."""

    def __init__(
        self,
        journey: Journey,
        budget: Budget,
        settings: Any,
        cache_size: int = 512,
        *,
        compiled: bool = True,
    ):
        self.journey = journey
        self.budget = budget
        self.settings = settings
        self._model = _Model()
        self._chart = journey.chart(model=self._model, state_field="state")
        self._states = set(self._chart.states_map)
        # python-statemachine declares and checks the journey; its SCXML engine costs about
        # 0.1 ms a send, a fifth of a whole hop, so transitions run from the compiled table
        # (tests/menus/test_compiled.py proves the two agree on every transition).
        self._table = Transitions(journey.chart) if compiled else None
        self._pages: OrderedDict[tuple[Any, ...], list[tuple[int, int]]] = OrderedDict()
        self._cache_size = cache_size

    # --- public API ---------------------------------------------------------------------

    def start(
        self,
        ctx: dict[str, Any],
        *,
        msisdn: str,
        session_ref: str,
        catalog: Catalog,
        data: Answers,
        inputs: Sequence[str] = (),
        resume: str | None = None,
    ) -> Turn:
        """A new session: the home screen, after the journey's own set-up, then ``inputs``.

        With ``resume`` (the state a cut-off session was left at), a plain dial first asks
        whether to continue there; the context still holds everything chosen so far.
        """
        view = View(
            msisdn=msisdn,
            session_ref=session_ref,
            ctx=ctx,
            catalog=catalog,
            data=data,
            settings=self.settings,
        )
        if resume is not None and not inputs and self.can_resume(resume, view):
            ctx["resume"] = resume
            return self._run(RESUME, view, ())
        self._begin(view)
        return self._run(self.journey.home, view, inputs)

    def can_resume(self, state: str, view: View) -> bool:
        """Whether a session left at ``state`` is worth offering to continue."""
        if state not in self._states or state == self.journey.home:
            return False
        try:
            return not self.journey.screens[state].content(view).end
        except NeedData:
            return True  # a screen that reads the store (orders) is still a place to return to

    def _begin(self, view: View) -> None:
        self.journey.begin(view)
        view.ctx.pop("resume", None)
        view.ctx["hist"], view.ctx["page"] = [], 0

    def step(
        self,
        state: str,
        ctx: dict[str, Any],
        inputs: Sequence[str],
        *,
        msisdn: str,
        session_ref: str,
        catalog: Catalog,
        data: Answers,
    ) -> Turn:
        """Feed ``inputs`` to a session at ``state``. May raise :class:`NeedData`."""
        view = View(
            msisdn=msisdn,
            session_ref=session_ref,
            ctx=ctx,
            catalog=catalog,
            data=data,
            settings=self.settings,
        )
        if state not in self._states and state != RESUME:  # renamed or removed since stored
            state = self.journey.home
            ctx["hist"], ctx["page"] = [], 0
        return self._run(state, view, inputs)

    # --- the step -----------------------------------------------------------------------

    def _run(self, state: str, view: View, inputs: Sequence[str]) -> Turn:
        reason: str | None = None
        content: Content | None = None  # the screen reached, once built (lists cost)
        for raw in inputs:
            state, reason = self._feed(state, view, raw.strip())
            content = self._screen(state).content(view)
            if reason is not None or content.end:
                # A shortcut that stops being valid part way ends on the last valid screen,
                # with the reason; after a final screen later inputs have nowhere to go.
                break
        text, end = self.render(state, view, reason, content)
        view.ctx.pop("note", None)
        return Turn(state, view.ctx, text, end)

    def _screen(self, state: str) -> Screen:
        return _RESUME_SCREEN if state == RESUME else self.journey.screens[state]

    def _feed(self, state: str, view: View, raw: str) -> tuple[str, str | None]:
        ctx = view.ctx
        if state == RESUME:
            return self._answer_resume(view, raw)
        screen = self.journey.screens[state]
        content = screen.content(view)
        ctx.pop("note", None)
        if content.end:
            return state, None
        if raw == HOME and state != self.journey.home:
            ctx["hist"], ctx["page"] = [], 0
            return self.journey.home, None
        if raw == BACK and content.nav:
            hist = ctx.get("hist") or []
            if not hist:
                ctx["page"] = 0
                return self.journey.home, None
            previous, page = hist.pop()
            ctx["page"] = page
            return previous, None
        pages = self._pages_for(content, view)
        page = min(ctx.get("page", 0), len(pages) - 1)
        if raw == MORE and not content.text_input:
            if page + 1 < len(pages):
                ctx["page"] = page + 1
                return state, None
            return state, view.t("error.no_more")
        outcome = self._interpret(screen, content, pages[page], view, raw)
        if isinstance(outcome, Invalid):
            return state, view.t(outcome.key, **outcome.args)
        return self._transition(state, view, outcome), None

    def _answer_resume(self, view: View, raw: str) -> tuple[str, str | None]:
        if raw == "1" and view.ctx.get("resume") in self._states:
            return view.ctx.pop("resume"), None
        if raw in ("2", HOME):
            self._begin(view)
            return self.journey.home, None
        return RESUME, view.t("error.choice")

    def _interpret(
        self, screen: Screen, content: Content, page: tuple[int, int], view: View, raw: str
    ) -> Outcome:
        if content.text_input:
            return screen.submit(view, raw)
        if not is_digits(raw):
            return Invalid()
        n = int(raw)
        start, stop = page
        row_count = stop - start if content.numbered else 0
        if 1 <= n <= row_count:
            return screen.choose(view, start + n - 1, None)
        if row_count < n <= row_count + len(content.actions):
            return screen.choose(view, None, n - row_count - 1)
        return Invalid()

    def _transition(self, state: str, view: View, go: Go) -> str:
        ctx = view.ctx
        model = self._model
        model.state, model.view = state, view
        try:
            if self._table is None:
                self._chart.send(go.event, **go.args)
                target = model.state
            else:
                target = self._table.apply(self._chart, state, go)
        finally:
            model.view = None
        assert target is not None
        if target == self.journey.home:
            ctx["hist"], ctx["page"] = [], 0
            return target
        hist: list[list[Any]] = ctx.setdefault("hist", [])
        if target != state:
            # Returning to a screen already on the stack unwinds to it (cart -> remove ->
            # cart must not make "back" go to remove); otherwise remember where we were.
            names = [entry[0] for entry in hist]
            if target in names:
                del hist[len(names) - 1 - names[::-1].index(target) :]
            else:
                hist.append([state, ctx.get("page", 0)])
                del hist[:-HISTORY_LIMIT]
            anchor = self.journey.history_after(go.event)
            if anchor is not None and anchor in [entry[0] for entry in hist]:
                names = [entry[0] for entry in hist]
                del hist[len(names) - names[::-1].index(anchor) :]
            ctx["page"] = 0
        return target

    # --- rendering ----------------------------------------------------------------------

    def render(
        self, state: str, view: View, reason: str | None = None, content: Content | None = None
    ) -> tuple[str, bool]:
        """The screen for ``state``, with ``reason`` (or a pending note) above it.

        The reason goes above the screen. Where the screen is too full for that (a Korean
        cart at 80 units), the reason takes the place of the title's first line instead:
        the subscriber has just seen the title, and the choices must stay exactly as shown.
        """
        if content is None:
            content = self._screen(state).content(view)
        pages = self._pages_for(content, view)
        page = min(view.ctx.get("page", 0), len(pages) - 1) if state != RESUME else 0
        start, stop = pages[page]
        more = stop < len(content.rows)
        top = reason or view.ctx.get("note")

        def layout(title: str, replace: bool = False) -> str:
            return self._compose(content, view, title, start, stop, more, top, replace)

        text = layout(self._fit_title(content, view, layout))
        if top and not fits(text, self.budget):
            text = layout(self._fit_title(content, view, lambda t: layout(t, True)), True)
        return text, content.end

    def _compose(
        self,
        content: Content,
        view: View,
        title: str,
        start: int,
        stop: int,
        more: bool,
        top: str | None,
        replace: bool = False,
    ) -> str:
        t = view.t
        heading = title.split("\n") if title else []
        if top:
            heading = [top, *heading[1:]] if replace else [top, *heading]
        lines = heading
        n = 0
        for row in content.rows[start:stop]:
            if content.numbered:
                n += 1
                lines.append(t.option(n, row))
            else:
                lines.append(row)
        for label in content.actions:
            n += 1
            lines.append(t.option(n, label))
        if content.footer:
            lines.append(content.footer)
        if more:
            lines.append(t("fmt.more"))
        if content.nav and not content.end:
            lines.append(t("fmt.back_home"))
        return "\n".join(lines)

    def _reserve(self, content: Content, view: View) -> str | None:
        """The longest line this screen may show above itself (a reason or a note)."""
        candidates = [view.t(key, **content.reason_args) for key in content.reasons]
        if view.ctx.get("note"):
            candidates.append(view.ctx["note"])
        if not candidates:
            return None
        return max(candidates, key=lambda line: measure(line).units)

    def _pages_for(self, content: Content, view: View) -> list[tuple[int, int]]:
        key = None
        if content.cache_key is not None:
            key = (*content.cache_key, view.lang, view.catalog.version)
            cached = self._pages.get(key)
            if cached is not None:
                self._pages.move_to_end(key)
                return cached
        reserve = self._reserve(content, view)
        title = content.title.replace("{elastic}", "")

        def compose(start: int, stop: int, more: bool) -> str:
            return self._compose(content, view, title, start, stop, more, reserve)

        pages = paginate(len(content.rows), compose, self.budget)
        if key is not None:
            self._pages[key] = pages
            if len(self._pages) > self._cache_size:
                self._pages.popitem(last=False)
        return pages

    def _fit_title(self, content: Content, view: View, layout: Callable[[str], str]) -> str:
        """The title with its elastic part shortened until ``layout(title)`` fits."""
        if "{elastic}" not in content.title:
            return content.title
        elastic = content.elastic
        ellipsis = view.t("fmt.ellipsis")
        while elastic:
            title = content.title.replace("{elastic}", elastic)
            if fits(layout(title), self.budget):
                return title
            elastic = elastic[: max(0, len(elastic) - len(ellipsis) - 1)].rstrip()
            elastic = elastic + ellipsis if elastic else ""
        return content.title.replace("{elastic}", "")


class InvalidJourney(Exception):
    """The journey's chart uses something the compiled transitions cannot run faithfully."""


class Transitions:
    """A chart's transitions as a table: (event, source) -> target, plus ``on_<event>``.

    Only what the shop uses is allowed: plain transitions, one target, no guards, and
    ``on_<event>`` callbacks. Anything else is refused when the engine is built, so the
    table can never quietly behave differently from the library.
    """

    UNSUPPORTED = ("before_", "after_", "on_enter_", "on_exit_", "enter_", "exit_")

    def __init__(self, chart: type[StateChart[Any]]) -> None:
        odd = [name for name in vars(chart) if name.startswith(self.UNSUPPORTED)]
        if odd:
            raise InvalidJourney(f"{chart.__name__}: unsupported callbacks {odd}")
        self.targets: dict[str, dict[str, str]] = {}
        for state in chart.states:
            for transition in state.transitions:
                if list(transition.cond) or transition.internal or len(transition.targets) != 1:
                    raise InvalidJourney(f"{chart.__name__}: {state.id}: only plain transitions")
                for event in transition.events:
                    self.targets.setdefault(str(event), {})[state.id] = transition.target.id
        self.callbacks = {event: f"on_{event}" for event in self.targets}

    def apply(self, chart: StateChart[Any], state: str, go: Go) -> str:
        """Run ``go`` from ``state`` on the live ``chart``: its callback, then the target."""
        target = self.targets.get(go.event, {}).get(state)
        if target is None:
            raise InvalidJourney(f"no transition {go.event!r} from {state!r}")
        callback = getattr(chart, self.callbacks[go.event], None)
        if callback is not None:
            callback(**go.args)
        return target


class _ResumeScreen:
    """Continue where you left off? 1 Yes 2 Start again (answered by the engine itself)."""

    def content(self, view: View) -> Content:
        t = view.t
        return Content(
            title=t("resume.title"), actions=(t("resume.yes"), t("resume.again")), nav=False
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        return Invalid()

    def submit(self, view: View, text: str) -> Outcome:
        return Invalid()


_RESUME_SCREEN = _ResumeScreen()


def make_engine_factory(journey: Journey, settings: Any) -> Callable[[Budget], Engine]:
    """One engine per screen budget (channels may differ), built on first use."""
    engines: dict[Budget, Engine] = {}

    def engine_for(budget: Budget) -> Engine:
        engine = engines.get(budget)
        if engine is None:
            engine = engines[budget] = Engine(journey, budget, settings)
        return engine

    return engine_for
