"""One declaration per route drives its routing, its validation and its OpenAPI entry.

A :class:`Route` names its method, path, summary, handler, input model, answer and status
codes. The input is a pydantic model whose fields say where each comes from: ``PATH``,
``QUERY``, ``HEADER``, or the body (``JSON`` or ``CSV``). :func:`read` checks a request
against it (a refusal is a :class:`BadRequest` naming the field), :func:`respond` serialises
the handler's answer with the declared answer type, and ``openapi.py`` writes the OpenAPI
3.1 document from the same declarations.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from gateway.messages import BadRequest
from store.fields import Shown
from store.refusals import problems

PREFIX = "/admin/api"


@dataclass(frozen=True, slots=True)
class Param:
    """Where a parameter comes from."""

    where: Literal["path", "query", "header"]


@dataclass(frozen=True, slots=True)
class Body:
    """The request's body, of this media type."""

    media_type: str


PATH, QUERY, HEADER = Param("path"), Param("query"), Param("header")
JSON, CSV = Body("application/json"), Body("text/csv")


class Input(BaseModel):
    """A route's input: each field marked ``PATH``, ``QUERY``, ``HEADER``, ``JSON`` or ``CSV``.

    Every field is validated strictly: a parameter's type reads it from text itself, and a
    body is JSON's own types.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoInput(Input):
    pass


class Refusal(Shown):
    """A 4xx answer: why the request was refused, naming the field at fault."""

    error: str


In = TypeVar("In", bound=Input)
# What a handler gives back: an answer of the route's declared type, or a whole response.
Answer = web.StreamResponse | BaseModel | Sequence[BaseModel]


@dataclass(frozen=True, slots=True)
class Link:
    """An OpenAPI link: the answer holds (at ``where``) a parameter of another route."""

    to: str  # the other route's id
    param: str
    where: str  # a runtime expression, "$response.body#/sku"


@dataclass(frozen=True, slots=True)
class Route(Generic[In]):
    method: str
    path: str  # under PREFIX
    summary: str
    handler: Callable[[web.Request, In], Awaitable[Answer]]
    input: type[In]
    answer: Any = None  # a type pydantic serialises (None: the handler answers itself)
    answer_type: str = "application/json"
    status: int = 200
    errors: tuple[int, ...] = ()  # beyond 400, 401 (every route) and 415 (every body)
    links: tuple[Link, ...] = ()

    @property
    def id(self) -> str:
        """The operationId: the handler's name."""
        return self.handler.__name__


def place(field: FieldInfo) -> Param | Body:
    """Where an input field comes from, as its ``Annotated`` marker says."""
    found = [m for m in field.metadata if isinstance(m, Param | Body)]
    assert len(found) == 1, f"mark each input field once: PATH, QUERY, HEADER, JSON or CSV: {field}"
    return found[0]


async def read(route: Route[In], request: web.Request) -> In:
    """The request's input for ``route``, or :class:`BadRequest` saying what is wrong."""
    given: dict[str, object] = {}
    for name, field in route.input.model_fields.items():
        key = field.alias or name
        where = place(field)
        if isinstance(where, Body):
            given[key] = await _body(request, where.media_type)
        elif where.where == "path":
            given[key] = request.match_info[key]
        else:
            values = (request.headers if where.where == "header" else request.query).getall(key, [])
            if len(values) > 1:
                raise BadRequest(f"{key} is given more than once")
            if values:
                given[key] = values[0]
    try:
        return route.input.model_validate(given)
    except ValidationError as error:
        # The first problem, in our words: pydantic's quote the value, which may be anything.
        raise BadRequest(problems(error, route.input)[0].reason) from None


async def _body(request: web.Request, media_type: str) -> object:
    if request.content_type != media_type:
        raise BadRequest(f"send the body as {media_type}", 415)
    raw = await request.read()
    if not raw:
        raise BadRequest("the request needs a body")
    if media_type == "application/json":
        # json, not pydantic's parser: that one refuses a lone surrogate escape as not JSON,
        # where the field holding it can be named.
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("the body is not JSON") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None


def respond(route: Route[Any], answer: Answer) -> web.StreamResponse:
    """The handler's answer as the route declares it."""
    if isinstance(answer, web.StreamResponse):
        return answer
    body = _adapter(route.answer).dump_json(answer, by_alias=True)
    return web.Response(
        body=body, status=route.status, content_type=route.answer_type, charset="utf-8"
    )


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)
