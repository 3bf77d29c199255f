"""settlement.acknowledged_at / acknowledged_by: a raised bill (paid, not posted to the HIS)
marked as handled by a staff user, so it leaves the parked work page

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-13 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("settlement") as batch:
        batch.add_column(sa.Column("acknowledged_at", TIME, nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("settlement") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
