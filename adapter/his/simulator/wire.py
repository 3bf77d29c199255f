"""The HIS's side of the wire: what the simulated HIS reads from the adapter and answers.

The mirror of adapter.his.patients and adapter.his.schedule: QBP^Q22 in, RSP^K22 out; ADT^A28
in; SRM^S01/S04 in, SRR out; SQM^S25 in, SQR^S25 out; SIU^S12..S17 notifications out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from adapter.his.codes import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    ERROR_TEXTS,
    FIND_CANDIDATES,
    NOT_PROCESSED,
    SLOT_BLOCKED,
    SLOT_BOOKED,
    SLOT_CANCELLED,
    SLOT_DELETED,
    SLOT_OPEN,
    TABLE_VALUE_NOT_FOUND,
)
from adapter.his.header import Header, escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    Grp,
    MessageError,
    Seg,
    build_message,
    control_id_of,
    dtm,
    get,
    has,
    minutes_between,
    one,
    parse_date,
    parse_dtm,
    parse_message,
    patient_from_pid,
    person,
    pid_segment,
    repetition_count,
    required,
)
from adapter.ports import PatientIdentity, SlotRecord


@dataclass(frozen=True)
class SrmRequest:
    """What an SRM^S01 (book) or SRM^S04 (cancel) asks, as the HIS reads it."""

    trigger: str  # S01 | S04
    control_id: str
    placer_appointment_id: str  # ARQ-1
    filler_appointment_id: str  # ARQ-2 (S04)
    his_slot_id: str  # ARQ-5 schedule id
    his_patient_id: str = ""  # PID-3 (S01)
    department_code: str = ""  # AIL-5
    location: str = ""  # AIL-3.1
    doctor_code: str = ""  # AIP-3.1
    service_code: str = ""  # AIS-3.1
    start_at: dt.datetime | None = None  # ARQ-11.1
    end_at: dt.datetime | None = None  # ARQ-11.2


def _err(hl7_code: str, text: str, app_code: str = "") -> Seg:
    # ERR-3 (CWE, table 0357) and ERR-4 severity are required in v2.5 (section 2.15.5); the HIS's
    # own reason, when it has one, goes to ERR-5 (application error code), its text to ERR-8.
    fields: dict[int, str | list[str]] = {
        3: f"{hl7_code}^{escape(ERROR_TEXTS.get(hl7_code, ''))}^HL70357",
        4: "E",
    }
    if app_code:
        fields[5] = f"{escape(app_code)}^{escape(text)}^99HIS"
    if text:
        fields[8] = escape(text)
    return Seg("ERR", fields)


def _msa(code: str, request: Header, text: str = "") -> Seg:
    # MSA-2 echoes the request's MSH-10 (HL7 v2.5 section 2.9.2, original acknowledgment mode).
    fields: dict[int, str | list[str]] = {1: code, 2: request.control_id}
    if text:
        fields[3] = escape(text[:80])
    return Seg("MSA", fields)


def _reject_code(hl7_code: str) -> str:
    # AR for what the receiver does not process at all, AE for what it understood and refused.
    return "AR" if hl7_code in NOT_PROCESSED else "AE"


# --------------------------------------------------------------------------------------------
# Patient index: QBP^Q22 -> RSP^K22, ADT^A28


def parse_qbp_q22(text: str) -> tuple[str, str, str]:
    """(query_tag, hl7_id_type, document_number) of a Find Candidates query."""
    message = parse_message(text, ("QBP^Q22",))
    qpd = one(message, "QPD")
    if get(qpd, 1) != "Q22":
        raise MessageError(TABLE_VALUE_NOT_FOUND, "QPD-1 is not the Q22 Find Candidates query")
    query_tag = required(get(qpd, 2), "QPD-2 query tag")
    params: dict[str, str] = {}
    for rep in range(1, repetition_count(qpd, 3) + 1):
        params[get(qpd, 3, rep, 1)] = get(qpd, 3, rep, 2)
    number = required(params.get("@PID.3.1", ""), "QPD-3 @PID.3.1 document number")
    id_type = required(params.get("@PID.3.5", ""), "QPD-3 @PID.3.5 identifier type")
    return query_tag, id_type, number


def build_rsp_k22(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    request: Header,
    query_tag: str,
    patients: list[PatientIdentity],
    hl7_id_types: dict[str, str],
    error: MessageError | None = None,
) -> str:
    """The HIS's answer to QBP^Q22: QAK OK/NF and one PID (+QRI) per candidate, or AE + ERR."""
    body: list[Seg | Grp] = []
    if error is not None:
        body += [_msa(_reject_code(error.code), request, error.text), _err(error.code, error.text)]
        status = "AE" if _reject_code(error.code) == "AE" else "AR"
    else:
        body.append(_msa("AA", request))
        status = "OK" if patients else "NF"  # table 0208
    body.append(Seg("QAK", {1: escape(query_tag), 2: status}))
    body.append(Seg("QPD", {1: FIND_CANDIDATES, 2: escape(query_tag)}))
    for n, patient in enumerate(patients if error is None else [], start=1):
        pid = pid_segment(profile, patient, hl7_id_types[patient.document_type], n)
        # QRI-1 candidate confidence: an exact document match is certain.
        body.append(Grp("RSP_K21_QUERY_RESPONSE", [pid, Seg("QRI", {1: "1"})]))
    return build_message(profile, "RSP^K22^RSP_K21", control_id, now, body, to_his=False)


