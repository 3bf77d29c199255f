"""Holding a slot (挂号): decided locally against the pool at once, since the rush cannot wait on
the HIS (DESIGN invariant 1: a conditional UPDATE that the database's CHECK backs up), and held
for the payment deadline."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from functools import partial
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from adapter.identity.patients import get_patient
from adapter.mappings import Mappings
from adapter.models import (
    Booking,
    BookingStatus,
    Patient,
    Slot,
    Verification,
    WalletAccount,
)
from adapter.refusals import Refusal
from adapter.registration.policy import RegistrationPolicy
from adapter.registration.rules import (
    BookingFact,
    BookingRules,
    check_booking_allowed,
    check_unpaid_holds,
    counted_bookings,
)
from adapter.registration.slots import release_at

logger = logging.getLogger(__name__)


def _lock_person(session: Session, document_index: str) -> None:
    """Serialise one person's bookings so the per-day limits hold under double clicks."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(bytes.fromhex(document_index[:16]), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    # SQLite: write_transaction() already holds the database's single write lock.


def _facts(session: Session, *where: Any) -> list[BookingFact]:  # noqa: ANN401
    """The person's bookings as the limits see them, with who booked them and through what
    kind of link (verified or not: rules.counted_bookings decides which count)."""
    rows = session.execute(
        select(Booking.visit_date, Booking.department_code, Booking.doctor_code, Booking.status,
               Booking.wallet_account_id, Patient.verification)
        .join(Patient, Patient.id == Booking.patient_id)
        .where(*where)
    )
    return [
        BookingFact(day, department, doctor,
                    "cancelled" if status not in BookingStatus.ACTIVE else "active",
                    account_id, verification in Verification.VERIFIED)
        for day, department, doctor, status, account_id, verification in rows
    ]


def _history(session: Session, document_index: str, visit_date: dt.date) -> list[BookingFact]:
    return _facts(session, Booking.patient_document_index == document_index,
                  Booking.visit_date == visit_date)


def _no_shows(session: Session, document_index: str, today: dt.date,
              window_days: int) -> list[BookingFact]:
    return _facts(session, Booking.patient_document_index == document_index,
                  Booking.status == BookingStatus.NO_SHOW,
                  Booking.visit_date >= today - dt.timedelta(days=window_days))


def _unpaid_holds(session: Session, account_id: int, now: dt.datetime) -> int:
    # A hold past its deadline no longer counts, even before the expiry job has swept it.
    return session.scalar(
        select(func.count()).select_from(Booking).where(
            Booking.wallet_account_id == account_id,
            Booking.status == BookingStatus.PENDING_PAYMENT,
            Booking.hold_expires_at > now,
        )
    ) or 0


def new_public_id(visit_date: dt.date) -> str:
    """A booking's public id (also the placer appointment id sent to the HIS)."""
    return f"B{visit_date:%y%m%d}{secrets.token_hex(6).upper()}"


def hold_slot(
    session: Session, *, account_id: int, patient_id: int, slot_id: int, mappings: Mappings,
    rules: BookingRules, policy: RegistrationPolicy, tz: dt.tzinfo, now: dt.datetime,
) -> Booking:
    """Decide a booking at once against the local pool and hold the slot until the deadline.

    The caller's transaction must have been started with write_transaction(). Raises Refusal.
    """
    # The account row is locked first: it serialises the account's holds, so two at once
    # cannot both pass the unpaid-holds cap (SQLite: write_transaction() holds the write lock).
    account = session.get(WalletAccount, account_id, with_for_update=True)
    if account is None or not account.is_certified:
        raise Refusal("account.not_certified")
    patient = get_patient(session, account_id, patient_id)
    if patient is None:
        raise Refusal("patient.unknown")
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise Refusal("slot.unknown")
    visit_date = slot.start_at.astimezone(tz).date()
    opens = release_at(mappings, slot.department_code, visit_date, tz)
    if now < opens:
        raise Refusal("slot.not_released", release_at=opens.astimezone(tz).strftime("%m-%d %H:%M"))
    if slot.status != "open" or slot.start_at <= now:
        raise Refusal("slot.closed")
    if slot.booked >= slot.capacity:
        # The rush's common answer, given before the per-person checks cost round trips; the
        # conditional UPDATE below still decides the close races.
        raise Refusal("slot.full")
    check_unpaid_holds(rules, _unpaid_holds(session, account_id, now))
    _lock_person(session, patient.document_index)
    today = now.astimezone(tz).date()
    # Another account's bookings count here only by the rule for unverified dependants.
    counted = partial(counted_bookings, rules, account_id=account_id,
                      verified=patient.verification in Verification.VERIFIED)
    check_booking_allowed(
        rules, counted(_history(session, patient.document_index, visit_date)),
        [b.visit_date for b in counted(
            _no_shows(session, patient.document_index, today, rules.no_show_window_days))],
        visit_date=visit_date, department_code=slot.department_code,
        doctor_code=slot.doctor_code, today=today,
    )
    # Invariant 1: take one place only if one is left, in one statement; the CHECK constraint
    # refuses overbooking even if this condition were ever wrong.
    taken = session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.status == "open", Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        raise Refusal("slot.full")
    booking = Booking(
        public_id=new_public_id(visit_date), wallet_account_id=account_id,
        patient_id=patient.id, patient_document_index=patient.document_index, slot_id=slot.id,
        department_code=slot.department_code, doctor_code=slot.doctor_code,
        visit_date=visit_date, fee_fen=slot.fee_fen, status=BookingStatus.PENDING_PAYMENT,
        hold_expires_at=now + dt.timedelta(minutes=policy.hold_minutes), slot_held=True,
        created_at=now, updated_at=now,
    )
    session.add(booking)
    session.flush()
    logger.info("booking %s holds slot %s until %s", booking.public_id, slot.id,
                booking.hold_expires_at.isoformat())
    return booking


def request_digest(body: Any) -> str:  # noqa: ANN401 - any JSON value
    """A stable digest of a JSON request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def release_slot(session: Session, booking: Booking) -> None:
    """Give the booking's place back to the pool (once)."""
    if booking.slot_held:
        session.execute(
            update(Slot).where(Slot.id == booking.slot_id, Slot.booked > 0)
            .values(booked=Slot.booked - 1).execution_options(synchronize_session=False)
        )
        booking.slot_held = False
        booking.slot_release_at = None


def lock_booking(session: Session, **where: Any) -> Booking | None:  # noqa: ANN401
    """A booking by a column (public_id, out_trade_no...), locked for the transaction."""
    query = select(Booking).with_for_update()
    for column, value in where.items():
        query = query.where(getattr(Booking, column) == value)
    return session.scalar(query)


def own_booking(session: Session, account_id: int, public_id: str) -> Booking | None:
    """One of the account's bookings; someone else's is as good as absent (invariant 7)."""
    booking = session.scalar(select(Booking).where(Booking.public_id == public_id))
    if booking is None or booking.wallet_account_id != account_id:
        return None
    return booking
