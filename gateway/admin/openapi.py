"""The admin API's contract, declared once: the OpenAPI 3.1 document and request validation.

Each :class:`Operation` names its parameters, body and answers as JSON Schema. The document
served at ``/admin/api/openapi.json`` is built from these declarations, every request is
checked against the same schemas before its handler runs (``gateway/admin/_validate.py``),
and the catalog's fields come from the store's :class:`~store.fields.Spec` rows, whose
lengths come from the table columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from store import catalog_edits as edits
from store import outbox_queries
from store.fields import NO_CONTROLS, Spec, column_length
from store.lifecycle import STATUSES
from store.models import MAX_INT, OrderEvent

PREFIX = "/admin/api"
Schema = Mapping[str, Any]
STAFF_HEADER = "X-Okryu-Staff"
STAFF_PREFIX = "staff:"
MAX_PAGE = 200


def field_schema(spec: Spec) -> dict[str, Any]:
    """The JSON Schema of one store field."""
    if spec.kind == "boolean":
        return {"type": "boolean"}
    schema: dict[str, Any] = {}
    if spec.kind in ("integer", "category"):
        schema.update(type="integer", minimum=spec.minimum, maximum=spec.maximum)
    if spec.kind in ("string", "category"):
        schema.update(type="string", maxLength=spec.max_length, pattern=spec.pattern)
        if spec.min_length:
            schema["minLength"] = spec.min_length
    if spec.kind == "category":
        schema["type"] = ["string", "integer"]
        schema["description"] = "the category's slug, or its id"
    return {key: value for key, value in schema.items() if value is not None}


def object_schema(specs: Sequence[Spec], *, partial: bool = False) -> dict[str, Any]:
    """A JSON object of these fields: all optional (at least one) when ``partial``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {spec.name: field_schema(spec) for spec in specs},
        "additionalProperties": False,
    }
    if partial:
        schema["minProperties"] = 1
    else:
        schema["required"] = [spec.name for spec in specs if spec.required]
    return schema


def _record(**properties: Schema) -> dict[str, Any]:
    """An answer's object: every property always present, nothing else."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _page(item: Schema) -> dict[str, Any]:
    cursor = {"type": ["integer", "null"], "description": "pass as cursor for the next page"}
    return _record(items={"type": "array", "items": item}, next_cursor=cursor)


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
MAYBE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
MAYBE_STRING: Schema = {"type": ["string", "null"]}
MAYBE_INTEGER: Schema = {"type": ["integer", "null"]}

ERROR = _record(error=STRING)
ROW_ERROR = _record(line=INTEGER, field=MAYBE_STRING, reason=STRING)
IMPORT_ERROR = _record(error=STRING, errors={"type": "array", "items": ROW_ERROR})
CATEGORY = _record(id=INTEGER, **{s.name: field_schema(s) for s in edits.CATEGORY_FIELDS})
# Answers always give the category's slug.
PRODUCT = _record(
    id=INTEGER,
    **{s.name: STRING if s.kind == "category" else field_schema(s) for s in edits.PRODUCT_FIELDS},
)
ORDER_FIELDS: dict[str, Schema] = {
    "code": STRING,
    "status": {"type": "string", "enum": list(STATUSES)},
    "msisdn": STRING,
    "subtotal": INTEGER,
    "fee": INTEGER,
    "total": INTEGER,
    "payment_method": STRING,
    "language": STRING,
    "created_at": TIME,
    "updated_at": TIME,
}
ORDER = _record(**ORDER_FIELDS)
ORDER_DETAIL = _record(
    **ORDER_FIELDS,
    address=STRING,
    zone={"anyOf": [_record(id=INTEGER, name_en=STRING, name_ko=STRING), {"type": "null"}]},
    lines={
        "type": "array",
        "items": _record(
            product_id=INTEGER,
            sku=MAYBE_STRING,
            name_en=STRING,
            name_ko=STRING,
            unit_price=INTEGER,
            quantity=INTEGER,
        ),
    },
    history={
        "type": "array",
        "items": _record(status=STRING, actor=STRING, note=STRING, at=TIME),
    },
)
MESSAGE = _record(
    id=INTEGER,
    to=STRING,
    body=STRING,
    kind=STRING,
    order_id=MAYBE_INTEGER,
    status={"type": "string", "enum": list(outbox_queries.OUTBOX_STATUSES)},
    attempts=INTEGER,
    next_attempt_at=TIME,
    provider=MAYBE_STRING,
    provider_message_id=MAYBE_STRING,
    last_error=MAYBE_STRING,
    created_at=TIME,
    sent_at=MAYBE_TIME,
    delivered_at=MAYBE_TIME,
)
IMPORTED = _record(created=INTEGER, updated=INTEGER)
STOCK_CHANGE: Schema = {
    "type": "object",
    "properties": {
        "delta": {"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT},
        "set": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
    },
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}
STATUS_CHANGE: Schema = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": [s for s in STATUSES if s != "placed"]},
        "note": {
            "type": "string",
            "maxLength": column_length(OrderEvent, "note"),
            "pattern": NO_CONTROLS,
        },
    },
    "required": ["status"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    schema: Schema
    description: str = ""


def _path(name: str, schema: Schema, description: str) -> Param:
    return Param(name, "path", schema, description)


SKU = _path("sku", field_schema(edits.PRODUCT_FIELDS[0]), "the product's sku")
SLUG = _path("slug", field_schema(edits.CATEGORY_FIELDS[0]), "the category's slug")
CODE = _path("code", {"type": "string", "pattern": "^[0-9A-Za-z]{1,12}$"}, "the order code")
MESSAGE_ID = _path("id", {"type": "integer", "minimum": 1, "maximum": MAX_INT}, "message id")
LIMIT = Param(
    "limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50}
)
CURSOR = Param(
    "cursor",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "next_cursor of the page before",
)
DAY_OR_TIME: Schema = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One route: what it takes, what it answers, and which errors it may give."""

    id: str  # the operationId, and the handler's name
    method: str
    path: str
    summary: str
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    body_type: str = "application/json"
    status: int = 200
    answer: Schema | None = None
    answer_type: str = "application/json"
    errors: tuple[int, ...] = ()
    # OpenAPI links: (operation id, its parameter, where the answer holds the value)
    links: tuple[tuple[str, str, str], ...] = ()


