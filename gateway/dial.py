"""Service codes and shortcut dials: ``*123*1*2#`` is ``*123#`` followed by inputs 1 and 2."""

from __future__ import annotations

from collections.abc import Sequence


def split_dial(dialled: str, base_codes: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The base service code and the shortcut inputs in what the subscriber dialled.

    ``dialled`` may come with or without the ``*``/``#`` (Hubtel's ``ServiceCode`` is
    ``714*5``). The longest configured base code that prefixes it wins; a code matching none
    is taken whole, with no shortcut.
    """
    segments = _segments(dialled)
    best: tuple[str, ...] = ()
    chosen = ""
    for base in base_codes:
        base_segments = _segments(base)
        if segments[: len(base_segments)] == base_segments and len(base_segments) > len(best):
            best, chosen = base_segments, base
    if not best:
        return _normal(segments), ()
    return chosen, tuple(segments[len(best) :])


def _segments(code: str) -> tuple[str, ...]:
    return tuple(part for part in code.strip().strip("*#").split("*") if part)


def _normal(segments: tuple[str, ...]) -> str:
    return "*" + "*".join(segments) + "#" if segments else ""
