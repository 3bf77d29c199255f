"""Use cases of registration (挂号): browse, hold, pay, confirm with the HIS, cancel, expire.

The rush cannot wait on the HIS: a booking is decided locally against the slot pool at once
(DESIGN invariant 1: a conditional UPDATE that the database's CHECK backs up), held for the
payment deadline, and delivered to the HIS by the outbox once paid (invariant 3: the state change
and the outgoing message commit together). Every way out of a paid booking ends posted to the
HIS exactly once (the placer id makes a resend idempotent) or refunded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import secrets
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from adapter.db import utcnow
from adapter.identity import BookingFact, BookingRules, Refusal, check_booking_allowed
from adapter.mappings import Mappings
from adapter.models import (
    Booking,
    BookingStatus,
    Refund,
    Slot,
    Trade,
    TradeStatus,
    WalletAccount,
)
from adapter.outbox import enqueue
from adapter.patients import get_patient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationPolicy:
    """The hospital's registration timings (mappings/registration.toml)."""

    hold_minutes: int = 15  # time to pay before the slot returns to the pool
    cancel_deadline_days_before: int = 1  # patients may cancel until this many days before...
    cancel_deadline_hour: int = 15  # ...at this hour (hospital time): 15:00 the day before
    release_delay_min_seconds: int = 30  # a cancelled slot returns to the pool after a random
    release_delay_max_seconds: int = 300  # delay in this range, so bots cannot pounce on it
    outbox_max_attempts: int = 12  # then the message is parked for admins


class PolicyError(ValueError):
    """mappings/registration.toml has a key or value the adapter cannot use."""