def _op(id: str, method: str, path: str, summary: str, **kw: Any) -> Operation:
    return Operation(id, method, PREFIX + path, summary, **kw)


CSV: Schema = {
    "type": "string",
    "minLength": 1,
    "examples": [
        "sku,category,name_en,name_ko,price,stock\r\nFD-TEA,food,Green tea,록차,3000,12\r\n"
    ],
}


def _to_product(at: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((op, "sku", at) for op in ("get_product", "update_product", "adjust_stock"))


OPERATIONS: tuple[Operation, ...] = (
    _op("openapi", "GET", "/openapi.json", "This document", answer={"type": "object"}),
    _op("list_categories", "GET", "/categories", "Every category, active or not, in menu order",
        answer={"type": "array", "items": CATEGORY}),
    _op("create_category", "POST", "/categories", "Add a category",
        body=object_schema(edits.CATEGORY_FIELDS), status=201, answer=CATEGORY, errors=(409,),
        links=(("update_category", "slug", "$response.body#/slug"),)),
    _op("update_category", "PATCH", "/categories/{slug}",
        "Change a category's names, position or active flag ({\"active\": false} deactivates)",
        params=(SLUG,), body=object_schema(edits.CATEGORY_EDITABLE, partial=True),
        answer=CATEGORY, errors=(404,)),
    _op("list_products", "GET", "/products", "Every product, active or not, in menu order",
        params=(Param("category", "query", field_schema(edits.CATEGORY_FIELDS[0]), "slug"),),
        answer={"type": "array", "items": PRODUCT}),
    _op("create_product", "POST", "/products", "Add a product",
        body=object_schema(edits.PRODUCT_FIELDS), status=201, answer=PRODUCT, errors=(409,),
        links=_to_product("$response.body#/sku")),
    _op("get_product", "GET", "/products/{sku}", "One product", params=(SKU,), answer=PRODUCT,
        errors=(404,)),
    _op("update_product", "PATCH", "/products/{sku}",
        "Change a product ({\"active\": false} deactivates; stock moves through /stock)",
        params=(SKU,), body=object_schema(edits.PRODUCT_EDITABLE, partial=True),
        answer=PRODUCT, errors=(404,)),
    _op("adjust_stock", "POST", "/products/{sku}/stock",
        "Move stock by delta ({\"delta\": -3}) or set it ({\"set\": 10}); never below zero",
        params=(SKU,), body=STOCK_CHANGE, answer=PRODUCT, errors=(404, 409)),
    _op("export_catalog", "GET", "/catalog.csv", "Every product as CSV",
        answer=CSV, answer_type="text/csv"),
    _op("import_catalog", "POST", "/catalog.csv",
        "Upsert products by sku from CSV, all or nothing; problems are reported per line",
        body=CSV, body_type="text/csv", answer=IMPORTED, errors=(422,)),
    _op("list_orders", "GET", "/orders", "Orders, newest first, filtered",
        params=(
            Param("status", "query", ORDER_FIELDS["status"]),
            Param("from", "query", DAY_OR_TIME, "created at or after (a date: from its start)"),
            Param("to", "query", DAY_OR_TIME, "created before (a date: up to its end)"),
            Param("phone", "query", {"type": "string", "maxLength": 32}, "the customer's number"),
            LIMIT,
            CURSOR,
        ),
        answer=_page(ORDER),
        links=tuple((op, "code", "$response.body#/items/0/code")
                    for op in ("get_order", "change_order_status"))),
    _op("get_order", "GET", "/orders/{code}", "One order with its lines and history",
        params=(CODE,), answer=ORDER_DETAIL, errors=(404,)),
    _op("change_order_status", "POST", "/orders/{code}/status",
        "Confirm, dispatch, deliver or cancel (restocks); the customer is told by SMS",
        params=(
            CODE,
            Param(
                STAFF_HEADER,
                "header",
                {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9._@-]+$",
                    "maxLength": column_length(OrderEvent, "actor") - len(STAFF_PREFIX),
                },
                "who makes the change (recorded in the history)",
            ),
        ),
        body=STATUS_CHANGE, answer=ORDER_DETAIL, errors=(404, 409)),
    _op("list_outbox", "GET", "/outbox", "Outbound SMS, newest first",
        params=(Param("status", "query", MESSAGE["properties"]["status"]), LIMIT, CURSOR),
        answer=_page(MESSAGE), links=(("retry_message", "id", "$response.body#/items/0/id"),)),
    _op("funnel", "GET", "/reports/funnel",
        "Sessions that reached each step of the order journey in a period, and the drop-off",
        params=(
            Param("from", "query", DAY_OR_TIME, "the start (default: a day before the end)"),
            Param("to", "query", DAY_OR_TIME, "the period's end (default: now)"),
        ),
        answer=_record(**{"from": TIME, "to": TIME}, steps={"type": "array", "items": _record(
            screen=STRING, sessions=INTEGER, dropped=INTEGER)})),
    _op("stats", "GET", "/stats", "The live hop rate of this process; orders and SMS by status",
        answer=_record(hops_per_second={"type": "number"},
                       orders={"type": "object", "additionalProperties": INTEGER},
                       sms={"type": "object", "additionalProperties": INTEGER})),
    _op("retry_message", "POST", "/outbox/{id}/retry",
        "Queue a failed message again, due now, its attempts reset",
        params=(MESSAGE_ID,), answer=MESSAGE, errors=(404, 409)),
)  # fmt: skip

