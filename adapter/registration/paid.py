"""A booking's trade is paid, and the HIS's answer to it: confirmed, or refused (compensated).

Every way out of a paid booking ends posted to the HIS exactly once (the placer id makes a
resend idempotent) or refunded (DESIGN invariant 3)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import update
from sqlalchemy.orm import Session

from adapter.mappings import Mappings
from adapter.models import (
    Booking,
    BookingStatus,
    Slot,
    Trade,
)
from adapter.outbox import enqueue
from adapter.payments.refunds import refund_in_full
from adapter.registration.booking import lock_booking, release_slot
from adapter.registration.notices import HIS_REASONS, tell

logger = logging.getLogger(__name__)


def on_registration_paid(session: Session, trade: Trade, *, mappings: Mappings,
                         tz: dt.tzinfo, now: dt.datetime) -> None:
    """The trade of a booking is paid: queue the booking for the HIS, or refund a late one."""
    booking = lock_booking(session, out_trade_no=trade.out_trade_no)
    if booking is None:
        logger.error("paid trade %s has no booking; refunding", trade.out_trade_no)
        refund_in_full(session, trade.out_trade_no, "paid without a booking", now)
        return
    if booking.status == BookingStatus.PENDING_PAYMENT:
        booking.status, booking.updated_at = BookingStatus.CONFIRMING, now
        enqueue(session, "his_book", ("booking", booking.id), now)
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
            enqueue(session, "his_book", ("booking", booking.id), now)
            return
        booking.status, booking.status_reason = BookingStatus.CANCELLED, "late_payment"
    if booking.status == BookingStatus.CANCELLED:
        # Paid for a booking already given up (by the patient or the hospital): refund.
        refund_in_full(session, booking.out_trade_no, "late payment", now)
        tell(session, booking, "late_payment", mappings, tz, now)


def booking_confirmed(session: Session, booking: Booking, filler_appointment_id: str,
                      mappings: Mappings, tz: dt.tzinfo, now: dt.datetime) -> None:
    """The HIS booked it."""
    booking.status, booking.updated_at = BookingStatus.CONFIRMED, now
    booking.filler_appointment_id = filler_appointment_id
    tell(session, booking, "confirmed", mappings, tz, now)


def booking_rejected(session: Session, booking: Booking, reason_code: str, mappings: Mappings,
                     tz: dt.tzinfo, now: dt.datetime) -> None:
    """The HIS refused it: cancel, give the place back, refund, tell the patient."""
    booking.status, booking.status_reason = BookingStatus.REJECTED, reason_code[:40]
    booking.updated_at = now
    release_slot(session, booking)
    refund_in_full(session, booking.out_trade_no, "hospital refused the booking", now)
    tell(session, booking, "rejected", mappings, tz, now,
          reason=HIS_REASONS.get(reason_code, ""))
