"""billing: charges from the HIS, settlements and their lines, refunds the HIS asks for

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "charge",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("his_charge_id", sa.String(length=80), nullable=False),
        sa.Column("his_patient_id", sa.String(length=40), nullable=False),
        sa.Column("visit_number", sa.String(length=80), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("item_kind", sa.String(length=20), nullable=False),
        sa.Column("quantity", sa.String(length=20), nullable=False),
        sa.Column("unit_price_fen", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=False),
        sa.Column("group_code", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ordered_at", TIME, nullable=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint("amount_fen >= 0 AND unit_price_fen >= 0", name="ck_charge_amounts"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("his_charge_id", name="uq_charge_his_id"),
    )
    op.create_index("ix_charge_patient_status", "charge", ["his_patient_id", "status"])
    op.create_table(
        "settlement",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("wallet_account_id", BIG_ID, nullable=False),
        sa.Column("patient_id", BIG_ID, nullable=False),
        sa.Column("his_patient_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=40), nullable=False),
        sa.Column("total_fen", sa.Integer(), nullable=False),
        sa.Column("self_pay_fen", sa.Integer(), nullable=False),
        sa.Column("insurance_fund_fen", sa.Integer(), nullable=False),
        sa.Column("personal_account_fen", sa.Integer(), nullable=False),
        sa.Column("refunded_fen", sa.Integer(), nullable=False),
        sa.Column("out_trade_no", sa.String(length=64), nullable=True),
        sa.Column("lock_expires_at", TIME, nullable=False),
        sa.Column("commit_sent", sa.Integer(), nullable=False),
        sa.Column("receipt_no", sa.String(length=80), nullable=True),
        sa.Column("invoice_no", sa.String(length=80), nullable=False),
        sa.Column("check_code", sa.String(length=80), nullable=False),
        sa.Column("invoice_url", sa.String(length=500), nullable=False),
        sa.Column("raised_at", TIME, nullable=True),
        sa.Column("raised_reason", sa.String(length=40), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("paid_at", TIME, nullable=True),
        sa.Column("committed_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint("total_fen >= 0", name="ck_settlement_total"),
        sa.CheckConstraint(
            "self_pay_fen + insurance_fund_fen + personal_account_fen = total_fen",
            name="ck_settlement_split"),
        sa.CheckConstraint("refunded_fen >= 0 AND refunded_fen <= total_fen",
                           name="ck_settlement_refunded"),
        sa.ForeignKeyConstraint(["wallet_account_id"], ["wallet_account.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_settlement_account", "settlement", ["wallet_account_id", "id"])
    op.create_index("ix_settlement_status_lock", "settlement", ["status", "lock_expires_at"])
    op.create_index("ix_settlement_raised", "settlement", ["raised_at"])
    op.create_table(
        "settlement_line",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("settlement_id", BIG_ID, nullable=False),
        sa.Column("charge_id", BIG_ID, nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["settlement_id"], ["settlement.id"]),
        sa.ForeignKeyConstraint(["charge_id"], ["charge.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("settlement_id", "charge_id", name="uq_settlement_line"),
    )
    op.create_index("ix_settlement_line_charge", "settlement_line", ["charge_id"])
    op.create_table(
        "his_refund",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("his_refund_id", sa.String(length=80), nullable=False),
        sa.Column("settlement_id", BIG_ID, nullable=False),
        sa.Column("his_charge_id", sa.String(length=80), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("out_request_no", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint("amount_fen > 0", name="ck_his_refund_amount"),
        sa.ForeignKeyConstraint(["settlement_id"], ["settlement.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("his_refund_id", name="uq_his_refund_id"),
        sa.UniqueConstraint("out_request_no"),
    )


def downgrade() -> None:
    op.drop_table("his_refund")
    op.drop_index("ix_settlement_line_charge", table_name="settlement_line")
    op.drop_table("settlement_line")
    op.drop_index("ix_settlement_raised", table_name="settlement")
    op.drop_index("ix_settlement_status_lock", table_name="settlement")
    op.drop_index("ix_settlement_account", table_name="settlement")
    op.drop_table("settlement")
    op.drop_index("ix_charge_patient_status", table_name="charge")
    op.drop_table("charge")
