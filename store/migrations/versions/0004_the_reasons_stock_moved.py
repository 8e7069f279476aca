"""the reasons stock moved, and the SMS of an order found by its index

Revision ID: 0004
Revises: 0003

Staff move a product's stock with a reason ("delivery from the mill", "3 bags torn"); each
move is kept with its reason, the change it made and the stock after it, so the dashboard
can show a product's stock history.

An order's detail on the dashboard lists the SMS it sent: ``outboundmessage.order_id`` is
indexed, or each detail read the whole outbox (found by the EXPLAIN test on a million
orders).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stockmove",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stockmove", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stockmove_product_id"), ["product_id"])
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outboundmessage_order_id"), ["order_id"])


def downgrade() -> None:
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboundmessage_order_id"))
    with op.batch_alter_table("stockmove", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stockmove_product_id"))
    op.drop_table("stockmove")
