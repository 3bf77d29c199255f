"""trade.pay_reference: what the wallet's payment call takes, apart from the platform's trade_no

A wallet may give its trade number only once paid (WeChat Pay's transaction_id; its prepay_id
is what pays), so trade_no is the platform's number when known and pay_reference what the
patient's page pays with. Existing trades (Alipay's, whose trade_no is both) are copied over.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-12 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trade") as batch:
        batch.add_column(sa.Column("pay_reference", sa.String(64), nullable=True))
    op.execute("UPDATE trade SET pay_reference = trade_no WHERE trade_no IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("trade") as batch:
        batch.drop_column("pay_reference")
