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
    Trade,
    TradeStatus,
    WalletAccount,
)
from adapter.patients import his_identity
from adapter.payments import lock_trade
from adapter.ports import AppointmentRequest, HisGateway, HisUnavailable, WalletUnavailable
from adapter.registration import (
    booking_confirmed,
    booking_rejected,
    cancel_for_closed_slot,
    cancellation_answered,
    enqueue,
    expire_booking,
    lock_booking,
    release_slot,
)
from adapter.runtime import Runtime
from adapter.slots import sync_slot_pool

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
        with runtime.session_factory.begin() as session:
            sync_slot_pool(session, his, today, end, tz, on_closed=lambda s, slot:
                           cancel_for_closed_slot(s, slot, mappings=runtime.mappings, tz=tz,
                                                  now=utcnow()))
    except HisUnavailable as exc:
        logger.warning("slot pool sync skipped: HIS unavailable (%s)", type(exc).__name__)
        record_link(runtime, "his", False, type(exc).__name__)
        return
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


def _deliver_his_book(runtime: Runtime, session: Session, message: OutboxMessage,
                      now: dt.datetime) -> None:
    # Locked across the HIS exchange: a hospital cancellation of the slot waits for the answer
    # instead of being overwritten by it.
    booking = lock_booking(session, id=message.booking_id)
    if booking.status != BookingStatus.CONFIRMING:
        return  # cancelled meanwhile (clinic stopped): nothing to book
    patient = session.get(Patient, booking.patient_id)
    slot = session.get(Slot, booking.slot_id)
    if not patient.his_patient_id:
        identity = his_identity(runtime.protector, patient)
        found = runtime.his.find_patient(identity.document_type, identity.document_number)
        patient.his_patient_id = (found or runtime.his.register_patient(identity)).his_patient_id
    outcome = runtime.his.book_appointment(AppointmentRequest(
        placer_appointment_id=booking.public_id, his_slot_id=slot.his_slot_id,
        his_patient_id=patient.his_patient_id, department_code=booking.department_code,
        doctor_code=booking.doctor_code, service_code=slot.service_code,
        start_at=slot.start_at, end_at=slot.end_at,
    ))
    crash_point("outbox.after_his_book")
    if outcome.accepted:
        booking_confirmed(session, booking, outcome.filler_appointment_id, runtime.mappings,
                          runtime.config.tz, now)
    else:
        logger.info("booking %s refused by the HIS (%s)", booking.public_id, outcome.error_code)
        booking_rejected(session, booking, outcome.error_code, runtime.mappings,
                         runtime.config.tz, now)


def _deliver_his_cancel(runtime: Runtime, session: Session, message: OutboxMessage,
                        now: dt.datetime) -> None:
    booking = lock_booking(session, id=message.booking_id)
    payload = json.loads(message.payload)
    outcome = runtime.his.cancel_appointment(
        booking.public_id, payload.get("filler_appointment_id", ""),
        payload.get("his_slot_id", ""))
    # 204: the HIS does not know the appointment any more, which is what was asked for.
    accepted = outcome.accepted or outcome.error_code == "204"
    if not accepted:
        logger.warning("booking %s: the HIS refused the cancellation (%s)", booking.public_id,
                       outcome.error_code)
    cancellation_answered(session, booking, accepted, outcome.error_code,
                          policy=runtime.policy, mappings=runtime.mappings,
                          tz=runtime.config.tz, now=now, rng=_rng)


def _deliver_refund(runtime: Runtime, session: Session, message: OutboxMessage,
                    now: dt.datetime) -> None:
    refund = session.get(Refund, json.loads(message.payload)["out_request_no"])
    if refund.status == "done":
        return
    result = runtime.wallet.refund(refund.out_trade_no, refund.refund_fen,
                                   refund.out_request_no, refund.reason)
    if not result.done:
        raise WalletUnavailable("refund accepted but not yet done")
    refund.status, refund.done_at = "done", now
    trade = session.get(Trade, refund.out_trade_no)
    trade.refunded_fen = min(trade.total_fen, trade.refunded_fen + refund.refund_fen)
    if trade.refunded_fen == trade.total_fen:
        trade.status = TradeStatus.REFUNDED


def _deliver_push(runtime: Runtime, session: Session, message: OutboxMessage,
                  now: dt.datetime) -> None:
    booking = session.get(Booking, message.booking_id)
    account = session.get(WalletAccount, booking.wallet_account_id)
    payload = json.loads(message.payload)
    url = f"{runtime.config.effective_public_url}/h5/bookings/{booking.public_id}"
    runtime.wallet.push_message(account.user_id, payload["text"], url)


def _deliver_close_trade(runtime: Runtime, session: Session, message: OutboxMessage,
                         now: dt.datetime) -> None:
    booking = session.get(Booking, message.booking_id)
    status = runtime.wallet.close_trade(booking.out_trade_no)
    trade = session.get(Trade, booking.out_trade_no)
    if status.paid:
        # Paid just before the close: the payment path refunds it (the booking is cancelled).
        if trade.status == TradeStatus.CREATED:
            trade.status, trade.paid_at = TradeStatus.PAID, now
            trade.trade_no = trade.trade_no or status.trade_no
            runtime.paid_handlers["registration"](session, trade)
    elif trade.status == TradeStatus.CREATED:
        trade.status = TradeStatus.CLOSED


# Kinds whose giving up would leave a patient's money neither posted nor refunded.
NEVER_PARKED = frozenset({"his_book", "his_cancel", "refund"})

_rng = random.SystemRandom()

OUTBOX_HANDLERS = {
    "his_book": _deliver_his_book,
    "his_cancel": _deliver_his_cancel,
    "refund": _deliver_refund,
    "push": _deliver_push,
    "close_trade": _deliver_close_trade,
}


def deliver_outbox(runtime: Runtime, limit: int = 500, budget_seconds: float = 10.0) -> int:
    """Deliver due outbox messages, each in its own transaction with its row locked, until none
    is due (or the time budget of this run is spent; the next run goes on)."""
    done = 0
    deadline = time.monotonic() + budget_seconds
    for _ in range(limit):
        if time.monotonic() > deadline:
            break
        now = utcnow()
        with runtime.session_factory() as session:
            claimed = claim_outbox(session, now, 1)
            if not claimed:
                break
            message = claimed[0]
            message.attempts += 1
            try:
                with session.begin_nested():
                    OUTBOX_HANDLERS[message.kind](runtime, session, message, now)
                message.status, message.done_at = OutboxStatus.DONE, now
                done += 1
            except (HisUnavailable, WalletUnavailable, InboundRefused) as exc:
                _retry_later(runtime, session, message, now, type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - recorded, retried, then parked
                logger.exception("outbox %s (%s) failed", message.id, message.kind)
                _retry_later(runtime, session, message, now, type(exc).__name__)
            session.commit()
    return done


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
        booking = session.get(Booking, message.booking_id)
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
    from adapter.his.gateway import MllpHisGateway
    from adapter.his.inbound import inbound_appliers

    his = his or MllpHisGateway.from_runtime(runtime)
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
