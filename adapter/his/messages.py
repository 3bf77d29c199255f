"""The registration flow's HL7 v2.5 messages: built with hl7apy, read with python-hl7.

Builders assemble each message through hl7apy's v2.5 structures at validation level STRICT and
call ``validate()`` before encoding, so every message we send is structurally valid v2.5 (required
segments, fields and data types, cardinality). Parsers run on the receiving side and the hot
path, where hl7apy costs about 17 ms a message: they use ``hl7.parse`` (tolerant) and then check
what the business needs, raising :class:`MessageError` with an HL7 table 0357 code.

docs/hl7-profile.md is the field-by-field description of every message here.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Field, Message
from hl7apy.exceptions import HL7apyException

from adapter.his.codes import (
    ACCEPT_ACK_CODES,
    APPLICATION_INTERNAL_ERROR,
    CLOSED_STATUSES,
    DATA_TYPE_ERROR,
    DUPLICATE_KEY,
    ERROR_TEXTS,
    FIND_CANDIDATES,
    NOT_PROCESSED,
    REFUSAL_ACK_CODES,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    SLOT_BLOCKED,
    SLOT_BOOKED,
    SLOT_CANCELLED,
    SLOT_DELETED,
    SLOT_OPEN,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
)
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.ports import AppointmentRequest, HisOutcome, PatientIdentity, SlotRecord

if TYPE_CHECKING:
    from adapter.his.header import Header

logger = logging.getLogger(__name__)

_V = "2.5"
_STRICT = VALIDATION_LEVEL.STRICT


class MessageError(Exception):
    """A message we cannot use; ``code`` is its HL7 table 0357 code, ``text`` says what."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


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
# Building


@dataclass
class _Seg:
    name: str
    fields: dict[int, str | list[str]] = field(default_factory=dict)


@dataclass
class _Grp:
    name: str
    children: list[_Seg | _Grp]


