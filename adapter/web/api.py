"""The JSON API for the patient pages: /api/v1 (described by /api/v1/openapi.json).

Views only parse, call one use case and translate the result; a refusal comes back as
``{"error": code, "message": text}`` in the patient's language (zh-CN unless they ask for en).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, session
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapter.db import write_transaction
from adapter.identity import Dependant, Refusal
from adapter.models import (
    Booking,
    BookingStatus,
    IdempotencyRecord,
    Patient,
    Refund,
    Slot,
    Trade,
    TradeStatus,
    WalletAccount,
)
from adapter.patients import add_dependant, list_patients, sign_in_with_wallet
from adapter.payments import lock_trade
from adapter.ports import WalletGateway, WalletRefused, WalletUnavailable
from adapter.registration import (
    browse_slots,
    can_cancel,
    cancel_by_patient,
    hold_slot,
    lock_booking,
    request_digest,
)
from adapter.wallet.money import yuan
from adapter.web.openapi import OPENAPI

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def locale() -> str:
    """zh-CN by default; en when the patient's browser or ?lang= asks for it."""
    asked = request.args.get("lang") or (request.accept_languages.best_match(["zh", "en"]) or "")
    return "en" if asked.startswith("en") else "zh-CN"


def error(code: str, message: str, status: int) -> ResponseReturnValue:
    """The one error shape of the API."""
    return jsonify(error=code, message=message), status


def refused(refusal: Refusal, status: int = 422) -> ResponseReturnValue:
    """A rule said no: its code and the sentence a patient understands."""
    return error(refusal.code, refusal.message(locale()), status)


def _runtime() -> Any:  # noqa: ANN401
    return current_app.extensions["adapter"]


def _today() -> dt.date:
    return dt.datetime.now(_runtime().config.tz).date()


