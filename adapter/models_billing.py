"""Fee payment's tables: charges from the HIS, settlements (one paid set of charges), their
lines, and the refunds the HIS asks for. Registered on Base.metadata through adapter.models;
kept apart so that file stays readable. Money in integer fen (DESIGN invariant 2)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapter.db import Base, UtcDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ChargeStatus:
    """Where an unpaid charge of the HIS stands for the wallet channel."""

    UNPAID = "unpaid"  # listed for the patient
    LOCKED = "locked"  # pre-settled in the HIS for one of our settlements
    PAID = "paid"  # committed through us
    PAID_ELSEWHERE = "paid_elsewhere"  # the HIS says it was paid (at the window)
    CHANGED = "changed"  # the HIS changed it; listed again once it says the new amount
    CANCELLED = "cancelled"  # withdrawn by the HIS before payment


class Charge(Base):
    """One charge line the HIS listed (FT1 of type CG), kept by the HIS's id."""

    __tablename__ = "charge"
    __table_args__ = (
        UniqueConstraint("his_charge_id", name="uq_charge_his_id"),
        CheckConstraint("amount_fen >= 0 AND unit_price_fen >= 0", name="ck_charge_amounts"),
        Index("ix_charge_patient_status", "his_patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    his_charge_id: Mapped[str] = mapped_column(String(80))
    his_patient_id: Mapped[str] = mapped_column(String(40))
    visit_number: Mapped[str] = mapped_column(String(80), default="")
    item_code: Mapped[str] = mapped_column(String(40))
    item_name: Mapped[str] = mapped_column(String(200), default="")
    item_kind: Mapped[str] = mapped_column(String(20), default="other")  # fee_items.csv kind
    quantity: Mapped[str] = mapped_column(String(20), default="1")  # decimal string
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(Integer)
    department_code: Mapped[str] = mapped_column(String(40), default="")
    group_code: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(16), default=ChargeStatus.UNPAID)
    ordered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class SettlementStatus:
    """Life of one payment of a set of charges."""

    LOCKING = "locking"  # asking the HIS to pre-settle
    PENDING_PAYMENT = "pending_payment"  # locked in the HIS, trade open until lock_expires_at
    COMMITTING = "committing"  # paid; the outbox is posting it in the HIS
    COMMITTED = "committed"  # the HIS issued its receipt
    REFUNDED = "refunded"  # paid but not postable: refunded in full (raised for staff)
    REFUSED = "refused"  # the HIS refused the pre-settlement (nothing paid)
    EXPIRED = "expired"  # never paid before the deadline; the lock was released

    OPEN = (LOCKING, PENDING_PAYMENT, COMMITTING)


class Settlement(Base):
    """A patient paying a chosen set of charges in one wallet trade (our settlement no is
    ``public_id``, sent to the HIS at pre-settlement, commit and status query)."""

    __tablename__ = "settlement"
    __table_args__ = (
        CheckConstraint("total_fen >= 0", name="ck_settlement_total"),
        # The split (docs/billing.md): cash now, the insurance parts present and zero.
        CheckConstraint("self_pay_fen + insurance_fund_fen + personal_account_fen = total_fen",
                        name="ck_settlement_split"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= total_fen",
                        name="ck_settlement_refunded"),
        Index("ix_settlement_account", "wallet_account_id", "id"),
        Index("ix_settlement_status_lock", "status", "lock_expires_at"),
        Index("ix_settlement_raised", "raised_at"),
        Index("ix_settlement_receipt", "receipt_no"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_account.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    his_patient_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=SettlementStatus.LOCKING)
    status_reason: Mapped[str] = mapped_column(String(40), default="")  # a code
    total_fen: Mapped[int] = mapped_column(Integer, default=0)
    self_pay_fen: Mapped[int] = mapped_column(Integer, default=0)
    insurance_fund_fen: Mapped[int] = mapped_column(Integer, default=0)
    personal_account_fen: Mapped[int] = mapped_column(Integer, default=0)
    refunded_fen: Mapped[int] = mapped_column(Integer, default=0)  # asked back, by any cause
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    lock_expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    commit_sent: Mapped[int] = mapped_column(Integer, default=0)  # commit attempts begun
    receipt_no: Mapped[str | None] = mapped_column(String(80))
    invoice_no: Mapped[str] = mapped_column(String(80), default="")
    check_code: Mapped[str] = mapped_column(String(80), default="")
    invoice_url: Mapped[str] = mapped_column(String(500), default="")
    # Raised for staff (the status page lists them): a payment that could not be posted.
    raised_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    raised_reason: Mapped[str] = mapped_column(String(40), default="")
    # A staff user has handled what was raised (who, when): it leaves the parked work page.
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    committed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class SettlementLine(Base):
    """A charge of a settlement, at the amount the HIS locked it for."""

    __tablename__ = "settlement_line"
    __table_args__ = (
        UniqueConstraint("settlement_id", "charge_id", name="uq_settlement_line"),
        Index("ix_settlement_line_charge", "charge_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlement.id"))
    charge_id: Mapped[int] = mapped_column(ForeignKey("charge.id"))
    amount_fen: Mapped[int] = mapped_column(Integer, default=0)


class HisRefund(Base):
    """A refund the HIS asked for (a cancelled test), kept once by the HIS's id; its wallet
    refund's out_request_no is made from this row's id and reused on every retry."""

    __tablename__ = "his_refund"
    __table_args__ = (
        UniqueConstraint("his_refund_id", name="uq_his_refund_id"),
        CheckConstraint("amount_fen > 0", name="ck_his_refund_amount"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    his_refund_id: Mapped[str] = mapped_column(String(80))
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlement.id"))
    his_charge_id: Mapped[str] = mapped_column(String(80), default="")
    amount_fen: Mapped[int] = mapped_column(Integer)
    out_request_no: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