def dtm(value: dt.datetime) -> str:
    """HL7 DTM with seconds and UTC offset, e.g. ``20250301080000+0800``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("HL7 times are written with their offset: pass an aware datetime")
    return value.strftime("%Y%m%d%H%M%S%z")


def _xpn(name: str) -> str:
    # XPN: a Chinese name is one string, so all of it goes in 5.1 (family name), name type "L"
    # (legal) in 5.7; there is no given-name split to make.
    return f"{escape(name)}^^^^^^L"


def _cx(value: str, authority: str, id_type: str) -> str:
    return f"{escape(value)}^^^{escape(authority)}^{escape(id_type)}"


def _xtn(phone: str) -> str:
    # XTN-1 for the many HIS that only read the first component, XTN-12 (unformatted number)
    # as v2.5 prefers; PRN primary residence number, CP cellular phone (tables 0201, 0202).
    p = escape(phone)
    return f"{p}^PRN^CP^^^^^^^^^{p}" if phone else ""


def _set_fields(segment: object, seg: _Seg) -> None:
    for index in sorted(seg.fields):
        value = seg.fields[index]
        repetitions = value if isinstance(value, list) else [value]
        for repetition in repetitions:
            if repetition == "":
                continue
            hl7_field = Field(f"{seg.name}_{index}", version=_V, validation_level=_STRICT)
            hl7_field.value = repetition  # ER7 text, already escaped: hl7apy parses components
            segment.add(hl7_field)  # type: ignore[attr-defined]


def _add_children(parent: object, children: list[_Seg | _Grp]) -> None:
    for child in children:
        if isinstance(child, _Grp):
            group = parent.add_group(child.name)  # type: ignore[attr-defined]
            _add_children(group, child.children)
        else:
            segment = parent.add_segment(child.name)  # type: ignore[attr-defined]
            _set_fields(segment, child)


def _segment_text(seg: _Seg) -> str:
    values = {i: v for i, v in seg.fields.items() if v not in ("", [])}
    last = max(values, default=0)
    parts = [seg.name]
    for index in range(1, last + 1):
        value = values.get(index, "")
        parts.append("~".join(r for r in value) if isinstance(value, list) else value)
    return "|".join(parts)


def _serialize(children: list[_Seg | _Grp], out: list[str]) -> list[str]:
    for child in children:
        if isinstance(child, _Grp):
            _serialize(child.children, out)
        else:
            out.append(_segment_text(child))
    return out


def _validated(msh: _Seg, body: list[_Seg | _Grp]) -> Message:
    """The message as an hl7apy v2.5 tree, validated (STRICT): required parts, types, counts."""
    structure = str(msh.fields[9]).split("^")[2]
    msg = Message(structure, version=_V, validation_level=_STRICT)
    for index, value in msh.fields.items():
        if value:
            setattr(msg.msh, f"msh_{index}", value)  # MSH exists already: assign, not add
    _add_children(msg, body)
    msg.validate()
    return msg


def _build(
    profile: Hl7Profile,
    message_type: str,
    control_id: str,
    now: dt.datetime,
    body: list[_Seg | _Grp],
    *,
    to_his: bool = True,
    sample_groups: int = 0,
) -> str:
    """Build, validate with hl7apy and encode one message, segments separated by CR.

    The text is written from the same segment list hl7apy validated (tests check both encode
    alike). With ``sample_groups``, only that many repeated groups are put through hl7apy: they
    are all made by one function, and hl7apy needs about 8 ms per slot group (4 s for 500).
    """
    sender = (profile.sending_application, profile.sending_facility)
    receiver = (profile.his_application, profile.his_facility)
    if not to_his:  # the HIS (simulator) answering
        sender, receiver = receiver, sender
    msh = _Seg(
        "MSH",
        {
            3: escape(sender[0]),
            4: escape(sender[1]),
            5: escape(receiver[0]),
            6: escape(receiver[1]),
            7: dtm(now),
            9: message_type,
            10: escape(control_id),
            11: profile.processing_id,
            12: profile.version,
            18: escape(profile.charset) if profile.charset else "",
        },
    )
    sample = body
    if sample_groups:
        groups = [c for c in body if isinstance(c, _Grp)]
        keep = {id(g) for g in groups[:sample_groups]}
        sample = [c for c in body if not isinstance(c, _Grp) or id(c) in keep]
    try:
        _validated(msh, sample)
    except (HL7apyException, ValueError) as exc:
        # A value that does not fit its v2.5 data type is our bug or bad input; say which.
        raise MessageError(
            APPLICATION_INTERNAL_ERROR, f"cannot build {message_type}: {exc}"
        ) from exc
    header = "MSH|^~\\&|" + _segment_text(msh)[len("MSH|||"):]
    return "\r".join([header] + _serialize(body, []))


def _person(profile: Hl7Profile, *, application: bool = True) -> str:
    # XCN for the required ARQ-15/ARQ-19/SCH-16/SCH-20: the system, not a person, acts here.
    name = profile.sending_application if application else profile.his_application
    return f"{escape(name)}^{escape(name)}"


def _pid(
    profile: Hl7Profile, patient: PatientIdentity, hl7_id_type: str, set_id: int = 1
) -> _Seg:
    ids: list[str] = []
    if patient.his_patient_id:
        authority, id_type = profile.his_assigning_authority, profile.his_identifier_type
        ids.append(_cx(patient.his_patient_id, authority, id_type))
    ids.append(_cx(patient.document_number, "", hl7_id_type))
    return _Seg(
        "PID",
        {
            1: str(set_id),
            3: ids,
            5: _xpn(patient.name),
            7: patient.birth_date.strftime("%Y%m%d"),
            8: escape(patient.sex),
            13: _xtn(patient.phone),
        },
    )


def _err(hl7_code: str, text: str, app_code: str = "") -> _Seg:
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
    return _Seg("ERR", fields)


def _msa(code: str, request: Header, text: str = "") -> _Seg:
    # MSA-2 echoes the request's MSH-10 (HL7 v2.5 section 2.9.2, original acknowledgment mode).
    fields: dict[int, str | list[str]] = {1: code, 2: request.control_id}
    if text:
        fields[3] = escape(text[:80])
    return _Seg("MSA", fields)


def _reject_code(hl7_code: str) -> str:
    return "AR" if hl7_code in NOT_PROCESSED else "AE"


# --------------------------------------------------------------------------------------------
# Parsing helpers (python-hl7)


def _parse(text: str, expected: tuple[str, ...]) -> hl7.Message:
    """Parse with python-hl7 and check MSH-9 is one of ``expected`` (``"SRM^S01"``...)."""
    if not isinstance(text, str) or not text.lstrip().startswith("MSH"):
        raise MessageError(SEGMENT_SEQUENCE_ERROR, "message does not start with MSH")
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r").strip())
        msh = message.segment("MSH")
        code = msh.extract_field(1, 9, 1, 1, 1)
        event = msh.extract_field(1, 9, 1, 2, 1)
    except (hl7.ParseException, IndexError, KeyError, ValueError) as exc:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, f"unreadable message: {exc}") from exc
    if not code:
        raise MessageError(REQUIRED_FIELD_MISSING, "MSH-9 message type missing")
    codes = {e.split("^")[0] for e in expected}
    if code not in codes:
        raise MessageError(UNSUPPORTED_MESSAGE_TYPE, f"message type {code} not expected here")
    if f"{code}^{event}" not in expected:
        raise MessageError(UNSUPPORTED_EVENT_CODE, f"event {code}^{event} not expected here")
    return message


def _get(segment: hl7.Segment, field_num: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One value, unescaped; empty when absent."""
    try:
        return segment.extract_field(1, field_num, rep, comp, sub).strip()
    except IndexError:
        return ""


