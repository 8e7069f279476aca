"""Proof that a journey holds together, before it runs: ``okryu flow check``.

:func:`structure_problems` runs whenever an engine is built: every state has a screen and
every screen a state; every event a screen sends has a transition from its state, and every
transition is sent by some screen (or is the engine's ``back``/``go_home``); every ``on_<event>``
effect names an event; every text key a screen names exists in both languages with the same
placeholders; the funnel's steps are states. :func:`budget_problems` renders every screen,
page and re-prompt with worst-case values at each screen budget. Each problem names the
screen, the key and the file.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from menus.journey import Screen, _where
from menus.ports import LANGS, Catalog, Lang
from menus.screens import Budget, fits, measure
from menus.text import texts

if TYPE_CHECKING:
    from menus.engine import Flow

TEXT_FILES = {lang: f"menus/text/{lang}.toml" for lang in LANGS}
ENGINE_EVENTS = ("back", "go_home")  # sent by the engine for 0 and 00


def structure_problems(flow: Flow) -> list[str]:
    """Everything about the declaration that needs no catalog."""
    problems: list[str] = []
    journey = flow.journey
    chart = journey.chart.__name__
    screens = flow.screens
    states = set(flow.states)
    for state in flow.states:
        if state not in screens:
            base = journey.screen_base.__name__
            problems.append(
                f"state {state!r} of {chart} has no screen: declare a {base} subclass with"
                f" state = {state!r}"
            )
    for state, screen in screens.items():
        if state not in states:
            problems.append(
                f"{where(screen)}: screen {name(screen)}: no state {state!r} in {chart}"
            )
            continue
        problems += _screen_problems(flow, state, screen)
    for event, by_source in flow.targets.items():
        for source in by_source:
            sender = screens.get(source)
            if sender is None or event in ENGINE_EVENTS or event in sender.events():
                continue
            problems.append(
                f"{chart}: transition {event!r} from {source!r} is never sent: no option, row or"
                f" prompt of screen {name(sender)} ({where(sender)}) sends it"
            )
    for attribute in dir(journey.context):
        if attribute.startswith("on_") and attribute[3:] not in flow.targets:
            problems.append(
                f"{journey.context.__name__}.{attribute}: no event {attribute[3:]!r} in {chart}"
            )
    for step in journey.funnel:
        if step not in states:
            problems.append(f"{type(journey).__name__}.funnel: no state {step!r} in {chart}")
    if journey.home not in states:
        problems.append(f"{type(journey).__name__}.home: no state {journey.home!r} in {chart}")
    problems += text_problems(
        {key: screen for screen in screens.values() for key in screen.text_keys()}
    )
    return problems


def _screen_problems(flow: Flow, state: str, screen: Screen[Any]) -> list[str]:
    problems = []

    def here() -> str:  # reading the source for a line number costs: only for a problem
        return f"{where(screen)}: screen {name(screen)}"

    sources = {event for event, by_source in flow.targets.items() if state in by_source}
    for event in sorted(screen.events()):
        if event not in flow.targets:
            problems.append(f"{here()}: sends {event!r}, which is no event of the chart")
        elif event not in sources:
            problems.append(f"{here()}: sends {event!r}, which has no transition from {state!r}")
    if screen.end and (screen.options or screen.prompt or screen.events()):
        problems.append(f"{here()}: a last screen (end) takes no input")
    if screen.nav and not screen.end and "back" not in sources and state != flow.home:
        problems.append(f"{here()}: shows '0 Back' but the chart has no 'back' from {state!r}")
    if state != flow.home and "go_home" not in sources:
        problems.append(f"{here()}: the chart has no 'go_home' from {state!r}")
    methods = [(o.when, "when") for o in screen.options] + [(o.do, "do") for o in screen.options]
    if screen.rows is not None:
        methods.append((screen.rows.do, "do"))
    for method, kind in methods:
        if method and not callable(getattr(screen, method, None)):
            problems.append(f"{here()}: {kind}={method!r} is not a method of the screen")
    return problems


def text_problems(keys: Mapping[str, Screen[Any]]) -> list[str]:
    """Each key (with the screen that uses it) in both languages, with the same placeholders;
    and both catalogs with the same keys and placeholders."""
    problems = []
    catalogs = {lang: texts(lang) for lang in LANGS}
    for key, screen in sorted(keys.items()):
        for lang, catalog in catalogs.items():
            if key not in catalog.keys():
                problems.append(
                    f"{TEXT_FILES[lang]}: no text {key!r} (used by screen {name(screen)},"
                    f" {where(screen)})"
                )
    first, *others = LANGS
    for other in others:
        for key in sorted(catalogs[first].keys() | catalogs[other].keys()):
            a, b = catalogs[first], catalogs[other]
            if key not in a.keys() or key not in b.keys():
                lang = first if key not in a.keys() else other
                if key not in keys:
                    problems.append(f"{TEXT_FILES[lang]}: no text {key!r} (the other has it)")
                continue
            if placeholders(a.template(key)) != placeholders(b.template(key)):
                problems.append(
                    f"{TEXT_FILES[other]}: text {key!r} has placeholders"
                    f" {sorted(placeholders(b.template(key)))}, {TEXT_FILES[first]} has"
                    f" {sorted(placeholders(a.template(key)))}"
                )
    return problems


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def budget_problems(
    flow: Flow, catalogs: Iterable[Catalog], budgets: Iterable[Budget], settings: Any
) -> list[str]:
    """Render every screen, page and re-prompt with worst-case values at every budget."""
    from menus.engine import Engine
    from menus.journey import View

    problems: list[str] = []
    journey = flow.journey
    msisdn = "+8501912345678"
    for catalog in catalogs:
        for budget in budgets:
            engine = Engine(journey, budget, settings)
            for lang in LANGS:
                base = {**journey.worst_case(catalog), "lang": lang}
                answers = journey.answers(catalog, msisdn)
                for state, screen in flow.screens.items():
                    probe = View(
                        msisdn=msisdn,
                        session_ref="check",
                        ctx=journey.context.load(base),
                        catalog=catalog,
                        data=answers,
                        settings=settings,
                    )
                    for changes in screen.samples(probe):
                        view = View(
                            msisdn=msisdn,
                            session_ref="check",
                            ctx=journey.context.load({**base, **changes}),
                            catalog=catalog,
                            data=answers,
                            settings=settings,
                        )
                        problems += _render_problems(engine, state, screen, view, budget, lang)
    return sorted(set(problems))


def _render_problems(
    engine: Any, state: str, screen: Screen[Any], view: Any, budget: Budget, lang: Lang
) -> list[str]:
    try:
        content = engine._content(state, view)
        pages, rows = engine._pages_for(content, view)
    except KeyError as error:
        return [f"{where(screen)}: screen {name(screen)}: no value for placeholder {error}"]
    problems = []
    for page in range(len(pages)):
        view.ctx.page = page
        for key in (None, *content.reasons):
            reason = None if key is None else view.t(key, **content.reason_args)
            text, _ = engine.render(state, view, reason, content)
            if not fits(text, budget):
                units = measure(text)
                problems.append(
                    f"{where(screen)}: screen {name(screen)} ({lang}, page {page + 1},"
                    f" reason {key or 'none'}) needs {units.units} {units.encoding} units;"
                    f" the budget is {budget.limit(units.encoding)}:\n{_indent(text)}"
                )
    if sum(stop - start for start, stop in pages) != len(rows):
        problems.append(f"{where(screen)}: screen {name(screen)}: rows lost in pagination")
    return problems


def where(screen: Screen[Any]) -> str:
    return _where(type(screen))


def name(screen: Screen[Any]) -> str:
    return type(screen).__name__


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.split("\n"))


def all_problems(
    flow: Flow, catalogs: Sequence[Catalog], budgets: Sequence[Budget], settings: Any
) -> list[str]:
    """Everything ``okryu flow check`` proves."""
    return structure_problems(flow) + budget_problems(flow, catalogs, budgets, settings)