_REASONS = {
    400: "Bad input: the reason names the field",
    401: "Missing or wrong bearer token",
    404: "No such row",
    409: "Conflicts with the current state: the reason says how",
    415: "Wrong content type",
    422: "The file has problems: each is listed with its line; nothing was written",
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Okryu admin API",
            "version": "1",
            "description": "Catalog, stock, orders and the SMS outbox. Every route needs "
            '`Authorization: Bearer <OKRYU_ADMIN_TOKEN>`; errors answer {"error": reason}.',
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _operation(op: Operation) -> dict[str, Any]:
    answers: dict[str, Any] = {
        str(op.status): {
            "description": op.summary,
            "content": {op.answer_type: {"schema": op.answer or {}}},
        }
    }
    errors = {400, 401, *op.errors}
    if op.body is not None:
        errors.add(415)
    for status in sorted(errors):
        schema = IMPORT_ERROR if status == 422 else ERROR
        answers[str(status)] = {
            "description": _REASONS[status],
            "content": {"application/json": {"schema": schema}},
        }
    answers["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if op.links:
        answers[str(op.status)]["links"] = {
            f"{target}.{param}": {"operationId": target, "parameters": {param: where}}
            for target, param, where in op.links
        }
    spec: dict[str, Any] = {"operationId": op.id, "summary": op.summary, "responses": answers}
    if op.params:
        spec["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": {op.body_type: {"schema": op.body}}}
    return spec
