"""SQLAlchemy 2.0 models. Schema changes go through Alembic (adapter/migrations)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapter.db import Base, UtcDateTime, utcnow

# BigInteger ids on PostgreSQL, but SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class InboundStatus:
    """Life of an inbound HL7 message."""

    RECEIVED = "received"  # stored and ACKed AA; waiting for the worker to apply it
    PROCESSED = "processed"  # applied by its use case
    FAILED = "failed"  # the use case refused it; shown on the status page for reprocess
    REJECTED = "rejected"  # answered AR: a type or event this hospital's profile does not handle
    ERROR = "error"  # answered AE (or NAK): unreadable or invalid; kept as received


class InboundMessage(Base):
    """Every HL7 message (or unreadable frame) received on the listener, stored before its ACK."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        # HL7 v2.5 2.10.1: a retransmission carries the same MSH-10 from the same sender; the
        # digest tells a true retransmission from another message that reuses the id.
        UniqueConstraint("sender", "control_id", "digest", name="uq_inbound_retransmission"),
        Index("ix_inbound_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    peer: Mapped[str] = mapped_column(String(64), default="")
    sender: Mapped[str | None] = mapped_column(String(200))  # MSH-3^MSH-4, None if unreadable
    control_id: Mapped[str | None] = mapped_column(String(199))  # MSH-10
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of raw, hex
    message_type: Mapped[str] = mapped_column(String(20), default="")  # e.g. ORU^R01
    version: Mapped[str] = mapped_column(String(10), default="")
    charset: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(12))
    ack_code: Mapped[str] = mapped_column(String(2))
    error_code: Mapped[str] = mapped_column(String(10), default="")  # HL7 table 0357
    error_text: Mapped[str] = mapped_column(String(200), default="")  # never PHI
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # exactly the bytes received
    ack: Mapped[bytes] = mapped_column(LargeBinary)  # exactly the bytes answered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class Slot(Base):
    """One slot of the pool the HIS allots to the wallet channel, synced from the HIS."""

    __tablename__ = "slot"
    __table_args__ = (
        # DESIGN invariant 1: the database itself refuses overbooking.
        CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_slot_capacity"),
        CheckConstraint("fee_fen >= 0", name="ck_slot_fee"),
        Index("ix_slot_department_start", "department_code", "start_at"),
        Index("ix_slot_doctor_start", "doctor_code", "start_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    his_slot_id: Mapped[str] = mapped_column(String(80), unique=True)
    department_code: Mapped[str] = mapped_column(String(40))
    doctor_code: Mapped[str] = mapped_column(String(40))
    service_code: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    fee_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed
    synced_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class LinkState(Base):
    """Last known state of a link (the HIS MLLP connection), written by whoever used it."""

    __tablename__ = "link_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    up: Mapped[bool] = mapped_column(default=False)
    checked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")
