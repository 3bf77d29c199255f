"""wallet accounts, patients, trades, refunds, notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 05:53:21.728531
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "trade",
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("total_fen", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("trade_no", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_fen", sa.Integer(), nullable=False),
        sa.Column("paid_after_close", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= total_fen", name="ck_trade_refunded"
        ),
        sa.CheckConstraint("total_fen > 0", name="ck_trade_total"),
        sa.PrimaryKeyConstraint("out_trade_no"),
    )
    with op.batch_alter_table("trade", schema=None) as batch_op:
        batch_op.create_index("ix_trade_purpose", ["purpose", "reference"], unique=False)
        batch_op.create_index("ix_trade_status_expire", ["status", "expire_at"], unique=False)

    op.create_table(
        "wallet_account",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("is_certified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "user_id", name="uq_wallet_account_user"),
    )
    op.create_table(
        "wallet_notification",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("notify_id", sa.String(length=128), nullable=True),
        sa.Column("out_trade_no", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("wallet_notification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_wallet_notification_notify_id", ["platform", "notify_id"], unique=False
        )

    op.create_table(
        "patient",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "wallet_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("document_type", sa.String(length=40), nullable=False),
        sa.Column("document_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("document_index", sa.String(length=64), nullable=False),
        sa.Column("document_masked", sa.String(length=40), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(length=20), nullable=False),
        sa.Column("his_patient_id", sa.String(length=40), nullable=True),
        sa.Column("guardian_consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["wallet_account_id"],
            ["wallet_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("wallet_account_id", "document_index", name="uq_patient_document"),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index("ix_patient_document_index", ["document_index"], unique=False)

    op.create_table(
        "refund",
        sa.Column("out_request_no", sa.String(length=64), nullable=False),
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("refund_fen", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("refund_fen > 0", name="ck_refund_amount"),
        sa.ForeignKeyConstraint(
            ["out_trade_no"],
            ["trade.out_trade_no"],
        ),
        sa.PrimaryKeyConstraint("out_request_no"),
    )


def downgrade() -> None:

    op.drop_table("refund")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index("ix_patient_document_index")

    op.drop_table("patient")
    with op.batch_alter_table("wallet_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_notification_notify_id")

    op.drop_table("wallet_notification")
    op.drop_table("wallet_account")
    with op.batch_alter_table("trade", schema=None) as batch_op:
        batch_op.drop_index("ix_trade_status_expire")
        batch_op.drop_index("ix_trade_purpose")

    op.drop_table("trade")
