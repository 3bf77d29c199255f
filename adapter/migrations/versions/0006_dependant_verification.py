"""dependant links carry their verification (unverified, self, his, wallet)

Existing rows: a "self" link is the wallet's certified user, so it is verified by self (as of
its creation). Every other link becomes unverified: before this revision the adapter looked
dependants up in the HIS by document only, never comparing the name, birth date or phone. A
dependant link that already has a HIS patient id is marked ``his_added``, because whether the
adapter found that HIS record or added it from what the account typed is not known, and a
record the adapter added verifies nobody.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch: SQLite's batch mode copies the table, and dropping the old
    # patient table fails its bookings' foreign keys.
    op.add_column("patient", sa.Column("his_added", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("patient", sa.Column("verification", sa.String(length=12), nullable=False,
                                       server_default="unverified"))
    op.add_column("patient", sa.Column("verified_at", sa.DateTime(timezone=True),
                                       nullable=True))
    patient = sa.table("patient", sa.column("relation"), sa.column("his_patient_id"),
                       sa.column("his_added", sa.Boolean()), sa.column("verification"),
                       sa.column("verified_at"), sa.column("created_at"))
    connection = op.get_bind()
    connection.execute(patient.update().where(patient.c.relation == "self").values(
        verification="self", verified_at=patient.c.created_at))
    connection.execute(patient.update().where(
        patient.c.relation != "self", patient.c.his_patient_id.is_not(None),
        patient.c.his_patient_id != "").values(his_added=True))
    if connection.dialect.name != "sqlite":  # SQLite cannot drop a default in place
        op.alter_column("patient", "his_added", server_default=None)
        op.alter_column("patient", "verification", server_default=None)


def downgrade() -> None:
    for column in ("verified_at", "verification", "his_added"):
        op.drop_column("patient", column)  # SQLite 3.35+ drops a column in place
