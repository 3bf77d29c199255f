"""reconciliation: runs of a day with their summary, their discrepancies, healings done once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reconciliation_run",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("schedule_key", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("discrepancies", sa.Integer(), nullable=False),
        sa.Column("healed", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_key", name="uq_reconciliation_schedule"),
    )
    op.create_index("ix_reconciliation_run_day", "reconciliation_run", ["day", "id"])
    op.create_table(
        "reconciliation_discrepancy",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", BIG_ID, sa.ForeignKey("reconciliation_run.id"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("out_request_no", sa.String(length=64), nullable=False),
        sa.Column("his_receipt_no", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("wallet_fen", sa.BigInteger(), nullable=True),
        sa.Column("adapter_fen", sa.BigInteger(), nullable=True),
        sa.Column("his_fen", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("healed", sa.Boolean(), nullable=False),
        sa.Column("heal", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reconciliation_discrepancy_run", "reconciliation_discrepancy",
                    ["run_id", "id"])
    op.create_table(
        "reconciliation_heal",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("run_id", BIG_ID, sa.ForeignKey("reconciliation_run.id"), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action", "subject", name="uq_reconciliation_heal"),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_heal")
    op.drop_index("ix_reconciliation_discrepancy_run", table_name="reconciliation_discrepancy")
    op.drop_table("reconciliation_discrepancy")
    op.drop_index("ix_reconciliation_run_day", table_name="reconciliation_run")
    op.drop_table("reconciliation_run")
