"""A refusal in our words: the field and the rule, never the value sent.

Pydantic explains a refusal in its own words and quotes the value, which may be anything
(10,000 characters, a phone number). :func:`problems` words each refusal from its kind and
the rule's own figures, and describes what a field takes from the field's JSON Schema, the
one the OpenAPI document shows: "price must be at least 0", "status must be one of placed,
confirmed, ...", "from must be a date (YYYY-MM-DD) or a date-time (...)".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from store.fields import PATTERN_SAYS


@dataclass(frozen=True, slots=True)
class Problem:
    """One field refused: ``field`` names it (None: the whole body or row), ``reason`` says why."""

    field: str | None
    reason: str


def problems(error: ValidationError, shape: type[BaseModel]) -> list[Problem]:
    """``error``'s refusals of a ``shape``, one per field, in our words."""
    root = _schema(shape)
    fields: dict[tuple[str, ...], list[tuple[ErrorDetails, tuple[int | str, ...]]]] = {}
    found: list[Problem] = []
    for detail in error.errors(include_url=False, include_input=False, include_context=True):
        names, rest = _locate(root, detail["loc"])
        if detail["type"] == "extra_forbidden":
            found.append(Problem(None, f"unknown field {_cut(str(detail['loc'][-1]))}"))
            continue
        fields.setdefault(names, []).append((detail, rest))
    for names, details in fields.items():
        found.append(_problem(root, names, details))
    return found


def _problem(
    root: dict[str, Any],
    names: tuple[str, ...],
    details: Sequence[tuple[ErrorDetails, tuple[int | str, ...]]],
) -> Problem:
    field = names[-1] if names else None
    node = _at(root, names)
    name = field or "body"
    # A union's members each refuse the value; a member that refused only its type was not
    # what the client meant, so one member left says what is wrong, more say what would do.
    meant = [(d, rest) for d, rest in details if not (rest and _is_type(d["type"]))]
    if not meant or len({rest[:1] for _, rest in meant}) > 1:
        return Problem(field, f"{name} must be {_describe(root, node)}")
    detail = meant[0][0]
    kind, ctx = detail["type"], detail.get("ctx", {})
    if kind == "refused":
        return Problem(field, str(ctx["reason"]))
    if _is_type(kind):
        return Problem(field, f"{name} must be {_describe(root, node)}")
    return Problem(field, f"{name} {_WORDS.get(kind, _rule)(ctx)}")


def _rule(ctx: dict[str, Any]) -> str:
    return "is not a value this field takes"


def _too_short(ctx: dict[str, Any]) -> str:
    least = ctx["min_length"]
    return "must not be empty" if least == 1 else f"must be at least {least} characters long"


_WORDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda ctx: "is required",
    "string_unicode": lambda ctx: "is not valid Unicode text",
    "string_too_short": _too_short,
    "string_too_long": lambda ctx: f"is too long (at most {ctx['max_length']} characters)",
    "string_pattern_mismatch": lambda ctx: PATTERN_SAYS.get(ctx["pattern"], _rule(ctx)),
    "greater_than_equal": lambda ctx: f"must be at least {ctx['ge']}",
    "less_than_equal": lambda ctx: f"must be at most {ctx['le']}",
}


def _is_type(kind: str) -> bool:
    """Refused for what the value is, not for its worth: said by the field's type."""
    return kind.endswith("_type") or kind in _TYPE_ERRORS


_TYPE_ERRORS = {"int_parsing", "literal_error", "none_required", "null"}


@cache
def _schema(shape: type[BaseModel]) -> dict[str, Any]:
    return TypeAdapter(shape).json_schema()


def _locate(
    root: dict[str, Any], loc: tuple[int | str, ...]
) -> tuple[tuple[str, ...], tuple[int | str, ...]]:
    """The field names along ``loc``, and what follows them (a union member's tag)."""
    node: dict[str, Any] = root
    names: tuple[str, ...] = ()
    for i, part in enumerate(loc):
        properties = _deref(root, node).get("properties", {})
        if not isinstance(part, str) or part not in properties:
            return names, loc[i:]
        names, node = (*names, part), properties[part]
    return names, ()


def _at(root: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The schema of the field ``names`` lead to."""
    node = root
    for name in names:
        node = _deref(root, node)["properties"][name]
    return _deref(root, node)


def _deref(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        found: dict[str, Any] = root["$defs"][ref.rsplit("/", 1)[-1]]
        return found
    return node


_FORMATS = {
    "date": "a date (YYYY-MM-DD)",
    "date-time": "a date-time (RFC 3339, like 2024-05-01T08:00:00Z)",
}
_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "number": "a number",
}


def _describe(root: dict[str, Any], node: dict[str, Any]) -> str:
    """What a value of this schema is, as a refusal says it: "an integer", "one of a, b"."""
    node = _deref(root, node)
    if "anyOf" in node:
        return " or ".join(_describe(root, option) for option in node["anyOf"])
    if "enum" in node:
        return "one of " + ", ".join(map(str, node["enum"]))
    if node.get("format") in _FORMATS:
        return _FORMATS[node["format"]]
    return _TYPES.get(node.get("type", ""), "something else")


def _cut(text: str, most: int = 20) -> str:
    """A client's text quoted in a refusal, cut short: a reason names, it does not echo."""
    return text if len(text) <= most else text[:most] + "..."


def quoted(text: str) -> str:
    """A client's text quoted in a refusal, cut short (``'x'``, ``'aaaa...'``)."""
    return repr(_cut(text))