def signed_in(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Require a patient session; the view gets the wallet account id."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:  # noqa: ANN401
        account_id = session.get("account_id")
        if not isinstance(account_id, int):
            message = "请先登录" if locale() == "zh-CN" else "Please sign in first"
            return error("session.required", message, 401)
        return view(account_id, *args, **kwargs)

    return wrapper


def patient_json(patient: Patient) -> dict[str, Any]:
    """A patient as the pages show them: masked document and phone, never the full number."""
    return {
        "id": patient.id,
        "relation": patient.relation,
        "name": patient.name,
        "document_type": patient.document_type,
        "document_number": patient.document_masked,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "phone": patient.phone_masked,
    }


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI description of /api/v1."""
    return jsonify(OPENAPI)


@bp.post("/session")
def create_session() -> ResponseReturnValue:
    """Wallet auth_code in, patient session out."""
    body = request.get_json(silent=True) or {}
    auth_code = body.get("auth_code")
    if not isinstance(auth_code, str) or not auth_code:
        return error("auth_code.required", "auth_code is required", 400)
    expected = session.pop("login_state", None)
    platform = session.pop("login_platform", None)
    if not expected or not secrets.compare_digest(str(body.get("state", "")), expected):
        message = ("登录已失效，请重新登录" if locale() == "zh-CN"
                   else "The sign-in link has expired. Please sign in again.")
        return error("login.state_mismatch", message, 400)
    runtime = _runtime()
    # The wallet whose sign-in page /session/login-url handed out with this state.
    wallet = runtime.wallets.get(platform) or runtime.wallet
    try:
        with runtime.session_factory.begin() as db:
            signed = sign_in_with_wallet(db, wallet, runtime.protector, auth_code, _today())
            patients = [patient_json(p) for p in list_patients(db, signed.account_id)]
    except Refusal as refusal:
        return refused(refusal)
    except WalletRefused as exc:
        logger.info("sign-in refused by the wallet: %s %s", exc.code, exc.sub_code)
        message = ("授权已失效，请重新登录" if locale() == "zh-CN"
                   else "The sign-in has expired. Please sign in again.")
        return error("auth_code.invalid", message, 401)
    except WalletUnavailable:
        return _wallet_unavailable(wallet)
    session.clear()
    session["account_id"] = signed.account_id
    session.permanent = True
    return jsonify(certified=signed.is_certified, patients=patients), 201


@bp.delete("/session")
def delete_session() -> ResponseReturnValue:
    """Sign out."""
    session.clear()
    return "", 204


@bp.get("/patients")
@signed_in
def get_patients(account_id: int) -> ResponseReturnValue:
    """The signed-in user's patients (self and dependants)."""
    with _runtime().session_factory() as db:
        return jsonify(patients=[patient_json(p) for p in list_patients(db, account_id)])


@bp.post("/patients")
@signed_in
def post_patient(account_id: int) -> ResponseReturnValue:
    """Add a dependant (a child needs relation "child" and the guardian's consent)."""
    body = request.get_json(silent=True) or {}
    fields = ("name", "document_type", "document_number", "relation")
    if not all(isinstance(body.get(f), str) for f in fields):
        return error("patient.fields", f"{', '.join(fields)} are required strings", 400)
    birth_date = None
    if body.get("birth_date"):
        try:
            birth_date = dt.date.fromisoformat(str(body["birth_date"]))
        except ValueError:
            return error("birth_date.format", "birth_date must be YYYY-MM-DD", 400)
    dependant = Dependant(
        name=body["name"], document_type=body["document_type"],
        document_number=body["document_number"], relation=body["relation"],
        guardian_consent=body.get("guardian_consent") is True, birth_date=birth_date,
    )
    phone = body.get("phone") if isinstance(body.get("phone"), str) else ""
    runtime = _runtime()
    try:
        with runtime.session_factory.begin() as db:
            patient = add_dependant(db, runtime.protector, account_id, dependant, _today(),
                                    phone=phone)
            result = patient_json(patient)
    except Refusal as refusal:
        return refused(refusal)
    return jsonify(result), 201


# --------------------------------------------------------------------------------------------
# Registration


def _name(item: Any) -> str:  # noqa: ANN401 - a mapping row with name_zh/name_en
    return item.name_en if locale() == "en" else item.name_zh


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@bp.get("/session/login-url")
def login_url() -> ResponseReturnValue:
    """The wallet's authorize URL that redirects back to redirect_uri with an auth_code."""
    runtime = _runtime()
    redirect_uri = request.args.get("redirect_uri", "")
    if not redirect_uri.startswith(("http://", "https://")):
        return error("redirect_uri.invalid", "redirect_uri must be an http(s) URL", 400)
    platform = request.args.get("platform")
    if platform is not None and platform not in runtime.wallets:
        return error("platform.unknown", "platform names no configured wallet", 400)
    wallet = runtime.wallet_for(platform) if platform else runtime.wallet
    # OAuth 2.0 state (RFC 6749 section 10.12): POST /session accepts an auth_code only with
    # the state this browser was given, so nobody can sign a victim into the attacker's
    # account (whose dependants the victim would then add, handing over their data).
    state = secrets.token_urlsafe(16)
    session["login_state"], session["login_platform"] = state, wallet.platform
    return jsonify(url=wallet.sign_in_url(redirect_uri, state), state=state,
                   platform=wallet.platform)


@bp.get("/departments")
def departments() -> ResponseReturnValue:
    """Departments and their doctors, with when their slots open."""
    mappings = _runtime().mappings
    return jsonify(departments=[
        {"code": d.code, "name": _name(d), "location": d.location,
         "release_time": d.release_time.strftime("%H:%M"),
         "release_days_ahead": d.release_days_ahead,
         "doctors": [{"code": doc.code, "name": _name(doc),
                      "title": doc.title_en if locale() == "en" else doc.title_zh}
                     for doc in mappings.doctors_of(d.code)]}
        for d in mappings.departments.values()
    ])


@bp.get("/slots")
def slots() -> ResponseReturnValue:
    """One day's slots of a department and/or doctor."""
    runtime = _runtime()
    department, doctor = request.args.get("department", ""), request.args.get("doctor", "")
    try:
        visit_date = dt.date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return error("date.format", "date must be YYYY-MM-DD", 400)
    if not department and not doctor:
        return error("slots.filter", "give department or doctor", 400)
    tz, mappings = runtime.config.tz, runtime.mappings
    with runtime.session_factory() as db:
        views = browse_slots(db, mappings, tz, visit_date=visit_date,
                             department_code=department, doctor_code=doctor, now=_now())
    result = []
    for view in views:
        slot, doc = view.slot, mappings.doctors.get(view.slot.doctor_code)
        result.append({
            "id": slot.id, "department_code": slot.department_code,
            "doctor_code": slot.doctor_code, "doctor_name": _name(doc) if doc else "",
            "doctor_title": (doc.title_en if locale() == "en" else doc.title_zh) if doc else "",
            "start_at": slot.start_at.astimezone(tz).isoformat(),
            "end_at": slot.end_at.astimezone(tz).isoformat(),
            "fee": yuan(slot.fee_fen), "fee_fen": slot.fee_fen, "capacity": slot.capacity,
            "remaining": view.remaining, "status": view.status,
            "release_at": view.release_at.isoformat(),
        })
    return jsonify(slots=result)


STATUS_TEXT = {
    "pending_payment": ("待支付", "Awaiting payment"),
    "confirming": ("已支付，正在向医院确认", "Paid, the hospital is confirming"),
    "confirmed": ("预约成功", "Booked"),
    "cancelling": ("正在取消", "Cancelling"),
    "cancelled": ("已取消", "Cancelled"),
    "expired": ("已过期（未支付）", "Expired (not paid)"),
    "rejected": ("医院未能确认，已退款", "Not accepted by the hospital, refunded"),
    "no_show": ("未就诊", "Missed"),
}


def booking_json(db: Session, booking: Booking) -> dict[str, Any]:
    """A booking as the pages show it."""
    runtime = _runtime()
    tz, mappings = runtime.config.tz, runtime.mappings
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
    zh, en = STATUS_TEXT.get(booking.status, (booking.status, booking.status))
    now = _now()
    return {
        "id": booking.public_id, "status": booking.status,
        "status_text": en if locale() == "en" else zh, "status_reason": booking.status_reason,
        "refund": refund,
        "patient": {"id": patient.id, "name": patient.name, "relation": patient.relation},
        "department": {"code": booking.department_code,
                       "name": _name(department) if department else ""},
        "doctor": {"code": booking.doctor_code, "name": _name(doctor) if doctor else "",
                   "title": (doctor.title_en if locale() == "en" else doctor.title_zh)
                   if doctor else ""},
        "visit_date": booking.visit_date.isoformat(),
        "start_at": slot.start_at.astimezone(tz).isoformat(),
        "end_at": slot.end_at.astimezone(tz).isoformat(),
        "fee": yuan(booking.fee_fen),
        "hold_expires_at": booking.hold_expires_at.astimezone(tz).isoformat(),
        "can_cancel": can_cancel(booking, runtime.policy, tz, now),
        "can_pay": booking.status == BookingStatus.PENDING_PAYMENT
        and booking.hold_expires_at > now,
    }


def _own_booking(db: Session, account_id: int, public_id: str) -> Booking | None:
    booking = db.scalar(select(Booking).where(Booking.public_id == public_id))
    if booking is None or booking.wallet_account_id != account_id:
        return None  # someone else's booking is as good as absent (invariant 7)
    return booking


@bp.post("/bookings")
@signed_in
def create_booking(account_id: int) -> ResponseReturnValue:
    """Hold a slot for a patient (Idempotency-Key: same key and body, same answer)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 100:
        return error("idempotency.key_required", "an Idempotency-Key header is required", 400)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(
            isinstance(body.get(f), int) and not isinstance(body.get(f), bool)
            for f in ("slot_id", "patient_id")):
        return error("booking_request.fields", "slot_id and patient_id are required integers", 400)
    runtime = _runtime()
    digest = request_digest({"slot_id": body["slot_id"], "patient_id": body["patient_id"]})
    # The rush's common case is a slot already gone: answer it from one read, without taking
    # the write lock. Not recorded under the key: the same intent may succeed once a place
    # comes back. A slot that looks free is decided by the write transaction below.
    with runtime.session_factory() as db:
        gone = db.execute(select(Slot.id).where(
            Slot.id == body["slot_id"], Slot.status == "open",
            Slot.booked >= Slot.capacity)).first()
        # Read after the slot: if a twin of this request (same key) took the last place, its
        # record committed with it, so the twin's answer is found here and replayed.
        earlier = db.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.wallet_account_id == account_id, IdempotencyRecord.key == key))
        if earlier is not None:
            return _replayed(earlier, digest)
    if gone is not None:
        return refused(Refusal("slot.full"), 409)
    try:
        with runtime.session_factory.begin() as db:
            write_transaction(db)
            earlier = db.scalar(select(IdempotencyRecord).where(
                IdempotencyRecord.wallet_account_id == account_id, IdempotencyRecord.key == key))
            if earlier is not None:
                return _replayed(earlier, digest)
            record = IdempotencyRecord(wallet_account_id=account_id, key=key,
                                       request_digest=digest, status_code=0, response="")
            db.add(record)
            db.flush()  # a concurrent twin waits here on the unique key, then replays
            try:
                with db.begin_nested():
                    booking = hold_slot(
                        db, account_id=account_id, patient_id=body["patient_id"],
                        slot_id=body["slot_id"], mappings=runtime.mappings,
                        rules=runtime.booking_rules, policy=runtime.policy,
                        tz=runtime.config.tz, now=_now())
                status, payload = 201, booking_json(db, booking)
            except Refusal as refusal:
                status = 409 if refusal.code == "slot.full" else 422
                if refusal.code in ("slot.unknown", "patient.unknown"):
                    status = 404
                payload = {"error": refusal.code, "message": refusal.message(locale())}
            record.status_code, record.response = status, json.dumps(payload, ensure_ascii=False)
    except IntegrityError:
        replay = _replay(account_id, key, digest)
        if replay is not None:
            return replay
        raise
    return jsonify(payload), status


def _replay(account_id: int, key: str, digest: str) -> ResponseReturnValue | None:
    with _runtime().session_factory() as db:
        record = db.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.wallet_account_id == account_id, IdempotencyRecord.key == key))
    return None if record is None else _replayed(record, digest)


def _replayed(record: IdempotencyRecord, digest: str) -> ResponseReturnValue:
    if record.request_digest != digest:
        return refused(Refusal("idempotency.mismatch"), 422)
    return current_app.response_class(record.response, status=record.status_code,
                                      mimetype="application/json")


@bp.get("/bookings")
@signed_in
def list_bookings(account_id: int) -> ResponseReturnValue:
    """The account's bookings, newest first."""
    with _runtime().session_factory() as db:
        bookings = db.scalars(select(Booking).where(Booking.wallet_account_id == account_id)
                              .order_by(Booking.id.desc()).limit(100))
        return jsonify(bookings=[booking_json(db, b) for b in bookings])


@bp.get("/bookings/<public_id>")
@signed_in
def get_booking(account_id: int, public_id: str) -> ResponseReturnValue:
    """One of the account's bookings."""
    with _runtime().session_factory() as db:
        booking = _own_booking(db, account_id, public_id)
        if booking is None:
            return refused(Refusal("booking.unknown"), 404)
        return jsonify(booking_json(db, booking))


@bp.post("/bookings/<public_id>/cancel")
@signed_in
def cancel_booking(account_id: int, public_id: str) -> ResponseReturnValue:
    """Cancel: an unpaid hold at once; a confirmed booking before the deadline, refunded."""
    runtime = _runtime()
    with runtime.session_factory() as db:
        booking = _own_booking(db, account_id, public_id)
        if booking is None:
            return refused(Refusal("booking.unknown"), 404)
        out_trade_no = booking.out_trade_no if booking.status == \
            BookingStatus.PENDING_PAYMENT else None
    if out_trade_no:
        # Close the trade at the wallet first, so a payment racing the cancel is known.
        try:
            status = runtime.wallet.close_trade(out_trade_no)
        except WalletUnavailable:
            return _wallet_unavailable(runtime.wallet)
        if status.paid:
            with runtime.session_factory.begin() as db:
                trade = lock_trade(db, out_trade_no)
                if trade.status == TradeStatus.CREATED:
                    trade.status, trade.paid_at = TradeStatus.PAID, _now()
                    trade.trade_no = trade.trade_no or status.trade_no
                    runtime.paid_handlers["registration"](db, trade)
    try:
        with runtime.session_factory.begin() as db:
            write_transaction(db)
            booking = lock_booking(db, public_id=public_id)
            cancel_by_patient(db, booking, policy=runtime.policy, tz=runtime.config.tz,
                              now=_now(), rng=_rng, closed_trade=out_trade_no)
            return jsonify(booking_json(db, booking))
    except Refusal as refusal:
        return refused(refusal, 409 if refusal.code == "booking.confirming" else 422)


_rng = random.SystemRandom()


def _wallet_unavailable(wallet: WalletGateway) -> ResponseReturnValue:
    message = (f"{wallet.display_name('zh-CN')}暂时无法访问，请稍后再试" if locale() == "zh-CN"
               else "The wallet cannot be reached right now. Please try again shortly.")
    return error("wallet.unavailable", message, 503)


@bp.post("/payments")
@signed_in
def create_payment(account_id: int) -> ResponseReturnValue:
    """Create (or return) the wallet trade that pays a held booking."""
    body = request.get_json(silent=True) or {}
    public_id = body.get("booking_id")
    if not isinstance(public_id, str):
        return error("payment.fields", "booking_id is required", 400)
    runtime = _runtime()
    with runtime.session_factory.begin() as db:
        write_transaction(db)
        booking = _own_booking(db, account_id, public_id)
        if booking is None:
            return refused(Refusal("booking.unknown"), 404)
        booking = lock_booking(db, id=booking.id)
        if booking.status != BookingStatus.PENDING_PAYMENT or booking.hold_expires_at <= _now():
            return refused(Refusal("booking.not_payable"), 409)
        account = db.get(WalletAccount, account_id)
        # One trade per booking, named after it: the wallet dedupes out_trade_no, so a retry
        # after an unknown outcome can never charge twice.
        out_trade_no = booking.out_trade_no or f"R{booking.public_id}"
        trade = db.get(Trade, out_trade_no)
        if trade is None:
            department = runtime.mappings.departments.get(booking.department_code)
            subject = f"挂号费 {department.name_zh if department else ''}".strip()
            trade = Trade(out_trade_no=out_trade_no, platform=account.platform,
                          purpose="registration",
                          reference=booking.public_id, subject=subject,
                          total_fen=booking.fee_fen, buyer_id=account.user_id,
                          expire_at=booking.hold_expires_at)
            db.add(trade)
            booking.out_trade_no = out_trade_no
        trade_no, subject, total_fen, expire_at = (trade.trade_no, trade.subject,
                                                   trade.total_fen, trade.expire_at)
        buyer_id, wallet = account.user_id, runtime.wallet_for(trade.platform)
    if not trade_no:
        try:
            trade_no = wallet.create_trade(out_trade_no, total_fen, subject, buyer_id, expire_at)
        except WalletUnavailable:
            return _wallet_unavailable(wallet)
        except WalletRefused as exc:
            logger.warning("trade %s refused by the wallet: %s %s", out_trade_no, exc.code,
                           exc.sub_code)
            return refused(Refusal("booking.not_payable"), 409)
        with runtime.session_factory.begin() as db:
            trade = db.get(Trade, out_trade_no)
            trade.trade_no = trade.trade_no or trade_no
    return_url = body.get("return_url")
    if not (isinstance(return_url, str) and return_url.startswith(("http://", "https://"))):
        return_url = ""
    pay = wallet.pay_parameters(out_trade_no, trade_no, return_url)
    return jsonify(out_trade_no=out_trade_no, trade_no=trade_no, amount=yuan(total_fen),
                   cashier_url=pay.get("cashier_url"), platform=wallet.platform, pay=pay), 201


def init_app(app: Flask) -> None:
    """Register the API."""
    app.register_blueprint(bp)
