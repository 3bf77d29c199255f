"""an index on the patient links' HIS patient id: every ORU^R01 is matched by PID-3, which was a
scan of every link

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 14:00:00
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_patient_his_patient_id", "patient", ["his_patient_id"])


def downgrade() -> None:
    op.drop_index("ix_patient_his_patient_id", table_name="patient")
