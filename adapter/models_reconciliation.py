"""Daily reconciliation's tables: runs, their discrepancies and the healings done. Registered on
Base.metadata through adapter.models; kept apart so that file stays readable. Money in integer
fen."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapter.db import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ReconciliationRun(Base):
    """One reconciliation of a day: a wallet's bill, our trades and refunds, the HIS's list.

    ``summary`` is JSON of counts and fen sums per side; a scheduled run holds ``schedule_key``
    (platform:day) while it runs or once done, so two workers never reconcile a day twice.
    """

    __tablename__ = "reconciliation_run"
    __table_args__ = (UniqueConstraint("schedule_key", name="uq_reconciliation_schedule"),
                      Index("ix_reconciliation_run_day", "day", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date)
    platform: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(10))  # cli | schedule
    schedule_key: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="running")  # running|done|failed
    error: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="{}")
    discrepancies: Mapped[int] = mapped_column(Integer, default=0)
    healed: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ReconciliationDiscrepancy(Base):
    """One discrepancy a run found: its class, each side's amount (None: absent there), what to
    do, and whether (and how) it was healed. Ids only; nobody's name or account."""

    __tablename__ = "reconciliation_discrepancy"
    __table_args__ = (Index("ix_reconciliation_discrepancy_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey(ReconciliationRun.id))
    kind: Mapped[str] = mapped_column(String(20))  # adapter.reconciliation.matching.Kind
    out_trade_no: Mapped[str] = mapped_column(String(64), default="")
    out_request_no: Mapped[str] = mapped_column(String(64), default="")
    his_receipt_no: Mapped[str] = mapped_column(String(40), default="")
    purpose: Mapped[str] = mapped_column(String(20), default="")
    wallet_fen: Mapped[int | None] = mapped_column(BigInteger)
    adapter_fen: Mapped[int | None] = mapped_column(BigInteger)
    his_fen: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(30))  # adapter.reconciliation.matching.Action
    healed: Mapped[bool] = mapped_column(default=False)
    heal: Mapped[str] = mapped_column(String(20), default="")  # posted | refunded | earlier
    # Set by staff on the day's report: seen and handled (the report keeps it, marked).
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class ReconciliationHeal(Base):
    """A healing done once and for all: ("post", out_trade_no) or ("refund", out_request_no);
    a later run of the same day (or another day) finds it here and never heals twice."""

    __tablename__ = "reconciliation_heal"
    __table_args__ = (UniqueConstraint("action", "subject", name="uq_reconciliation_heal"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int] = mapped_column(ForeignKey(ReconciliationRun.id))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
