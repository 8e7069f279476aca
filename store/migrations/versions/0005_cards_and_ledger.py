"""shop cards and their double-entry ledger

Revision ID: 0005
Revises: 0004

Customers pay from a prepaid card with a PIN (issue 13). A card caches its balance; every
movement of money is appended to the ledger as entries that sum to zero, and the database
refuses to change or delete a ledger row. (0004 is another branch's: whoever merges both
chains this one after it.)
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
from alembic import op

from store.models import LEDGER_TABLES, append_only_ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", text(length=12), nullable=False),
        sa.Column("msisdn", text(length=16), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("pin_salt", text(length=32), nullable=False),
        sa.Column("pin_hash", text(length=64), nullable=False),
        sa.Column("failed_pins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("balance >= 0", name="card_balance_not_negative"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_msisdn"), ["msisdn"])
    op.create_table(
        "ledgermovement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", text(length=80), nullable=False),
        sa.Column("kind", text(length=16), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("reference", text(length=40), nullable=False),
        sa.Column("actor", text(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("ledgermovement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledgermovement_card_id"), ["card_id"])
        batch_op.create_index(batch_op.f("ix_ledgermovement_order_id"), ["order_id"])
        batch_op.create_index(batch_op.f("ix_ledgermovement_created_at"), ["created_at"])
    op.create_table(
        "ledgerentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("movement_id", sa.Integer(), nullable=False),
        sa.Column("account", text(length=24), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["movement_id"], ["ledgermovement.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledgerentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledgerentry_movement_id"), ["movement_id"])
        batch_op.create_index(batch_op.f("ix_ledgerentry_account"), ["account"])
        batch_op.create_index(batch_op.f("ix_ledgerentry_created_at"), ["created_at"])
    for statement in append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(LEDGER_TABLES):
        op.drop_table(table)
    op.drop_table("card")
