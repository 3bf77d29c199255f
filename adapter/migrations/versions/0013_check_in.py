"""check-ins of bookings through the wallet

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "check_in",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", BigId, sa.ForeignKey("booking.id"), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("booking_id", name="uq_check_in_booking"),
    )


def downgrade() -> None:
    op.drop_table("check_in")
