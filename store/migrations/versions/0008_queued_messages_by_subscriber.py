"""queued messages found by subscriber and kind

Revision ID: 0008
Revises: 0007

Every order cancels its subscriber's queued cart reminder. Found through the indexes on "to"
and on status, that read every queued message of the outbox: 1.8-2.3 ms of PostgreSQL's time
per order with 39,000 queued (the outbox of an SMSC down a while; issue 10's benchmark, which
sends none, builds one too), 0.4-0.5 ms with a partial index on the queued alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.create_index(
        "ix_outboundmessage_queued_to",
        "outboundmessage",
        ["to", "kind"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_outboundmessage_queued_to", table_name="outboundmessage")
