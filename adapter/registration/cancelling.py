"""Cancelling: by the patient before the deadline, by the hospital (停诊), or an unpaid hold
running out."""

from __future__ import annotations

import datetime as dt
import logging
import random

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adapter.db import write_transaction
from adapter.flows import Services
from adapter.mappings import Mappings
from adapter.models import (
    Booking,
    BookingStatus,
    Slot,
    Trade,
    TradeStatus,
)
from adapter.outbox import enqueue
from adapter.payments.refunds import refund_in_full
from adapter.payments.trades import close_at_wallet, is_unsent
from adapter.refusals import Refusal
from adapter.registration.booking import lock_booking, own_booking, release_slot
from adapter.registration.notices import HIS_REASONS, tell
from adapter.registration.policy import RegistrationPolicy

logger = logging.getLogger(__name__)


def _schedule_release(booking: Booking, policy: RegistrationPolicy, now: dt.datetime,
                      rng: random.Random) -> None:
    if booking.slot_held:
        delay = rng.randint(policy.release_delay_min_seconds, policy.release_delay_max_seconds)
        booking.slot_release_at = now + dt.timedelta(seconds=delay)


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
            if trade is not None and trade.status == TradeStatus.UNSENT:
                trade.status = TradeStatus.CLOSED  # never reached the wallet: nothing to close
            elif trade is not None and trade.status == TradeStatus.CREATED:
                if booking.out_trade_no == closed_trade:
                    trade.status = TradeStatus.CLOSED
                else:
                    # The trade appeared after the caller closed what it saw: close it too.
                    enqueue(session, "close_trade", ("trade", booking.out_trade_no), now)
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
    enqueue(session, "his_cancel", ("booking", booking.id), now,
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
        refund_in_full(session, booking.out_trade_no, "cancelled by the patient", now)
        tell(session, booking, "cancelled", mappings, tz, now)
        _schedule_release(booking, policy, now, rng)
        return
    # e.g. the patient has already checked in: the appointment stands, nothing is refunded
    booking.status, booking.status_reason, booking.updated_at = (
        BookingStatus.CONFIRMED, "cancel_refused", now)
    tell(session, booking, "cancel_refused", mappings, tz, now,
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
            if trade is not None and trade.status == TradeStatus.UNSENT:
                trade.status = TradeStatus.CLOSED
            elif trade is not None and trade.status == TradeStatus.CREATED:
                enqueue(session, "close_trade", ("trade", booking.out_trade_no), now)
        refund_in_full(session, booking.out_trade_no, "clinic stopped by the hospital", now)
        tell(session, booking, "hospital_cancelled", mappings, tz, now)
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
    """An unpaid hold ran out (its trade closed at the wallet, or never there): free the place."""
    booking.status, booking.updated_at = BookingStatus.EXPIRED, now
    if booking.out_trade_no:
        trade = session.get(Trade, booking.out_trade_no)
        if trade is not None and trade.status in (TradeStatus.CREATED, TradeStatus.UNSENT):
            trade.status = TradeStatus.CLOSED
    release_slot(session, booking)


def cancel_booking(services: Services, account_id: int, public_id: str, now: dt.datetime,
                   rng: random.Random) -> None:
    """The patient cancels: an unpaid hold at once, a confirmed booking before the deadline.

    An unpaid hold's trade is closed at the wallet first, so a payment racing the cancel is
    known. Raises Refusal, or WalletUnavailable when the wallet cannot say.
    """
    with services.session_factory() as session:
        booking = own_booking(session, account_id, public_id)
        if booking is None:
            raise Refusal("booking.unknown")
        out_trade_no = booking.out_trade_no if booking.status == \
            BookingStatus.PENDING_PAYMENT else None
        if is_unsent(session, out_trade_no):
            out_trade_no = None  # never reached the wallet: nothing to close there
    if out_trade_no:
        close_at_wallet(services, out_trade_no, now)
    with services.session_factory.begin() as session:
        write_transaction(session)
        booking = lock_booking(session, public_id=public_id)
        cancel_by_patient(session, booking, policy=services.policy, tz=services.config.tz,
                          now=now, rng=rng, closed_trade=out_trade_no)
