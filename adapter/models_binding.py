"""Real-name binding's table: each attempt an account makes to bind itself to a person, kept
for the confirmation it waits for and for the throttles (per account and per document).
Registered on Base.metadata through adapter.models."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from adapter.db import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class BindingOutcome:
    """Where a binding attempt ended."""

    PENDING = "pending"  # waiting for the SMS code (an expired one may be sent again)
    BOUND = "bound"  # the account is bound
    REFUSED = "refused"  # a rule said no (reason says which)
    SUPERSEDED = "superseded"  # the account started another attempt


class BindingAttempt(Base):
    """One attempt to bind a wallet account to a person (docs/identity.md, "Binding").

    The document number and phone are encrypted like a patient's (adapter/protection.py); the
    SMS code is kept only as an HMAC under the index key, so a copy of the table cannot be
    turned back into a code.
    """

    __tablename__ = "binding_attempt"
    __table_args__ = (Index("ix_binding_attempt_account", "wallet_account_id", "started_at"),
                      Index("ix_binding_attempt_document", "document_index", "started_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_account.id"))
    method: Mapped[str] = mapped_column(String(16))  # his_match | health_card
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(12), default=BindingOutcome.PENDING)
    reason: Mapped[str] = mapped_column(String(40), default="")  # the refusal code
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # The person, once the document was read ("" before: a malformed one counts per account).
    document_index: Mapped[str] = mapped_column(String(64), default="")
    document_type: Mapped[str] = mapped_column(String(40), default="")
    document_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(String(100), default="")  # as the HIS or the card has it
    sex: Mapped[str] = mapped_column(String(1), default="U")
    his_patient_id: Mapped[str] = mapped_column(String(40), default="")
    # The phone the code went to (the HIS's on file), encrypted, and masked for the page.
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str] = mapped_column(String(20), default="")
    code_hash: Mapped[str] = mapped_column(String(64), default="")
    code_sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    code_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    tries: Mapped[int] = mapped_column(Integer, default=0)  # wrong codes entered
