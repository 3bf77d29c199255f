"""operations: reconciliation discrepancies marked as handled; indexes for the message
browser's receipt search and for the retention job's time scans

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
# (index, table, columns): what the retention job scans by age, and the receipt search.
INDEXES = (
    ("ix_wallet_notification_received_at", "wallet_notification", ["received_at"]),
    ("ix_queue_event_visit_date", "queue_event", ["visit_date"]),
    ("ix_idempotency_created_at", "idempotency_record", ["created_at"]),
    ("ix_settlement_receipt", "settlement", ["receipt_no"]),
)


def upgrade() -> None:
    with op.batch_alter_table("reconciliation_discrepancy") as batch:
        batch.add_column(sa.Column("acknowledged_at", TIME, nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("reconciliation_discrepancy") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
