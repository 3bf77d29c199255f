"""real-name binding: the account's binding (method and time) and the binding attempts

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-10 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("wallet_account") as batch:
        batch.add_column(sa.Column("bound_by", sa.String(16), nullable=True))
        batch.add_column(sa.Column("bound_at", TIME, nullable=True))
    op.create_table(
        "binding_attempt",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("wallet_account_id", BigId, sa.ForeignKey("wallet_account.id"),
                  nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("document_index", sa.String(64), nullable=False),
        sa.Column("document_type", sa.String(40), nullable=False),
        sa.Column("document_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("his_patient_id", sa.String(40), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_masked", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("code_sent_at", TIME, nullable=True),
        sa.Column("code_expires_at", TIME, nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
    )
    op.create_index("ix_binding_attempt_account", "binding_attempt",
                    ["wallet_account_id", "started_at"])
    op.create_index("ix_binding_attempt_document", "binding_attempt",
                    ["document_index", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_binding_attempt_document", "binding_attempt")
    op.drop_index("ix_binding_attempt_account", "binding_attempt")
    op.drop_table("binding_attempt")
    with op.batch_alter_table("wallet_account") as batch:
        batch.drop_column("bound_at")
        batch.drop_column("bound_by")
