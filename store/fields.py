"""What a writable admin field may hold: one :class:`Spec` row per field.

The API derives its request schema from the specs and CSV rows are checked by them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import SQLModel

from menus.screens import is_gsm7
from store.errors import InvalidField
from store.models import MAX_INT

Value = str | int | bool
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
# English texts, shown on GSM-7 screens: printable ASCII but the backtick, which GSM-7 lacks.
ASCII = r"^[\x20-\x5f\x61-\x7e]*$"
SLUG = r"^[a-z0-9][a-z0-9-]*$"
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# What a value that does not match a pattern is told.
PATTERN_SAYS = {
    NO_CONTROLS: "must not contain control characters",
    ASCII: "must be printable ASCII without ` (GSM-7)",
    SLUG: "must be lower-case letters, digits and '-', starting with a letter or digit",
    SKU: "must be letters, digits, '.', '_' and '-', starting with a letter or digit",
}


def column_length(table: type[SQLModel], name: str) -> int:
    """The width of a VARCHAR column, as PostgreSQL enforces it."""
    length = getattr(table.__table__.c[name].type, "length", None)  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


@dataclass(frozen=True, slots=True)
class Spec:
    """One writable field. ``kind="category"`` is a category's slug, or its id in JSON."""

    name: str
    kind: Literal["string", "integer", "boolean", "category"]
    max_length: int | None = None
    min_length: int = 0
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    gsm7: bool = False
    required: bool = False
    default: Value | None = None

    def check(self, value: object) -> Value:
        """``value`` if it is usable for this field, else :class:`Invalid` naming the field."""
        name = self.name
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise InvalidField(name, f"{name} must be true or false")
            return value
        if self.kind == "integer" or (self.kind == "category" and not isinstance(value, str)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidField(name, f"{name} must be an integer")
            if self.minimum is not None and value < self.minimum:
                raise InvalidField(name, f"{name} must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidField(name, f"{name} must be at most {self.maximum}")
            return value
        if not isinstance(value, str):
            raise InvalidField(name, f"{name} must be a string")
        if len(value) < self.min_length:
            raise InvalidField(name, f"{name} must not be empty")
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidField(name, f"{name} is too long (at most {self.max_length} characters)")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):  # anchored
            raise InvalidField(name, f"{name} {PATTERN_SAYS.get(self.pattern, 'has a wrong form')}")
        if self.gsm7 and not is_gsm7(value):
            raise InvalidField(name, f"{name} must use only GSM-7 characters (plain ASCII)")
        return value

    def parse(self, text: str) -> Value:
        """A CSV cell read as this field's type, then checked."""
        if self.kind == "boolean":
            flag = _FLAGS.get(text.strip().lower())
            if flag is None:
                raise InvalidField(self.name, f"{self.name} must be true or false, not {text!r}")
            return flag
        if self.kind == "integer":
            if not re.fullmatch(r"\s*-?[0-9]{1,12}\s*", text):
                raise InvalidField(self.name, f"{self.name} must be an integer, not {text!r}")
            return self.check(int(text))
        return self.check(text)


_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def text_field(table: type[SQLModel], name: str, *, gsm7: bool = False, **kw: Any) -> Spec:
    pattern = ASCII if gsm7 else NO_CONTROLS
    return Spec(
        name, "string", max_length=column_length(table, name), pattern=pattern, gsm7=gsm7, **kw
    )


def count_field(name: str, **kw: Any) -> Spec:
    return Spec(name, "integer", minimum=0, maximum=MAX_INT, **kw)


def check_fields(
    specs: Sequence[Spec], values: Mapping[str, object], *, partial: bool = False
) -> dict[str, Value]:
    """The values checked field by field; unknown fields and missing required ones refused."""
    known = {s.name: s for s in specs}
    for name in values:
        if name not in known:
            raise InvalidField(name, f"unknown field {name}")
    checked: dict[str, Value] = {}
    for spec in specs:
        if spec.name in values:
            checked[spec.name] = spec.check(values[spec.name])
        elif not partial and spec.required:
            raise InvalidField(spec.name, f"{spec.name} is required")
        elif not partial and spec.default is not None:
            checked[spec.name] = spec.default
    return checked
