"""The worker role: APScheduler jobs, safe to run as many instances as wanted.

Each job opens its own session; work items are claimed in the database (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) so two workers never apply the same message twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from adapter.db import utcnow, write_transaction
from adapter.faults import crash_point
from adapter.models import (
    Booking,
    BookingStatus,
    InboundMessage,
    InboundStatus,
    LinkState,
    OutboxMessage,
    OutboxStatus,
    Patient,
    Refund,
    Slot,
    TradeStatus,
    WalletAccount,
)
from adapter.outbox import enqueue
from adapter.patients import his_identity
from adapter.payments import lock_trade
from adapter.ports import (
    AppointmentRequest,
    HisGateway,
    HisRefused,
    HisUnavailable,
    WalletUnavailable,
)
from adapter.registration import (
    booking_confirmed,
    booking_rejected,
    cancel_for_closed_slot,
    cancellation_answered,
    expire_booking,
    lock_booking,
    release_slot,
)
from adapter.runtime import Runtime
from adapter.slots import apply_slot_pool

logger = logging.getLogger(__name__)

# An inbound message whose use case keeps failing is parked after this many attempts and shown
# on the status page for reprocessing, instead of blocking the queue.
MAX_ATTEMPTS = 5

InboundApplier = Callable[[Session, InboundMessage], None]

# Schedule messages must apply in arrival order (a close then a reopen of one slot), so one
# worker at a time applies them: a PostgreSQL advisory lock, released with its transaction.
INBOUND_LOCK = 0x484C3749  # "HL7I"


class InboundRefused(Exception):
    """The use case refused an inbound message for good (shown to admins, not retried)."""


def claim_inbound(session: Session, types: list[str], limit: int) -> list[InboundMessage]:
    """Lock up to ``limit`` received messages of ``types`` that no other worker holds."""
    query = (
        select(InboundMessage)
        .where(
            InboundMessage.status == InboundStatus.RECEIVED,
            InboundMessage.message_type.in_(types),
        )
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def process_inbound(runtime: Runtime, appliers: dict[str, InboundApplier]) -> int:
    """Apply received messages of the routed types, in arrival order; returns how many."""
    done = 0
    with runtime.session_factory() as session:
        if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": INBOUND_LOCK}):
            return 0  # another worker is applying inbound messages: they go in arrival order
        for message in claim_inbound(session, sorted(appliers), runtime.config.inbound_batch_size):
            message.attempts += 1
            try:
                with session.begin_nested():
                    appliers[message.message_type](session, message)
                message.status = InboundStatus.PROCESSED
                message.processed_at = utcnow()
                done += 1
            except InboundRefused as exc:
                message.status = InboundStatus.FAILED
                message.error_text = str(exc)[:200]
                logger.warning("inbound %s (%s) refused: %s", message.id, message.message_type,
                               exc)
            except Exception as exc:  # noqa: BLE001 - retried, then parked
                logger.exception("inbound %s (%s) failed (attempt %d)", message.id,
                                 message.message_type, message.attempts)
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = InboundStatus.FAILED
                    message.error_text = type(exc).__name__
        session.commit()
    return done


def record_link(runtime: Runtime, name: str, up: bool, detail: str) -> None:
    """Remember the last known state of a link for the status page and /readyz."""
    with runtime.session_factory.begin() as session:
        state = session.get(LinkState, name) or LinkState(name=name)
        state.up, state.detail, state.checked_at = up, detail[:500], utcnow()
        session.add(state)


def sync_slots_job(runtime: Runtime, his: HisGateway) -> None:
    """Pull the wallet channel's slot pool for the coming days from the HIS."""
    tz = runtime.config.tz
    today = dt.datetime.now(tz).date()
    end = today + dt.timedelta(days=runtime.profile.slot_sync_days)
    try:
        records = his.query_slot_pool(today, end)  # outside any transaction
    except HisRefused as exc:
        logger.warning("slot pool sync refused by the HIS (%s)", exc.outcome.error_code)
        record_link(runtime, "his", True, "slot query refused")
        return
    except HisUnavailable as exc:
        logger.warning("slot pool sync skipped: HIS unavailable (%s)", type(exc).__name__)
        record_link(runtime, "his", False, type(exc).__name__)
        return
    with runtime.session_factory.begin() as session:
        apply_slot_pool(session, records, today, end, tz, on_closed=lambda s, slot:
                        cancel_for_closed_slot(s, slot, mappings=runtime.mappings, tz=tz,
                                               now=utcnow()))
    record_link(runtime, "his", True, "slot pool synced")


