"""Appointments and the slot pool as the adapter sends and reads them (HL7 v2.5 chapter 10).

Out: SRM^S01 book, SRM^S04 or SIU^S15 cancel, SQM^S25 pool query. In: SRR^S01/S04, SQR^S25 and
the HIS's SIU notifications (S12..S26). The HIS's side of these messages is
adapter.his.simulator.wire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import hl7

from adapter.his.codes import (
    ACCEPT_ACK_CODES,
    CLOSED_STATUSES,
    DUPLICATE_KEY,
    REFUSAL_ACK_CODES,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    SLOT_CANCELLED,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
)
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    Grp,
    MessageError,
    Seg,
    build_message,
    control_id_of,
    cx,
    dtm,
    get,
    has,
    minutes_between,
    one,
    outcome_error,
    parse_dtm,
    parse_message,
    person,
    required,
)
from adapter.ports import AppointmentRequest, HisOutcome, SlotRecord


@dataclass(frozen=True)
class SiuEvent:
    """A schedule notification from the HIS (SIU^S12..S26), as the listener needs it."""

    trigger: str  # S12 new slot/appointment, S13/S14 changed, S15 cancelled, S17 deleted, ...
    control_id: str
    his_slot_id: str  # SCH-5, else SCH-2
    placer_appointment_id: str = ""  # SCH-1
    filler_appointment_id: str = ""  # SCH-2
    filler_status: str = ""  # SCH-25, table 0278
    slot: SlotRecord | None = None  # when the message carries timing and resources


# --------------------------------------------------------------------------------------------
# Booking and cancellation: SRM^S01, SRM^S04 / SRR, SIU^S15


def build_srm_s01(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    request: AppointmentRequest,
    his_location: str,
) -> str:
    """Ask the HIS to book one pool slot (ARQ-5 = HIS slot id) for a patient."""
    start, end = dtm(request.start_at), dtm(request.end_at)
    minutes = minutes_between(request.start_at, request.end_at)
    arq = Seg(
        "ARQ",
        {
            1: f"{escape(request.placer_appointment_id)}^{escape(profile.sending_application)}",
            5: escape(request.his_slot_id),
            6: "NEW^New appointment",
            7: "ROUTINE",  # table 0276
            8: "Normal",  # table 0277
            9: minutes,
            10: "min",
            11: f"{start}^{end}",
            15: person(profile),
            19: person(profile),
        },
    )
    pid = Seg(
        "PID",
        {
            1: "1",
            3: cx(request.his_patient_id, profile.his_assigning_authority,
                   profile.his_identifier_type),
            # PID-5 is required in v2.5; the HIS knows the person by PID-3, so no name is sent.
            5: "^^^^^^U",
        },
    )
    return build_message(
        profile,
        "SRM^S01^SRM_S01",
        control_id,
        now,
        [arq, Grp("SRM_S01_PATIENT", [pid]), _resources("SRM_S01", request, his_location)],
    )


def _resources(prefix: str, request: AppointmentRequest, his_location: str) -> Grp:
    start, minutes = dtm(request.start_at), minutes_between(request.start_at, request.end_at)
    return Grp(
        f"{prefix}_RESOURCES",
        [
            Seg("RGS", {1: "1", 2: "A"}),
            Grp(f"{prefix}_SERVICE", [Seg("AIS", {
                1: "1", 3: escape(request.service_code), 4: start, 7: minutes, 8: "min",
            })]),
            Grp(f"{prefix}_LOCATION_RESOURCE", [Seg("AIL", {
                1: "1", 3: escape(his_location), 4: "C", 5: escape(request.department_code),
                6: start, 9: minutes, 10: "min",
            })]),
            Grp(f"{prefix}_PERSONNEL_RESOURCE", [Seg("AIP", {
                1: "1", 3: escape(request.doctor_code), 4: "D^Doctor", 6: start, 9: minutes,
                10: "min",
            })]),
        ],
    )


def build_srm_s04(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    placer_appointment_id: str,
    filler_appointment_id: str,
    his_slot_id: str,
) -> str:
    """Ask the HIS to cancel a booked appointment (ARQ-1 placer, ARQ-2 filler, ARQ-5 slot)."""
    arq = Seg(
        "ARQ",
        {
            1: f"{escape(placer_appointment_id)}^{escape(profile.sending_application)}",
            2: f"{escape(filler_appointment_id)}^{escape(profile.his_application)}",
            5: escape(his_slot_id),
            6: "CANCEL^Cancelled by patient",
            15: person(profile),
            19: person(profile),
        },
    )
    return build_message(
        profile,
        "SRM^S04^SRM_S01",
        control_id,
        now,
        [arq, Grp("SRM_S01_RESOURCES", [Seg("RGS", {1: "1", 2: "D"})])],
    )


def build_siu_s15(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    placer_appointment_id: str,
    filler_appointment_id: str,
    his_slot_id: str,
) -> str:
    """Notify the HIS of a cancellation (SCH-1 placer, SCH-2 filler, SCH-5 slot, SCH-25)."""
    sch = Seg(
        "SCH",
        {
            1: f"{escape(placer_appointment_id)}^{escape(profile.sending_application)}",
            2: f"{escape(filler_appointment_id)}^{escape(profile.his_application)}",
            5: escape(his_slot_id),
            6: "CANCEL^Cancelled by patient",
            16: person(profile),
            20: person(profile),
            25: SLOT_CANCELLED,
        },
    )
    return build_message(
        profile,
        "SIU^S15^SIU_S15",
        control_id,
        now,
        [sch, Grp("SIU_S15_RESOURCES", [Seg("RGS", {1: "1", 2: "D"})])],
    )


def parse_srr(text: str, expected_control_id: str) -> HisOutcome:
    """The outcome of our SRM: accepted with SCH-2, or refused with ERR-5 (else ERR-3) code."""
    # A HIS that cannot process an SRM at all may answer a plain ACK (AE/AR + ERR): read it alike.
    message = parse_message(text, ("SRR^S01", "SRR^S04", "ACK^S01", "ACK^S04"))
    msa = one(message, "MSA")
    acked = get(msa, 2)
    if acked != expected_control_id:
        raise MessageError(UNKNOWN_KEY, "MSA-2 does not acknowledge the message sent")
    ack_code = get(msa, 1)
    if ack_code in ACCEPT_ACK_CODES:
        filler = ""
        if has(message, "SCH"):
            filler = get(message.segment("SCH"), 2)
        if get(message.segment("MSH"), 9, 1, 2) == "S01":
            required(filler, "SCH-2 filler appointment id")
        return HisOutcome(accepted=True, filler_appointment_id=filler,
                          details={"ack_code": ack_code})
    if ack_code not in REFUSAL_ACK_CODES:
        raise MessageError(TABLE_VALUE_NOT_FOUND, "MSA-1 not in table 0008")
    hl7_code, app_code, err_text = outcome_error(message)
    return HisOutcome(
        accepted=False,
        error_code=app_code or hl7_code,
        error_text=err_text,
        details={"ack_code": ack_code, "hl7_error_code": hl7_code},
    )


# --------------------------------------------------------------------------------------------
# Slot pool: SQM^S25 / SQR^S25 pull, SIU^S12..S26 push


def build_sqm_s25(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    query_tag: str,
    start: dt.date,
    end: dt.date,
) -> str:
    """Ask for the wallet channel's pool slots dated ``start``..``end`` (inclusive)."""
    return build_message(
        profile,
        "SQM^S25^SQM_S25",
        control_id,
        now,
        [
            Seg("QRD", {
                1: dtm(now), 2: "R", 3: "I", 4: escape(query_tag), 7: "9999^RD",
                8: "ALL", 9: "SSA^Schedule slots^HL70048", 10: "ALL",
            }),
            # QRF-1 names the channel whose pool is asked for; QRF-2/3 the visit dates.
            Seg("QRF", {
                1: escape(profile.sending_facility),
                2: start.strftime("%Y%m%d"),
                3: end.strftime("%Y%m%d"),
            }),
        ],
    )


