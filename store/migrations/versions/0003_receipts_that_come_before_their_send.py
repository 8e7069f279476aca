"""receipts that come before their send is recorded

Revision ID: 0003
Revises: 0002

Africa's Talking can post a delivery report before its answer to the send is recorded; the
report found no part and was dropped, and the message stayed ``sent``. Such a report now
waits in ``earlyreceipt`` until a part with its id is recorded, for ten minutes at most.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "earlyreceipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "provider_message_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False
        ),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_message_id"),
    )
    with op.batch_alter_table("earlyreceipt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_earlyreceipt_received_at"), ["received_at"])


def downgrade() -> None:
    with op.batch_alter_table("earlyreceipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_earlyreceipt_received_at"))
    op.drop_table("earlyreceipt")