# --------------------------------------------------------------------------------------------
# Registration: the outbox, hold expiry, returning cancelled places


def _backoff(attempts: int) -> dt.timedelta:
    """2 s, 4 s, 8 s... capped at 10 minutes."""
    return dt.timedelta(seconds=min(2 ** attempts, 600))


def claim_outbox(session: Session, now: dt.datetime, limit: int) -> list[OutboxMessage]:
    """Lock due outbox messages no other worker holds."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


@dataclass(frozen=True)
class Job:
    """An outbox message leased to this worker: plain data, usable outside any transaction."""

    id: int
    kind: str
    booking_id: int | None
    payload: dict[str, Any]


def lease_seconds(runtime: Runtime) -> float:
    """How long a leased message is left alone: longer than the slowest delivery (a new
    patient's booking makes four HIS exchanges: QBP^Q22, ADT^A28, QBP^Q22, SRM^S01)."""
    config = runtime.config
    return 4 * (config.his_connect_timeout + config.his_ack_timeout) + 10


def lease_outbox(runtime: Runtime, now: dt.datetime) -> Job | None:
    """Take the oldest due message for this worker and commit that at once.

    The HIS or wallet exchange then runs outside any transaction (no row lock, and on SQLite
    no write lock, held across the network). A worker that dies mid-exchange leaves the lease
    to run out, and the message is sent again: every handler is idempotent at the far end
    (the placer id at the HIS, out_request_no and out_trade_no at the wallet).
    """
    with runtime.session_factory.begin() as session:
        claimed = claim_outbox(session, now, 1)
        if not claimed:
            return None
        message = claimed[0]
        message.attempts += 1
        message.next_attempt_at = now + dt.timedelta(seconds=lease_seconds(runtime))
        return Job(message.id, message.kind, message.booking_id, json.loads(message.payload))


def _finish(session: Session, job: Job, now: dt.datetime) -> None:
    message = session.get(OutboxMessage, job.id)
    message.status, message.done_at, message.last_error = OutboxStatus.DONE, now, ""


def _deliver_his_book(runtime: Runtime, job: Job, now: dt.datetime) -> None:
    with runtime.session_factory() as session:
        booking = session.get(Booking, job.booking_id)
        patient = session.get(Patient, booking.patient_id)
        slot = session.get(Slot, booking.slot_id)
        still_wanted = booking.status == BookingStatus.CONFIRMING
        his_patient_id = patient.his_patient_id
        identity = None if his_patient_id else his_identity(runtime.protector, patient)
        request = AppointmentRequest(
            placer_appointment_id=booking.public_id, his_slot_id=slot.his_slot_id,
            his_patient_id="", department_code=booking.department_code,
            doctor_code=booking.doctor_code, service_code=slot.service_code,
            start_at=slot.start_at, end_at=slot.end_at)
    if not still_wanted:  # cancelled meanwhile (clinic stopped): nothing to book
        with runtime.session_factory.begin() as session:
            _finish(session, job, now)
        return
    if identity is not None:
        found = runtime.his.find_patient(identity.document_type, identity.document_number)
        his_patient_id = (found or runtime.his.register_patient(identity)).his_patient_id
    outcome = runtime.his.book_appointment(replace(request, his_patient_id=his_patient_id))
    crash_point("outbox.after_his_book")
    with runtime.session_factory.begin() as session:
        session.get(Patient, patient.id).his_patient_id = his_patient_id
        booking = lock_booking(session, id=job.booking_id)
        if booking.status == BookingStatus.CONFIRMED:
            pass  # a twin delivery (this one outlived its lease) already confirmed it
        elif booking.status != BookingStatus.CONFIRMING:
            # The hospital cancelled the slot while the HIS was booking it: undo it there too.
            if outcome.accepted:
                enqueue(session, "his_cancel", booking.id, now,
                        filler_appointment_id=outcome.filler_appointment_id,
                        his_slot_id=request.his_slot_id)
        elif outcome.accepted:
            booking_confirmed(session, booking, outcome.filler_appointment_id,
                              runtime.mappings, runtime.config.tz, now)
        else:
            logger.info("booking %s refused by the HIS (%s)", booking.public_id,
                        outcome.error_code)
            booking_rejected(session, booking, outcome.error_code, runtime.mappings,
                             runtime.config.tz, now)
        _finish(session, job, now)


def _deliver_his_patient(runtime: Runtime, job: Job, now: dt.datetime) -> None:
    """Find (QBP^Q22) or add (ADT^A28) a new patient in the HIS ahead of their first booking,
    so the morning rush's bookings need one HIS exchange each, not four."""
    with runtime.session_factory() as session:
        patient = session.get(Patient, job.payload["patient_id"])
        identity = None if patient.his_patient_id else his_identity(runtime.protector, patient)
    if identity is not None:
        found = runtime.his.find_patient(identity.document_type, identity.document_number)
        his_patient_id = (found or runtime.his.register_patient(identity)).his_patient_id
    with runtime.session_factory.begin() as session:
        patient = session.get(Patient, job.payload["patient_id"])
        if identity is not None and not patient.his_patient_id:
            patient.his_patient_id = his_patient_id
        _finish(session, job, now)


def _deliver_his_cancel(runtime: Runtime, job: Job, now: dt.datetime) -> None:
    with runtime.session_factory() as session:
        public_id = session.get(Booking, job.booking_id).public_id
    outcome = runtime.his.cancel_appointment(
        public_id, job.payload.get("filler_appointment_id", ""),
        job.payload.get("his_slot_id", ""))
    # 204: the HIS does not know the appointment any more, which is what was asked for.
    accepted = outcome.accepted or outcome.error_code == "204"
    if not accepted:
        logger.warning("booking %s: the HIS refused the cancellation (%s)", public_id,
                       outcome.error_code)
    with runtime.session_factory.begin() as session:
        booking = lock_booking(session, id=job.booking_id)
        cancellation_answered(session, booking, accepted, outcome.error_code,
                              policy=runtime.policy, mappings=runtime.mappings,
                              tz=runtime.config.tz, now=now, rng=_rng)
        _finish(session, job, now)


def _deliver_refund(runtime: Runtime, job: Job, now: dt.datetime) -> None:
    with runtime.session_factory() as session:
        refund = session.get(Refund, job.payload["out_request_no"])
        done = refund.status == "done"
        out_trade_no, refund_fen, reason = refund.out_trade_no, refund.refund_fen, refund.reason
    if not done:
        # The same out_request_no on every try: the wallet never refunds it twice.
        result = runtime.wallet.refund(out_trade_no, refund_fen, job.payload["out_request_no"],
                                       reason)
        if not result.done:
            raise WalletUnavailable("refund accepted but not yet done")
    with runtime.session_factory.begin() as session:
        refund = session.get(Refund, job.payload["out_request_no"])
        if refund.status != "done":
            refund.status, refund.done_at = "done", now
            trade = lock_trade(session, out_trade_no)
            trade.refunded_fen = min(trade.total_fen, trade.refunded_fen + refund_fen)
            if trade.refunded_fen == trade.total_fen:
                trade.status = TradeStatus.REFUNDED
        _finish(session, job, now)


def _deliver_push(runtime: Runtime, job: Job, now: dt.datetime) -> None:
    with runtime.session_factory() as session:
        booking = session.get(Booking, job.booking_id)
        user_id = session.get(WalletAccount, booking.wallet_account_id).user_id
        url = f"{runtime.config.effective_public_url}/h5/bookings/{booking.public_id}"
    runtime.wallet.push_message(user_id, job.payload["text"], url)
    with runtime.session_factory.begin() as session:
        _finish(session, job, now)


def _deliver_close_trade(runtime: Runtime, job: Job, now: dt.datetime) -> None:
    with runtime.session_factory() as session:
        out_trade_no = session.get(Booking, job.booking_id).out_trade_no
    status = runtime.wallet.close_trade(out_trade_no)
    with runtime.session_factory.begin() as session:
        trade = lock_trade(session, out_trade_no)
        if status.paid:
            # Paid just before the close: the payment path refunds it (the booking is gone).
            if trade.status == TradeStatus.CREATED:
                trade.status, trade.paid_at = TradeStatus.PAID, now
                trade.trade_no = trade.trade_no or status.trade_no
                runtime.paid_handlers["registration"](session, trade)
        elif trade.status == TradeStatus.CREATED:
            trade.status = TradeStatus.CLOSED
        _finish(session, job, now)


# Kinds whose giving up would leave a patient's money neither posted nor refunded.
NEVER_PARKED = frozenset({"his_book", "his_cancel", "refund"})

_rng = random.SystemRandom()

OUTBOX_HANDLERS: dict[str, Callable[[Runtime, Job, dt.datetime], None]] = {
    "his_book": _deliver_his_book,
    "his_patient": _deliver_his_patient,
    "his_cancel": _deliver_his_cancel,
    "refund": _deliver_refund,
    "push": _deliver_push,
    "close_trade": _deliver_close_trade,
}


def deliver_outbox(runtime: Runtime, limit: int = 500, budget_seconds: float = 10.0) -> int:
    """Deliver due outbox messages one by one until none is due (or this run's time budget is
    spent; the next run goes on)."""
    done = 0
    deadline = time.monotonic() + budget_seconds
    for _ in range(limit):
        if time.monotonic() > deadline:
            break
        now = utcnow()
        job = lease_outbox(runtime, now)
        if job is None:
            break
        try:
            OUTBOX_HANDLERS[job.kind](runtime, job, now)
            done += 1
        except (HisUnavailable, WalletUnavailable) as exc:
            _failed(runtime, job, now, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - recorded, retried, then parked
            logger.exception("outbox %s (%s) failed", job.id, job.kind)
            _failed(runtime, job, now, type(exc).__name__)
    return done


def _failed(runtime: Runtime, job: Job, now: dt.datetime, error: str) -> None:
    with runtime.session_factory.begin() as session:
        message = session.get(OutboxMessage, job.id)
        _retry_later(runtime, session, message, now, error)


def _retry_later(runtime: Runtime, session: Session, message: OutboxMessage,
                 now: dt.datetime, error: str) -> None:
    message.last_error = error[:200]
    if message.kind in NEVER_PARKED and message.kind != "his_book":
        # Money on its way back, or an answer a patient's money waits for: keep trying (at
        # most every 10 minutes); /metrics shows the pending outbox to admins meanwhile.
        message.next_attempt_at = now + _backoff(min(message.attempts, 9))
        log = logger.error if message.attempts >= runtime.policy.outbox_max_attempts \
            else logger.warning
        log("outbox %s (%s) attempt %d failed (%s); retrying", message.id, message.kind,
            message.attempts, error)
        return
    if message.kind == "his_book":
        # A paid booking is never parked: it keeps trying until the visit would have begun,
        # then is refunded (invariant 3: posted to the HIS or refunded, nothing in between).
        booking = lock_booking(session, id=message.booking_id)
        slot = session.get(Slot, booking.slot_id)
        if booking.status == BookingStatus.CONFIRMING and slot.start_at <= now:
            booking_rejected(session, booking, "HIS_UNREACHABLE", runtime.mappings,
                             runtime.config.tz, now)
            # The HIS may have booked it before the line broke: cancel there too.
            enqueue(session, "his_cancel", booking.id, now, filler_appointment_id="",
                    his_slot_id=slot.his_slot_id)
            message.status = OutboxStatus.FAILED
            logger.error("booking %s could not reach the HIS before the visit: refunded",
                         booking.public_id)
            return
        message.next_attempt_at = now + _backoff(min(message.attempts, 9))
        logger.warning("outbox %s (his_book) attempt %d failed (%s); retrying", message.id,
                       message.attempts, error)
        return
    if message.attempts >= runtime.policy.outbox_max_attempts:
        message.status = OutboxStatus.FAILED
        logger.error("outbox %s (%s) parked after %d attempts: %s", message.id, message.kind,
                     message.attempts, error)
    else:
        message.next_attempt_at = now + _backoff(message.attempts)
        logger.warning("outbox %s (%s) attempt %d failed (%s); retrying", message.id,
                       message.kind, message.attempts, error)


def expire_holds(runtime: Runtime, limit: int = 100) -> int:
    """Unpaid holds past their deadline: close the trade first, then free the place."""
    now = utcnow()
    with runtime.session_factory() as session:
        due = list(session.scalars(
            select(Booking.id).where(Booking.status == BookingStatus.PENDING_PAYMENT,
                                     Booking.hold_expires_at <= now)
            .order_by(Booking.hold_expires_at).limit(limit)
        ))
    expired = 0
    for booking_id in due:
        with runtime.session_factory() as session:
            out_trade_no = session.get(Booking, booking_id).out_trade_no
        if out_trade_no:
            try:
                status = runtime.wallet.close_trade(out_trade_no)
            except WalletUnavailable:
                continue  # unknown: try again next round, never free a place that was paid
            except Exception:  # noqa: BLE001 - one bad trade must not stop every other expiry
                logger.exception("closing trade %s of booking %s failed", out_trade_no,
                                 booking_id)
                continue
            if status.paid:
                with runtime.session_factory.begin() as session:
                    trade = lock_trade(session, out_trade_no)
                    if trade.status == TradeStatus.CREATED:
                        # The notification has not arrived yet: the query is as good.
                        trade.status, trade.paid_at = TradeStatus.PAID, now
                        trade.trade_no = trade.trade_no or status.trade_no
                        runtime.paid_handlers["registration"](session, trade)
                continue
        with runtime.session_factory.begin() as session:
            write_transaction(session)
            booking = lock_booking(session, id=booking_id)
            if booking.status == BookingStatus.PENDING_PAYMENT:
                expire_booking(session, booking, now)
                expired += 1
    if expired:
        logger.info("%d unpaid hold(s) expired", expired)
    return expired


def release_cancelled_slots(runtime: Runtime, limit: int = 200) -> int:
    """Return places of cancelled bookings to the pool once their random delay has passed."""
    now = utcnow()
    with runtime.session_factory.begin() as session:
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


def make_scheduler(
    runtime: Runtime, *, blocking: bool, his: HisGateway | None = None
) -> BackgroundScheduler | BlockingScheduler:
    """The worker's scheduler with every job of this release registered."""
    from adapter.his.inbound import inbound_appliers

    his = his or runtime.his  # one MLLP connection for every job (the client serialises)
    scheduler_cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_cls(timezone=runtime.config.tz)
    appliers = inbound_appliers(runtime)
    for job, seconds in ((deliver_outbox, 1), (expire_holds, 15), (release_cancelled_slots, 10)):
        scheduler.add_job(job, "interval", seconds=seconds, args=(runtime,), id=job.__name__,
                          max_instances=1, coalesce=True)
    scheduler.add_job(
        process_inbound, "interval", seconds=2, args=(runtime, appliers),
        id="process_inbound", max_instances=1, coalesce=True,
    )
    if runtime.profile.slot_sync in ("query", "both"):
        scheduler.add_job(
            sync_slots_job, "interval", seconds=runtime.config.slot_sync_interval,
            args=(runtime, his), id="sync_slots", max_instances=1, coalesce=True,
            next_run_time=dt.datetime.now(runtime.config.tz),
        )
    return scheduler
