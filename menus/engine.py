"""The menu engine: one journey's chart, compiled to tables, and what every screen shares.

The engine stores nothing and performs no I/O. ``step`` takes a session's state and context
(plain JSON-able data), the new inputs of this hop and whatever the store already answered,
and returns the next state, context and screen. When a screen needs something only the store
has (or does), the step raises :class:`NeedData`; the caller fulfils the request and runs the
same step again with the answer added. A step is therefore safe to repeat.

Shared by every screen: ``0`` back and ``00`` home (the chart's ``back`` and ``go_home``
transitions; on a list's second page or later, ``0`` first steps back a page), ``98`` more,
numbered choices, free-text prompts, the one-line reason above a re-prompted screen, and
"continue where you left off?" for a session cut mid-journey.

Transitions run from tables derived from the chart, not through python-statemachine's own
engine: the chart is the declaration (checked and drawn by the library), and one ``send``
through the library costs about 0.1 ms, a fifth of a whole hop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from menus.flow import flow_of
from menus.journey import (
    Answers,
    Context,
    Go,
    Invalid,
    InvalidJourney,
    Journey,
    NeedData,
    Option,
    Outcome,
    Row,
    Screen,
    View,
    is_digits,
)
from menus.ports import Catalog
from menus.screens import Budget, fits, measure, paginate
from menus.text import Texts

__all__ = ["Engine", "NeedData", "RESUME", "Turn", "is_digits", "make_engine_factory"]

BACK, HOME, MORE = "0", "00", "98"
FIT_FLOOR = 8  # characters a shortened name keeps, ellipsis included, when rows must share
BACK_EVENT, HOME_EVENT = "back", "go_home"  # the chart's names for what 0 and 00 do
RESUME = "resume"  # the engine's own screen: "Continue where you left off?"
MARK = "\x00%d\x00"  # where a title's elastic value goes (no text holds a NUL)


@dataclass
class Content:
    """What a screen shows at one step. ``rows`` are paginated; the rest is on every page."""

    title: str
    rows: list[str] = field(default_factory=list)
    items: Sequence[Row] = ()
    numbered: bool = True  # rows are choices numbered 1..k on each page
    options: Sequence[Option] = ()
    actions: Sequence[str] = ()  # the options' labels, numbered after the rows
    footer: str = ""
    nav: bool = True
    end: bool = False
    text_input: bool = False
    reasons: Sequence[str] = ("error.choice",)
    reason_args: Mapping[str, Any] = field(default_factory=dict)
    # The title's elastic values, first shortened first: marked in ``title`` as MARK % i.
    elastic: tuple[str, ...] = ()
    row_line: str = ""  # for shortening a row that cannot fit alone
    row_elastic: str = ""
    row_fit: int = 0  # rows a page should hold, their elastic values shortened alike
    cache_key: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    state: str
    ctx: dict[str, Any]
    text: str
    end: bool
    # The positions, among this step's inputs, of those typed on a secret screen (a PIN):
    # whoever keeps the inputs masks these.
    secret: tuple[int, ...] = ()


class Engine:
    """Runs one journey for one screen budget. Holds nothing per session."""

    def __init__(
        self, journey: Journey[Any], budget: Budget, settings: Any, cache_size: int = 512
    ) -> None:
        self.flow = flow_of(type(journey))
        self.journey = self.flow.journey
        self.budget = budget
        self.settings = settings
        self._pages: OrderedDict[tuple[Any, ...], tuple[list[tuple[int, int]], list[str]]] = (
            OrderedDict()
        )
        self._contents: OrderedDict[tuple[Any, ...], Content] = OrderedDict()
        self._shown: OrderedDict[tuple[Any, ...], str] = OrderedDict()  # pages as shown
        self._cache_size = cache_size

    @property
    def version(self) -> str:
        return self.flow.version

    # --- public API ---------------------------------------------------------------------

    def start(
        self,
        ctx: Mapping[str, Any],
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
        view = self._view(ctx, msisdn, session_ref, catalog, data)
        if resume is not None and view.ctx.journey != self.version:
            resume = self._rejoin(resume, view)[0]
        if resume is not None and not inputs and self.can_resume(resume):
            view.ctx.resume = resume
            return self._run(RESUME, view, ())
        self._begin(view)
        return self._run(self.flow.home, view, inputs)

    def step(
        self,
        state: str,
        ctx: Mapping[str, Any],
        inputs: Sequence[str],
        *,
        msisdn: str,
        session_ref: str,
        catalog: Catalog,
        data: Answers,
    ) -> Turn:
        """Feed ``inputs`` to a session at ``state``. May raise :class:`NeedData`."""
        view = self._view(ctx, msisdn, session_ref, catalog, data)
        if view.ctx.journey != self.version:
            state, moved = self._rejoin(state, view)
            if moved:
                # The screen the inputs answered is gone: show where the session is now.
                return self._run(state, view, ())
        return self._run(state, view, inputs)

    def can_resume(self, state: str) -> bool:
        """Whether a session left at ``state`` is worth offering to continue."""
        screen = self.flow.screens.get(state)
        return screen is not None and state != self.flow.home and not screen.end

    def context(self, ctx: Mapping[str, Any]) -> Context:
        """A stored context, as the journey's context class."""
        return self.journey.context.load(ctx)

    # --- the step -----------------------------------------------------------------------

    def _view(
        self,
        ctx: Mapping[str, Any],
        msisdn: str,
        session_ref: str,
        catalog: Catalog,
        data: Answers,
    ) -> View[Any]:
        return View(
            msisdn=msisdn,
            session_ref=session_ref,
            ctx=self.journey.context.load(ctx),
            catalog=catalog,
            data=data,
            settings=self.settings,
        )

    def _begin(self, view: View[Any]) -> None:
        self.journey.begin(view)
        ctx = view.ctx
        ctx.resume, ctx.page, ctx.journey = "", 0, self.version
        ctx.pages.clear()

    def _rejoin(self, state: str, view: View[Any]) -> tuple[str, bool]:
        """A session started on another version of the journey (a deploy came between two
        hops): its state if it still exists, else where it moved, else home; with a note."""
        ctx = view.ctx
        ctx.journey = self.version
        if state in self.flow.screens or state == RESUME:
            return state, False
        moved = self.journey.moved.get(state)
        target = moved if moved in self.flow.screens else self.flow.home
        ctx.page, ctx.resume = 0, ""
        ctx.pages.clear()
        ctx.note = view.t("journey.changed")
        return target, True

    def _run(self, state: str, view: View[Any], inputs: Sequence[str]) -> Turn:
        reason: str | None = None
        content: Content | None = None  # the screen reached, once built (lists cost)
        secret: list[int] = []
        screens = self.flow.screens
        for i, raw in enumerate(inputs):
            if state in screens and screens[state].secret:
                secret.append(i)
            state, reason = self._feed(state, view, raw.strip())
            content = self._content(state, view)
            if reason is not None or content.end:
                # A shortcut that stops being valid part way ends on the last valid screen,
                # with the reason; after a final screen later inputs have nowhere to go.
                # Inputs never read mean nothing: masked too, whatever they were.
                secret.extend(range(i + 1, len(inputs)))
                break
        text, end = self.render(state, view, reason, content)
        view.ctx.note = ""
        return Turn(state, view.ctx.dump(), text, end, tuple(secret))

    def _feed(self, state: str, view: View[Any], raw: str) -> tuple[str, str | None]:
        ctx = view.ctx
        if state == RESUME:
            return self._answer_resume(view, raw)
        screen = self.flow.screens[state]
        ctx.note = ""
        if screen.end:
            return state, None
        if raw == HOME and state != self.flow.home:
            return self._go(state, view, Go(HOME_EVENT)), None
        if screen.prompt is not None:
            # A screen that takes text has no rows to page and no choice to number: its flags
            # say all there is to know, so nothing of it is built to read the answer.
            if raw == BACK and screen.nav:
                return self._go(state, view, Go(BACK_EVENT)), None
            outcome = _checked(screen.parse(view, raw), screen.prompt.events)
        elif raw == BACK and screen.nav and not ctx.page:
            return self._go(state, view, Go(BACK_EVENT)), None  # no page to step back first
        elif raw in (BACK, MORE) or _numbered(screen):
            # Paging, or a numbered list: which page the rows are on, so the screen is built.
            content = self._content(state, view)
            pages, _ = self._pages_for(content, view)
            page = min(ctx.page, len(pages) - 1)
            if raw == BACK and screen.nav:
                if page > 0:
                    ctx.page = page - 1  # paging goes both ways: 0 steps back a page first
                    return state, None
                return self._go(state, view, Go(BACK_EVENT)), None
            if raw == MORE:
                if page + 1 < len(pages):
                    ctx.page = page + 1
                    return state, None
                return state, view.t("error.no_more")
            start, stop = pages[page]
            outcome = self._interpret(screen, view, raw, content.items[start:stop], content.options)
        else:
            # Only the choices are numbered, the same on every page (rows, if any, are read,
            # not chosen): they are all there is to read the answer by, and cost no screen.
            outcome = self._interpret(screen, view, raw, (), _options(screen, view))
        if isinstance(outcome, Invalid):
            return state, view.t(outcome.key, **outcome.args)
        return self._go(state, view, outcome), None

    def _answer_resume(self, view: View[Any], raw: str) -> tuple[str, str | None]:
        ctx = view.ctx
        if raw == "1" and ctx.resume in self.flow.screens:
            state, ctx.resume = ctx.resume, ""
            return state, None
        if raw in ("2", HOME):
            self._begin(view)
            return self.flow.home, None
        return RESUME, view.t("error.choice")

    def _interpret(
        self,
        screen: Screen[Any],
        view: View[Any],
        raw: str,
        rows: Sequence[Row],
        options: Sequence[Option],
    ) -> Outcome:
        """What answering ``raw`` chooses: one of the numbered ``rows`` shown (this page's),
        then one of the ``options`` numbered after them."""
        if not is_digits(raw):
            return Invalid()
        n = int(raw)
        if 1 <= n <= len(rows):
            declared = screen.rows
            assert declared is not None
            args = rows[n - 1].args
            if declared.do:
                return _checked(getattr(screen, declared.do)(view, **args), declared.events)
            return Go(declared.event, args)
        if len(rows) < n <= len(rows) + len(options):
            option = options[n - len(rows) - 1]
            if option.do:
                return _checked(getattr(screen, option.do)(view), option.events)
            return Go(option.event, option.args)
        return Invalid()

    def _go(self, state: str, view: View[Any], go: Go) -> str:
        """Move along the chart: the transition's target, after the context's effect."""
        ctx = view.ctx
        target = self.flow.target(state, go.event)
        effect = self.flow.effects.get(go.event)
        if effect is not None:
            effect(ctx, **go.args)
        if go.event == BACK_EVENT:
            ctx.page = ctx.pages.pop(target, 0)  # back to the page it was left at
        elif target != state:
            if ctx.page:
                ctx.pages[state] = ctx.page
            ctx.pages.pop(target, None)
            ctx.page = 0
        if target != state:
            only = self._only_choice(target, view)
            if only is not None:  # a choice of one: made for the subscriber, either way
                return self._go(target, view, Go(BACK_EVENT) if go.event == BACK_EVENT else only)
        return target

    def _only_choice(self, state: str, view: View[Any]) -> Go | None:
        """What choosing on ``state`` sends, when it is a ``skip_one`` screen with one choice."""
        screen = self.flow.screens.get(state)
        if screen is None or not screen.skip_one or screen.prompt is not None or screen.end:
            return None
        items = screen.items(view) if _numbered(screen) else ()  # counted, not built
        options = _options(screen, view)
        if len(items) + len(options) != 1:
            return None
        outcome = self._interpret(screen, view, "1", items, options)  # the one there is
        return outcome if isinstance(outcome, Go) else None  # refused: show the screen

    # --- what a screen shows ------------------------------------------------------------

    def _content(self, state: str, view: View[Any]) -> Content:
        if state == RESUME:
            t = view.t
            return Content(
                title=t("resume.title"),
                options=_RESUME_OPTIONS,
                actions=(t("resume.yes"), t("resume.again")),
                nav=False,
            )
        screen = self.flow.screens[state]
        key = screen.cache_key(view)
        if key is not None:
            key = (state, *key, view.lang, view.catalog.version, view.catalog.reading)
            cached = self._contents.get(key)
            if cached is not None:
                self._contents.move_to_end(key)
                return cached
        content = self._build(screen, view, key)
        if key is not None:
            self._remember(self._contents, key, content)
        return content

    def _build(self, screen: Screen[Any], view: View[Any], key: tuple[Any, ...] | None) -> Content:
        t = view.t
        values = dict(screen.values(view))
        names = (screen.elastic,) if isinstance(screen.elastic, str) else screen.elastic
        elastic = tuple(str(values.get(name, "")) for name in names if name)
        for i, name in enumerate(n for n in names if n):
            values[name] = MARK % i
        options = _options(screen, view)
        rows = screen.rows
        items = screen.items(view) if rows is not None else ()
        footer = screen.footer
        if footer and screen.footer_when and not getattr(screen, screen.footer_when)(view):
            footer = ""
        return Content(
            title=t(screen.title_key(view), **values),
            rows=[t(rows.line, **item.values) for item in items] if rows is not None else [],
            items=items,
            numbered=_numbered(screen),
            options=options,
            actions=[t(option.label, **values) for option in options],
            footer=t(footer, **values) if footer else "",
            nav=screen.nav,
            end=screen.end,
            text_input=screen.prompt is not None,
            reasons=screen.reasons,
            reason_args=values,
            elastic=elastic,
            row_line=rows.line if rows is not None else "",
            row_elastic=rows.elastic if rows is not None else "",
            row_fit=rows.fit if rows is not None else 0,
            cache_key=key,
        )

    def render(
        self, state: str, view: View[Any], reason: str | None = None, content: Content | None = None
    ) -> tuple[str, bool]:
        """The screen for ``state``, with ``reason`` (or a pending note) above it.

        The reason goes above the screen. Where the screen is too full for that (a Korean
        cart at 80 units), the reason takes the place of the title's first line instead:
        the subscriber has just seen the title, and the choices must stay exactly as shown.
        """
        if content is None:
            content = self._content(state, view)
        pages, rows = self._pages_for(content, view)
        page = min(view.ctx.page, len(pages) - 1) if state != RESUME else 0
        start, stop = pages[page]
        more = stop < len(rows)
        top = reason or view.ctx.note or None
        # A cached screen's page with nothing above it reads the same for every session.
        key = (content.cache_key, page) if content.cache_key is not None and not top else None
        if key is not None:
            shown = self._shown.get(key)
            if shown is not None:
                self._shown.move_to_end(key)
                return shown, content.end

        def layout(title: str, replace: bool = False) -> str:
            return self._compose(content, rows, view.t, title, start, stop, more, top, replace)

        text = layout(self._fit_title(content, view.t, layout))
        if top and not fits(text, self.budget):
            text = layout(self._fit_title(content, view.t, lambda t: layout(t, True)), True)
        if key is not None:
            self._remember(self._shown, key, text)
        return text, content.end

    def _compose(
        self,
        content: Content,
        rows: Sequence[str],
        t: Texts,
        title: str,
        start: int,
        stop: int,
        more: bool,
        top: str | None,
        replace: bool = False,
    ) -> str:
        heading = title.split("\n") if title else []
        if top:
            heading = [top, *heading[1:]] if replace else [top, *heading]
        lines = heading
        n = 0
        for row in rows[start:stop]:
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

    def _reserve(self, content: Content, view: View[Any]) -> str | None:
        """The longest line this screen may show above itself (a reason or a note)."""
        candidates = [view.t(key, **content.reason_args) for key in content.reasons]
        if view.ctx.note:
            candidates.append(view.ctx.note)
        if not candidates:
            return None
        return max(candidates, key=lambda line: measure(line).units)

    def _pages_for(
        self, content: Content, view: View[Any]
    ) -> tuple[list[tuple[int, int]], list[str]]:
        """The pages of the rows, and the rows as shown (a row too long alone, shortened)."""
        key = content.cache_key
        if key is not None:
            cached = self._pages.get(key)
            if cached is not None:
                self._pages.move_to_end(key)
                return cached
        reserve = self._reserve(content, view)
        title = _fill(content.title, ("",) * len(content.elastic))
        rows = list(content.rows)
        t = view.t

        # A compact list (``fit``) keeps its rows when a reason comes: the reason takes the
        # title's first line (as ``render`` does when it cannot go above), not a row's room.
        replace = content.row_fit > 0 and reserve is not None
        if replace and reserve is not None:
            first = title.split("\n", 1)[0]  # shown when no reason is: room for the longer
            reserve = max(reserve, first, key=lambda line: measure(line).units)

        def compose(start: int, stop: int, more: bool) -> str:
            return self._compose(content, rows, t, title, start, stop, more, reserve, replace)

        if content.row_fit > 1 and content.row_elastic and len(rows) > 1:

            def compose_rows(shown: list[str], stop: int) -> str:
                return self._compose(content, shown, t, title, 0, stop, True, reserve, replace)

            rows[:] = self._squeeze(content, t, compose_rows)
        pages = paginate(len(rows), compose, self.budget)
        for start, stop in pages:
            if stop - start != 1 or not content.row_elastic:
                continue
            more = stop < len(rows)

            def alone(line: str, index: int = start, more: bool = more) -> str:
                rows[index] = line
                return compose(index, index + 1, more)

            if not fits(alone(rows[start]), self.budget):
                rows[start] = self._shorten(content, t, start, alone)
        result = (pages, rows)
        if key is not None:
            self._remember(self._pages, key, result)
        return result

    def _squeeze(
        self, content: Content, t: Texts, compose: Callable[[list[str], int], str]
    ) -> list[str]:
        """The rows with their elastic values cut to the longest common width at which the
        ``row_fit`` longest rows share a page (with "more" below them), or to ``FIT_FLOOR``."""
        ellipsis = t("fmt.ellipsis")
        items = content.items
        name = content.row_elastic
        want = min(content.row_fit, len(items))

        def lines(width: int) -> list[str]:
            out = []
            for item in items:
                values = dict(item.values)
                value = str(values.get(name, ""))
                if len(value) > width:
                    value = value[: max(0, width - len(ellipsis))].rstrip() + ellipsis
                values[name] = value
                out.append(t(content.row_line, **values))
            return out

        def share_a_page(rows: list[str]) -> bool:
            widest = sorted(range(len(rows)), key=lambda i: measure(rows[i]).units)[-want:]
            return fits(compose([rows[i] for i in sorted(widest)], want), self.budget)

        widest = max(len(str(item.values.get(name, ""))) for item in items)
        if share_a_page(lines(widest)):
            return list(content.rows)
        low, high = FIT_FLOOR, widest  # find the widest width at which they share a page
        while low < high:
            middle = (low + high + 1) // 2
            if share_a_page(lines(middle)):
                low = middle
            else:
                high = middle - 1
        return lines(low)

    def _shorten(self, content: Content, t: Texts, index: int, alone: Callable[[str], str]) -> str:
        """Row ``index``, its elastic value cut until ``alone(row)`` (its page) fits."""
        values = dict(content.items[index].values)
        cut = str(values.get(content.row_elastic, ""))
        ellipsis = t("fmt.ellipsis")
        while True:
            values[content.row_elastic] = cut
            line = t(content.row_line, **values)
            if not cut or fits(alone(line), self.budget):
                return line
            cut = cut[: max(0, len(cut) - len(ellipsis) - 1)].rstrip()
            cut = cut + ellipsis if cut else ""

    def _fit_title(self, content: Content, t: Texts, layout: Callable[[str], str]) -> str:
        """The title with its elastic values shortened, first ones first, until
        ``layout(title)`` fits (or nothing elastic is left)."""
        values = list(content.elastic)
        if not values:
            return content.title
        ellipsis = t("fmt.ellipsis")
        while True:
            title = _fill(content.title, values)
            if fits(layout(title), self.budget) or not any(values):
                return title
            i = next(i for i, value in enumerate(values) if value)
            cut = values[i][: max(0, len(values[i]) - len(ellipsis) - 1)].rstrip()
            values[i] = cut + ellipsis if cut else ""

    def _remember(self, cache: OrderedDict[Any, Any], key: tuple[Any, ...], value: Any) -> None:
        cache[key] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)


