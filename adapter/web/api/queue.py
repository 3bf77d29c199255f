"""A booking's visit day: check in (geofence or QR code), and its place in the queue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.i18n import N_
from adapter.queueing.check_in import Location, check_in
from adapter.queueing.service import QueueStatus, booking_queue
from adapter.refusals import Refusal
from adapter.web.api.errors import now, refused, runtime, say, signed_in
from adapter.web.api.schemas import BookingPath, CheckInBody
from adapter.web.api.validation import body, valid

bp = Blueprint("queue", __name__)

STATE_TEXT = {
    "not_in_queue": N_("医院尚未排入候诊队列"),
    "registered": N_("未签到"),
    "waiting": N_("候诊中"),
    "called": N_("请进诊室就诊"),
    "finished": N_("就诊结束"),
    "missed": N_("已过号，请联系分诊台"),
    "cancelled": N_("已退号"),
}


def queue_json(public_id: str, status: QueueStatus, checked_in: bool) -> dict[str, Any]:
    """A booking's place in the queue as the pages show it."""
    tz = runtime().config.tz
    wait = status.wait
    return {
        "booking_id": public_id, "state": status.state,
        "state_text": say(STATE_TEXT[status.state]), "checked_in": checked_in,
        "position": status.position, "ahead": status.ahead,
        "wait": None if wait is None else {"low_minutes": wait.low, "high_minutes": wait.high},
        "room": status.room,
        "updated_at": status.updated_at.astimezone(tz).isoformat()
        if status.updated_at else None,
    }


@bp.post("/bookings/<public_id>/check-in")
@signed_in
def check_in_booking(account_id: int, public_id: str) -> ResponseReturnValue:
    """Check in on the visit day (idempotent: a second check-in answers the first)."""
    if not valid(BookingPath, public_id=public_id):
        return refused(Refusal("booking.unknown"), 404)
    asked = body(CheckInBody)
    where = asked.location
    location = None if where is None else Location(where.latitude, where.longitude,
                                                   where.accuracy_m)
    try:
        done = check_in(runtime(), account_id, public_id, location=location,
                        token=asked.token or None, now=now())
    except Refusal as refusal:
        return refused(refusal, 404 if refusal.code == "booking.unknown" else 422)
    return jsonify(booking_id=public_id,
                   checked_in_at=done.checked_in_at.astimezone(runtime().config.tz).isoformat(),
                   method=done.method.value)


@bp.get("/bookings/<public_id>/queue")
@signed_in
def booking_queue_view(account_id: int, public_id: str) -> ResponseReturnValue:
    """The booking's position, people ahead, the wait's range, the room, when last updated."""
    if not valid(BookingPath, public_id=public_id):
        return refused(Refusal("booking.unknown"), 404)
    try:
        status, checked_in_at = booking_queue(runtime(), account_id, public_id, now())
    except Refusal as refusal:
        return refused(refusal, 404)
    return jsonify(queue_json(public_id, status, checked_in_at is not None))