def _reps(segment: hl7.Segment, field_num: int) -> int:
    if field_num >= len(segment):
        return 0
    value = segment(field_num)
    if value and isinstance(value[0], hl7.Repetition):
        return len(value)
    return 1 if str(value) else 0


def _one(message: hl7.Message, name: str) -> hl7.Segment:
    try:
        return message.segment(name)
    except KeyError as exc:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, f"{name} segment missing") from exc


def _control_id(message: hl7.Message) -> str:
    return _get(message.segment("MSH"), 10)


def _required(value: str, where: str) -> str:
    if not value:
        raise MessageError(REQUIRED_FIELD_MISSING, f"{where} missing")
    return value


_DTM_RE = re.compile(r"^(\d{8})(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


def parse_dtm(value: str, where: str, tz: dt.tzinfo) -> dt.datetime:
    """HL7 DTM (at least minutes) to an aware datetime; no offset means the hospital's zone."""
    match = _DTM_RE.match(value)
    if not match or match.group(2) is None or match.group(3) is None:
        raise MessageError(DATA_TYPE_ERROR, f"{where} is not an HL7 date/time with minutes")
    day, hour, minute, second, offset = match.groups()
    try:
        naive = dt.datetime.strptime(
            f"{day}{hour}{minute}{second or '00'}", "%Y%m%d%H%M%S"
        )
    except ValueError as exc:
        raise MessageError(DATA_TYPE_ERROR, f"{where} is not a valid date/time") from exc
    if offset is None:
        return naive.replace(tzinfo=tz)
    sign = 1 if offset[0] == "+" else -1
    delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return naive.replace(tzinfo=dt.timezone(sign * delta))


def _parse_date(value: str, where: str) -> dt.date:
    try:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError as exc:
        raise MessageError(DATA_TYPE_ERROR, f"{where} is not an HL7 date") from exc


def _outcome_error(message: hl7.Message) -> tuple[str, str, str]:
    """(HL7 0357 code, HIS application code, text) of a refusal."""
    msa = _one(message, "MSA")
    hl7_code, app_code, text = "", "", _get(msa, 3)
    for err in message.segments("ERR") if _has(message, "ERR") else []:
        hl7_code = hl7_code or _get(err, 3)
        app_code = app_code or _get(err, 5)
        text = _get(err, 8) or _get(err, 5, 1, 2) or _get(err, 3, 1, 2) or text
        break
    return hl7_code or APPLICATION_INTERNAL_ERROR, app_code, text


def refusal_of(text: str) -> tuple[str, str, str]:
    """(HL7 0357 code, HIS application code from ERR-5, text) of any acknowledgment."""
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r").strip())
    except (hl7.ParseException, IndexError, KeyError, ValueError) as exc:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, f"unreadable message: {exc}") from exc
    return _outcome_error(message)


def _has(message: hl7.Message, name: str) -> bool:
    return any(str(seg[0]) == name for seg in message)