def _fill(title: str, values: Sequence[str]) -> str:
    for i, value in enumerate(values):
        title = title.replace(MARK % i, value)
    return title


def _numbered(screen: Screen[Any]) -> bool:
    """Whether the screen's rows are choices (numbered before its options) or only read."""
    return screen.rows is not None and bool(screen.rows.event)


def _options(screen: Screen[Any], view: View[Any]) -> list[Option]:
    """The screen's choices that apply now (its ``when`` conditions)."""
    return [o for o in screen.options if not o.when or getattr(screen, o.when)(view)]


def _checked(outcome: Outcome, events: Sequence[str]) -> Outcome:
    if isinstance(outcome, Go) and outcome.event not in events:
        raise InvalidJourney(f"sent {outcome.event!r}, which it does not declare: {events}")
    return outcome


_RESUME_OPTIONS = (Option("resume.yes", "resume"), Option("resume.again", "again"))


def make_engine_factory(journey: Journey[Any], settings: Any) -> Callable[[Budget], Engine]:
    """One engine per screen budget (channels may differ), built on first use. The journey is
    compiled and checked now: a journey that contradicts itself never serves a hop."""
    flow_of(type(journey))
    engines: dict[Budget, Engine] = {}

    def engine_for(budget: Budget) -> Engine:
        engine = engines.get(budget)
        if engine is None:
            engine = engines[budget] = Engine(journey, budget, settings)
        return engine

    return engine_for