def parse_adt_a28(
    text: str, document_types_by_hl7: dict[str, str], *, his_identifier_type: str = "PI"
) -> PatientIdentity:
    """The person of an ADT^A28."""
    message = parse_message(text, ("ADT^A28",))
    return patient_from_pid(one(message, "PID"), document_types_by_hl7, his_identifier_type)


# --------------------------------------------------------------------------------------------
# Appointments: SRM^S01/S04 -> SRR


def parse_srm(text: str, tz: dt.tzinfo) -> SrmRequest:
    """Read an SRM^S01 (book) or SRM^S04 (cancel) as the HIS does."""
    message = parse_message(text, ("SRM^S01", "SRM^S04"))
    trigger = get(message.segment("MSH"), 9, 1, 2)
    arq = one(message, "ARQ")
    placer = required(get(arq, 1), "ARQ-1 placer appointment id")
    slot = required(get(arq, 5), "ARQ-5 schedule id (HIS slot id)")
    if trigger == "S04":
        return SrmRequest(
            trigger=trigger,
            control_id=control_id_of(message),
            placer_appointment_id=placer,
            filler_appointment_id=required(get(arq, 2), "ARQ-2 filler appointment id"),
            his_slot_id=slot,
        )
    pid = one(message, "PID")
    patient_id = required(get(pid, 3), "PID-3 HIS patient id")
    start_text = required(get(arq, 11, 1, 1), "ARQ-11.1 requested start")
    end_text = get(arq, 11, 1, 2)
    start = parse_dtm(start_text, "ARQ-11.1", tz)
    end = parse_dtm(end_text, "ARQ-11.2", tz) if end_text else None
    ais = one(message, "AIS")
    ail = one(message, "AIL") if has(message, "AIL") else None
    aip = one(message, "AIP")
    return SrmRequest(
        trigger=trigger,
        control_id=control_id_of(message),
        placer_appointment_id=placer,
        filler_appointment_id=get(arq, 2),
        his_slot_id=slot,
        his_patient_id=patient_id,
        department_code=get(ail, 5) if ail is not None else "",
        location=get(ail, 3) if ail is not None else "",
        doctor_code=required(get(aip, 3), "AIP-3 personnel resource id"),
        service_code=required(get(ais, 3), "AIS-3 universal service identifier"),
        start_at=start,
        end_at=end,
    )


def build_srr(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    request: Header,
    trigger: str,
    accepted: bool,
    placer_appointment_id: str,
    filler_appointment_id: str = "",
    error_code: str = "",
    error_text: str = "",
    his_slot_id: str = "",
) -> str:
    """The HIS's answer to SRM^S01/S04: AA with SCH (SCH-1 placer, SCH-2 filler), or AE/AR + ERR.

    ``error_code`` is either an HL7 table 0357 code or the HIS's own code (``SLOT_TAKEN``), which
    goes to ERR-5 with 207 in ERR-3.
    """
    if trigger not in ("S01", "S04"):
        raise ValueError("trigger must be S01 or S04")
    body: list[Seg | Grp] = []
    if accepted:
        body.append(_msa("AA", request))
        sch = Seg(
            "SCH",
            {
                1: f"{escape(placer_appointment_id)}^{escape(profile.sending_application)}",
                2: f"{escape(filler_appointment_id)}^{escape(profile.his_application)}",
                5: escape(his_slot_id),
                6: "NEW^New appointment" if trigger == "S01" else "CANCEL^Cancelled",
                16: person(profile, application=False),
                20: person(profile, application=False),
                25: SLOT_BOOKED if trigger == "S01" else SLOT_CANCELLED,
            },
        )
        body.append(Grp("SRR_S01_SCHEDULE", [
            sch, Grp("SRR_S01_RESOURCES", [Seg("RGS", {1: "1"})]),
        ]))
    else:
        code = error_code or APPLICATION_INTERNAL_ERROR
        is_table_code = code in ERROR_TEXTS or code.isdigit()
        hl7_code = code if is_table_code else APPLICATION_INTERNAL_ERROR
        body.append(_msa(_reject_code(hl7_code), request, error_text))
        body.append(_err(hl7_code, error_text, "" if is_table_code else code))
    return build_message(profile, f"SRR^{trigger}^SRR_S01", control_id, now, body, to_his=False)


