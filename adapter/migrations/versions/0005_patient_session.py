"""patient sessions kept server-side (revocable), and wallet accounts that staff can disable

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "patient_session",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("wallet_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["wallet_account_id"], ["wallet_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("patient_session", schema=None) as batch_op:
        batch_op.create_index("ix_patient_session_account", ["wallet_account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patient_session", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_session_account")
    op.drop_table("patient_session")
    with op.batch_alter_table("wallet_account", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