def _slot_from(
    sch: hl7.Segment,
    tq1: hl7.Segment | None,
    resources: dict[str, hl7.Segment],
    tz: dt.tzinfo,
    fee_of: Callable[[str], int],
) -> SlotRecord:
    slot_id = get(sch, 5) or get(sch, 2)
    required(slot_id, "SCH-5 schedule id (HIS slot id)")
    ais, aip, ail = resources.get("AIS"), resources.get("AIP"), resources.get("AIL")
    if ais is None or aip is None:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, f"slot {slot_id}: AIS and AIP required")
    service = required(get(ais, 3), "AIS-3 service")
    start_text = (get(tq1, 7) if tq1 is not None else "") or get(ais, 4)
    start = parse_dtm(required(start_text, "TQ1-7 start"), "TQ1-7", tz)
    end_text = get(tq1, 8) if tq1 is not None else ""
    if end_text:
        end = parse_dtm(end_text, "TQ1-8", tz)
    else:
        minutes = get(sch, 9) or get(ais, 7)
        if not minutes.isdigit():
            raise MessageError(REQUIRED_FIELD_MISSING, "TQ1-8 end or SCH-9 duration missing")
        end = start + dt.timedelta(minutes=int(minutes))
    status_code = get(sch, 25).lower()
    closed = status_code in CLOSED_STATUSES
    available = 0 if closed or status_code == "booked" else 1
    try:
        fee = fee_of(service)
    except KeyError as exc:
        raise MessageError(TABLE_VALUE_NOT_FOUND, f"AIS-3 service {service} has no fee") from exc
    return SlotRecord(
        his_slot_id=slot_id,
        department_code=get(ail, 5) if ail is not None else "",
        doctor_code=required(get(aip, 3), "AIP-3 doctor"),
        service_code=service,
        start_at=start,
        end_at=end,
        capacity=1,
        available=available,
        fee_fen=fee,
        status="closed" if closed else "open",
    )


