"""The staff side's tables: accounts, sessions and the audit trail of /admin/. Registered on
Base.metadata through adapter.models; kept apart so that file stays readable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapter.db import Base, UtcDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class StaffAccount(Base):
    """A hospital staff user of /admin/: an Argon2 password hash, never the password."""

    __tablename__ = "staff_account"
    __table_args__ = (UniqueConstraint("username", name="uq_staff_username"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(12))  # adapter.staff.accounts.StaffRole
    # A doctor's HIS doctor code (mappings/doctors.csv, OBR-16 of their orders).
    doctor_code: Mapped[str | None] = mapped_column(String(40))
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)  # since the last success
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class StaffSession(Base):
    """A signed-in staff browser; as patient sessions, only the token's SHA-256 is kept."""

    __tablename__ = "staff_session"
    __table_args__ = (Index("ix_staff_session_account", "staff_account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    key_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class StaffAudit(Base):
    """One staff action (a sign-in, a release, an acknowledgment...): who, what, on what, from
    where, when. Targets are ids and codes, never personal data."""

    __tablename__ = "staff_audit"
    __table_args__ = (Index("ix_staff_audit_at", "at"),
                      Index("ix_staff_audit_actor", "actor", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))  # the staff username ("" when unknown)
    action: Mapped[str] = mapped_column(String(40))  # adapter.staff.audit.Action
    target: Mapped[str] = mapped_column(String(120), default="")  # e.g. "result:42"
    remote: Mapped[str] = mapped_column(String(64), default="")  # the client's address