# --------------------------------------------------------------------------------------------
# Slot pool: SQM^S25 -> SQR^S25, SIU notifications


def parse_sqm_s25(text: str) -> tuple[str, dt.date, dt.date]:
    """(query_tag, start, end) of a slot pool query."""
    message = parse_message(text, ("SQM^S25",))
    qrd, qrf = one(message, "QRD"), one(message, "QRF")
    tag = required(get(qrd, 4), "QRD-4 query id")
    start = parse_date(required(get(qrf, 2), "QRF-2 start date"), "QRF-2")
    end = parse_date(required(get(qrf, 3), "QRF-3 end date"), "QRF-3")
    if end < start:
        raise MessageError(DATA_TYPE_ERROR, "QRF-3 end date before QRF-2 start date")
    return tag, start, end


def _slot_group(
    prefix: str, profile: Hl7Profile, slot: SlotRecord, location: str, with_tq1: bool = True
) -> list[Seg | Grp]:
    start, end = dtm(slot.start_at), dtm(slot.end_at)
    minutes = minutes_between(slot.start_at, slot.end_at)
    if slot.status == "closed":
        status = SLOT_BLOCKED
    elif slot.available <= 0:
        status = SLOT_BOOKED
    else:
        status = SLOT_OPEN
    sch = Seg(
        "SCH",
        {
            2: f"{escape(slot.his_slot_id)}^{escape(profile.his_application)}",
            5: escape(slot.his_slot_id),
            6: "SLOT^Pool slot",
            9: minutes,
            10: "min",
            16: person(profile, application=False),
            20: person(profile, application=False),
            25: status,
        },
    )
    # TQ1-7/8 start and end (v2.5 replaces SCH-11 TQ with TQ1).
    items: list[Seg | Grp] = [sch]
    if with_tq1:
        items.append(Seg("TQ1", {1: "1", 7: start, 8: end}))
    service = Grp(f"{prefix}_SERVICE", [Seg("AIS", {
        1: "1", 3: escape(slot.service_code), 4: start, 7: minutes, 8: "min",
    })])
    personnel = Grp(f"{prefix}_PERSONNEL_RESOURCE", [Seg("AIP", {
        1: "1", 3: escape(slot.doctor_code), 4: "D^Doctor", 6: start, 9: minutes, 10: "min",
    })])
    location_group = Grp(f"{prefix}_LOCATION_RESOURCE", [Seg("AIL", {
        1: "1", 3: escape(location), 4: "C", 5: escape(slot.department_code), 6: start,
        9: minutes, 10: "min",
    })])
    # Segment order follows each v2.5 structure: SQR^S25 lists personnel before location,
    # SIU^S12..S26 location before personnel.
    resources = [service, personnel, location_group] if prefix == "SQR_S25" else [
        service, location_group, personnel]
    items.append(Grp(f"{prefix}_RESOURCES", [Seg("RGS", {1: "1"}), *resources]))
    return items


def build_sqr_s25(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    request: Header,
    query_tag: str,
    slots: list[SlotRecord],
    locations: dict[str, str] | None = None,
) -> str:
    """The HIS's pool: one SCH group per numbered slot (capacity 1; SCH-25 Open/Booked/Blocked).

    ``locations`` maps department code to the HIS point of care written in AIL-3.
    """
    locations = locations or {}
    body: list[Seg | Grp] = [
        _msa("AA", request),
        Seg("QAK", {1: escape(query_tag), 2: "OK" if slots else "NF"}),
    ]
    for slot in slots:
        body.append(Grp("SQR_S25_SCHEDULE", _slot_group(
            "SQR_S25", profile, slot, locations.get(slot.department_code, ""))))
    return build_message(
        profile, "SQR^S25^SQR_S25", control_id, now, body, to_his=False, sample_groups=3
    )


def build_siu(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    trigger: str,
    slot: SlotRecord,
    location: str = "",
) -> str:
    """A slot notification from the HIS: S12 new slot, S15/S17 slot cancelled/removed."""
    if trigger not in ("S12", "S13", "S14", "S15", "S17"):
        raise ValueError("trigger must be one of S12, S13, S14, S15, S17")
    if trigger in ("S15", "S17") and slot.status != "closed":
        slot = SlotRecord(**{**slot.__dict__, "status": "closed", "available": 0})
    prefix = f"SIU_{trigger}"
    body = _slot_group(prefix, profile, slot, location)
    if trigger == "S17":  # Deleted rather than Blocked
        body[0].fields[25] = SLOT_DELETED  # type: ignore[union-attr]
    return build_message(profile, f"SIU^{trigger}^{prefix}", control_id, now, body, to_his=False)
