"""Proof that a journey fits every screen: ``okryu flow check``.

Building the engine already checks the declaration (``menus.flow``). What needs a catalog is
checked here: :func:`budget_problems` renders every screen, page and re-prompt with worst-case
values (the journey's fullest context and the store's largest answers) at each screen budget,
and names the screen, its file and line, the language, page and reason that does not fit; and
a screen whose ``cache_key`` gives two of its samples the same key for different screens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from menus.engine import Engine
from menus.flow import Flow, name, structure_problems, where
from menus.journey import Screen, View
from menus.ports import LANGS, Catalog, Lang
from menus.screens import Budget, fits, measure


def budget_problems(
    flow: Flow, catalogs: Iterable[Catalog], budgets: Iterable[Budget], settings: Any
) -> list[str]:
    """Render every screen, page and re-prompt with worst-case values at every budget."""
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
    # A screen built once per key is shown to every session with that key: one sample whose
    # screen differs from another's under the same key means the key leaves something out.
    if content.cache_key is not None and engine._build(screen, view, content.cache_key) != content:
        problems.append(
            f"{where(screen)}: screen {name(screen)} ({lang}): its cache_key"
            f" {screen.cache_key(view)!r} leaves out something the screen shows; sessions"
            " with that key would see another session's screen"
        )
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


def all_problems(
    flow: Flow, catalogs: Sequence[Catalog], budgets: Sequence[Budget], settings: Any
) -> list[str]:
    """Everything ``okryu flow check`` proves."""
    return structure_problems(flow) + budget_problems(flow, catalogs, budgets, settings)


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.split("\n"))