def _patient_from_pid(
    pid: hl7.Segment,
    document_types_by_hl7: dict[str, str],
    his_identifier_type: str,
    his_assigning_authority: str = "",
) -> PatientIdentity:
    his_id, doc_type, doc_number = "", "", ""
    for rep in range(1, _reps(pid, 3) + 1):
        value, authority, id_type = _get(pid, 3, rep, 1), _get(pid, 3, rep, 4), _get(pid, 3, rep, 5)
        if not value:
            continue
        if id_type == his_identifier_type and (
            not his_assigning_authority or authority == his_assigning_authority
        ):
            his_id = his_id or value
        elif id_type in document_types_by_hl7 and not doc_number:
            doc_type, doc_number = document_types_by_hl7[id_type], value
    if not doc_number:
        raise MessageError(
            TABLE_VALUE_NOT_FOUND, "PID-3 has no identifier of a known document type"
        )
    name = _required(_get(pid, 5), "PID-5 patient name")
    birth = _parse_date(_required(_get(pid, 7), "PID-7 date of birth"), "PID-7")
    sex = _get(pid, 8) or "U"
    if sex not in ("F", "M", "U", "O", "A", "N"):  # HL7 table 0001
        raise MessageError(TABLE_VALUE_NOT_FOUND, "PID-8 sex not in table 0001")
    phone = _get(pid, 13, 1, 12) or _get(pid, 13, 1, 1)
    return PatientIdentity(
        name=name,
        sex=sex,
        birth_date=birth,
        document_type=doc_type,
        document_number=doc_number,
        phone=phone,
        his_patient_id=his_id,
    )


# --------------------------------------------------------------------------------------------
# Patient lookup: QBP^Q22 / RSP^K22 (HL7 v2.5 chapter 3, "Find Candidates")


def build_qbp_q22(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    query_tag: str,
    hl7_id_type: str,
    document_number: str,
) -> str:
    """Ask the HIS for patients holding a document (QPD-3 @PID.3.1 and @PID.3.5 parameters)."""
    number_param = f"@PID.3.1^{escape(document_number)}"
    type_param = f"@PID.3.5^{escape(hl7_id_type)}"
    text = _build(
        profile,
        "QBP^Q22^QBP_Q21",
        control_id,
        now,
        [
            _Seg("QPD", {1: FIND_CANDIDATES, 2: escape(query_tag), 3: number_param}),
            _Seg("RCP", {1: "I"}),  # I immediate (table 0091)
        ],
    )
    # The Q22 conformance statement makes QPD-3 a repeating QIP; hl7apy's generic QPD defines
    # QPD-3 as one "varies" field, so the structure is validated with the first parameter and
    # the second repetition is added here.
    qpd = f"\rQPD|{FIND_CANDIDATES}|{escape(query_tag)}|{number_param}"
    assert qpd in text
    return text.replace(qpd, f"{qpd}~{type_param}", 1)


def parse_qbp_q22(text: str) -> tuple[str, str, str]:
    """(query_tag, hl7_id_type, document_number) of a Find Candidates query."""
    message = _parse(text, ("QBP^Q22",))
    qpd = _one(message, "QPD")
    if _get(qpd, 1) != "Q22":
        raise MessageError(TABLE_VALUE_NOT_FOUND, "QPD-1 is not the Q22 Find Candidates query")
    query_tag = _required(_get(qpd, 2), "QPD-2 query tag")
    params: dict[str, str] = {}
    for rep in range(1, _reps(qpd, 3) + 1):
        params[_get(qpd, 3, rep, 1)] = _get(qpd, 3, rep, 2)
    number = _required(params.get("@PID.3.1", ""), "QPD-3 @PID.3.1 document number")
    id_type = _required(params.get("@PID.3.5", ""), "QPD-3 @PID.3.5 identifier type")
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
    body: list[_Seg | _Grp] = []
    if error is not None:
        body += [_msa(_reject_code(error.code), request, error.text), _err(error.code, error.text)]
        status = "AE" if _reject_code(error.code) == "AE" else "AR"
    else:
        body.append(_msa("AA", request))
        status = "OK" if patients else "NF"  # table 0208
    body.append(_Seg("QAK", {1: escape(query_tag), 2: status}))
    body.append(_Seg("QPD", {1: FIND_CANDIDATES, 2: escape(query_tag)}))
    for n, patient in enumerate(patients if error is None else [], start=1):
        pid = _pid(profile, patient, hl7_id_types[patient.document_type], n)
        # QRI-1 candidate confidence: an exact document match is certain.
        body.append(_Grp("RSP_K21_QUERY_RESPONSE", [pid, _Seg("QRI", {1: "1"})]))
    return _build(profile, "RSP^K22^RSP_K21", control_id, now, body, to_his=False)


