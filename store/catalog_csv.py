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
import re
from collections.abc import Sequence

from pydantic import ValidationError
from sqlmodel import select

from store.catalog_edits import ProductIn, list_products
from store.db import Database
from store.errors import InvalidField, StoreError
from store.fields import Shown
from store.models import Category, Product
from store.refusals import problems, quoted

CSV_COLUMNS = tuple(ProductIn.model_fields)
REQUIRED = tuple(name for name, field in ProductIn.model_fields.items() if field.is_required())


class RowError(Shown):
    """One problem in a CSV file: its line, the column (None: the whole row), and why."""

    line: int
    field: str | None
    reason: str


class ImportRejected(StoreError):
    """A CSV file with problems; nothing was written."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the file; nothing was imported")
        self.errors = list(errors)


class Imported(Shown):
    """What an import did: products created and updated."""

    created: int
    updated: int


async def export_csv(db: Database) -> str:
    """Every product, active or not, in menu order; the file import_csv reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for product in await list_products(db):
        writer.writerow([_cell(getattr(product, c)) for c in CSV_COLUMNS])
    return out.getvalue()


# A cell that starts with one of these is a formula to a spreadsheet ("=cmd|' /C calc'!A0").
# Exported with a leading apostrophe, which spreadsheets show as text; import takes it off.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str | int | bool) -> str:  # booleans as true/false
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if _guarded(text) else text


def _guarded(text: str) -> bool:
    """Whether the cell needs an apostrophe: a formula start, or an apostrophe that import
    would otherwise take for the guard (``'=1+1`` must come back as typed)."""
    return text.lstrip("'").startswith(FORMULA_STARTS)


def _uncell(text: str) -> str:
    """A cell as it was before :func:`_cell` guarded it."""
    if text.startswith("'") and _guarded(text[1:]):
        return text[1:]
    return text


async def import_csv(db: Database, text: str) -> Imported:
    """Upsert the file's products by sku, all or nothing (:class:`ImportRejected`)."""
    header, rows, errors = _read_csv(text)
    # Each row checked before the write begins: a write holds the store's writers (and, on
    # SQLite, every worker's) for as long as it runs.
    parsed = [(line, *_row(header, cells)) for line, cells in rows]
    async with db.write() as session:
        categories = (await session.exec(select(Category))).all()
        slugs = {c.slug: c.id for c in categories if c.id is not None}
        existing = {p.sku: p for p in (await session.exec(select(Product))).all()}
        seen: dict[str, int] = {}
        checked: list[ProductIn] = []
        for line, values, refused, product in parsed:
            errors += [RowError(line=line, field=f, reason=r) for f, r in refused.items()]
            sku = values.get("sku")
            if isinstance(sku, str) and "sku" not in refused:
                if sku in seen:
                    reason = f"sku {sku} is also on line {seen[sku]}"
                    errors.append(RowError(line=line, field="sku", reason=reason))
                seen.setdefault(sku, line)
            category = values.get("category")
            if isinstance(category, str) and "category" not in refused and category not in slugs:
                reason = f"unknown category {category!r}"
                errors.append(RowError(line=line, field="category", reason=reason))
            if product is not None:
                checked.append(product)
        if errors:
            raise ImportRejected(sorted(errors, key=lambda e: e.line))
        created = 0
        for product in checked:
            category_id = slugs[str(product.category)]
            row = existing.get(product.sku)
            if row is None:  # a column left out takes its default
                fields = product.model_dump(exclude={"category"})
                session.add(Product(category_id=category_id, **fields))
                created += 1
                continue
            given = product.model_fields_set - {"category"}  # a column left out is left alone
            for name, value in product.model_dump(include=given).items():
                setattr(row, name, value)
            row.category_id = category_id
            session.add(row)
        return Imported(created=created, updated=len(checked) - created)


def _row(
    header: list[str], cells: list[str]
) -> tuple[dict[str, object], dict[str, str], ProductIn | None]:
    """A row's values by column, the columns refused with why (in the columns' order), and
    the product when none was."""
    values: dict[str, object] = {}
    refused: dict[str, str] = {}
    for name in CSV_COLUMNS:
        if name in header:
            try:
                values[name] = _read_cell(name, _uncell(cells[header.index(name)]))
            except InvalidField as error:
                refused[name] = str(error)
    product = None
    try:
        product = ProductIn.model_validate(values)
    except ValidationError as error:
        for problem in problems(error, ProductIn):
            if problem.field is not None and problem.field not in refused:
                refused[problem.field] = problem.reason
    ordered = {name: refused[name] for name in CSV_COLUMNS if name in refused}
    return values, ordered, None if refused else product


_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _read_cell(name: str, text: str) -> object:
    """A cell read as its column's type (the rest is :class:`ProductIn`'s to check)."""
    kind = ProductIn.model_fields[name].annotation
    if kind is bool:
        flag = _FLAGS.get(text.strip().lower())
        if flag is None:
            raise InvalidField(name, f"{name} must be true or false, not {quoted(text)}")
        return flag
    if kind is int:
        if not re.fullmatch(r"\s*-?[0-9]{1,12}\s*", text):
            raise InvalidField(name, f"{name} must be an integer, not {quoted(text)}")
        return int(text)
    return text


def _read_csv(text: str) -> tuple[list[str], list[tuple[int, list[str]]], list[RowError]]:
    """(header, [(line, cells)], errors); a header problem is rejected at once."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    errors: list[RowError] = []
    header: list[str] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        wrong = [f"unknown column {quoted(name)}" for name in header if name not in CSV_COLUMNS]
        wrong += [
            f"column {name} appears twice"
            for name in sorted(set(header) & set(CSV_COLUMNS))
            if header.count(name) > 1
        ]
        wrong += [f"missing column {name}" for name in REQUIRED if name not in header]
        if wrong:
            raise ImportRejected([RowError(line=1, field=None, reason=w) for w in wrong])
        while True:
            line = reader.line_num + 1
            cells = next(reader, None)
            if cells is None:
                break
            if not any(cell.strip() for cell in cells):
                continue  # blank lines between rows
            if len(cells) != len(header):
                reason = f"the row has {len(cells)} cells; the header has {len(header)}"
                errors.append(RowError(line=line, field=None, reason=reason))
                continue
            rows.append((line, cells))
    except csv.Error as error:
        errors.append(RowError(line=reader.line_num, field=None, reason=f"unreadable CSV: {error}"))
    if not rows and not errors:
        errors.append(RowError(line=1, field=None, reason="the file has no products"))
    return header, rows, errors
