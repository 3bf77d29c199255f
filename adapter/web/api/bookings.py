"""Bookings: hold a slot (Idempotency-Key), list and read them, cancel."""

from __future__ import annotations

import random
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapter.db import write_transaction
from adapter.i18n import N_
from adapter.models import Booking, BookingStatus, Patient, Refund, Slot
from adapter.money import yuan
from adapter.ports import WalletUnavailable
from adapter.refusals import Refusal
from adapter.registration.booking import hold_slot, own_booking
from adapter.registration.cancelling import can_cancel, cancel_booking
from adapter.web.api import idempotency
from adapter.web.api.errors import (
    account_wallet,
    locale,
    now,
    refused,
    runtime,
    say,
    signed_in,
    wallet_unavailable,
)
from adapter.web.api.schemas import BookingBody, BookingPath, IdempotencyHeaders
from adapter.web.api.slots import name_of, title_of
from adapter.web.api.validation import body, headers, valid

bp = Blueprint("bookings", __name__)

_rng = random.SystemRandom()

STATUS_TEXT = {
    BookingStatus.PENDING_PAYMENT: N_("待支付"),
    BookingStatus.CONFIRMING: N_("已支付，正在向医院确认"),
    BookingStatus.CONFIRMED: N_("预约成功"),
    BookingStatus.CANCELLING: N_("正在取消"),
    BookingStatus.CANCELLED: N_("已取消"),
    BookingStatus.EXPIRED: N_("已过期（未支付）"),
    BookingStatus.REJECTED: N_("医院未能确认，已退款"),
    BookingStatus.NO_SHOW: N_("未就诊"),
}

# Refusal code -> HTTP status, where it is not 422.
REFUSAL_STATUS = {"slot.full": 409, "slot.unknown": 404, "patient.unknown": 404,
                  "booking.unknown": 404, "booking.not_payable": 409,
                  "booking.confirming": 409, "bill.unknown": 404, "bill.not_payable": 409,
                  "bill.paid_elsewhere": 409, "bill.changed": 409, "bill.locked": 409}


def booking_json(db: Session, booking: Booking) -> dict[str, Any]:
    """A booking as the pages show it."""
    rt = runtime()
    tz, mappings = rt.config.tz, rt.mappings
    slot = db.get(Slot, booking.slot_id)
    patient = db.get(Patient, booking.patient_id)
    department = mappings.departments.get(booking.department_code)
    doctor = mappings.doctors.get(booking.doctor_code)
    refund = None
    if booking.out_trade_no:
        row = db.scalar(select(Refund).where(Refund.out_trade_no == booking.out_trade_no))
        if row is not None:
            refund = {"status": "done" if row.status == "done" else "pending",
                      "amount": yuan(row.refund_fen)}
    status_text = STATUS_TEXT.get(booking.status)
    moment = now()
    return {
        "id": booking.public_id, "status": booking.status,
        "status_text": say(status_text) if status_text else booking.status,
        "status_reason": booking.status_reason,
        "refund": refund,
        "patient": {"id": patient.id, "name": patient.name, "relation": patient.relation},
        "department": {"code": booking.department_code,
                       "name": name_of(department) if department else ""},
        "doctor": {"code": booking.doctor_code, "name": name_of(doctor) if doctor else "",
                   "title": title_of(doctor)},
        "visit_date": booking.visit_date.isoformat(),
        "start_at": slot.start_at.astimezone(tz).isoformat(),
        "end_at": slot.end_at.astimezone(tz).isoformat(),
        "fee": yuan(booking.fee_fen),
        "hold_expires_at": booking.hold_expires_at.astimezone(tz).isoformat(),
        "can_cancel": can_cancel(booking, rt.policy, tz, moment),
        "can_pay": booking.status == BookingStatus.PENDING_PAYMENT
        and booking.hold_expires_at > moment,
    }


@bp.post("/bookings")
@signed_in
def create_booking(account_id: int) -> ResponseReturnValue:
    """Hold a slot for a patient (Idempotency-Key: same key and body, same answer)."""
    key = headers(IdempotencyHeaders).key
    asked = body(BookingBody)
    rt = runtime()
    digest = idempotency.request_digest(asked.model_dump())
    # The rush's common case is a slot already gone: answer it from one read, without taking
    # the write lock. Not recorded under the key: the same intent may succeed once a place
    # comes back. A slot that looks free is decided by the write transaction below.
    with rt.session_factory() as db:
        gone = db.execute(select(Slot.id).where(
            Slot.id == asked.slot_id, Slot.status == "open",
            Slot.booked >= Slot.capacity)).first()
        # Read after the slot: if a twin of this request (same key) took the last place, its
        # record committed with it, so the twin's answer is found here and replayed.
        earlier = idempotency.find(db, account_id, key)
        if earlier is not None:
            return idempotency.replayed(earlier, digest)
    if gone is not None:
        return refused(Refusal("slot.full"), 409)
    try:
        with rt.session_factory.begin() as db:
            write_transaction(db)
            earlier = idempotency.find(db, account_id, key)
            if earlier is not None:
                return idempotency.replayed(earlier, digest)
            record = idempotency.begin(db, account_id, key, digest)
            try:
                with db.begin_nested():
                    booking = hold_slot(
                        db, account_id=account_id, patient_id=asked.patient_id,
                        slot_id=asked.slot_id, mappings=rt.mappings,
                        rules=rt.booking_rules, policy=rt.policy,
                        tz=rt.config.tz, now=now())
                status, payload = 201, booking_json(db, booking)
            except Refusal as refusal:
                status = REFUSAL_STATUS.get(refusal.code, 422)
                payload = {"error": refusal.code, "message": refusal.message(locale())}
            idempotency.store(record, status, payload)
    except IntegrityError:
        replay = idempotency.replay_committed(account_id, key, digest)
        if replay is not None:
            return replay
        raise
    return jsonify(payload), status


@bp.get("/bookings")
@signed_in
def list_bookings(account_id: int) -> ResponseReturnValue:
    """The account's bookings, newest first."""
    with runtime().session_factory() as db:
        bookings = db.scalars(select(Booking).where(Booking.wallet_account_id == account_id)
                              .order_by(Booking.id.desc()).limit(100))
        return jsonify(bookings=[booking_json(db, b) for b in bookings])


@bp.get("/bookings/<public_id>")
@signed_in
def get_booking(account_id: int, public_id: str) -> ResponseReturnValue:
    """One of the account's bookings."""
    with runtime().session_factory() as db:
        booking = own_booking(db, account_id, public_id) \
            if valid(BookingPath, public_id=public_id) else None
        if booking is None:
            return refused(Refusal("booking.unknown"), 404)
        return jsonify(booking_json(db, booking))


@bp.post("/bookings/<public_id>/cancel")
@signed_in
def cancel(account_id: int, public_id: str) -> ResponseReturnValue:
    """Cancel: an unpaid hold at once; a confirmed booking before the deadline, refunded."""
    rt = runtime()
    if not valid(BookingPath, public_id=public_id):
        return refused(Refusal("booking.unknown"), 404)
    try:
        cancel_booking(rt, account_id, public_id, now(), _rng)
    except Refusal as refusal:
        return refused(refusal, REFUSAL_STATUS.get(refusal.code, 422))
    except WalletUnavailable:
        return wallet_unavailable(account_wallet(rt, account_id))
    with rt.session_factory() as db:
        return jsonify(booking_json(db, own_booking(db, account_id, public_id)))
