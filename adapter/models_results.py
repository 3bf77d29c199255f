"""The results audit trail's table (who saw which result, and who was refused). Registered on
Base.metadata through adapter.models; kept apart so that file stays readable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from adapter.db import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class ResultViewOutcome:
    """Whether a request for results was answered with them (docs/results.md)."""

    SHOWN = "shown"
    REFUSED = "refused"


class ResultView(Base):
    """The audit trail of results (DESIGN invariant 7): every view of a result, list or file,
    and every refused attempt, with who asked, through which link, when and from where."""

    __tablename__ = "result_view"
    __table_args__ = (Index("ix_result_view_result", "result_id", "at"),
                      Index("ix_result_view_account", "wallet_account_id", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # None: no live session (signed out, expired, a copied cookie of an ended session).
    wallet_account_id: Mapped[int | None] = mapped_column(BigInteger)
    patient_id: Mapped[int | None] = mapped_column(BigInteger)  # the link it was shown through
    action: Mapped[str] = mapped_column(String(8))  # list | read | file
    # What was asked for, as asked (a guessed id may name no result): no foreign key.
    result_id: Mapped[int | None] = mapped_column(BigInteger)
    file_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(8))  # ResultViewOutcome
    # Why it was refused, a code for staff (the patient is told only "not found"):
    # session, unknown, not_theirs, not_released, link_ended, unverified, malformed.
    reason: Mapped[str] = mapped_column(String(20), default="")
    shown: Mapped[int] = mapped_column(Integer, default=0)  # how many results a list showed
    ip: Mapped[str] = mapped_column(String(64), default="")  # after the trusted proxies
    user_agent: Mapped[str] = mapped_column(String(200), default="")
