"""result views: the audit trail of every view of a result and every refused attempt; the
inbound messages' ordering key (results of different patients are applied in parallel)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("inbound_message") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(length=40), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("inbound_message") as batch:
        batch.alter_column("ordering_key", server_default=None)
    op.create_index("ix_inbound_ordering", "inbound_message", ["ordering_key", "status", "id"])
    op.create_table(
        "result_view",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("wallet_account_id", sa.BigInteger(), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=True),
        sa.Column("file_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_result_view_result", "result_view", ["result_id", "at"])
    op.create_index("ix_result_view_account", "result_view", ["wallet_account_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_result_view_account", table_name="result_view")
    op.drop_index("ix_result_view_result", table_name="result_view")
    op.drop_table("result_view")
    op.drop_index("ix_inbound_ordering", table_name="inbound_message")
    with op.batch_alter_table("inbound_message") as batch:
        batch.drop_column("ordering_key")