def parse_rsp_k22(
    text: str, document_types_by_hl7: dict[str, str], profile: Hl7Profile
) -> list[PatientIdentity]:
    """The candidates of an RSP^K22 (empty for NF); MessageError when the HIS refused."""
    message = _parse(text, ("RSP^K22", "ACK^Q22"))  # ACK: refused before answering
    msa = _one(message, "MSA")
    if _get(msa, 1) not in ACCEPT_ACK_CODES:
        hl7_code, app_code, err_text = _outcome_error(message)
        raise MessageError(hl7_code, err_text or app_code or "query refused")
    qak = _one(message, "QAK")
    if _get(qak, 2) == "NF":
        return []
    return [
        _patient_from_pid(
            pid,
            document_types_by_hl7,
            profile.his_identifier_type,
            profile.his_assigning_authority,
        )
        for pid in (message.segments("PID") if _has(message, "PID") else [])
    ]


# --------------------------------------------------------------------------------------------
# Add person: ADT^A28 (chapter 3)


def build_adt_a28(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    patient: PatientIdentity,
    hl7_id_type: str,
) -> str:
    """Add a person to the HIS patient index (EVN, PID, PV1-2 N: no visit)."""
    return _build(
        profile,
        "ADT^A28^ADT_A05",
        control_id,
        now,
        [
            _Seg("EVN", {1: "A28", 2: dtm(now)}),
            _pid(profile, patient, hl7_id_type),
            _Seg("PV1", {1: "1", 2: "N"}),  # N not applicable (table 0004)
        ],
    )


def parse_adt_a28(
    text: str, document_types_by_hl7: dict[str, str], *, his_identifier_type: str = "PI"
) -> PatientIdentity:
    """The person of an ADT^A28."""
    message = _parse(text, ("ADT^A28",))
    return _patient_from_pid(_one(message, "PID"), document_types_by_hl7, his_identifier_type)


# --------------------------------------------------------------------------------------------
# Booking and cancellation: SRM^S01, SRM^S04 / SRR, SIU^S15 (chapter 10)


