"""A doctor's queue as the HIS tells it (adapter side): SIU^S14 queue events in, and the
wallet's check-ins out as ADT^A10 (patient arriving).

Each change to a registration in the HIS's queue (registered, checked in, called, consult
finished, absent, recalled, cancelled) comes as one SIU^S14 whose SCH-6 identifier is ``QUEUE``
and whose SCH-25 filler status says what happened (mappings/queue.toml [sch25], defaults in
adapter.his.codes.QUEUE_STATUSES). The
HIS's side is adapter.his.simulator.clinic_wire; docs/hl7-profile.md describes the fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import hl7

from adapter.his.codes import QUEUE_REASON, QUEUE_STATUSES, TABLE_VALUE_NOT_FOUND
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    MessageError,
    Seg,
    build_message,
    control_id_of,
    cx,
    dtm,
    get,
    has,
    one,
    outcome_error,
    parse_date,
    parse_dtm,
    parse_message,
    required,
)
from adapter.ports import (
    ArrivalNotice,
    QueueEvent,
    QueueEventKind,
    QueueSnapshot,
    QueueSnapshotLine,
    session_of,
)

QUEUE_TRIGGER = "S14"

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


def parse_queue_event(text: str, tz: dt.tzinfo,
                      statuses: Mapping[str, str] = QUEUE_STATUSES) -> QueueEvent:
    """The queue event of an SIU^S14 (MessageError with a table 0357 code when unusable);
    ``statuses`` maps SCH-25 (lower case) to the event (the profile's queue_statuses)."""
    message: hl7.Message = parse_message(text, (f"SIU^{QUEUE_TRIGGER}",))
    msh, sch = message.segment("MSH"), one(message, "SCH")
    status = get(sch, 25).lower()
    if status not in statuses:
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
        kind=QueueEventKind(statuses[status]),
        # MSH-7: the HIS sends each event as it happens and resends it unchanged.
        occurred_at=parse_dtm(required(get(msh, 7), "MSH-7"), "MSH-7", tz),
        sequence=_number(get(msh, 13), "MSH-13"),
        queue_number=_number(get(sch, 3), "SCH-3"),
        his_patient_id=get(pid, 3) if pid is not None else "",
        placer_id=get(sch, 1),
        room=get(pv1, 3, 1, 2) if pv1 is not None else "",
        slot_start=slot_start,
    )


def build_adt_a10(profile: Hl7Profile, control_id: str, now: dt.datetime, *,
                  notice: ArrivalNotice) -> str:
    """ADT^A10 (patient arriving, v2.5 section 3.3.10): the wallet checked the patient in.

    PV1-3.1 names the clinic (the department's HIS point of care), PV1-19 the registration
    number when a queue event told it, PV1-50 the HIS's appointment id and PV1-5 our booking
    id, so the HIS finds the registration by whichever it keys on. PID-5 is left unnamed
    (name type U): the HIS knows the patient by PID-3, and no name travels needlessly.
    """
    pv1: dict[int, str | list[str]] = {1: "1", 2: "O", 3: escape(notice.location),
                                       5: cx(notice.placer_appointment_id,
                                             profile.sending_application, "VN")}
    if notice.visit_number:
        pv1[19] = cx(notice.visit_number, profile.his_application, "VN")
    if notice.filler_appointment_id:
        pv1[50] = cx(notice.filler_appointment_id, profile.his_application, "VN")
    return build_message(profile, "ADT^A10^ADT_A09", control_id, now, [
        Seg("EVN", {1: "A10", 2: dtm(now), 6: dtm(notice.arrived_at)}),
        Seg("PID", {1: "1", 3: cx(notice.his_patient_id, "HIS", "PI"), 5: "^^^^^^U"}),
        Seg("PV1", pv1),
    ])


