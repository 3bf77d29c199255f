"""The slot pool: kept in step with the pool the HIS allots to the wallet, and browsed by
patients with what each may do."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.mappings import Mappings
from adapter.models import Slot
from adapter.ports import HisGateway, SlotRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    """What one sync changed."""

    added: int = 0
    updated: int = 0
    closed: int = 0
    unchanged: int = 0


def apply_slot_record(session: Session, record: SlotRecord, now: dt.datetime) -> str:
    """Insert or update one slot from the HIS; returns added, updated or unchanged.

    ``booked`` is the adapter's own count and is never overwritten by the HIS; a capacity the
    HIS lowers below what is already booked is kept at the booked count (the database check
    refuses overbooking, and those patients keep their slots until the HIS cancels them).
    """
    slot = session.scalar(
        select(Slot).where(Slot.his_slot_id == record.his_slot_id).with_for_update()
    )
    if slot is None:
        session.add(
            Slot(
                his_slot_id=record.his_slot_id,
                department_code=record.department_code,
                doctor_code=record.doctor_code,
                service_code=record.service_code,
                start_at=record.start_at,
                end_at=record.end_at,
                capacity=record.capacity,
                booked=0,
                fee_fen=record.fee_fen,
                status=record.status,
                synced_at=now,
            )
        )
        return "added"
    changes = {
        "department_code": record.department_code,
        "doctor_code": record.doctor_code,
        "service_code": record.service_code,
        "start_at": record.start_at,
        "end_at": record.end_at,
        "capacity": max(record.capacity, slot.booked),
        "fee_fen": record.fee_fen,
        "status": record.status,
    }
    changed = any(getattr(slot, key) != value for key, value in changes.items())
    for key, value in changes.items():
        setattr(slot, key, value)
    slot.synced_at = now
    return "updated" if changed else "unchanged"


def sync_slot_pool(
    session: Session, his: HisGateway, start: dt.date, end: dt.date, tz: dt.tzinfo,
    now: dt.datetime,
    on_closed: Callable[[Session, Slot], object] | None = None,
) -> SyncReport:
    """Pull the pool for [start, end] from the HIS and apply it; slots it no longer lists close.

    The caller commits. A HisUnavailable from the gateway propagates and nothing changes.
    """
    return apply_slot_pool(session, his.query_slot_pool(start, end), start, end, tz, now,
                           on_closed)


def apply_slot_pool(
    session: Session, records: list[SlotRecord], start: dt.date, end: dt.date, tz: dt.tzinfo,
    now: dt.datetime,
    on_closed: Callable[[Session, Slot], object] | None = None,
) -> SyncReport:
    """Apply the HIS's pool for [start, end]: add and update slots, close those not listed."""
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    seen: set[str] = set()
    for record in records:
        counts[apply_slot_record(session, record, now)] += 1
        seen.add(record.his_slot_id)
    window_start = dt.datetime.combine(start, dt.time.min, tz)
    window_end = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tz)
    closed = 0
    for slot in session.scalars(
        select(Slot).where(
            Slot.start_at >= window_start, Slot.start_at < window_end, Slot.status == "open"
        ).with_for_update()
    ):
        if slot.his_slot_id not in seen:
            slot.status = "closed"
            closed += 1
            if on_closed is not None:
                on_closed(session, slot)
    report = SyncReport(counts["added"], counts["updated"], closed, counts["unchanged"])
    logger.info("slot pool sync %s..%s: %s", start, end, report)
    return report


def close_slot(
    session: Session, his_slot_id: str, *, now: dt.datetime,
    on_closed: Callable[[Session, Slot], object] | None = None,
) -> bool:
    """The HIS stopped a slot (clinic cancelled or slot removed); False if it is unknown here.

    Patients already booked on it keep their booking row; the registration flow refunds and
    tells them (it reads closed slots with bookings).
    """
    slot = session.scalar(
        select(Slot).where(Slot.his_slot_id == his_slot_id).with_for_update()
    )
    if slot is None:
        return False
    slot.status = "closed"
    slot.synced_at = now
    if on_closed is not None:
        on_closed(session, slot)
    return True


def release_at(mappings: Mappings, department_code: str, visit_date: dt.date,
               tz: dt.tzinfo) -> dt.datetime:
    """When the slots of a department's visit date open to the wallet (hospital time)."""
    department = mappings.departments.get(department_code)
    if department is None:
        return dt.datetime.combine(visit_date, dt.time.min, tz)
    day = visit_date - dt.timedelta(days=department.release_days_ahead)
    return dt.datetime.combine(day, department.release_time, tz)


@dataclass(frozen=True)
class SlotView:
    """A slot as a patient sees it."""

    slot: Slot
    remaining: int
    status: str  # open | full | closed | not_released | past
    release_at: dt.datetime


def browse_slots(
    session: Session, mappings: Mappings, tz: dt.tzinfo, *, visit_date: dt.date,
    department_code: str = "", doctor_code: str = "", now: dt.datetime,
) -> list[SlotView]:
    """The pool's slots of one day for a department and/or doctor, with what a patient may do."""
    start = dt.datetime.combine(visit_date, dt.time.min, tz)
    query = select(Slot).where(Slot.start_at >= start, Slot.start_at < start + dt.timedelta(1))
    if department_code:
        query = query.where(Slot.department_code == department_code)
    if doctor_code:
        query = query.where(Slot.doctor_code == doctor_code)
    views = []
    for slot in session.scalars(query.order_by(Slot.start_at, Slot.doctor_code, Slot.id)):
        opens = release_at(mappings, slot.department_code, visit_date, tz)
        remaining = max(slot.capacity - slot.booked, 0)
        if slot.status != "open":
            status = "closed"
        elif slot.start_at <= now:
            status = "past"
        elif now < opens:
            status = "not_released"
        elif remaining == 0:
            status = "full"
        else:
            status = "open"
        views.append(SlotView(slot, remaining, status, opens))
    return views
