"""inbound messages, slot pool, link state

Revision ID: 0001
Revises:
Create Date: 2026-11-26 05:37:30.476868
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "inbound_message",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=True),
        sa.Column("control_id", sa.String(length=199), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=20), nullable=False),
        sa.Column("version", sa.String(length=10), nullable=False),
        sa.Column("charset", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=False),
        sa.Column("error_text", sa.String(length=200), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("ack", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender", "control_id", "digest", name="uq_inbound_retransmission"),
    )
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_status_id", ["status", "id"], unique=False)

    op.create_table(
        "link_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "slot",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("his_slot_id", sa.String(length=80), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=False),
        sa.Column("doctor_code", sa.String(length=40), nullable=False),
        sa.Column("service_code", sa.String(length=40), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("fee_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_slot_capacity"),
        sa.CheckConstraint("fee_fen >= 0", name="ck_slot_fee"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("his_slot_id"),
    )
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_slot_department_start", ["department_code", "start_at"], unique=False
        )
        batch_op.create_index("ix_slot_doctor_start", ["doctor_code", "start_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.drop_index("ix_slot_doctor_start")
        batch_op.drop_index("ix_slot_department_start")

    op.drop_table("slot")
    op.drop_table("link_state")
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_status_id")

    op.drop_table("inbound_message")
