"""the parts of each SMS, by provider message id

Revision ID: 0002
Revises: 0001

A receipt names one part of a message; the outbox kept only the first part's id, so the
receipts of the other parts found nothing. Every message sent before this revision is taken
to be one part, under the id it was recorded with.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outboundpart",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "provider_message_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False
        ),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("receipt_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["outboundmessage.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "number", name="outboundpart_number"),
    )
    with op.batch_alter_table("outboundpart", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outboundpart_message_id"), ["message_id"])
        batch_op.create_index(
            batch_op.f("ix_outboundpart_provider_message_id"), ["provider_message_id"]
        )
    op.execute(
        "INSERT INTO outboundpart (message_id, number, provider_message_id, state, receipt_at)"
        " SELECT id, 1, provider_message_id,"
        " CASE WHEN status = 'delivered' THEN 'delivered' END,"
        " CASE WHEN status = 'delivered' THEN delivered_at END"
        " FROM outboundmessage WHERE provider_message_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("outboundpart", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboundpart_provider_message_id"))
        batch_op.drop_index(batch_op.f("ix_outboundpart_message_id"))
    op.drop_table("outboundpart")
