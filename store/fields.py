"""What a field staff write may hold: pydantic types and the bases of the admin's shapes.

A text's width is the width of the column that keeps it (``store/models.py``), a count fits
an INTEGER column, and no text holds a control character. The same types check an admin
request and a CSV row, so both refuse the same values (in the same words:
``store/refusals.py``), and the admin API's OpenAPI document is generated from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from store.models import MAX_INT

NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
# English texts, shown on GSM-7 screens: printable ASCII but the backtick, which GSM-7 lacks.
ASCII = r"^[\x20-\x5f\x61-\x7e]*$"
SLUG = r"^[a-z0-9][a-z0-9-]*$"
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
ORDER_CODE = r"^[0-9A-Za-z]+$"
STAFF_NAME = r"^[A-Za-z0-9._@-]+$"
PIN = r"^[0-9]{4,6}$"  # a shop card's PIN (never shown back, never logged)
CARD_NUMBER = r"^[0-9]{12}$"
COUNTER_REF = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"  # a top-up's reference at the counter
# What a value that does not match a pattern is told (store/refusals.py says it).
PATTERN_SAYS = {
    NO_CONTROLS: "must not contain control characters",
    ASCII: "must be printable ASCII without ` (GSM-7)",
    SLUG: "must be lower-case letters, digits and '-', starting with a letter or digit",
    SKU: "must be letters, digits, '.', '_' and '-', starting with a letter or digit",
    ORDER_CODE: "must be letters and digits",
    STAFF_NAME: "must be letters, digits, '.', '_', '@' and '-'",
    PIN: "must be 4 to 6 digits",
    CARD_NUMBER: "must be the 12 digits printed on the card",
    COUNTER_REF: "must be letters, digits, '.', '_', '/' and '-', starting with a letter or digit",
}


def _whole(value: object) -> object:
    # JSON Schema's integers include 1.0, so a client may send one; a fraction is still refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Bounds go before a BeforeValidator: after it, pydantic checks them but leaves them out of
# the JSON Schema (or writes them as "ge" and "le", which JSON Schema does not know).
Whole = BeforeValidator(_whole)
Text = Annotated[str, Field(pattern=NO_CONTROLS)]
English = Annotated[str, Field(pattern=ASCII)]  # shown on GSM-7 screens
Count = Annotated[int, Field(ge=0, le=MAX_INT), Whole]
RowId = Annotated[int, Field(ge=1, le=MAX_INT), Whole]
# Left out: None in Python, and not offered to a client (the document has no null for it).
Absent = SkipJsonSchema[None]


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# A stored time (naive UTC) shown as RFC 3339 in UTC: "2024-05-01T08:00:00Z".
UtcTime = Annotated[datetime, AfterValidator(_as_utc)]


class Written(BaseModel):
    """What staff write, a request body or a CSV row: strict types, no field it does not know.

    Null is never a value: a field that may be left out is ``<type> | Absent = None``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # refused as a value of the wrong type: said by the field's type
            raise PydanticCustomError("null", "null")
        return value


class Patch(Written):
    """Changes to a row: at least one field; a field left out stays as it is."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="before")
    @classmethod
    def _at_least_one(cls, given: object) -> object:
        if isinstance(given, dict) and not given:
            raise refused(f"give at least one of {', '.join(cls.model_fields)}")
        return given


class Shown(BaseModel):
    """An answer's shape: a row as staff see it (read from its attributes), a page, a report.

    Its schema says no other field is ever there, so a client may rely on that.
    """

    model_config = ConfigDict(
        from_attributes=True, frozen=True, json_schema_extra={"additionalProperties": False}
    )


def refused(reason: str) -> PydanticCustomError:
    """A refusal raised by a validator of ours, in our words (which must not quote input).

    :func:`store.refusals.problems` passes the reason on as it is.
    """
    return PydanticCustomError("refused", "{reason}", {"reason": reason})
