"""A doctor's queue as the HIS tells it (adapter side): SIU^S14 queue events in.

Each change to a registration in the HIS's queue (registered, checked in, called, consult
finished, absent, recalled, cancelled) comes as one SIU^S14 whose SCH-6 identifier is ``QUEUE``
and whose SCH-25 filler status says what happened (adapter.his.codes.QUEUE_STATUSES). The
HIS's side is adapter.his.simulator.clinic_wire; docs/hl7-profile.md describes the fields.
"""

from __future__ import annotations

import datetime as dt

import hl7

from adapter.his.codes import QUEUE_REASON, QUEUE_STATUSES, TABLE_VALUE_NOT_FOUND
from adapter.his.segments import (
    MessageError,
    control_id_of,
    get,
    has,
    one,
    parse_dtm,
    parse_message,
    required,
)
from adapter.ports import QueueEvent, QueueEventKind

QUEUE_TRIGGER = "S14"

# A session is the morning (am) or the afternoon (pm): a registration's time (TQ1-7) before
# this hour in the hospital's zone is the morning's.
AFTERNOON_FROM = 12


def session_of(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """The session ("am" or "pm") a registration's time falls in."""
    return "am" if moment.astimezone(tz).hour < AFTERNOON_FROM else "pm"


def is_queue_event(text: str) -> bool:
    """Whether an SIU is a queue event (SCH-6 ``QUEUE``) rather than a slot notification."""
    for segment in text.split("\r"):
        if segment.startswith("SCH|"):
            fields = segment.split("|")
            return len(fields) > 6 and fields[6].split("^")[0] == QUEUE_REASON
    return False


def _number(value: str, where: str) -> int:
    if not value:
        return 0
    if not value.isdigit():
        raise MessageError(TABLE_VALUE_NOT_FOUND, f"{where} is not a whole number")
    return int(value)


def parse_queue_event(text: str, tz: dt.tzinfo) -> QueueEvent:
    """The queue event of an SIU^S14 (MessageError with a table 0357 code when unusable)."""
    message: hl7.Message = parse_message(text, (f"SIU^{QUEUE_TRIGGER}",))
    msh, sch = message.segment("MSH"), one(message, "SCH")
    status = get(sch, 25).lower()
    if status not in QUEUE_STATUSES:
        raise MessageError(TABLE_VALUE_NOT_FOUND, "SCH-25 is not a queue status")
    tq1 = one(message, "TQ1")
    slot_start = parse_dtm(required(get(tq1, 7), "TQ1-7 registration time"), "TQ1-7", tz)
    aip = one(message, "AIP")
    pid = message.segment("PID") if has(message, "PID") else None
    pv1 = message.segment("PV1") if has(message, "PV1") else None
    return QueueEvent(
        event_id=control_id_of(message),
        doctor_code=required(get(aip, 3), "AIP-3 doctor"),
        visit_date=slot_start.astimezone(tz).date(),
        session=session_of(slot_start, tz),
        visit_number=required(get(sch, 2), "SCH-2 registration number"),
        kind=QueueEventKind(QUEUE_STATUSES[status]),
        # MSH-7: the HIS sends each event as it happens and resends it unchanged.
        occurred_at=parse_dtm(required(get(msh, 7), "MSH-7"), "MSH-7", tz),
        sequence=_number(get(msh, 13), "MSH-13"),
        queue_number=_number(get(sch, 3), "SCH-3"),
        his_patient_id=get(pid, 3) if pid is not None else "",
        placer_id=get(sch, 1),
        room=get(pv1, 3, 1, 2) if pv1 is not None else "",
        slot_start=slot_start,
    )
