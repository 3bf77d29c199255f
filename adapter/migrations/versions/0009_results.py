"""results: result orders, their observations and report files, critical alerts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "result",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("order_key", sa.String(length=200), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("placer_order", sa.String(length=80), nullable=False),
        sa.Column("filler_order", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=80), nullable=False),
        sa.Column("kind_name", sa.String(length=200), nullable=False),
        sa.Column("observed_at", TIME, nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("corrected", sa.Boolean(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("his_patient_id", sa.String(length=40), nullable=False),
        sa.Column("document_index", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("hold_reason", sa.String(length=40), nullable=False),
        sa.Column("release_at", TIME, nullable=True),
        sa.Column("released_at", TIME, nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("announced_version", sa.Integer(), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_key", name="uq_result_order"),
    )
    op.create_index("ix_result_person", "result", ["document_index", "state"])
    op.create_index("ix_result_state_release", "result", ["state", "release_at"])
    op.create_table(
        "result_attachment",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("result_id", BIG_ID, nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["result_id"], ["result.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "result_observation",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("result_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.String(length=20), nullable=False),
        sa.Column("value_type", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("comparator", sa.String(length=2), nullable=False),
        sa.Column("units", sa.String(length=60), nullable=False),
        sa.Column("reference_range", sa.String(length=120), nullable=False),
        sa.Column("abnormal_flags", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=2), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("attachment_id", BIG_ID, nullable=True),
        sa.Column("attachment_problem", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["result_id"], ["result.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["attachment_id"], ["result_attachment.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_result_observation_result", "result_observation",
                    ["result_id", "position"])
    op.create_table(
        "critical_alert",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("result_id", BIG_ID, nullable=False),
        sa.Column("result_version", sa.Integer(), nullable=False),
        sa.Column("raised_at", TIME, nullable=False),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", TIME, nullable=True),
        sa.Column("escalated_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["result_id"], ["result.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_critical_alert_open", "critical_alert",
                    ["acknowledged_at", "raised_at"])


def downgrade() -> None:
    op.drop_index("ix_critical_alert_open", table_name="critical_alert")
    op.drop_table("critical_alert")
    op.drop_index("ix_result_observation_result", table_name="result_observation")
    op.drop_table("result_observation")
    op.drop_table("result_attachment")
    op.drop_index("ix_result_state_release", table_name="result")
    op.drop_index("ix_result_person", table_name="result")
    op.drop_table("result")
