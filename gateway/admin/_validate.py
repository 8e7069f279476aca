"""Requests checked against their operation's schemas before a handler sees them.

The JSON Schema this reads is exactly the subset ``openapi.py`` writes: ``type`` (one or a
list), ``enum``, ``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``,
``format`` (date, date-time), ``properties``/``required``/``additionalProperties: false``,
``minProperties``/``maxProperties``, ``items`` and ``anyOf``. Every refusal is a
:class:`BadRequest` whose reason names the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from aiohttp import web

from gateway.admin.openapi import Operation, Param, Schema
from gateway.messages import BadRequest
from store.fields import PATTERN_SAYS

_ARTICLE = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_FORMATS = {
    "date": (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "a date (YYYY-MM-DD)"),
    "date-time": (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})",
        "a date-time (RFC 3339, like 2024-05-01T08:00:00Z)",
    ),
}


@dataclass(frozen=True, slots=True)
class Input:
    """A request's parameters and body, checked and typed by the schema."""

    path: Mapping[str, Any]
    query: Mapping[str, Any]
    headers: Mapping[str, Any]
    body: Any


async def read_input(op: Operation, request: web.Request) -> Input:
    """The request's input for ``op``, or :class:`BadRequest` saying what is wrong."""
    found: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}}
    for param in op.params:
        raw = _raw(param, request)
        if raw is not None:
            found[param.where][param.name] = check(param.schema, _from_text(param, raw), param.name)
        elif "default" in param.schema:
            found[param.where][param.name] = param.schema["default"]
    body = await _body(op, request) if op.body is not None else None
    return Input(found["path"], found["query"], found["header"], body)


def _raw(param: Param, request: web.Request) -> str | None:
    if param.where == "path":
        return request.match_info[param.name]
    given = (request.headers if param.where == "header" else request.query).getall(param.name, [])
    if len(given) > 1:
        raise BadRequest(f"{param.name} is given more than once")
    return given[0] if given else None


def _from_text(param: Param, text: str) -> object:
    """A parameter's text as the type its schema wants (integers; the rest stay strings)."""
    if "integer" in _types(param.schema):
        if re.fullmatch(r"-?[0-9]{1,12}", text):
            return int(text)
        raise BadRequest(f"{param.name} must be an integer")
    return text


async def _body(op: Operation, request: web.Request) -> Any:
    assert op.body is not None
    if request.content_type != op.body_type:
        raise BadRequest(f"send the body as {op.body_type}", 415)
    raw = await request.read()
    if not raw:
        raise BadRequest("the request needs a body")
    value: Any
    if op.body_type == "application/json":
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("the body is not JSON") from None
    else:
        try:
            value = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8 text") from None
    return check(op.body, value, "body")


def check(schema: Schema, value: Any, name: str) -> Any:
    """``value`` if ``schema`` allows it (integral floats become ints), else BadRequest."""
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                return check(option, value, name)
            except BadRequest:
                continue
        raise BadRequest(f"{name} must be {' or '.join(_describe(o) for o in schema['anyOf'])}")
    types = _types(schema)
    if types:
        value = _typed(types, value, name)
    if "enum" in schema and value not in schema["enum"]:
        raise BadRequest(f"{name} must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        _string(schema, value, name)
    elif isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise BadRequest(f"{name} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise BadRequest(f"{name} must be at most {schema['maximum']}")
    elif isinstance(value, dict):
        value = _object(schema, value, name)
    elif isinstance(value, list) and "items" in schema:
        value = [check(schema["items"], item, f"{name}[{i}]") for i, item in enumerate(value)]
    return value


def _types(schema: Schema) -> list[str]:
    types = schema.get("type", [])
    return [types] if isinstance(types, str) else list(types)


def _typed(types: list[str], value: Any, name: str) -> Any:
    for kind in types:
        if kind == "integer" and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind == "boolean" and isinstance(value, bool):
            return value
        elif kind == "null" and value is None:
            return value
        elif isinstance(value, _PYTHON.get(kind, ())):
            return value
    raise BadRequest(f"{name} must be {' or '.join(_ARTICLE[kind] for kind in types)}")


_PYTHON: dict[str, type | tuple[type, ...]] = {"string": str, "object": dict, "array": list}


def _string(schema: Schema, value: str, name: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: no database stores it
        raise BadRequest(f"{name} is not valid Unicode text") from None
    if len(value) < schema.get("minLength", 0):
        raise BadRequest(f"{name} must not be empty")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise BadRequest(f"{name} is too long (at most {schema['maxLength']} characters)")
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        says = PATTERN_SAYS.get(schema["pattern"], f"must match {schema['pattern']}")
        raise BadRequest(f"{name} {says}")
    if "format" in schema and not _is_format(schema["format"], value):
        raise BadRequest(f"{name} must be {_FORMATS[schema['format']][1]}")


@lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262: a final "$" does not match before a trailing newline.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _is_format(form: str, value: str) -> bool:
    if form not in _FORMATS or not re.fullmatch(_FORMATS[form][0], value):
        return form not in _FORMATS  # formats this subset does not know are annotations
    try:
        if form == "date":
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


def _describe(schema: Schema) -> str:
    if "format" in schema and schema["format"] in _FORMATS:
        return _FORMATS[schema["format"]][1]
    return " or ".join(_ARTICLE[kind] for kind in _types(schema)) or "something else"


def _object(schema: Schema, value: dict[str, Any], name: str) -> dict[str, Any]:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    for key in value:
        if key not in properties and schema.get("additionalProperties") is False:
            raise BadRequest(f"unknown field {_field(name, key)}")
    for key in schema.get("required", ()):
        if key not in value:
            raise BadRequest(f"{_field(name, key)} is required")
    fewest, most = schema.get("minProperties", 0), schema.get("maxProperties")
    if len(value) < fewest or (most is not None and len(value) > most):
        if fewest == most == 1:
            raise BadRequest(f"give exactly one of {', '.join(properties)}")
        raise BadRequest(f"{name} needs at least {fewest} of {', '.join(properties)}")
    return {
        key: check(properties[key], item, _field(name, key)) if key in properties else item
        for key, item in value.items()
    }


def _field(name: str, key: str) -> str:
    return key if name == "body" else f"{name}.{key}"
