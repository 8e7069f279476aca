"""The catalog as a CSV file: exported whole, imported all or nothing.

CSV import is **all or nothing**: every row is checked first; if any is wrong nothing is
written and every problem is reported with its line number, so the file is fixed and sent
again whole (a half-applied price list is worse than none). Rows are upserted by ``sku``.
Columns ``sku, category, name_en, name_ko, price`` are required; a column left out of the
file (say ``stock``) leaves that field alone on existing products and takes its default on
new ones. ``category`` is the category's slug; ``active`` is true/false, yes/no or 1/0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import select

from store.catalog_edits import PRODUCT_FIELDS, _id, _loose, list_products
from store.db import Database
from store.errors import InvalidField, StoreError
from store.fields import Value
from store.models import Category, Product

CSV_COLUMNS = tuple(s.name for s in PRODUCT_FIELDS)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str | None
    reason: str


class ImportRejected(StoreError):
    """A CSV file with problems; nothing was written."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the file; nothing was imported")
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Imported:
    created: int
    updated: int


async def export_csv(db: Database) -> str:
    """Every product, active or not, in menu order; the file import_csv reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for product in await list_products(db):
        writer.writerow(
            [_cell(product[c]) for c in CSV_COLUMNS]  # booleans as true/false
        )
    return out.getvalue()


# A cell that starts with one of these is a formula to a spreadsheet ("=cmd|' /C calc'!A0").
# Exported with a leading apostrophe, which spreadsheets show as text; import takes it off.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _uncell(text: str) -> str:
    """A cell as it was before :func:`_cell` guarded it."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


async def import_csv(db: Database, text: str) -> Imported:
    """Upsert the file's products by sku, all or nothing (:class:`ImportRejected`)."""
    header, rows, errors = _read_csv(text)
    required = {s.name for s in PRODUCT_FIELDS if s.required}
    async with db.write() as session:
        slugs = {c.slug: _id(c.id) for c in (await session.exec(select(Category))).all()}
        existing = {p.sku: p for p in (await session.exec(select(Product))).all()}
        seen: dict[str, int] = {}
        checked_rows: list[dict[str, Value]] = []
        for line, cells in rows:
            values: dict[str, Value] = {}
            for spec in PRODUCT_FIELDS:
                if spec.name not in header:
                    continue
                try:
                    values[spec.name] = spec.parse(_uncell(cells[header.index(spec.name)]))
                except InvalidField as error:
                    errors.append(RowError(line, error.field, str(error)))
            sku = values.get("sku")
            if isinstance(sku, str):
                if sku in seen:
                    errors.append(RowError(line, "sku", f"sku {sku} is also on line {seen[sku]}"))
                seen.setdefault(sku, line)
            category = values.get("category")
            if isinstance(category, str) and category not in slugs:
                errors.append(RowError(line, "category", f"unknown category {category!r}"))
            if required <= values.keys():
                checked_rows.append(values)
        if errors:
            raise ImportRejected(sorted(errors, key=lambda e: e.line))
        created = 0
        for values in checked_rows:
            fields = dict(values)
            fields["category_id"] = slugs[str(fields.pop("category"))]
            row = existing.get(str(values["sku"]))
            if row is None:
                defaults = {s.name: s.default for s in PRODUCT_FIELDS if s.default is not None}
                session.add(Product(**_loose({**defaults, **fields})))
                created += 1
                continue
            for name, value in fields.items():
                setattr(row, name, value)
            session.add(row)
        return Imported(created=created, updated=len(checked_rows) - created)


def _read_csv(text: str) -> tuple[list[str], list[tuple[int, list[str]]], list[RowError]]:
    """(header, [(line, cells)], errors); a header problem is rejected at once."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    errors: list[RowError] = []
    header: list[str] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        problems = [f"unknown column {name!r}" for name in header if name not in CSV_COLUMNS]
        problems += [
            f"column {name} appears twice" for name in set(header) if header.count(name) > 1
        ]
        problems += [
            f"missing column {s.name}"
            for s in PRODUCT_FIELDS
            if s.required and s.name not in header
        ]
        if problems:
            raise ImportRejected([RowError(1, None, problem) for problem in problems])
        while True:
            line = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                break
            if not any(cell.strip() for cell in cells):
                continue  # blank lines between rows
            if len(cells) != len(header):
                reason = f"the row has {len(cells)} cells; the header has {len(header)}"
                errors.append(RowError(line, None, reason))
                continue
            rows.append((line, cells))
    except csv.Error as error:
        errors.append(RowError(reader.line_num, None, f"unreadable CSV: {error}"))
    if not rows and not errors:
        errors.append(RowError(1, None, "the file has no products"))
    return header, rows, errors
