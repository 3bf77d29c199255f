"""staff: accounts, sessions and audit trail of /admin/; results keep OBR-16; link latency;
time indexes for the dashboard; acknowledged failures

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
# Failures staff have seen and handled (the message browser's acknowledge).
ACKNOWLEDGED = ("inbound_message", "outbox_message", "wallet_notification")


def upgrade() -> None:
    op.create_table(
        "staff_account",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("doctor_code", sa.String(length=40), nullable=True),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("locked_until", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_sign_in_at", TIME, nullable=True),
        sa.Column("disabled_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username", name="uq_staff_username"),
    )
    op.create_table(
        "staff_session",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_account_id", BIG_ID, nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["staff_account_id"], ["staff_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_staff_session_account", "staff_session", ["staff_account_id"])
    op.create_table(
        "staff_audit",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=120), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_audit_at", "staff_audit", ["at"])
    op.create_index("ix_staff_audit_actor", "staff_audit", ["actor", "at"])
    with op.batch_alter_table("result") as batch:
        batch.add_column(sa.Column("ordering_provider", sa.String(length=40), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("link_state") as batch:
        batch.add_column(sa.Column("latency_ms", sa.Integer(), nullable=True))
    for table in ACKNOWLEDGED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("acknowledged_at", TIME, nullable=True))
            batch.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
    # The dashboard's last 24 hours and the message browser's time searches.
    op.create_index("ix_inbound_received_at", "inbound_message", ["received_at"])
    op.create_index("ix_booking_created_at", "booking", ["created_at"])
    op.create_index("ix_outbox_created_at", "outbox_message", ["created_at"])


def downgrade() -> None:
    for table in ACKNOWLEDGED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("acknowledged_by")
            batch.drop_column("acknowledged_at")
    op.drop_index("ix_outbox_created_at", table_name="outbox_message")
    op.drop_index("ix_booking_created_at", table_name="booking")
    op.drop_index("ix_inbound_received_at", table_name="inbound_message")
    with op.batch_alter_table("link_state") as batch:
        batch.drop_column("latency_ms")
    with op.batch_alter_table("result") as batch:
        batch.drop_column("ordering_provider")
    op.drop_index("ix_staff_audit_actor", table_name="staff_audit")
    op.drop_index("ix_staff_audit_at", table_name="staff_audit")
    op.drop_table("staff_audit")
    op.drop_index("ix_staff_session_account", table_name="staff_session")
    op.drop_table("staff_session")
    op.drop_table("staff_account")
