"""The admin API's OpenAPI 3.1 document, written from its routes' declarations.

Every shape is pydantic's JSON Schema of the model the route declares: the input's fields
become parameters and the request body, the answer the success response, and every 4xx a
:class:`~gateway.admin.api.Refusal` (or the shape given for its status). A model appears once,
under ``components/schemas``, by its class name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from gateway.admin.api import PREFIX, Body, Refusal, Route, place

_REF = "#/components/schemas/{model}"
_REASONS = {
    400: "Bad input: the reason names the field",
    401: "Missing or wrong bearer token",
    404: "No such row",
    409: "Conflicts with the current state: the reason says how",
    415: "Wrong content type",
    422: "The file has problems: each is listed with its line; nothing was written",
}


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every field or a null default."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None:
            del json_schema["default"]  # "absent", not a value to send
        return json_schema


def document(
    routes: Sequence[Route[Any]], refusals: Mapping[int, type[BaseModel]]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``; a 4xx answers a :class:`Refusal`, or the
    shape ``refusals`` gives for its status."""
    components: dict[str, Any] = {}

    def schema(kind: Any, mode: JsonSchemaMode, *, named: bool = True) -> dict[str, Any]:
        found = TypeAdapter(kind).json_schema(
            mode=mode, ref_template=_REF, schema_generator=_Schemas
        )
        shapes = found.pop("$defs", {})
        if named and isinstance(kind, type) and issubclass(kind, BaseModel):
            shapes[kind.__name__] = found
            found = {"$ref": _REF.format(model=kind.__name__)}
        for name, shape in shapes.items():
            assert components.setdefault(name, shape) == shape, f"two shapes named {name}"
        return found

    refused = {status: schema(shape, "serialization") for status, shape in refusals.items()}
    refused[0] = schema(Refusal, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = _operation(route, schema, refused)
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Okryu admin API",
            "version": "1",
            "description": "Catalog, stock, orders and the SMS outbox. Every route needs "
            '`Authorization: Bearer <OKRYU_ADMIN_TOKEN>`; errors answer {"error": reason}.',
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _operation(
    route: Route[Any],
    schema: Callable[..., dict[str, Any]],
    refused: Mapping[int, dict[str, Any]],
) -> dict[str, Any]:
    answer = {} if route.answer is None else schema(route.answer, "serialization")
    answers: dict[str, Any] = {
        str(route.status): {
            "description": route.summary,
            "content": {route.answer_type: {"schema": answer}},
        }
    }
    spec: dict[str, Any] = {"operationId": route.id, "summary": route.summary}
    # The input itself is no shape of the document: its fields are parameters and the body.
    properties = schema(route.input, "validation", named=False).get("properties", {})
    parameters = []
    refusals = {400, 401, *route.errors}
    for name, field in route.input.model_fields.items():
        key = field.alias or name
        where = place(field)
        if isinstance(where, Body):
            content = {where.media_type: {"schema": properties[key]}}
            spec["requestBody"] = {"required": True, "content": content}
            refusals.add(415)
            continue
        described = dict(properties[key])
        description = described.pop("description", None)
        parameters.append(
            {
                "name": key,
                "in": where.where,
                "required": where.where == "path" or field.is_required(),
                "schema": described,
                **({"description": description} if description else {}),
            }
        )
    if parameters:
        spec["parameters"] = parameters
    for status in sorted(refusals):
        answers[str(status)] = {
            "description": _REASONS[status],
            "content": {"application/json": {"schema": refused.get(status, refused[0])}},
        }
    answers["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if route.links:
        answers[str(route.status)]["links"] = {
            f"{link.to}.{link.param}": {
                "operationId": link.to,
                "parameters": {link.param: link.where},
            }
            for link in route.links
        }
    spec["responses"] = answers
    return spec