def _minutes(start: dt.datetime, end: dt.datetime) -> str:
    return str(max(int((end - start).total_seconds() // 60), 0))


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
    minutes = _minutes(request.start_at, request.end_at)
    arq = _Seg(
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
            15: _person(profile),
            19: _person(profile),
        },
    )
    pid = _Seg(
        "PID",
        {
            1: "1",
            3: _cx(request.his_patient_id, profile.his_assigning_authority,
                   profile.his_identifier_type),
            # PID-5 is required in v2.5; the HIS knows the person by PID-3, so no name is sent.
            5: "^^^^^^U",
        },
    )
    return _build(
        profile,
        "SRM^S01^SRM_S01",
        control_id,
        now,
        [arq, _Grp("SRM_S01_PATIENT", [pid]), _resources("SRM_S01", request, his_location)],
    )


def _resources(prefix: str, request: AppointmentRequest, his_location: str) -> _Grp:
    start, minutes = dtm(request.start_at), _minutes(request.start_at, request.end_at)
    return _Grp(
        f"{prefix}_RESOURCES",
        [
            _Seg("RGS", {1: "1", 2: "A"}),
            _Grp(f"{prefix}_SERVICE", [_Seg("AIS", {
                1: "1", 3: escape(request.service_code), 4: start, 7: minutes, 8: "min",
            })]),
            _Grp(f"{prefix}_LOCATION_RESOURCE", [_Seg("AIL", {
                1: "1", 3: escape(his_location), 4: "C", 5: escape(request.department_code),
                6: start, 9: minutes, 10: "min",
            })]),
            _Grp(f"{prefix}_PERSONNEL_RESOURCE", [_Seg("AIP", {
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
    arq = _Seg(
        "ARQ",
        {
            1: f"{escape(placer_appointment_id)}^{escape(profile.sending_application)}",
            2: f"{escape(filler_appointment_id)}^{escape(profile.his_application)}",
            5: escape(his_slot_id),
            6: "CANCEL^Cancelled by patient",
            15: _person(profile),
            19: _person(profile),
        },
    )
    return _build(
        profile,
        "SRM^S04^SRM_S01",
        control_id,
        now,
        [arq, _Grp("SRM_S01_RESOURCES", [_Seg("RGS", {1: "1", 2: "D"})])],
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
    sch = _Seg(
        "SCH",
        {
            1: f"{escape(placer_appointment_id)}^{escape(profile.sending_application)}",
            2: f"{escape(filler_appointment_id)}^{escape(profile.his_application)}",
            5: escape(his_slot_id),
            6: "CANCEL^Cancelled by patient",
            16: _person(profile),
            20: _person(profile),
            25: SLOT_CANCELLED,
        },
    )
    return _build(
        profile,
        "SIU^S15^SIU_S15",
        control_id,
        now,
        [sch, _Grp("SIU_S15_RESOURCES", [_Seg("RGS", {1: "1", 2: "D"})])],
    )


def parse_srm(text: str, tz: dt.tzinfo) -> SrmRequest:
    """Read an SRM^S01 (book) or SRM^S04 (cancel) as the HIS does."""
    message = _parse(text, ("SRM^S01", "SRM^S04"))
    trigger = _get(message.segment("MSH"), 9, 1, 2)
    arq = _one(message, "ARQ")
    placer = _required(_get(arq, 1), "ARQ-1 placer appointment id")
    slot = _required(_get(arq, 5), "ARQ-5 schedule id (HIS slot id)")
    if trigger == "S04":
        return SrmRequest(
            trigger=trigger,
            control_id=_control_id(message),
            placer_appointment_id=placer,
            filler_appointment_id=_required(_get(arq, 2), "ARQ-2 filler appointment id"),
            his_slot_id=slot,
        )
    pid = _one(message, "PID")
    patient_id = _required(_get(pid, 3), "PID-3 HIS patient id")
    start_text = _required(_get(arq, 11, 1, 1), "ARQ-11.1 requested start")
    end_text = _get(arq, 11, 1, 2)
    start = parse_dtm(start_text, "ARQ-11.1", tz)
    end = parse_dtm(end_text, "ARQ-11.2", tz) if end_text else None
    ais = _one(message, "AIS")
    ail = _one(message, "AIL") if _has(message, "AIL") else None
    aip = _one(message, "AIP")
    return SrmRequest(
        trigger=trigger,
        control_id=_control_id(message),
        placer_appointment_id=placer,
        filler_appointment_id=_get(arq, 2),
        his_slot_id=slot,
        his_patient_id=patient_id,
        department_code=_get(ail, 5) if ail is not None else "",
        location=_get(ail, 3) if ail is not None else "",
        doctor_code=_required(_get(aip, 3), "AIP-3 personnel resource id"),
        service_code=_required(_get(ais, 3), "AIS-3 universal service identifier"),
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
    body: list[_Seg | _Grp] = []
    if accepted:
        body.append(_msa("AA", request))
        sch = _Seg(
            "SCH",
            {
                1: f"{escape(placer_appointment_id)}^{escape(profile.sending_application)}",
                2: f"{escape(filler_appointment_id)}^{escape(profile.his_application)}",
                5: escape(his_slot_id),
                6: "NEW^New appointment" if trigger == "S01" else "CANCEL^Cancelled",
                16: _person(profile, application=False),
                20: _person(profile, application=False),
                25: SLOT_BOOKED if trigger == "S01" else SLOT_CANCELLED,
            },
        )
        body.append(_Grp("SRR_S01_SCHEDULE", [
            sch, _Grp("SRR_S01_RESOURCES", [_Seg("RGS", {1: "1"})]),
        ]))
    else:
        code = error_code or APPLICATION_INTERNAL_ERROR
        is_table_code = code in ERROR_TEXTS or code.isdigit()
        hl7_code = code if is_table_code else APPLICATION_INTERNAL_ERROR
        body.append(_msa(_reject_code(hl7_code), request, error_text))
        body.append(_err(hl7_code, error_text, "" if is_table_code else code))
    return _build(profile, f"SRR^{trigger}^SRR_S01", control_id, now, body, to_his=False)


def parse_srr(text: str, expected_control_id: str) -> HisOutcome:
    """The outcome of our SRM: accepted with SCH-2, or refused with ERR-5 (else ERR-3) code."""
    # A HIS that cannot process an SRM at all may answer a plain ACK (AE/AR + ERR): read it alike.
    message = _parse(text, ("SRR^S01", "SRR^S04", "ACK^S01", "ACK^S04"))
    msa = _one(message, "MSA")
    acked = _get(msa, 2)
    if acked != expected_control_id:
        raise MessageError(UNKNOWN_KEY, "MSA-2 does not acknowledge the message sent")
    ack_code = _get(msa, 1)
    if ack_code in ACCEPT_ACK_CODES:
        filler = ""
        if _has(message, "SCH"):
            filler = _get(message.segment("SCH"), 2)
        if _get(message.segment("MSH"), 9, 1, 2) == "S01":
            _required(filler, "SCH-2 filler appointment id")
        return HisOutcome(accepted=True, filler_appointment_id=filler,
                          details={"ack_code": ack_code})
    if ack_code not in REFUSAL_ACK_CODES:
        raise MessageError(TABLE_VALUE_NOT_FOUND, "MSA-1 not in table 0008")
    hl7_code, app_code, err_text = _outcome_error(message)
    return HisOutcome(
        accepted=False,
        error_code=app_code or hl7_code,
        error_text=err_text,
        details={"ack_code": ack_code, "hl7_error_code": hl7_code},
    )


# --------------------------------------------------------------------------------------------
# Slot pool: SQM^S25 / SQR^S25 pull, SIU^S12/S15/S17 push (chapter 10)


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
    return _build(
        profile,
        "SQM^S25^SQM_S25",
        control_id,
        now,
        [
            _Seg("QRD", {
                1: dtm(now), 2: "R", 3: "I", 4: escape(query_tag), 7: "9999^RD",
                8: "ALL", 9: "SSA^Schedule slots^HL70048", 10: "ALL",
            }),
            # QRF-1 names the channel whose pool is asked for; QRF-2/3 the visit dates.
            _Seg("QRF", {
                1: escape(profile.sending_facility),
                2: start.strftime("%Y%m%d"),
                3: end.strftime("%Y%m%d"),
            }),
        ],
    )


def parse_sqm_s25(text: str) -> tuple[str, dt.date, dt.date]:
    """(query_tag, start, end) of a slot pool query."""
    message = _parse(text, ("SQM^S25",))
    qrd, qrf = _one(message, "QRD"), _one(message, "QRF")
    tag = _required(_get(qrd, 4), "QRD-4 query id")
    start = _parse_date(_required(_get(qrf, 2), "QRF-2 start date"), "QRF-2")
    end = _parse_date(_required(_get(qrf, 3), "QRF-3 end date"), "QRF-3")
    if end < start:
        raise MessageError(DATA_TYPE_ERROR, "QRF-3 end date before QRF-2 start date")
    return tag, start, end


def _slot_group(
    prefix: str, profile: Hl7Profile, slot: SlotRecord, location: str, with_tq1: bool = True
) -> list[_Seg | _Grp]:
    start, end = dtm(slot.start_at), dtm(slot.end_at)
    minutes = _minutes(slot.start_at, slot.end_at)
    if slot.status == "closed":
        status = SLOT_BLOCKED
    elif slot.available <= 0:
        status = SLOT_BOOKED
    else:
        status = SLOT_OPEN
    sch = _Seg(
        "SCH",
        {
            2: f"{escape(slot.his_slot_id)}^{escape(profile.his_application)}",
            5: escape(slot.his_slot_id),
            6: "SLOT^Pool slot",
            9: minutes,
            10: "min",
            16: _person(profile, application=False),
            20: _person(profile, application=False),
            25: status,
        },
    )
    # TQ1-7/8 start and end (v2.5 replaces SCH-11 TQ with TQ1).
    items: list[_Seg | _Grp] = [sch]
    if with_tq1:
        items.append(_Seg("TQ1", {1: "1", 7: start, 8: end}))
    service = _Grp(f"{prefix}_SERVICE", [_Seg("AIS", {
        1: "1", 3: escape(slot.service_code), 4: start, 7: minutes, 8: "min",
    })])
    personnel = _Grp(f"{prefix}_PERSONNEL_RESOURCE", [_Seg("AIP", {
        1: "1", 3: escape(slot.doctor_code), 4: "D^Doctor", 6: start, 9: minutes, 10: "min",
    })])
    location_group = _Grp(f"{prefix}_LOCATION_RESOURCE", [_Seg("AIL", {
        1: "1", 3: escape(location), 4: "C", 5: escape(slot.department_code), 6: start,
        9: minutes, 10: "min",
    })])
    # Segment order follows each v2.5 structure: SQR^S25 lists personnel before location,
    # SIU^S12..S26 location before personnel.
    resources = [service, personnel, location_group] if prefix == "SQR_S25" else [
        service, location_group, personnel]
    items.append(_Grp(f"{prefix}_RESOURCES", [_Seg("RGS", {1: "1"}), *resources]))
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
    body: list[_Seg | _Grp] = [
        _msa("AA", request),
        _Seg("QAK", {1: escape(query_tag), 2: "OK" if slots else "NF"}),
    ]
    for slot in slots:
        body.append(_Grp("SQR_S25_SCHEDULE", _slot_group(
            "SQR_S25", profile, slot, locations.get(slot.department_code, ""))))
    return _build(
        profile, "SQR^S25^SQR_S25", control_id, now, body, to_his=False, sample_groups=3
    )


def _slot_from(
    sch: hl7.Segment,
    tq1: hl7.Segment | None,
    resources: dict[str, hl7.Segment],
    tz: dt.tzinfo,
    fee_of: Callable[[str], int],
) -> SlotRecord:
    slot_id = _get(sch, 5) or _get(sch, 2)
    _required(slot_id, "SCH-5 schedule id (HIS slot id)")
    ais, aip, ail = resources.get("AIS"), resources.get("AIP"), resources.get("AIL")
    if ais is None or aip is None:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, f"slot {slot_id}: AIS and AIP required")
    service = _required(_get(ais, 3), "AIS-3 service")
    start_text = (_get(tq1, 7) if tq1 is not None else "") or _get(ais, 4)
    start = parse_dtm(_required(start_text, "TQ1-7 start"), "TQ1-7", tz)
    end_text = _get(tq1, 8) if tq1 is not None else ""
    if end_text:
        end = parse_dtm(end_text, "TQ1-8", tz)
    else:
        minutes = _get(sch, 9) or _get(ais, 7)
        if not minutes.isdigit():
            raise MessageError(REQUIRED_FIELD_MISSING, "TQ1-8 end or SCH-9 duration missing")
        end = start + dt.timedelta(minutes=int(minutes))
    status_code = _get(sch, 25).lower()
    closed = status_code in CLOSED_STATUSES
    available = 0 if closed or status_code == "booked" else 1
    try:
        fee = fee_of(service)
    except KeyError as exc:
        raise MessageError(TABLE_VALUE_NOT_FOUND, f"AIS-3 service {service} has no fee") from exc
    return SlotRecord(
        his_slot_id=slot_id,
        department_code=_get(ail, 5) if ail is not None else "",
        doctor_code=_required(_get(aip, 3), "AIP-3 doctor"),
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
    message = _parse(text, ("SQR^S25", "ACK^S25"))  # ACK: refused before answering
    msa = _one(message, "MSA")
    if _get(msa, 1) not in ACCEPT_ACK_CODES:
        hl7_code, app_code, err_text = _outcome_error(message)
        raise MessageError(hl7_code, err_text or app_code or "slot query refused")
    slots = [_slot_from(sch, tq1, res, tz, fee_of) for sch, tq1, res in _schedules(message)]
    seen: set[str] = set()
    for slot in slots:
        if slot.his_slot_id in seen:
            raise MessageError(DUPLICATE_KEY, f"slot {slot.his_slot_id} listed twice")
        seen.add(slot.his_slot_id)
    return slots


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
    return _build(profile, f"SIU^{trigger}^{prefix}", control_id, now, body, to_his=False)


def parse_siu(
    text: str,
    tz: dt.tzinfo,
    fee_of: Callable[[str], int] | None = None,
) -> SiuEvent:
    """A SIU^S12..S26 from the HIS; ``slot`` is filled when timing, AIS and AIP are present."""
    message = _parse(
        text, tuple(f"SIU^S{n}" for n in (12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26))
    )
    trigger = _get(message.segment("MSH"), 9, 1, 2)
    schedules = _schedules(message)
    if not schedules:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, "SCH segment missing")
    sch, tq1, resources = schedules[0]
    slot_id = _required(_get(sch, 5) or _get(sch, 2), "SCH-5 schedule id (HIS slot id)")
    slot = None
    if fee_of is not None and "AIS" in resources and "AIP" in resources:
        slot = _slot_from(sch, tq1, resources, tz, fee_of)
    return SiuEvent(
        trigger=trigger,
        control_id=_control_id(message),
        his_slot_id=slot_id,
        placer_appointment_id=_get(sch, 1),
        filler_appointment_id=_get(sch, 2),
        filler_status=_get(sch, 25),
        slot=slot,
    )