def _schedules(message: hl7.Message) -> list[tuple[hl7.Segment, hl7.Segment | None, dict]]:
    """Split the segments after each SCH into (SCH, first TQ1, {AIS/AIP/AIL: first one})."""
    out: list[tuple[hl7.Segment, hl7.Segment | None, dict]] = []
    for segment in message:
        name = str(segment[0])
        if name == "SCH":
            out.append((segment, None, {}))
        elif out and name == "TQ1" and out[-1][1] is None:
            out[-1] = (out[-1][0], segment, out[-1][2])
        elif out and name in ("AIS", "AIP", "AIL"):
            out[-1][2].setdefault(name, segment)
    return out


def parse_sqr_s25(
    text: str, tz: dt.tzinfo, fee_of: Callable[[str], int]
) -> list[SlotRecord]:
    """The slots of an SQR^S25; ``fee_of(service_code)`` gives the fee in fen."""
    message = parse_message(text, ("SQR^S25", "ACK^S25"))  # ACK: refused before answering
    msa = one(message, "MSA")
    if get(msa, 1) not in ACCEPT_ACK_CODES:
        hl7_code, app_code, err_text = outcome_error(message)
        raise MessageError(hl7_code, err_text or app_code or "slot query refused")
    slots = [_slot_from(sch, tq1, res, tz, fee_of) for sch, tq1, res in _schedules(message)]
    seen: set[str] = set()
    for slot in slots:
        if slot.his_slot_id in seen:
            raise MessageError(DUPLICATE_KEY, f"slot {slot.his_slot_id} listed twice")
        seen.add(slot.his_slot_id)
    return slots


def parse_siu(
    text: str,
    tz: dt.tzinfo,
    fee_of: Callable[[str], int] | None = None,
) -> SiuEvent:
    """A SIU^S12..S26 from the HIS; ``slot`` is filled when timing, AIS and AIP are present."""
    message = parse_message(
        text, tuple(f"SIU^S{n}" for n in (12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26))
    )
    trigger = get(message.segment("MSH"), 9, 1, 2)
    schedules = _schedules(message)
    if not schedules:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, "SCH segment missing")
    sch, tq1, resources = schedules[0]
    slot_id = required(get(sch, 5) or get(sch, 2), "SCH-5 schedule id (HIS slot id)")
    slot = None
    if fee_of is not None and "AIS" in resources and "AIP" in resources:
        slot = _slot_from(sch, tq1, resources, tz, fee_of)
    return SiuEvent(
        trigger=trigger,
        control_id=control_id_of(message),
        his_slot_id=slot_id,
        placer_appointment_id=get(sch, 1),
        filler_appointment_id=get(sch, 2),
        filler_status=get(sch, 25),
        slot=slot,
    )
