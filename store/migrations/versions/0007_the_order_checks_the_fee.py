"""the order's one call checks the delivery fee

Revision ID: 0007
Revises: 0006

``okryu_place_order`` now refuses a fee other than the district's (as it refuses a price
other than the product's): a cash-on-delivery order may be written with the names, prices
and fee the shopper was shown, without reading them first (issue 10). The function is
installed again; no table changes; nothing on SQLite.
"""

from __future__ import annotations

from alembic import op

from store.functions import functions_ddl

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in functions_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    pass  # the function of 0006 accepts every call this one does
