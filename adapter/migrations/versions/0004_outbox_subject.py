"""outbox items name their subject generically (subject_type, subject_id), not booking_id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Kinds whose subject was the booking itself; the others named theirs in the payload.
BOOKING_KINDS = ("his_book", "his_cancel")


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_type", sa.String(length=20), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("subject_id", sa.String(length=64), nullable=False,
                                      server_default=""))
    connection = op.get_bind()
    outbox = sa.table("outbox_message", sa.column("id"), sa.column("kind"),
                      sa.column("booking_id"), sa.column("payload"),
                      sa.column("subject_type"), sa.column("subject_id"))
    booking = sa.table("booking", sa.column("id"), sa.column("public_id"),
                       sa.column("wallet_account_id"), sa.column("out_trade_no"))
    connection.execute(
        outbox.update().where(outbox.c.kind.in_(BOOKING_KINDS)).values(
            subject_type="booking", subject_id=sa.cast(outbox.c.booking_id, sa.String(64))))
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.kind, outbox.c.booking_id, outbox.c.payload)
        .where(outbox.c.kind.not_in(BOOKING_KINDS))).all()
    for row_id, kind, booking_id, payload in rows:
        data = json.loads(payload or "{}")
        if kind == "refund":
            subject = ("refund", str(data.get("out_request_no", "")))
        elif kind == "his_patient":
            subject = ("patient", str(data.get("patient_id", "")))
        elif kind == "close_trade" and booking_id is not None:
            subject = ("trade", str(connection.execute(
                sa.select(booking.c.out_trade_no).where(booking.c.id == booking_id)).scalar()))
        elif kind == "push" and booking_id is not None:
            # A message to the booking's wallet account, linking to the booking's page.
            account_id, public_id = connection.execute(
                sa.select(booking.c.wallet_account_id, booking.c.public_id)
                .where(booking.c.id == booking_id)).one()
            subject = ("wallet_account", str(account_id))
            data["path"] = f"/h5/bookings/{public_id}"
        else:
            subject = ("booking", "" if booking_id is None else str(booking_id))
        connection.execute(outbox.update().where(outbox.c.id == row_id).values(
            subject_type=subject[0], subject_id=subject[1], payload=json.dumps(data)))
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("booking_id")
        batch_op.alter_column("subject_type", server_default=None)
        batch_op.alter_column("subject_id", server_default=None)
        batch_op.create_index("ix_outbox_subject", ["subject_type", "subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_subject")
        batch_op.add_column(sa.Column(
            "booking_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
    connection = op.get_bind()
    outbox = sa.table("outbox_message", sa.column("booking_id"), sa.column("subject_type"),
                      sa.column("subject_id"))
    connection.execute(outbox.update().where(outbox.c.subject_type == "booking").values(
        booking_id=sa.cast(outbox.c.subject_id, sa.BigInteger())))
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_foreign_key("outbox_message_booking_id_fkey", "booking",
                                    ["booking_id"], ["id"])
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_type")
