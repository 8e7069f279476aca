"""an order in one call on PostgreSQL

Revision ID: 0006
Revises: 0005

A cash-on-delivery order's transaction as one SQL function (``store.functions``), called in
one round trip (issue 10: order journeys at 0.2x the browsing rate on PostgreSQL, the
confirming hop's dozen ORM statements the cause). No table changes; nothing on SQLite.
"""

from __future__ import annotations

from alembic import op

from store.functions import functions_ddl

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in functions_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS okryu_place_order")
