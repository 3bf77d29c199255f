"""Registration's outbox deliveries to the HIS: booking a paid slot (SRM^S01) and cancelling
(SRM^S04 or SIU^S15), and what happens when a paid booking cannot reach the HIS in time."""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import replace

from sqlalchemy.orm import Session

from adapter.faults import crash_point
from adapter.flows import OutboxJob, Services
from adapter.identity.delivery import find_or_register, remember_his_patient
from adapter.identity.patients import his_identity
from adapter.models import Booking, BookingStatus, Patient, Slot
from adapter.outbox import enqueue, finish
from adapter.ports import AppointmentRequest
from adapter.registration.booking import lock_booking
from adapter.registration.cancelling import cancellation_answered
from adapter.registration.paid import booking_confirmed, booking_rejected

logger = logging.getLogger(__name__)

_rng = random.SystemRandom()

# The HIS does not know the appointment (any more): for a cancellation, what was asked for.
UNKNOWN_KEY = "204"


def deliver_his_book(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Book a paid booking in the HIS and record its answer: confirmed or compensated."""
    booking_id = int(job.subject_id)
    with services.session_factory() as session:
        booking = session.get(Booking, booking_id)
        patient = session.get(Patient, booking.patient_id)
        slot = session.get(Slot, booking.slot_id)
        still_wanted = booking.status == BookingStatus.CONFIRMING
        his_patient_id = patient.his_patient_id
        identity = None if his_patient_id else his_identity(services.protector, patient)
        request = AppointmentRequest(
            placer_appointment_id=booking.public_id, his_slot_id=slot.his_slot_id,
            his_patient_id="", department_code=booking.department_code,
            doctor_code=booking.doctor_code, service_code=slot.service_code,
            start_at=slot.start_at, end_at=slot.end_at)
    if not still_wanted:  # cancelled meanwhile (clinic stopped): nothing to book
        with services.session_factory.begin() as session:
            finish(session, job, now)
        return
    added = False
    if identity is not None:
        his_patient_id, added = find_or_register(services, identity)
    outcome = services.his.book_appointment(replace(request, his_patient_id=his_patient_id))
    crash_point("outbox.after_his_book")
    mappings, tz = services.mappings, services.config.tz
    with services.session_factory.begin() as session:
        remember_his_patient(session.get(Patient, patient.id), his_patient_id, added=added)
        booking = lock_booking(session, id=booking_id)
        if booking.status == BookingStatus.CONFIRMED:
            pass  # a twin delivery (this one outlived its lease) already confirmed it
        elif booking.status != BookingStatus.CONFIRMING:
            # The hospital cancelled the slot while the HIS was booking it: undo it there too.
            if outcome.accepted:
                enqueue(session, "his_cancel", ("booking", booking.id), now,
                        filler_appointment_id=outcome.filler_appointment_id,
                        his_slot_id=request.his_slot_id)
        elif outcome.accepted:
            booking_confirmed(session, booking, outcome.filler_appointment_id, mappings, tz, now)
        else:
            logger.info("booking %s refused by the HIS (%s)", booking.public_id,
                        outcome.error_code)
            booking_rejected(session, booking, outcome.error_code, mappings, tz, now)
        finish(session, job, now)


def give_up_his_book(services: Services, session: Session, job: OutboxJob,
                     now: dt.datetime) -> bool:
    """A paid booking keeps trying the HIS until the visit would have begun, then is refunded
    (invariant 3: posted to the HIS or refunded, nothing in between)."""
    booking = lock_booking(session, id=int(job.subject_id))
    slot = session.get(Slot, booking.slot_id)
    if booking.status != BookingStatus.CONFIRMING or slot.start_at > now:
        return False
    booking_rejected(session, booking, "HIS_UNREACHABLE", services.mappings,
                     services.config.tz, now)
    # The HIS may have booked it before the line broke: cancel there too.
    enqueue(session, "his_cancel", ("booking", booking.id), now, filler_appointment_id="",
            his_slot_id=slot.his_slot_id)
    logger.error("booking %s could not reach the HIS before the visit: refunded",
                 booking.public_id)
    return True


def deliver_his_cancel(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Cancel an appointment in the HIS and record its answer."""
    booking_id = int(job.subject_id)
    with services.session_factory() as session:
        public_id = session.get(Booking, booking_id).public_id
    outcome = services.his.cancel_appointment(
        public_id, job.payload.get("filler_appointment_id", ""),
        job.payload.get("his_slot_id", ""))
    accepted = outcome.accepted or outcome.error_code == UNKNOWN_KEY
    if not accepted:
        logger.warning("booking %s: the HIS refused the cancellation (%s)", public_id,
                       outcome.error_code)
    with services.session_factory.begin() as session:
        booking = lock_booking(session, id=booking_id)
        cancellation_answered(session, booking, accepted, outcome.error_code,
                              policy=services.policy, mappings=services.mappings,
                              tz=services.config.tz, now=now, rng=_rng)
        finish(session, job, now)
