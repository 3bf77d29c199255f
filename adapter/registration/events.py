"""What registration does with the HIS's schedule events: slots opened, changed or stopped,
and appointments missed (which count toward the no-show ban)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.flows import Services
from adapter.models import Booking, BookingStatus, Slot
from adapter.ports import AppointmentMissed, SlotOffered, SlotWithdrawn
from adapter.registration.cancelling import cancel_for_closed_slot
from adapter.registration.slots import apply_slot_record, close_slot

logger = logging.getLogger(__name__)


def slot_offered(services: Services, session: Session, event: SlotOffered,
                 now: dt.datetime) -> None:
    """Open or update the slot in the local pool."""
    apply_slot_record(session, event.slot, now)


def slot_withdrawn(services: Services, session: Session, event: SlotWithdrawn,
                   now: dt.datetime) -> None:
    """Close the slot; its patients are cancelled, refunded and told."""
    def cancel(s: Session, slot: Slot) -> None:
        cancel_for_closed_slot(s, slot, mappings=services.mappings, tz=services.config.tz,
                               now=now)

    if not close_slot(session, event.his_slot_id, now=now, on_closed=cancel):
        logger.info("withdrawal of unknown slot %s ignored", event.his_slot_id)


def appointment_missed(services: Services, session: Session, event: AppointmentMissed,
                       now: dt.datetime) -> None:
    """Count a missed visit toward the no-show ban (booking_rules.toml)."""
    booking = session.scalar(select(Booking).where(
        Booking.filler_appointment_id == event.filler_appointment_id))
    if booking is None:
        return  # an appointment made elsewhere (the HIS window): not ours to count
    booking.status, booking.updated_at = BookingStatus.NO_SHOW, now
