"""The admin API over HTTP, on the real app, real Redis and a real database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, TypeAdapter
from sqlmodel import SQLModel, col, select

from gateway import keys
from gateway.admin.shapes import StatusChange
from gateway.app import create_app
from gateway.settings import Settings, SettingsError
from menus.sms import status_changed
from store.catalog_edits import CategoryIn, CategoryPatch, ProductIn, ProductPatch
from store.db import Database
from store.models import Category, OrderEvent, OutboundMessage, Product, utcnow
from store.orders import place_order
from store.outbox import mark_failed
from tests.admin.conftest import TOKEN
from tests.gateway.test_ussd import MSISDN, ORDER_PATH, post, walk
from tests.store.factories import first_zone, order_request, product_by_sku, render

Make = Callable[..., Awaitable[TestClient[Any, Any]]]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/admin/api"
NOODLES = "FD-CORNNOODLE"  # the first product of the first category


async def call(
    client: TestClient[Any, Any], method: str, path: str, *, status: int = 200, **kw: Any
) -> Any:
    """One authorised request; asserts the status and returns the JSON answer."""
    headers = {**AUTH, **kw.pop("headers", {})}
    response = await client.request(method, API + path, headers=headers, **kw)
    body = await response.text()
    assert response.status == status, body
    assert response.content_type == "application/json"
    return await response.json()


async def place_by_ussd(client: TestClient[Any, Any], prefix: tuple[str, ...] = ()) -> str:
    """An order placed through USSD hops, as a subscriber would; its code."""
    path = [*prefix, *ORDER_PATH]
    await walk(client, path)
    _, body = await post(client, "*".join([*path, "1"]))
    assert body.startswith("END Order ") or body.startswith("END 주문"), body
    return body.split()[2]


async def sms_to(db: Database, to: str = MSISDN) -> list[tuple[str, str]]:
    async with db.session() as s:
        rows = (
            await s.exec(
                select(OutboundMessage)
                .where(OutboundMessage.to == to)
                .order_by(col(OutboundMessage.id))
            )
        ).all()
    return [(row.kind, row.body) for row in rows]


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wr0ng", "Bearer t0ken2", "Bearer ", "Basic t0ken", "t0ken", "Bearer\tt0ken"],
)
async def test_admin_refuses_a_missing_or_wrong_token_with_401(
    admin: TestClient[Any, Any], caplog: pytest.LogCaptureFixture, authorization: str | None
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/products", "/orders", "/openapi.json", "/no-such-route"):
        response = await admin.get(API + path, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert await response.json() == {"error": "missing or wrong bearer token"}
    assert (await admin.get(API + "/products", headers=AUTH)).status == 200
    assert TOKEN not in caplog.text and "wr0ng" not in caplog.text


def test_admin_refuses_to_start_without_a_token_outside_demo_mode() -> None:
    with pytest.raises(SettingsError, match="OKRYU_ADMIN_TOKEN"):
        create_app(Settings(demo=False))
    create_app(Settings(demo=False, admin_token=TOKEN))  # with one it starts


async def test_admin_demo_mode_without_a_token_takes_the_demo_token(
    make_gateway: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = await make_gateway(demo=True, admin_token="")
    assert "demo token" in caplog.text
    ok = await client.get(API + "/categories", headers={"Authorization": "Bearer demo"})
    assert ok.status == 200
    assert (await client.get(API + "/categories", headers=AUTH)).status == 401


def test_admin_token_is_read_from_the_environment_and_kept_out_of_repr() -> None:
    settings = Settings.from_env({"OKRYU_ADMIN_TOKEN": " s3cret "})
    assert settings.admin_token == "s3cret"
    assert "s3cret" not in repr(settings)


# --- catalog --------------------------------------------------------------------------------


async def test_admin_category_create_update_deactivate_round_trip(
    admin: TestClient[Any, Any],
) -> None:
    made = await call(
        admin,
        "POST",
        "/categories",
        status=201,
        json={"slug": "toys", "name_en": "Toys", "name_ko": "장난감", "position": 90},
    )
    assert made["slug"] == "toys" and made["active"] is True
    again = await call(
        admin,
        "POST",
        "/categories",
        status=409,
        json={"slug": "toys", "name_en": "Toys", "name_ko": "장난감"},
    )
    assert again == {"error": "category toys already exists"}
    changed = await call(admin, "PATCH", "/categories/toys", json={"active": False})
    assert changed == {**made, "active": False}
    listed = await call(admin, "GET", "/categories")
    assert listed[-1] == changed and listed[0]["slug"] == "food"
    await call(admin, "PATCH", "/categories/nothing", status=404, json={"active": False})


async def test_admin_product_create_read_update_round_trip(admin: TestClient[Any, Any]) -> None:
    new = {
        "sku": "FD-KIMCHI",
        "category": "food",
        "name_en": "Kimchi 1 kg",
        "name_ko": "김치",
        "price": 7000,
        "stock": 5,
    }
    made = await call(admin, "POST", "/products", status=201, json=new)
    assert made == {
        **new,
        "id": made["id"],
        "description_en": "",
        "description_ko": "",
        "position": 0,
        "active": True,
    }
    assert await call(admin, "GET", "/products/FD-KIMCHI") == made
    changed = await call(
        admin,
        "PATCH",
        "/products/FD-KIMCHI",
        json={"price": 7500, "category": 2, "description_en": "Spicy", "active": False},
    )
    assert changed == {
        **made,
        "price": 7500,
        "category": "medicine",
        "description_en": "Spicy",
        "active": False,
    }
    medicine = await call(admin, "GET", "/products", params={"category": "medicine"})
    assert changed in medicine and {p["category"] for p in medicine} == {"medicine"}
    taken = await call(admin, "POST", "/products", status=409, json={**new, "sku": NOODLES})
    assert taken == {"error": f"a product with sku {NOODLES} already exists"}
    await call(admin, "GET", "/products/NOPE", status=404)


GOOD = {"sku": "X-1", "category": "food", "name_en": "Thing", "name_ko": "물건", "price": 1}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"price": -1}, "price must be at least 0"),
        ({"stock": -5}, "stock must be at least 0"),
        ({"price": "100"}, "price must be an integer"),
        ({"price": 1.5}, "price must be an integer"),
        ({"price": True}, "price must be an integer"),
        ({"price": 2**31}, "price must be at most 2147483647"),
        ({"active": "yes"}, "active must be true or false"),
        ({"name_en": "x" * 41}, "name_en is too long (at most 40 characters)"),
        ({"name_ko": "가" * 41}, "name_ko is too long (at most 40 characters)"),
        ({"description_ko": "가" * 61}, "description_ko is too long (at most 60 characters)"),
        ({"name_en": "강냉이국수"}, "name_en must be printable ASCII without ` (GSM-7)"),
        ({"name_en": "Grave `accent`"}, "name_en must be printable ASCII without ` (GSM-7)"),
        ({"description_en": "Café"}, "description_en must be printable ASCII without ` (GSM-7)"),
        ({"name_en": ""}, "name_en must not be empty"),
        ({"name_ko": "a\u0000b"}, "name_ko must not contain control characters"),
        ({"name_ko": "\ud800"}, "name_ko is not valid Unicode text"),
        ({"sku": "has space"}, "sku must be letters, digits"),
        ({"category": "toys"}, "unknown category 'toys'"),
        ({"category": 999}, "unknown category 999"),
        ({"category": None}, "category must be a string or an integer"),
        ({"colour": "red"}, "unknown field colour"),
        ({"price": None}, "price must be an integer"),
    ],
)
async def test_admin_bad_product_fields_get_400_naming_the_field(
    admin: TestClient[Any, Any], change: dict[str, Any], says: str
) -> None:
    answer = await call(admin, "POST", "/products", status=400, json={**GOOD, **change})
    assert answer["error"].startswith(says)


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ('{"sku": "X-1"', {"Content-Type": "application/json"}, 400, "the body is not JSON"),
        ("[1, 2]", {"Content-Type": "application/json"}, 400, "body must be an object"),
        ("", {"Content-Type": "application/json"}, 400, "the request needs a body"),
        (
            '{"sku": "X-1"}',
            {"Content-Type": "text/plain"},
            415,
            "send the body as application/json",
        ),
        ('{"name_en": "X"}', {"Content-Type": "application/json"}, 400, "sku is required"),
    ],
)
async def test_admin_unusable_bodies_get_4xx_with_the_reason(
    admin: TestClient[Any, Any], body: str, headers: dict[str, str], status: int, says: str
) -> None:
    answer = await call(admin, "POST", "/products", status=status, data=body, headers=headers)
    assert answer == {"error": says}


async def test_admin_refusals_name_the_field_and_never_echo_the_value(
    admin: TestClient[Any, Any],
) -> None:
    long = "x" * 10_000
    for change, says in [
        ({"name_en": long}, "name_en is too long (at most 40 characters)"),
        ({"price": long}, "price must be an integer"),
        ({long: 1}, "unknown field " + "x" * 20 + "..."),
    ]:
        answer = await call(admin, "POST", "/products", status=400, json={**GOOD, **change})
        assert answer == {"error": says}
    query = {"status": long[:4000]}  # a request line holds at most 8190 bytes
    answer = await call(admin, "GET", "/orders", status=400, params=query)
    assert answer["error"].startswith("status must be one of placed") and "x" * 21 not in str(
        answer
    )
    header = await import_csv(admin, f"sku,category,name_en,name_ko,price,{long}\n", status=422)
    cell = await import_csv(
        admin, f"sku,category,name_en,name_ko,price\nX-1,food,Thing,물건,{long}\n", status=422
    )
    assert cell["errors"] == [
        {"line": 2, "field": "price", "reason": f"price must be an integer, not '{'x' * 20}...'"}
    ]
    assert long not in json.dumps(header) + json.dumps(cell)


async def test_admin_null_is_no_value_for_a_field_left_out(admin: TestClient[Any, Any]) -> None:
    path = f"/products/{NOODLES}"
    answer = await call(admin, "PATCH", path, status=400, json={"name_en": None})
    assert answer == {"error": "name_en must be a string"}
    answer = await call(admin, "PATCH", path, status=400, json={"category": None})
    assert answer == {"error": "category must be a string or an integer"}
    answer = await call(admin, "POST", path + "/stock", status=400, json={"delta": None})
    assert answer == {"error": "delta must be an integer"}
    answer = await call(admin, "PATCH", path, status=400, json={})
    assert answer["error"].startswith("give at least one of category, name_en")


async def test_admin_integers_may_be_written_as_whole_numbers_with_a_point(
    admin: TestClient[Any, Any],
) -> None:
    # JSON Schema's integer includes 7000.0; a client computing prices may send that.
    made = await call(admin, "POST", "/products", status=201, json={**GOOD, "price": 7000.0})
    assert made["price"] == 7000 and json.dumps(made["price"]) == "7000"


@pytest.mark.parametrize(
    ("shape", "table"),
    [
        (CategoryIn, Category),
        (CategoryPatch, Category),
        (ProductIn, Product),
        (ProductPatch, Product),
        (StatusChange, OrderEvent),
    ],
)
def test_admin_text_fields_are_exactly_as_wide_as_their_columns(
    shape: type[BaseModel], table: type[SQLModel]
) -> None:
    columns = table.__table__.c  # type: ignore[attr-defined]
    checked = 0
    for name, field in TypeAdapter(shape).json_schema()["properties"].items():
        column = Category.__table__.c.slug if name == "category" else columns.get(name)  # type: ignore[attr-defined]
        width = getattr(getattr(column, "type", None), "length", None)
        widths = {option.get("maxLength") for option in field.get("anyOf", [field])}
        if "enum" in field:  # a status: each one fits
            assert max(len(value) for value in field["enum"]) <= width, name
        elif width is not None or widths != {None}:
            assert widths - {None} == {width}, name
            checked += 1
    assert checked >= 1


async def test_admin_unknown_routes_and_methods_answer_json(admin: TestClient[Any, Any]) -> None:
    assert (await call(admin, "GET", "/nothing", status=404))["error"] == "Not Found"
    response = await admin.delete(API + "/products/" + NOODLES, headers=AUTH)
    assert response.status == 405 and "PATCH" in response.headers["Allow"]
    assert (await response.json())["error"] == "Method Not Allowed"


async def test_admin_stock_moves_by_delta_or_set_and_never_below_zero(
    admin: TestClient[Any, Any],
) -> None:
    before = (await call(admin, "GET", f"/products/{NOODLES}"))["stock"]
    moved = await call(admin, "POST", f"/products/{NOODLES}/stock", json={"delta": -3})
    assert moved["stock"] == before - 3
    assert (await call(admin, "POST", f"/products/{NOODLES}/stock", json={"set": 2}))["stock"] == 2
    refused = await call(
        admin, "POST", f"/products/{NOODLES}/stock", status=409, json={"delta": -3}
    )
    assert refused == {"error": f"stock of {NOODLES} is 2; it cannot go down by 3 (never below 0)"}
    both = await call(
        admin, "POST", f"/products/{NOODLES}/stock", status=400, json={"delta": 1, "set": 1}
    )
    assert both == {"error": "give exactly one of delta, set"}
    negative = await call(admin, "POST", f"/products/{NOODLES}/stock", status=400, json={"set": -1})
    assert negative == {"error": "set must be at least 0"}
    await call(admin, "POST", "/products/NOPE/stock", status=404, json={"delta": 1})


async def test_admin_stock_moves_are_kept_with_their_reasons_newest_first(
    admin: TestClient[Any, Any],
) -> None:
    before = (await call(admin, "GET", f"/products/{NOODLES}"))["stock"]
    path = f"/products/{NOODLES}/stock"
    await call(admin, "POST", path, json={"delta": 40, "reason": "delivery from the mill"})
    await call(admin, "POST", path, json={"set": 7, "reason": "counted on the shelf"})
    await call(admin, "POST", path, json={"delta": -1})  # a reason is asked for, not required
    await call(admin, "POST", path, status=409, json={"delta": -99, "reason": "never kept"})
    history = await call(admin, "GET", path)
    assert [(m["delta"], m["stock"], m["reason"]) for m in history] == [
        (-1, 6, ""),
        (7 - (before + 40), 7, "counted on the shelf"),  # a figure set: the change it made
        (40, before + 40, "delivery from the mill"),
    ]
    assert all(m["created_at"].endswith("Z") for m in history)
    # A reason is text a person wrote: one line, within its column.
    for bad in ("torn\x00bags", "x" * 121, "two\nlines"):
        refused = await call(admin, "POST", path, status=400, json={"delta": 1, "reason": bad})
        assert refused["error"].startswith("reason ")
    assert len(await call(admin, "GET", path)) == 3  # nothing refused was moved or kept
    await call(admin, "GET", "/products/NOPE/stock", status=404)


async def test_admin_catalog_change_shows_on_the_very_next_ussd_hop(
    admin: TestClient[Any, Any],
) -> None:
    await post(admin, "")
    assert (await post(admin, "1"))[1].startswith("CON Categories")  # the catalog is cached
    await call(admin, "PATCH", f"/products/{NOODLES}", json={"name_en": "Renamed noodles"})
    assert (await post(admin, "1*1"))[1].startswith("CON Food\n1. Renamed noodles")
    await call(admin, "PATCH", f"/products/{NOODLES}", json={"active": False})
    _, body = await post(admin, "1*1*0*1")  # back to the categories, and into Food again
    assert body.startswith("CON Food\n1. ") and "Renamed noodles" not in body


async def test_admin_catalog_change_reaches_another_gateway_process_by_its_next_hop(
    admin: TestClient[Any, Any], make_gateway: Make
) -> None:
    other = await make_gateway(admin_token=TOKEN)  # a second process: same Redis, same database
    await post(other, "", session="ATUid_other")
    assert (await post(other, "1*1", session="ATUid_other"))[1].startswith(
        "CON Food\n1. Corn noodles"
    )  # its catalog is cached now
    versions = other.app[keys.GATEWAY].versions
    before = versions.catalog_tag
    await call(admin, "PATCH", f"/products/{NOODLES}", json={"name_en": "Renamed noodles"})
    async with asyncio.timeout(2):  # the message's flight: it hears before its next hop
        while versions.catalog_tag == before:
            await asyncio.sleep(0.005)
    _, body = await post(other, "1*1*0*1", session="ATUid_other")
    assert body.startswith("CON Food\n1. Renamed noodles")


# --- CSV ------------------------------------------------------------------------------------


async def export(client: TestClient[Any, Any]) -> str:
    response = await client.get(API + "/catalog.csv", headers=AUTH)
    assert response.status == 200 and response.content_type == "text/csv"
    return await response.text()


async def import_csv(client: TestClient[Any, Any], text: str, status: int = 200) -> Any:
    headers = {"Content-Type": "text/csv"}
    return await call(
        client, "POST", "/catalog.csv", status=status, data=text.encode(), headers=headers
    )


async def test_admin_csv_export_then_import_round_trips(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    exported = await export(admin)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows[0]["sku"] == NOODLES and len(rows) == len(await call(admin, "GET", "/products"))
    assert await import_csv(admin, exported) == {"created": 0, "updated": len(rows)}
    assert await export(admin) == exported

    lines = [
        "sku,category,name_en,name_ko,price",  # no stock column: stock is left alone
        f"{NOODLES},food,Corn noodles,강냉이국수,4800",
        'FD-KIMCHI,food,"Kimchi, 1 kg",김치,7000',
    ]
    stock = (await product_by_sku(seeded_db, NOODLES)).stock
    assert await import_csv(admin, "\r\n".join(lines)) == {"created": 1, "updated": 1}
    noodles = await call(admin, "GET", f"/products/{NOODLES}")
    assert (noodles["price"], noodles["stock"]) == (4800, stock)
    kimchi = await call(admin, "GET", "/products/FD-KIMCHI")
    assert (kimchi["name_en"], kimchi["stock"], kimchi["active"]) == ("Kimchi, 1 kg", 0, True)


async def test_admin_csv_export_defuses_formulas_and_reads_them_back(
    admin: TestClient[Any, Any],
) -> None:
    # A product name a spreadsheet would run: exported as text, imported as it was typed.
    formula = "=cmd|' /C calc'!A0"
    for name in (formula, "+1 bag", "-gel", "@home", "'=1+1", "''@x"):
        await call(admin, "PATCH", f"/products/{NOODLES}", json={"name_en": name})
        [row] = [r for r in csv.DictReader(io.StringIO(await export(admin))) if r["sku"] == NOODLES]
        assert row["name_en"] == "'" + name
    exported = await export(admin)
    assert await import_csv(admin, exported)
    assert (await call(admin, "GET", f"/products/{NOODLES}"))["name_en"] == "''@x"
    assert await export(admin) == exported


async def test_admin_csv_with_bad_rows_reports_each_by_line_and_writes_nothing(
    admin: TestClient[Any, Any],
) -> None:
    before = await export(admin)
    text = "\n".join(
        [
            "sku,category,name_en,name_ko,price,stock,active",
            f"{NOODLES},food,Corn noodles,강냉이국수,1,1,true",  # fine, but not written
            "BAD-PRICE,food,Thing,물건,-5,1,true",
            "BAD-CAT,toys,Thing,물건,5,1,true",
            "",
            "BAD-NAME,food,강냉이,물건,5,x,maybe",
            "SHORT,food,Thing",
            f"{NOODLES},food,Again,물건,5,1,true",
        ]
    )
    answer = await import_csv(admin, text, status=422)
    assert answer["error"] == "7 problem(s) in the file; nothing was imported"
    assert answer["errors"] == [
        {"line": 3, "field": "price", "reason": "price must be at least 0"},
        {"line": 4, "field": "category", "reason": "unknown category 'toys'"},
        {
            "line": 6,
            "field": "name_en",
            "reason": "name_en must be printable ASCII without ` (GSM-7)",
        },
        {"line": 6, "field": "stock", "reason": "stock must be an integer, not 'x'"},
        {"line": 6, "field": "active", "reason": "active must be true or false, not 'maybe'"},
        {"line": 7, "field": None, "reason": "the row has 3 cells; the header has 7"},
        {"line": 8, "field": "sku", "reason": f"sku {NOODLES} is also on line 2"},
    ]
    assert await export(admin) == before


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        (
            "sku,name_en\nX,Y",
            ["missing column category", "missing column name_ko", "missing column price"],
        ),
        ("sku,category,name_en,name_ko,price,colour\n", ["unknown column 'colour'"]),
        ("sku,category,name_en,name_ko,price\n", ["the file has no products"]),
    ],
)
async def test_admin_csv_header_problems_are_line_1(
    admin: TestClient[Any, Any], text: str, reasons: list[str]
) -> None:
    answer = await import_csv(admin, text, status=422)
    assert answer["errors"] == [{"line": 1, "field": None, "reason": r} for r in reasons]


async def test_admin_csv_that_is_not_utf8_gets_400(admin: TestClient[Any, Any]) -> None:
    response = await admin.post(
        API + "/catalog.csv", data=b"sku\xff", headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert response.status == 400 and await response.json() == {
        "error": "the body is not UTF-8 text"
    }


# --- orders ---------------------------------------------------------------------------------


async def test_admin_staff_take_an_order_to_delivered_and_the_customer_hears_each_step(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    code = await place_by_ussd(admin)
    staff = {"X-Okryu-Staff": "kim"}
    for status in ("confirmed", "dispatched", "delivered"):
        detail = await call(
            admin,
            "POST",
            f"/orders/{code}/status",
            headers=staff,
            json={"status": status, "note": f"{status} by phone"},
        )
        assert detail["status"] == status
    history = [(e["status"], e["actor"], e["note"]) for e in detail["history"]]
    assert history == [
        ("placed", f"customer:{MSISDN}", ""),
        ("confirmed", "staff:kim", "confirmed by phone"),
        ("dispatched", "staff:kim", "dispatched by phone"),
        ("delivered", "staff:kim", "delivered by phone"),
    ]
    assert detail["lines"][0]["sku"] == NOODLES and detail["zone"]["id"] >= 1
    sent = await sms_to(seeded_db)
    assert sent[1:] == [
        (f"order_{s}", status_changed(s, code, "en"))
        for s in ("confirmed", "dispatched", "delivered")
    ]
    assert sent[0][0] == "order_placed"


async def test_admin_status_sms_speaks_the_customers_language(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    code = await place_by_ussd(admin, prefix=("4", "2"))  # Language -> 조선말 first
    detail = await call(admin, "POST", f"/orders/{code}/status", json={"status": "confirmed"})
    assert detail["language"] == "ko" and detail["history"][-1]["actor"] == "staff"
    assert (await sms_to(seeded_db))[-1] == (
        "order_confirmed",
        status_changed("confirmed", code, "ko"),
    )


async def test_admin_illegal_transitions_get_409_with_the_reason(
    admin: TestClient[Any, Any],
) -> None:
    code = await place_by_ussd(admin)
    refused = await call(
        admin, "POST", f"/orders/{code}/status", status=409, json={"status": "delivered"}
    )
    assert refused == {"error": f"order {code} is placed; it cannot become delivered"}
    await call(admin, "POST", f"/orders/{code}/status", json={"status": "cancelled"})
    again = await call(
        admin, "POST", f"/orders/{code}/status", status=409, json={"status": "confirmed"}
    )
    assert again == {"error": f"order {code} is cancelled; it cannot become confirmed"}
    placed = await call(
        admin, "POST", f"/orders/{code}/status", status=400, json={"status": "placed"}
    )
    assert placed["error"].startswith("status must be one of confirmed, dispatched")
    await call(admin, "POST", "/orders/NOPE42/status", status=404, json={"status": "confirmed"})


async def test_admin_cancel_restocks_and_tells_the_customer(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    before = (await product_by_sku(seeded_db, NOODLES)).stock
    code = await place_by_ussd(admin)
    taken = (await product_by_sku(seeded_db, NOODLES)).stock
    assert taken < before
    lower = code.lower()  # codes are typed back by people
    await call(
        admin, "POST", f"/orders/{lower}/status", json={"status": "cancelled", "note": "no answer"}
    )
    assert (await product_by_sku(seeded_db, NOODLES)).stock == before
    assert (await sms_to(seeded_db))[-1] == (
        "order_cancelled",
        status_changed("cancelled", code, "en"),
    )


async def place_direct(db: Database, key: str, msisdn: str) -> str:
    product = await product_by_sku(db, "FD-RAMYON")
    zone = await first_zone(db)
    assert product.id is not None and zone.id is not None
    placed = await place_order(
        db, order_request(key, [(product.id, 1)], zone.id, msisdn=msisdn), render
    )
    return placed.code  # type: ignore[union-attr]


async def test_admin_orders_filter_by_status_phone_and_dates_in_pages(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    codes = [await place_direct(seeded_db, f"k{i}", MSISDN) for i in range(3)]
    other = await place_direct(seeded_db, "k9", "+8501912340000")
    await call(admin, "POST", f"/orders/{codes[0]}/status", json={"status": "confirmed"})

    async def listed(**query: Any) -> tuple[list[str], Any]:
        page = await call(admin, "GET", "/orders", params=query)
        return [o["code"] for o in page["items"]], page["next_cursor"]

    assert (await listed())[0] == [other, *reversed(codes)]  # newest first
    assert (await listed(status="confirmed"))[0] == [codes[0]]
    assert (await listed(phone="8501912340000"))[0] == [other]  # normalised to E.164
    first, cursor = await listed(phone=MSISDN, limit=2)
    assert first == [codes[2], codes[1]] and cursor is not None
    assert await listed(phone=MSISDN, limit=2, cursor=cursor) == ([codes[0]], None)
    today = utcnow().date()
    assert len((await listed(**{"from": today.isoformat(), "to": today.isoformat()}))[0]) == 4
    yesterday = (today - timedelta(days=1)).isoformat()
    assert (await listed(to=yesterday))[0] == []
    assert (await listed(**{"from": "2000-01-01T00:00:00Z"}))[0][0] == other
    assert (await listed(**{"from": "9999-12-31T23:59:59+00:00"}))[0] == []
    assert (await listed(to="9999-12-31"))[0][0] == other  # past datetime's end: no bound


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"limit": "0"}, "limit must be at least 1"),
        ({"limit": "201"}, "limit must be at most 200"),
        ({"limit": "ten"}, "limit must be an integer"),
        ({"cursor": "-1"}, "cursor must be at least 1"),
        ({"status": "lost"}, "status must be one of placed, confirmed"),
        ({"from": "2024-13-01"}, "from must be a date (YYYY-MM-DD) or a date-time"),
        ({"to": "yesterday"}, "to must be a date (YYYY-MM-DD) or a date-time"),
        ({"from": "2024-01-01T10:00:00"}, "from must be a date (YYYY-MM-DD) or a date-time"),
        ({"phone": "not-a-number"}, "phone number is not a phone number"),
    ],
)
async def test_admin_bad_order_filters_get_400_naming_the_field(
    admin: TestClient[Any, Any], query: dict[str, str], says: str
) -> None:
    answer = await call(admin, "GET", "/orders", status=400, params=query)
    assert answer["error"].startswith(says)


async def test_admin_order_detail_and_unknown_orders(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    code = await place_direct(seeded_db, "k1", MSISDN)
    detail = await call(admin, "GET", f"/orders/{code}")
    assert detail["code"] == code and detail["msisdn"] == MSISDN
    assert detail["lines"] == [
        {
            "product_id": detail["lines"][0]["product_id"],
            "sku": "FD-RAMYON",
            "name_en": "Instant noodles",
            "name_ko": "꼬부랑국수",
            "unit_price": 1200,
            "quantity": 1,
        }
    ]
    assert [e["status"] for e in detail["history"]] == ["placed"]
    assert detail["created_at"].endswith("Z")
    assert await call(admin, "GET", "/orders/ZZZZZZ", status=404) == {"error": "no order ZZZZZZ"}
    bad = await call(
        admin,
        "POST",
        f"/orders/{code}/status",
        status=400,
        headers={"X-Okryu-Staff": "kim jong"},
        json={"status": "confirmed"},
    )
    assert bad["error"].startswith("X-Okryu-Staff must")


# --- outbox ---------------------------------------------------------------------------------


async def test_admin_outbox_filters_and_retries_a_failed_message(
    admin: TestClient[Any, Any], seeded_db: Database
) -> None:
    for i in range(3):
        await place_direct(seeded_db, f"k{i}", MSISDN)
    queued = await call(admin, "GET", "/outbox", params={"status": "queued", "limit": 2})
    assert len(queued["items"]) == 2 and queued["next_cursor"] is not None
    rest = await call(
        admin, "GET", "/outbox", params={"status": "queued", "cursor": queued["next_cursor"]}
    )
    ids = [m["id"] for m in queued["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3 and rest["next_cursor"] is None

    failed_id = ids[-1]
    await mark_failed(seeded_db, failed_id, "InvalidPhoneNumber")
    failed = await call(admin, "GET", "/outbox", params={"status": "failed"})
    assert [m["id"] for m in failed["items"]] == [failed_id]
    assert failed["items"][0]["last_error"] == "InvalidPhoneNumber"

    retried = await call(admin, "POST", f"/outbox/{failed_id}/retry")
    assert (retried["status"], retried["attempts"]) == ("queued", 0)
    async with seeded_db.session() as s:
        row = await s.get(OutboundMessage, failed_id)
    assert row is not None and row.next_attempt_at <= utcnow()
    again = await call(admin, "POST", f"/outbox/{failed_id}/retry", status=409)
    assert again == {"error": f"message {failed_id} is queued; only failed messages can be retried"}
    await call(admin, "POST", "/outbox/999999/retry", status=404)
    assert (await call(admin, "GET", "/outbox", params={"status": "lost"}, status=400))["error"]


# --- the document ---------------------------------------------------------------------------

JSON_SCHEMA_WORDS = {
    "$ref", "type", "properties", "required", "additionalProperties", "items", "anyOf", "oneOf",
    "enum", "format", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minProperties", "maxProperties", "default", "description", "title", "examples",
}  # fmt: skip


def schema_words(schema: dict[str, Any]) -> set[str]:
    """Every keyword used in a JSON Schema, nested ones too."""
    words = set(schema)
    for nested in [
        *schema.get("properties", {}).values(),
        *schema.get("anyOf", []),
        *schema.get("oneOf", []),
        schema.get("items"),
        schema.get("additionalProperties"),
    ]:
        if isinstance(nested, dict):
            words |= schema_words(nested)
    return words


async def test_admin_openapi_document_describes_every_route(admin: TestClient[Any, Any]) -> None:
    document = await call(admin, "GET", "/openapi.json")
    assert document["openapi"].startswith("3.1")
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = {
        (route.method, route.resource.canonical)
        for route in admin.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(API)
        and route.method not in ("HEAD", "*")  # "*": what answers the unknown as JSON
    }
    assert described == served and len(served) == 26
    for item in document["paths"].values():
        for operation in item.values():
            assert {"400", "401"} <= operation["responses"].keys()


async def test_admin_openapi_schemas_use_only_json_schema_keywords(
    admin: TestClient[Any, Any],
) -> None:
    # A bound pydantic cannot place (say, after a validator) would otherwise be written as an
    # unknown keyword ("ge"), which every client and fuzzer silently ignores.
    document = await call(admin, "GET", "/openapi.json")
    schemas = list(document["components"]["schemas"].values())
    for item in document["paths"].values():
        for operation in item.values():
            schemas += [p["schema"] for p in operation.get("parameters", [])]
            for answer in [operation.get("requestBody", {}), *operation["responses"].values()]:
                schemas += [c["schema"] for c in answer.get("content", {}).values()]
    words = set().union(*(schema_words(schema) for schema in schemas))
    assert words <= JSON_SCHEMA_WORDS, words - JSON_SCHEMA_WORDS
    limit = next(
        p["schema"]
        for p in document["paths"][API + "/orders"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert (limit["minimum"], limit["maximum"]) == (1, 200)