def load_registration_policy(path: Path) -> RegistrationPolicy:
    """Read the policy file; a missing file or key keeps the defaults."""
    if not path.exists():
        return RegistrationPolicy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path.name}: {exc}") from None
    known = {f.name for f in fields(RegistrationPolicy)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PolicyError(f"{path.name}: unknown key(s) {', '.join(unknown)}")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PolicyError(f"{path.name}: {key} must be a whole number of 0 or more")
    policy = RegistrationPolicy(**data)
    if not 0 <= policy.cancel_deadline_hour <= 23:
        raise PolicyError(f"{path.name}: cancel_deadline_hour must be 0 to 23")
    if policy.release_delay_min_seconds > policy.release_delay_max_seconds:
        raise PolicyError(f"{path.name}: release_delay_min_seconds exceeds the max")
    if policy.hold_minutes < 1:
        raise PolicyError(f"{path.name}: hold_minutes must be at least 1")
    return policy


# --------------------------------------------------------------------------------------------
# Browsing


def release_at(mappings: Mappings, department_code: str, visit_date: dt.date,
               tz: dt.tzinfo) -> dt.datetime:
    """When the slots of a department's visit date open to the wallet (hospital time)."""
    department = mappings.departments.get(department_code)
    if department is None:
        return dt.datetime.combine(visit_date, dt.time.min, tz)
    day = visit_date - dt.timedelta(days=department.release_days_ahead)
    return dt.datetime.combine(day, department.release_time, tz)


@dataclass(frozen=True)
class SlotView:
    """A slot as a patient sees it."""

    slot: Slot
    remaining: int
    status: str  # open | full | closed | not_released | past
    release_at: dt.datetime


def browse_slots(
    session: Session, mappings: Mappings, tz: dt.tzinfo, *, visit_date: dt.date,
    department_code: str = "", doctor_code: str = "", now: dt.datetime,
) -> list[SlotView]:
    """The pool's slots of one day for a department and/or doctor, with what a patient may do."""
    start = dt.datetime.combine(visit_date, dt.time.min, tz)
    query = select(Slot).where(Slot.start_at >= start, Slot.start_at < start + dt.timedelta(1))
    if department_code:
        query = query.where(Slot.department_code == department_code)
    if doctor_code:
        query = query.where(Slot.doctor_code == doctor_code)
    views = []
    for slot in session.scalars(query.order_by(Slot.start_at, Slot.doctor_code, Slot.id)):
        opens = release_at(mappings, slot.department_code, visit_date, tz)
        remaining = max(slot.capacity - slot.booked, 0)
        if slot.status != "open":
            status = "closed"
        elif slot.start_at <= now:
            status = "past"
        elif now < opens:
            status = "not_released"
        elif remaining == 0:
            status = "full"
        else:
            status = "open"
        views.append(SlotView(slot, remaining, status, opens))
    return views


# --------------------------------------------------------------------------------------------
# Holding a slot


def _lock_person(session: Session, document_index: str) -> None:
    """Serialise one person's bookings so the per-day limits hold under double clicks."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(bytes.fromhex(document_index[:16]), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    # SQLite: write_transaction() already holds the database's single write lock.


def _history(session: Session, document_index: str, visit_date: dt.date) -> list[BookingFact]:
    rows = session.execute(
        select(Booking.visit_date, Booking.department_code, Booking.doctor_code, Booking.status)
        .where(Booking.patient_document_index == document_index,
               Booking.visit_date == visit_date)
    )
    return [
        BookingFact(day, department, doctor,
                    "cancelled" if status not in BookingStatus.ACTIVE else "active")
        for day, department, doctor, status in rows
    ]


def _no_shows(session: Session, document_index: str, today: dt.date,
              window_days: int) -> list[dt.date]:
    return list(session.scalars(
        select(Booking.visit_date).where(
            Booking.patient_document_index == document_index,
            Booking.status == "no_show",
            Booking.visit_date >= today - dt.timedelta(days=window_days),
        )
    ))


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
    account = session.get(WalletAccount, account_id)
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
    _lock_person(session, patient.document_index)
    today = now.astimezone(tz).date()
    check_booking_allowed(
        rules, _history(session, patient.document_index, visit_date),
        _no_shows(session, patient.document_index, today, rules.no_show_window_days),
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


# --------------------------------------------------------------------------------------------
# Idempotency-Key


def request_digest(body: Any) -> str:  # noqa: ANN401 - any JSON value
    """A stable digest of a JSON request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Messages to patients


PATIENT_MESSAGES = {
    "confirmed": "您已成功预约{department}{doctor}医生{time}的号，请按时就诊。",
    "rejected": "很抱歉，医院未能确认您的预约（{reason}），挂号费¥{fee}将原路退回。",
    "cancelled": "您已取消{department}{doctor}医生{time}的预约，挂号费¥{fee}将原路退回。",
    "hospital_cancelled": "因医院停诊，您预约的{department}{doctor}医生{time}的号已取消，"
                          "挂号费¥{fee}将原路退回。",
    "late_payment": "您的支付晚于预约保留时间且号源已无剩余，挂号费¥{fee}将原路退回。",
    "cancel_refused": "医院未能取消您{department}{doctor}医生{time}的预约（{reason}），"
                      "预约仍然有效。如需帮助请联系医院。",
}

HIS_REASONS = {
    "SLOT_TAKEN": "号源已被占用",
    "CLINIC_CLOSED": "医生停诊",
    "204": "医院系统中找不到该号源或就诊人",
}


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def patient_message(kind: str, booking: Booking, mappings: Mappings, tz: dt.tzinfo,
                    slot: Slot | None = None, reason: str = "") -> str:
    """The wallet message telling a patient what happened to their booking (zh-CN)."""
    department = mappings.departments.get(booking.department_code)
    doctor = mappings.doctors.get(booking.doctor_code)
    when = slot.start_at.astimezone(tz).strftime("%m月%d日%H:%M") if slot else \
        booking.visit_date.strftime("%m月%d日")
    return PATIENT_MESSAGES[kind].format(
        department=department.name_zh if department else booking.department_code,
        doctor=doctor.name_zh if doctor else booking.doctor_code,
        time=when, fee=_yuan(booking.fee_fen), reason=reason or "医院拒绝",
    )


def _push(session: Session, booking: Booking, kind: str, mappings: Mappings, tz: dt.tzinfo,
          now: dt.datetime, reason: str = "") -> None:
    slot = session.get(Slot, booking.slot_id)
    enqueue(session, "push", booking.id, now, message_kind=kind,
            text=patient_message(kind, booking, mappings, tz, slot, reason))


def _refund(session: Session, booking: Booking, reason: str, now: dt.datetime) -> None:
    """Queue a full refund of the booking's paid trade (one out_request_no for all retries)."""
    if not booking.out_trade_no:
        return
    trade = session.get(Trade, booking.out_trade_no)
    if trade is None or trade.status != TradeStatus.PAID or trade.refunded_fen:
        return
    out_request_no = f"{booking.out_trade_no}-R1"
    if session.get(Refund, out_request_no) is not None:
        return
    session.add(Refund(out_request_no=out_request_no, out_trade_no=trade.out_trade_no,
                       refund_fen=trade.total_fen, reason=reason, created_at=now))
    enqueue(session, "refund", booking.id, now, out_request_no=out_request_no)


def _schedule_release(booking: Booking, policy: RegistrationPolicy, now: dt.datetime,
                      rng: random.Random) -> None:
    if booking.slot_held:
        delay = rng.randint(policy.release_delay_min_seconds, policy.release_delay_max_seconds)
        booking.slot_release_at = now + dt.timedelta(seconds=delay)


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


# --------------------------------------------------------------------------------------------
# Paid, confirmed, refused


def on_registration_paid(session: Session, trade: Trade, *, mappings: Mappings,
                         tz: dt.tzinfo, now: dt.datetime | None = None) -> None:
    """The trade of a booking is paid: queue the booking for the HIS, or refund a late one."""
    now = now or utcnow()
    booking = lock_booking(session, out_trade_no=trade.out_trade_no)
    if booking is None:
        logger.error("paid trade %s has no booking; refunding", trade.out_trade_no)
        return
    if booking.status == BookingStatus.PENDING_PAYMENT:
        booking.status, booking.updated_at = BookingStatus.CONFIRMING, now
        enqueue(session, "his_book", booking.id, now)
        return
    if booking.status == BookingStatus.EXPIRED:
        # Paid after the hold ran out: take the place again if one is left, else refund.
        taken = session.execute(
            update(Slot).where(Slot.id == booking.slot_id, Slot.status == "open",
                               Slot.booked < Slot.capacity)
            .values(booked=Slot.booked + 1).execution_options(synchronize_session=False)
        ).rowcount
        if taken == 1:
            booking.status, booking.slot_held, booking.slot_release_at = (
                BookingStatus.CONFIRMING, True, None)
            booking.updated_at = now
            enqueue(session, "his_book", booking.id, now)
            return
        booking.status, booking.status_reason = BookingStatus.CANCELLED, "late_payment"
    if booking.status == BookingStatus.CANCELLED:
        # Paid for a booking already given up (by the patient or the hospital): refund.
        _refund(session, booking, "late payment", now)
        _push(session, booking, "late_payment", mappings, tz, now)


def booking_confirmed(session: Session, booking: Booking, filler_appointment_id: str,
                      mappings: Mappings, tz: dt.tzinfo, now: dt.datetime) -> None:
    """The HIS booked it."""
    booking.status, booking.updated_at = BookingStatus.CONFIRMED, now
    booking.filler_appointment_id = filler_appointment_id
    _push(session, booking, "confirmed", mappings, tz, now)


def booking_rejected(session: Session, booking: Booking, reason_code: str, mappings: Mappings,
                     tz: dt.tzinfo, now: dt.datetime) -> None:
    """The HIS refused it: cancel, give the place back, refund, tell the patient."""
    booking.status, booking.status_reason = BookingStatus.REJECTED, reason_code[:40]
    booking.updated_at = now
    release_slot(session, booking)
    _refund(session, booking, "hospital refused the booking", now)
    _push(session, booking, "rejected", mappings, tz, now,
          reason=HIS_REASONS.get(reason_code, ""))


# --------------------------------------------------------------------------------------------
# Cancelling


def cancel_deadline(booking: Booking, policy: RegistrationPolicy, tz: dt.tzinfo) -> dt.datetime:
    """The last moment the patient may cancel a paid booking."""
    day = booking.visit_date - dt.timedelta(days=policy.cancel_deadline_days_before)
    return dt.datetime.combine(day, dt.time(policy.cancel_deadline_hour), tz)


def can_cancel(booking: Booking, policy: RegistrationPolicy, tz: dt.tzinfo,
               now: dt.datetime) -> bool:
    """Whether the patient may cancel now."""
    if booking.status == BookingStatus.PENDING_PAYMENT:
        return True
    return (booking.status == BookingStatus.CONFIRMED
            and now <= cancel_deadline(booking, policy, tz))


def cancel_by_patient(
    session: Session, booking: Booking, *, policy: RegistrationPolicy, tz: dt.tzinfo,
    now: dt.datetime, rng: random.Random, closed_trade: str | None = None,
) -> None:
    """Cancel a locked booking: an unpaid hold, or a confirmed booking before the deadline.

    An unpaid hold's trade must have been closed at the wallet first (the caller does that
    outside the transaction, so a payment that raced it is known, and names it in
    ``closed_trade``). A confirmed booking becomes "cancelling": the refund follows only once
    the HIS agrees to the cancellation.
    """
    if booking.status in (BookingStatus.CONFIRMING, BookingStatus.CANCELLING):
        raise Refusal("booking.confirming")
    if booking.status == BookingStatus.PENDING_PAYMENT:
        booking.status, booking.status_reason, booking.updated_at = (
            BookingStatus.CANCELLED, "patient", now)
        if booking.out_trade_no:
            trade = session.get(Trade, booking.out_trade_no)
            if trade is not None and trade.status == TradeStatus.CREATED:
                if booking.out_trade_no == closed_trade:
                    trade.status = TradeStatus.CLOSED
                else:
                    # The trade appeared after the caller closed what it saw: close it too.
                    enqueue(session, "close_trade", booking.id, now)
        _schedule_release(booking, policy, now, rng)
        return
    if booking.status != BookingStatus.CONFIRMED:
        raise Refusal("booking.not_cancellable")
    deadline = cancel_deadline(booking, policy, tz)
    if now > deadline:
        raise Refusal("cancel.deadline_passed",
                      deadline=deadline.astimezone(tz).strftime("%m-%d %H:%M"))
    booking.status, booking.status_reason, booking.updated_at = (
        BookingStatus.CANCELLING, "patient", now)
    slot = session.get(Slot, booking.slot_id)
    enqueue(session, "his_cancel", booking.id, now,
            filler_appointment_id=booking.filler_appointment_id or "",
            his_slot_id=slot.his_slot_id if slot else "")


def cancellation_answered(
    session: Session, booking: Booking, accepted: bool, reason_code: str, *,
    policy: RegistrationPolicy, mappings: Mappings, tz: dt.tzinfo, now: dt.datetime,
    rng: random.Random,
) -> None:
    """The HIS answered a patient's cancellation: refund and free the place, or keep it."""
    if booking.status != BookingStatus.CANCELLING:
        return  # cancelled by the hospital meanwhile, or a compensation's courtesy cancel
    if accepted:
        booking.status, booking.updated_at = BookingStatus.CANCELLED, now
        _refund(session, booking, "cancelled by the patient", now)
        _push(session, booking, "cancelled", mappings, tz, now)
        _schedule_release(booking, policy, now, rng)
        return
    # e.g. the patient has already checked in: the appointment stands, nothing is refunded
    booking.status, booking.status_reason, booking.updated_at = (
        BookingStatus.CONFIRMED, "cancel_refused", now)
    _push(session, booking, "cancel_refused", mappings, tz, now,
          reason=HIS_REASONS.get(reason_code, "医院拒绝"))


def cancel_for_closed_slot(session: Session, slot: Slot, *, mappings: Mappings,
                           tz: dt.tzinfo, now: dt.datetime) -> int:
    """The HIS stopped a slot (停诊): cancel its active bookings, refund and tell each patient."""
    bookings = list(session.scalars(
        select(Booking).where(Booking.slot_id == slot.id,
                              Booking.status.in_(BookingStatus.ACTIVE)).with_for_update()
    ))
    for booking in bookings:
        booking.status, booking.status_reason, booking.updated_at = (
            BookingStatus.CANCELLED, "hospital", now)
        if booking.out_trade_no:
            trade = session.get(Trade, booking.out_trade_no)
            if trade is not None and trade.status == TradeStatus.CREATED:
                enqueue(session, "close_trade", booking.id, now)
        _refund(session, booking, "clinic stopped by the hospital", now)
        _push(session, booking, "hospital_cancelled", mappings, tz, now)
    # Nothing of a closed slot returns to the pool later (a cancelled booking waiting for its
    # random release delay included), so the count restarts from zero if the HIS reopens it.
    session.execute(
        update(Booking).where(Booking.slot_id == slot.id, Booking.slot_held.is_(True))
        .values(slot_held=False, slot_release_at=None)
        .execution_options(synchronize_session="fetch")
    )
    session.execute(update(Slot).where(Slot.id == slot.id).values(booked=0)
                    .execution_options(synchronize_session="fetch"))
    if bookings:
        logger.info("slot %s closed by the HIS: %d booking(s) cancelled", slot.id, len(bookings))
    return len(bookings)


def expire_booking(session: Session, booking: Booking, now: dt.datetime) -> None:
    """An unpaid hold ran out (its trade already closed at the wallet): free the place."""
    booking.status, booking.updated_at = BookingStatus.EXPIRED, now
    if booking.out_trade_no:
        trade = session.get(Trade, booking.out_trade_no)
        if trade is not None and trade.status == TradeStatus.CREATED:
            trade.status = TradeStatus.CLOSED
    release_slot(session, booking)
