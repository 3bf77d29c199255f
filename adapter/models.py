"""SQLAlchemy 2.0 models. Schema changes go through Alembic (adapter/migrations)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
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
        Index("ix_inbound_received_at", "received_at"),
        Index("ix_inbound_ordering", "ordering_key", "status", "id"),
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
    # Set by staff from the message browser: a failure seen and handled leaves the dashboard's
    # error counts (reprocessing clears it).
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    # adapter.his.inbound.ordering_key: one key's messages are applied in arrival order,
    # different keys' in parallel; "" is applied one at a time across all of them.
    ordering_key: Mapped[str] = mapped_column(String(40), default="")


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
    # How long the last check's answer took (the worker's link check); None before one.
    latency_ms: Mapped[int | None] = mapped_column(Integer)


class JobRun(Base):
    """How a worker's scheduled job last ran, over every worker (for /metrics)."""

    __tablename__ = "job_run"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_milliseconds: Mapped[int] = mapped_column(Integer, default=0)
    last_ok: Mapped[bool] = mapped_column(default=True)
    last_error: Mapped[str] = mapped_column(String(200), default="")  # a safe code


class WalletAccount(Base):
    """A wallet user who signed in (their platform's user id, certified or not)."""

    __tablename__ = "wallet_account"
    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_wallet_account_user"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))  # WalletGateway.platform
    user_id: Mapped[str] = mapped_column(String(64))
    is_certified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Set by staff (`hospital-adapter account disable`): no sign-in, every session ended.
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Real-name binding of an account its wallet did not certify (adapter/identity/binding.py).
    bound_by: Mapped[str | None] = mapped_column(String(16))  # his_match | health_card
    bound_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class PatientSession(Base):
    """A signed-in browser: the cookie carries a random token, only its SHA-256 is kept here.

    Revoking the row ends the session wherever the cookie was copied (adapter/identity/sessions.py).
    """

    __tablename__ = "patient_session"
    __table_args__ = (Index("ix_patient_session_account", "wallet_account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_account.id"))
    # Which secret key the session was made under: a rotated key ends every older session.
    key_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class Verification:
    """Whether an account's link to a person (a patient row) is shown to be theirs to book for.

    Only verified links share the person's limits and no-show ban across accounts
    (mappings/booking_rules.toml ``unverified_dependants``; docs/identity.md).
    """

    UNVERIFIED = "unverified"  # a dependant the account says it books for; nothing confirmed it
    SELF = "self"  # the wallet's certified user themself
    HIS = "his"  # the HIS knew the person (not from us) with the same name, birth date, phone
    WALLET = "wallet"  # the wallet certified the relation (no wallet offers it yet)

    VERIFIED = (SELF, HIS, WALLET)


class Patient(Base):
    """A person a wallet account books for: the account holder ("self") or a dependant.

    DESIGN invariant 6: the document number and phone are stored encrypted (AES-GCM, see
    adapter/protection.py) with an HMAC blind index for lookup and a masked form for display.
    One row is one account's link to one person; the person is ``document_index``.
    """

    __tablename__ = "patient"
    __table_args__ = (
        UniqueConstraint("wallet_account_id", "document_index", name="uq_patient_document"),
        Index("ix_patient_document_index", "document_index"),
        Index("ix_patient_his_patient_id", "his_patient_id"),  # results are matched by it
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_account.id"))
    relation: Mapped[str] = mapped_column(String(16))  # self | child | spouse | parent | other
    name: Mapped[str] = mapped_column(String(100))
    document_type: Mapped[str] = mapped_column(String(40))
    document_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    document_index: Mapped[str] = mapped_column(String(64))
    document_masked: Mapped[str] = mapped_column(String(40))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1), default="U")
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str] = mapped_column(String(20), default="")
    his_patient_id: Mapped[str | None] = mapped_column(String(40))
    # True when this link's ADT^A28 put the person in the HIS: their HIS record then repeats
    # what this account typed and verifies nobody.
    his_added: Mapped[bool] = mapped_column(default=False)
    verification: Mapped[str] = mapped_column(String(12), default=Verification.UNVERIFIED)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    guardian_consent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class TradeStatus:
    """Life of a wallet trade, as the adapter records it."""

    CREATED = "created"  # trade created in the wallet (or maybe: an attempt may have reached it)
    UNSENT = "unsent"  # in our books only: no attempt to create it can have reached the wallet
    PAID = "paid"  # a verified notification or query said the money was taken
    CLOSED = "closed"  # closed unpaid (hold expired, cancelled before paying)
    REFUNDED = "refunded"  # refunded in full


