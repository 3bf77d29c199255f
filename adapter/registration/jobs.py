"""Registration's scheduled jobs: unpaid holds expiring, cancelled places returning to the pool,
and the slot pool pulled from the HIS (SQM^S25)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from adapter.db import try_exclusive, write_transaction
from adapter.failures import safe_code, stack
from adapter.flows import Services
from adapter.links import record_link
from adapter.models import Booking, BookingStatus
from adapter.payments.trades import close_at_wallet, is_unsent
from adapter.ports import HisRefused, HisUnavailable, WalletUnavailable
from adapter.registration.booking import lock_booking, release_slot
from adapter.registration.cancelling import cancel_for_closed_slot, expire_booking
from adapter.registration.slots import apply_slot_pool

logger = logging.getLogger(__name__)


def expire_holds(services: Services, limit: int = 100) -> int:
    """Unpaid holds past their deadline: close the trade first, then free the place.

    A trade that never reached its wallet (TradeStatus.UNSENT) is closed in our books only, so
    such holds expire on time while the wallet is down.
    """
    now = services.clock.now()
    with services.session_factory() as session:
        due = list(session.scalars(
            select(Booking.id).where(Booking.status == BookingStatus.PENDING_PAYMENT,
                                     Booking.hold_expires_at <= now)
            .order_by(Booking.hold_expires_at).limit(limit)
        ))
    expired = 0
    for booking_id in due:
        with services.session_factory() as session:
            out_trade_no = session.get(Booking, booking_id).out_trade_no
            unsent = is_unsent(session, out_trade_no)
        if out_trade_no and not unsent:
            try:
                if close_at_wallet(services, out_trade_no, now):
                    continue  # paid after all: the payment was applied instead
            except WalletUnavailable:
                continue  # unknown: try again next round, never free a place that was paid
            except Exception as exc:  # noqa: BLE001 - one bad trade must not stop the others
                logger.error("closing trade %s of booking %s failed: %s\n%s", out_trade_no,
                             booking_id, safe_code(exc), stack(exc))
                continue
        with services.session_factory.begin() as session:
            write_transaction(session)
            booking = lock_booking(session, id=booking_id)
            if unsent and not is_unsent(session, out_trade_no):
                continue  # an attempt to create it started meanwhile: close it there first
            if booking.status == BookingStatus.PENDING_PAYMENT:
                expire_booking(session, booking, now)
                expired += 1
    if expired:
        logger.info("%d unpaid hold(s) expired", expired)
    return expired


def release_cancelled_slots(services: Services, limit: int = 200) -> int:
    """Return places of cancelled bookings to the pool once their random delay has passed."""
    now = services.clock.now()
    with services.session_factory.begin() as session:
        write_transaction(session)
        bookings = list(session.scalars(
            select(Booking).where(Booking.slot_held.is_(True),
                                  Booking.slot_release_at <= now,
                                  Booking.status.not_in(BookingStatus.ACTIVE))
            .limit(limit).with_for_update()
        ))
        for booking in bookings:
            release_slot(session, booking)
    return len(bookings)


SLOT_SYNC_LOCK = 0x534C4F54  # "SLOT": one worker at a time applies the HIS's pool


def sync_slots(services: Services) -> None:
    """Pull the wallet channel's slot pool for the coming days from the HIS."""
    tz = services.config.tz
    now = services.clock.now()
    today = now.astimezone(tz).date()
    end = today + dt.timedelta(days=services.profile.slot_sync_days)
    try:
        records = services.his.query_slot_pool(today, end)  # outside any transaction
    except HisRefused as exc:
        logger.warning("slot pool sync refused by the HIS (%s)", exc.outcome.error_code)
        record_link(services, "his", True, "slot query refused")
        return
    except HisUnavailable as exc:
        logger.warning("slot pool sync skipped: HIS unavailable (%s)", type(exc).__name__)
        record_link(services, "his", False, type(exc).__name__)
        return
    with services.session_factory.begin() as session:
        if not try_exclusive(session, SLOT_SYNC_LOCK):
            # Another worker applies the same pool now (every worker syncs at its start):
            # applying it beside it would race its inserts of the new slots.
            logger.info("slot pool sync: another worker is applying the pool; skipped")
            return
        apply_slot_pool(session, records, today, end, tz, now, on_closed=lambda s, slot:
                        cancel_for_closed_slot(s, slot, mappings=services.mappings, tz=tz,
                                               now=now))
    record_link(services, "his", True, "slot pool synced")
