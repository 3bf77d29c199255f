"""Check-in (签到) on the visit day: remotely inside the hospital's geofence, or on site with a
signed QR code that expires; the HIS hears it through the outbox (ADT^A10, ``his_arrive``).

A check-in is accepted from ``opens_before`` the booking's slot to ``closes_after`` its start,
for a booking paid and confirmed by the HIS. Checking in twice is the first check-in again.
The phone's location is compared with the fence and forgotten: it is never stored or logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.db import write_transaction
from adapter.flows import OutboxJob, Services
from adapter.models import Booking, BookingStatus, CheckIn, Patient, QueueEventRecord, Slot
from adapter.outbox import enqueue, finish
from adapter.ports import ArrivalNotice
from adapter.refusals import Refusal
from adapter.registration.booking import lock_booking, own_booking

logger = logging.getLogger(__name__)

# The mean Earth radius (IUGG), metres: haversine's error against the WGS-84 ellipsoid is
# under 0.5%, a few metres on a fence of hundreds.
EARTH_RADIUS_M = 6_371_008.8
# A token issued "in the future" by more than this is a forgery or a kiosk whose clock is
# wrong: either way it is not honoured.
CLOCK_SKEW = dt.timedelta(minutes=1)
TOKEN_SALT = "check-in-qr"  # noqa: S105 - itsdangerous namespaces signatures, no secret


class CheckInMethod(StrEnum):
    """How the patient proved they are at the hospital."""

    REMOTE = "remote"  # the phone's location, inside the geofence
    QR = "qr"  # the QR code shown at the hospital, scanned on site


@dataclass(frozen=True)
class CheckInRules:
    """When and where a check-in is accepted (ADAPTER_CHECK_IN_*, ADAPTER_HOSPITAL_*)."""

    opens_before: dt.timedelta = dt.timedelta(minutes=60)
    closes_after: dt.timedelta = dt.timedelta(minutes=15)
    centre: tuple[float, float] | None = None  # (latitude, longitude), decimal degrees
    radius_m: float = 500.0
    token_lifetime: dt.timedelta = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Location:
    """Where the phone says it is (WGS-84 degrees) and how sure it is (metres)."""

    latitude: float
    longitude: float
    accuracy_m: float = 0.0


@dataclass(frozen=True)
class CheckedIn:
    """A booking's check-in: when, how, and whether this request made it."""

    checked_in_at: dt.datetime
    method: CheckInMethod
    new: bool


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (latitude, longitude) points (haversine).

    Hand-written: it is five lines of arithmetic, and a geodesy library (geopy, pyproj) would
    be a dependency for a precision a 500 m fence does not need.
    """
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class CheckInTokens:
    """The QR codes' tokens: the moment of issue, signed with the adapter's secret key
    (itsdangerous, HMAC-SHA1 by default, as Flask's own sessions). Expiry is checked against
    the caller's clock, not the system's, so tests and the worker agree on what "now" is."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("check-in tokens need the adapter's secret key")
        self._serializer = URLSafeSerializer(secret_key, salt=TOKEN_SALT)

    def issue(self, now: dt.datetime) -> str:
        """A token for a QR code shown from ``now``."""
        return self._serializer.dumps({"at": int(now.timestamp())})

    def issued_at(self, token: str) -> dt.datetime:
        """When a token was issued; Refusal ``check_in.bad_token`` when it is not ours."""
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            raise Refusal("check_in.bad_token") from None
        at = data.get("at") if isinstance(data, dict) else None
        if not isinstance(at, int) or isinstance(at, bool):
            raise Refusal("check_in.bad_token")
        return dt.datetime.fromtimestamp(at, dt.UTC)


def _proof(location: Location | None, token: str | None, tokens: CheckInTokens,
           rules: CheckInRules, now: dt.datetime) -> CheckInMethod:
    """How the patient shows they are there, or the Refusal saying why not."""
    if token:
        issued = tokens.issued_at(token)
        if issued > now + CLOCK_SKEW:
            raise Refusal("check_in.bad_token")
        if now > issued + rules.token_lifetime:
            raise Refusal("check_in.token_expired")
        return CheckInMethod.QR
    if location is None:
        raise Refusal("check_in.no_proof")
    if rules.centre is None:
        raise Refusal("check_in.remote_unavailable")
    # A fix vaguer than the fence itself cannot place the phone inside it.
    far = distance_m(rules.centre, (location.latitude, location.longitude))
    if far > rules.radius_m or location.accuracy_m > rules.radius_m:
        raise Refusal("check_in.outside_fence", radius=round(rules.radius_m))
    return CheckInMethod.REMOTE


def check_in_booking(session: Session, booking: Booking, slot_start: dt.datetime, *,
                     location: Location | None, token: str | None, tokens: CheckInTokens,
                     rules: CheckInRules, tz: dt.tzinfo, now: dt.datetime) -> CheckedIn:
    """Check a locked booking in, or raise the Refusal naming why not; a booking checked in
    already answers its first check-in (the request is idempotent)."""
    earlier = session.scalar(select(CheckIn).where(CheckIn.booking_id == booking.id))
    if earlier is not None:
        return CheckedIn(earlier.checked_in_at, CheckInMethod(earlier.method), new=False)
    if booking.status != BookingStatus.CONFIRMED:
        raise Refusal("check_in.not_confirmed")
    opens, closes = slot_start - rules.opens_before, slot_start + rules.closes_after
    if now < opens:
        raise Refusal("check_in.too_early", opens_at=opens.astimezone(tz).strftime("%m-%d %H:%M"))
    if now > closes:
        raise Refusal("check_in.too_late", closed_at=closes.astimezone(tz).strftime("%H:%M"))
    method = _proof(location, token, tokens, rules, now)
    session.add(CheckIn(booking_id=booking.id, method=method.value, checked_in_at=now))
    enqueue(session, "his_arrive", ("booking", booking.id), now)
    session.flush()
    logger.info("booking %s checked in (%s)", booking.public_id, method.value)
    return CheckedIn(now, method, new=True)


def check_in_rules(services: Services) -> CheckInRules:
    """The check-in rules of the configuration."""
    config = services.config
    centre = None if config.hospital_latitude is None else (
        config.hospital_latitude, config.hospital_longitude)
    return CheckInRules(dt.timedelta(minutes=config.check_in_opens_minutes),
                        dt.timedelta(minutes=config.check_in_closes_minutes), centre,
                        config.geofence_radius_m,
                        dt.timedelta(minutes=config.check_in_token_minutes))


def check_in(services: Services, account_id: int, public_id: str, *,
             location: Location | None, token: str | None, now: dt.datetime) -> CheckedIn:
    """The patient (or their guardian) checks a booking in; raises Refusal."""
    with services.session_factory.begin() as session:
        write_transaction(session)
        if own_booking(session, account_id, public_id) is None:
            raise Refusal("booking.unknown")
        booking = lock_booking(session, public_id=public_id)
        slot = session.get(Slot, booking.slot_id)
        return check_in_booking(session, booking, slot.start_at, location=location,
                                token=token, tokens=CheckInTokens(services.config.secret_key),
                                rules=check_in_rules(services), tz=services.config.tz, now=now)


def deliver_his_arrive(services: Services, job: OutboxJob, now: dt.datetime) -> None:
    """Tell the HIS a booking's patient arrived (ADT^A10); a refusal is logged for staff:
    the check-in stands, and the triage desk checks the patient in by hand."""
    with services.session_factory() as session:
        booking = session.get(Booking, int(job.subject_id))
        patient = session.get(Patient, booking.patient_id)
        checked = session.scalar(select(CheckIn).where(CheckIn.booking_id == booking.id))
        visit = session.scalar(select(QueueEventRecord.visit_number).where(
            QueueEventRecord.placer_id == booking.public_id).limit(1))
        department = services.mappings.departments.get(booking.department_code)
        notice = ArrivalNotice(
            placer_appointment_id=booking.public_id,
            filler_appointment_id=booking.filler_appointment_id or "",
            his_patient_id=patient.his_patient_id or "",
            location=department.location if department else booking.department_code,
            visit_number=visit or "", arrived_at=checked.checked_in_at)
    outcome = services.his.patient_arrived(notice)
    if not outcome.accepted:
        logger.warning("booking %s: the HIS refused the check-in (%s)",
                       notice.placer_appointment_id, outcome.error_code)
    with services.session_factory.begin() as session:
        finish(session, job, now)
