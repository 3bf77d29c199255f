"""queue events from the HIS and the queue pushes decided per booking

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "queue_event",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(199), nullable=False),
        sa.Column("doctor_code", sa.String(40), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("session", sa.String(2), nullable=False),
        sa.Column("visit_number", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("queue_number", sa.Integer(), nullable=False),
        sa.Column("his_patient_id", sa.String(40), nullable=False),
        sa.Column("placer_id", sa.String(32), nullable=False),
        sa.Column("room", sa.String(40), nullable=False),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_queue_event_id"),
    )
    op.create_index("ix_queue_event_session", "queue_event",
                    ["doctor_code", "visit_date", "session"])
    op.create_index("ix_queue_event_placer", "queue_event", ["placer_id"])
    op.create_table(
        "queue_notice",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", BigId, nullable=False),
        sa.Column("notice", sa.String(20), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["booking.id"]),
        sa.UniqueConstraint("booking_id", "notice", name="uq_queue_notice"),
    )


def downgrade() -> None:
    op.drop_table("queue_notice")
    op.drop_index("ix_queue_event_placer", "queue_event")
    op.drop_index("ix_queue_event_session", "queue_event")
    op.drop_table("queue_event")
