"""wallet notifications: the body is kept only for signed notices (raw nullable), with its size

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
        batch_op.alter_column("raw", existing_type=sa.LargeBinary(), nullable=True)
    connection = op.get_bind()
    notification = sa.table("wallet_notification", sa.column("raw", sa.LargeBinary()),
                            sa.column("size", sa.Integer()))
    connection.execute(notification.update().values(size=sa.func.length(notification.c.raw)))
    with op.batch_alter_table("wallet_notification", schema=None) as batch_op:
        batch_op.alter_column("size", server_default=None)
        batch_op.create_index("ix_wallet_notification_outcome", ["outcome", "id"], unique=False)


def downgrade() -> None:
    connection = op.get_bind()
    notification = sa.table("wallet_notification", sa.column("raw", sa.LargeBinary()))
    connection.execute(notification.update().where(notification.c.raw.is_(None))
                       .values(raw=b""))
    with op.batch_alter_table("wallet_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_notification_outcome")
        batch_op.alter_column("raw", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("size")