class Trade(Base):
    """A wallet trade for one purpose (a registration fee, a bill); money in integer fen."""

    __tablename__ = "trade"
    __table_args__ = (
        CheckConstraint("total_fen > 0", name="ck_trade_total"),
        CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= total_fen", name="ck_trade_refunded"
        ),
        Index("ix_trade_purpose", "purpose", "reference"),
        Index("ix_trade_status_expire", "status", "expire_at"),
    )

    out_trade_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))  # WalletGateway.platform
    purpose: Mapped[str] = mapped_column(String(20))  # registration | bill
    reference: Mapped[str] = mapped_column(String(64))  # the booking or bill it pays
    subject: Mapped[str] = mapped_column(String(256))
    total_fen: Mapped[int] = mapped_column(Integer)
    buyer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default=TradeStatus.CREATED)
    trade_no: Mapped[str | None] = mapped_column(String(64))  # the platform's, once known
    # What the in-wallet payment takes (CreatedTrade.pay_reference); set once created there.
    pay_reference: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expire_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    refunded_fen: Mapped[int] = mapped_column(Integer, default=0)
    paid_after_close: Mapped[bool] = mapped_column(default=False)


class Refund(Base):
    """A refund request; out_request_no is reused on every retry so it is never paid twice."""

    __tablename__ = "refund"
    __table_args__ = (CheckConstraint("refund_fen > 0", name="ck_refund_amount"),)

    out_request_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(ForeignKey("trade.out_trade_no"))
    refund_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(12), default="requested")  # requested | done
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class WalletNotification(Base):
    """A request to /notify/...: a notice the platform signed is kept raw before it is applied
    (DESIGN invariant 4); one that is not signed (forged, garbled, too large) is kept without
    its body, and only the latest of those (ADAPTER_NOTIFY_REFUSED_KEPT), so a flood of them
    cannot fill the disk."""

    __tablename__ = "wallet_notification"
    __table_args__ = (Index("ix_wallet_notification_notify_id", "platform", "notify_id"),
                      Index("ix_wallet_notification_outcome", "outcome", "id"),
                      Index("ix_wallet_notification_received_at", "received_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    platform: Mapped[str] = mapped_column(String(16))  # WalletGateway.platform
    peer: Mapped[str] = mapped_column(String(64), default="")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # None: not signed, body not kept
    size: Mapped[int] = mapped_column(Integer, default=0)  # bytes received (or announced)
    notify_id: Mapped[str | None] = mapped_column(String(128))
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(12), default="received")
    reason: Mapped[str] = mapped_column(String(200), default="")
    # Set by staff from the message browser: a failure seen and handled leaves the dashboard's
    # error counts (reprocessing clears it).
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class BookingStatus:
    """Life of a registration booking."""

    PENDING_PAYMENT = "pending_payment"  # slot held until hold_expires_at, trade not yet paid
    CONFIRMING = "confirming"  # paid; the outbox is asking the HIS (SRM^S01)
    CONFIRMED = "confirmed"  # the HIS booked it (filler appointment id kept)
    CANCELLING = "cancelling"  # the patient cancelled; waiting for the HIS to agree (SRM^S04)
    CANCELLED = "cancelled"  # cancelled by the patient or the hospital (refund follows if paid)
    EXPIRED = "expired"  # the hold ran out unpaid
    REJECTED = "rejected"  # the HIS refused it; refunded
    NO_SHOW = "no_show"  # the HIS reported the patient absent (SIU^S26)

    ACTIVE = (PENDING_PAYMENT, CONFIRMING, CONFIRMED, CANCELLING)


class Booking(Base):
    """A patient's registration on one slot: held, paid, confirmed by the HIS, or undone."""

    __tablename__ = "booking"
    __table_args__ = (
        Index("ix_booking_account", "wallet_account_id", "id"),
        Index("ix_booking_patient_date", "patient_document_index", "visit_date"),
        Index("ix_booking_status_hold", "status", "hold_expires_at"),
        Index("ix_booking_slot", "slot_id", "status"),
        Index("ix_booking_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # placer id, SCH-1/ARQ-1
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_account.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    # copied so anti-scalping limits count per person whichever account booked
    patient_document_index: Mapped[str] = mapped_column(String(64))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    department_code: Mapped[str] = mapped_column(String(40))
    doctor_code: Mapped[str] = mapped_column(String(40))
    visit_date: Mapped[dt.date] = mapped_column(Date)
    fee_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=BookingStatus.PENDING_PAYMENT)
    status_reason: Mapped[str] = mapped_column(String(40), default="")  # a refusal code
    out_trade_no: Mapped[str | None] = mapped_column(String(64))
    hold_expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    filler_appointment_id: Mapped[str | None] = mapped_column(String(80))
    slot_held: Mapped[bool] = mapped_column(default=True)  # counts in slot.booked
    slot_release_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class IdempotencyRecord(Base):
    """The first answer to a request carrying an Idempotency-Key, replayed for its repeats."""

    __tablename__ = "idempotency_record"
    __table_args__ = (
        UniqueConstraint("wallet_account_id", "key", name="uq_idempotency_key"),
        Index("ix_idempotency_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wallet_account_id: Mapped[int] = mapped_column(ForeignKey("wallet_account.id"))
    key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboxStatus:
    """Life of an outgoing message."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # gave up; shown on the status page


class OutboxMessage(Base):
    """Work that must reach the HIS or the wallet, committed with the state change that needs
    it (DESIGN invariant 3) and delivered by the worker until it succeeds."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_subject", "subject_type", "subject_id"),
        Index("ix_outbox_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # declared by a flow (adapter/flows.py)
    # What the item is about, named generically: ("booking", "42"), ("refund", "RB...-R1"),
    # ("patient", "7"), ("wallet_account", "3"). The kind's delivery knows how to read it.
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="{}")  # JSON, never personal data
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Set by staff from the message browser: a failure seen and handled leaves the dashboard's
    # error counts (reprocessing clears it).
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class QueueEventRecord(Base):
    """A queue event the HIS sent (adapter.ports.QueueEvent), kept once by its event id; a
    doctor's session queue is folded from its events (adapter/queueing/line.py)."""

    __tablename__ = "queue_event"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_queue_event_id"),
        Index("ix_queue_event_session", "doctor_code", "visit_date", "session"),
        Index("ix_queue_event_placer", "placer_id"),
        Index("ix_queue_event_visit_date", "visit_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(199))  # MSH-10, or snap:... from a snapshot
    doctor_code: Mapped[str] = mapped_column(String(40))
    visit_date: Mapped[dt.date] = mapped_column(Date)
    session: Mapped[str] = mapped_column(String(2))  # am | pm
    visit_number: Mapped[str] = mapped_column(String(80))  # the HIS's registration number
    kind: Mapped[str] = mapped_column(String(12))  # QueueEventKind
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    queue_number: Mapped[int] = mapped_column(Integer, default=0)
    his_patient_id: Mapped[str] = mapped_column(String(40), default="")
    placer_id: Mapped[str] = mapped_column(String(32), default="")  # our booking's public id
    room: Mapped[str] = mapped_column(String(40), default="")
    slot_start: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class CheckIn(Base):
    """A booking checked in (签到) through the wallet: once per booking; the HIS hears it by
    the outbox (``his_arrive``, ADT^A10). The phone's location is checked, never kept."""

    __tablename__ = "check_in"
    __table_args__ = (UniqueConstraint("booking_id", name="uq_check_in_booking"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey(Booking.id))
    method: Mapped[str] = mapped_column(String(10))  # CheckInMethod: remote | qr
    checked_in_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class QueueNotice(Base):
    """A queue push decided for a booking (checked in, N ahead, your turn, missed call): one
    row per booking and notice, so a threshold crossed twice (a recall) is pushed once."""

    __tablename__ = "queue_notice"
    __table_args__ = (UniqueConstraint("booking_id", "notice", name="uq_queue_notice"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey(Booking.id))
    notice: Mapped[str] = mapped_column(String(20))  # checked_in | ahead_5 | your_turn ...
    pushed: Mapped[bool] = mapped_column(default=True)  # False: passed by a closer one
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
class ResultState:
    """Whether a result order is shown to its patient (docs/results.md)."""

    UNMATCHED = "unmatched"  # held for staff: no patient, or the identity on file disagrees
    PENDING = "pending"  # preliminary: kept, shown to no one until final
    HELD = "held"  # a sensitive kind: waiting for a doctor to release it, or release_at
    RELEASED = "released"  # shown to the person's verified links; announced
    WITHDRAWN = "withdrawn"  # the order was cancelled (OBR-25 X): shown to no one

    SHOWN = (RELEASED,)


class Result(Base):
    """One order's results (an OBR of an ORU^R01) as last reported, and who may see it.

    Values live in result_observation; no value, name or number of it is ever logged.
    """

    __tablename__ = "result"
    __table_args__ = (
        UniqueConstraint("order_key", name="uq_result_order"),
        Index("ix_result_person", "document_index", "state"),
        Index("ix_result_state_release", "state", "release_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The order's identity across messages: sender, filler (else placer) order number, kind.
    order_key: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str] = mapped_column(String(200), default="")
    placer_order: Mapped[str] = mapped_column(String(80), default="")
    filler_order: Mapped[str] = mapped_column(String(80), default="")
    kind: Mapped[str] = mapped_column(String(80), default="")  # OBR-4.1
    kind_name: Mapped[str] = mapped_column(String(200), default="")  # OBR-4.2
    observed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(12))  # adapter.ports.ResultStatus
    corrected: Mapped[bool] = mapped_column(default=False)
    critical: Mapped[bool] = mapped_column(default=False)
    # Who the message says it is about (PID-3 under the HIS's authority) and, once matched,
    # the person (the blind index of their document, as on their patient links).
    his_patient_id: Mapped[str] = mapped_column(String(40), default="")
    document_index: Mapped[str | None] = mapped_column(String(64))
    # OBR-16.1, the ordering provider's HIS doctor code (mappings/doctors.csv): whose patient
    # it is on the doctor's page.
    ordering_provider: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[str] = mapped_column(String(12))
    hold_reason: Mapped[str] = mapped_column(String(40), default="")  # a code, never a value
    release_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    released_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)  # each change of what is shown
    announced_version: Mapped[int] = mapped_column(Integer, default=0)
    content_digest: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ResultObservation(Base):
    """One OBX of a result as last reported (a correction replaces them all)."""

    __tablename__ = "result_observation"
    __table_args__ = (Index("ix_result_observation_result", "result_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("result.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    set_id: Mapped[str] = mapped_column(String(20), default="")
    value_type: Mapped[str] = mapped_column(String(10), default="")
    code: Mapped[str] = mapped_column(String(80), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    number: Mapped[str] = mapped_column(String(40), default="")  # a decimal string, never float
    comparator: Mapped[str] = mapped_column(String(2), default="")
    units: Mapped[str] = mapped_column(String(60), default="")
    reference_range: Mapped[str] = mapped_column(String(120), default="")
    abnormal_flags: Mapped[str] = mapped_column(String(40), default="")  # "~"-joined
    status: Mapped[str] = mapped_column(String(2), default="")
    critical: Mapped[bool] = mapped_column(default=False)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("result_attachment.id"))
    attachment_problem: Mapped[str] = mapped_column(String(20), default="")


class ResultAttachment(Base):
    """A report's bytes (an ED observation: a PDF), decoded, with the type it is served as."""

    __tablename__ = "result_attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("result.id", ondelete="CASCADE"))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class CriticalAlert(Base):
    """A critical value raised for staff: open until a staff user acknowledges it; escalated
    when nobody has within the configured time."""

    __tablename__ = "critical_alert"
    __table_args__ = (Index("ix_critical_alert_open", "acknowledged_at", "raised_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("result.id"))
    result_version: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


# Binding's, fee payment's, the staff side's, reconciliation's and the results audit trail's
# tables live in their own modules; imported here so that Base.metadata (and so Alembic and the
# tests) always has them.
from adapter.models_billing import (  # noqa: E402,F401
    Charge,
    HisRefund,
    Settlement,
    SettlementLine,
)
from adapter.models_binding import BindingAttempt  # noqa: E402,F401
from adapter.models_reconciliation import (  # noqa: E402,F401
    ReconciliationDiscrepancy,
    ReconciliationHeal,
    ReconciliationRun,
)
from adapter.models_results import ResultView, ResultViewOutcome  # noqa: E402,F401
from adapter.models_staff import StaffAccount, StaffAudit, StaffSession  # noqa: E402,F401
