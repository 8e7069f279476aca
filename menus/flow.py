"""A journey's declaration compiled to tables, and checked while it is compiled.

:class:`Flow` reads the chart's states and transitions into tables the engine runs, finds the
screen of each state and the context's effect of each event, and refuses (with
:class:`InvalidJourney`, one line per problem) a declaration that contradicts itself: every
state has a screen and every screen a state; every event a screen sends has a transition from
its state, and every transition is sent by some screen (or is the engine's ``back`` or
``go_home``); every ``on_<event>`` effect names an event; every text key a screen names exists
in both languages with the same placeholders; the funnel's steps are states. Each problem
names the screen, the key and the file. ``menus.check`` adds the budget check.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from menus.journey import InvalidJourney, Journey, Screen, _where, fingerprint
from menus.ports import LANGS
from menus.text import texts


class Flow:
    """A journey's declaration, compiled and checked: transition tables, screens, effects."""

    def __init__(self, journey: Journey[Any]) -> None:
        self.journey = journey
        self.home = journey.home
        chart = journey.chart
        self.states = [state.id for state in chart.states]
        self.targets: dict[str, dict[str, str]] = {}  # event -> source -> target
        problems = _chart_problems(chart)
        for state in chart.states:
            for transition in state.transitions:
                for event in transition.events:
                    self.targets.setdefault(str(event), {})[state.id] = transition.target.id
        self.screens: dict[str, Screen[Any]] = journey.screens()
        context = journey.context
        self.effects: dict[str, Callable[..., None]] = {
            event: getattr(context, f"on_{event}")
            for event in self.targets
            if hasattr(context, f"on_{event}")
        }
        lines = [f"{source} -{event}-> {target}" for event, by in self.targets.items()
                 for source, target in by.items()]  # fmt: skip
        self.version = fingerprint(sorted(lines) + self.states)
        problems += structure_problems(self)
        if problems:
            raise InvalidJourney("\n".join(problems))

    def target(self, state: str, event: str) -> str:
        target = self.targets.get(event, {}).get(state)
        if target is None:
            raise InvalidJourney(f"no transition {event!r} from {state!r}")
        return target


def _chart_problems(chart: type[Any]) -> list[str]:
    """What the tables cannot run faithfully: guards, several targets, chart callbacks."""
    problems = []
    name = chart.__name__
    callbacks = ("on_", "before_", "after_", "enter_", "exit_")
    odd = sorted(n for n, v in vars(chart).items() if n.startswith(callbacks) and callable(v))
    if odd:
        problems.append(f"{name}: callbacks {odd} on the chart: effects belong on the context")
    for state in chart.states:
        for transition in state.transitions:
            if list(transition.cond) or transition.internal or len(transition.targets) != 1:
                problems.append(f"{name}: {state.id}: only plain transitions, one target each")
    return problems


_FLOWS: dict[type[Journey[Any]], Flow] = {}


def flow_of(journey_class: type[Journey[Any]]) -> Flow:
    """The journey's flow, compiled (and checked) once per process."""
    flow = _FLOWS.get(journey_class)
    if flow is None:
        flow = _FLOWS[journey_class] = Flow(journey_class())
    return flow


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


def where(screen: Screen[Any]) -> str:
    return _where(type(screen))


def name(screen: Screen[Any]) -> str:
    return type(screen).__name__