def parse_adt_a10(text: str, tz: dt.tzinfo) -> ArrivalNotice:
    """The arrival an ADT^A10 announces (the HIS's side reads it; MessageError if unusable)."""
    message: hl7.Message = parse_message(text, ("ADT^A10",))
    evn, pv1 = one(message, "EVN"), one(message, "PV1")
    pid = one(message, "PID")
    return ArrivalNotice(
        placer_appointment_id=get(pv1, 5),
        filler_appointment_id=get(pv1, 50),
        his_patient_id=get(pid, 3),
        location=get(pv1, 3),
        visit_number=get(pv1, 19),
        arrived_at=parse_dtm(get(evn, 6) or required(get(evn, 2), "EVN-2"), "EVN-6", tz),
    )


QUEUE_QUERY = "QUEUE^Queue snapshot^L"  # QRD-9 "what subject filter": a local value


def build_queue_query(profile: Hl7Profile, control_id: str, now: dt.datetime, *,
                      doctor_code: str, visit_date: dt.date, session: str) -> str:
    """SQM^S25 asking for a doctor's whole queue of one session (QRD-8 the doctor, QRF-2/3
    the date, QRF-4 the session), answered by SQR^S25 with one SCH group per registration."""
    return build_message(profile, "SQM^S25^SQM_S25", control_id, now, [
        Seg("QRD", {1: dtm(now), 2: "R", 3: "I", 4: escape(control_id), 7: "999^RD",
                    8: escape(doctor_code), 9: QUEUE_QUERY, 10: "ALL"}),
        Seg("QRF", {1: escape(profile.sending_facility), 2: visit_date.strftime("%Y%m%d"),
                    3: visit_date.strftime("%Y%m%d"), 4: escape(session)}),
    ])


def is_queue_query(text: str) -> bool:
    """Whether an SQM^S25 asks for a queue snapshot rather than the slot pool (QRD-9)."""
    for segment in text.split("\r"):
        if segment.startswith("QRD|"):
            fields = segment.split("|")
            return len(fields) > 9 and fields[9].split("^")[0] == QUEUE_QUERY.split("^")[0]
    return False


def parse_queue_query(text: str) -> tuple[str, dt.date, str]:
    """(doctor, date, session) of a queue query (the HIS's side reads it)."""
    message: hl7.Message = parse_message(text, ("SQM^S25",))
    qrd, qrf = one(message, "QRD"), one(message, "QRF")
    return (required(get(qrd, 8), "QRD-8 doctor"),
            parse_date(required(get(qrf, 2), "QRF-2 date"), "QRF-2"),
            required(get(qrf, 4), "QRF-4 session"))


def parse_queue_snapshot(text: str, statuses: Mapping[str, str], *, doctor_code: str,
                         visit_date: dt.date, session: str,
                         taken_at: dt.datetime) -> QueueSnapshot:
    """The queue an SQR^S25 lists (MessageError when refused or unusable)."""
    message: hl7.Message = parse_message(text, ("SQR^S25", "ACK^S25"))
    msa = one(message, "MSA")
    if get(msa, 1) not in ("AA", "CA"):
        hl7_code, app_code, err_text = outcome_error(message)
        raise MessageError(hl7_code, err_text or app_code or "queue query refused")
    lines: list[dict] = []
    for segment in message:
        name = str(segment[0])
        if name == "SCH":
            status = get(segment, 25).lower()
            if status not in statuses:
                raise MessageError(TABLE_VALUE_NOT_FOUND, "SCH-25 is not a queue status")
            lines.append({"visit_number": required(get(segment, 2), "SCH-2"),
                          "kind": QueueEventKind(statuses[status]),
                          "queue_number": _number(get(segment, 3), "SCH-3"),
                          "placer_id": get(segment, 1)})
        elif name == "PID" and lines:
            lines[-1]["his_patient_id"] = get(segment, 3)
        elif name == "PV1" and lines:
            lines[-1]["room"] = get(segment, 3, 1, 2)
    return QueueSnapshot(doctor_code, visit_date, session, taken_at,
                         tuple(QueueSnapshotLine(**line) for line in lines))
