"""What every HL7 v2.5 message of the HIS link is made of: built with hl7apy, read with python-hl7.

Builders assemble each message through hl7apy's v2.5 structures at validation level STRICT and
call ``validate()`` before encoding, so every message sent is structurally valid v2.5 (required
segments, fields and data types, cardinality). Parsers run on the receiving side and the hot
path, where hl7apy costs about 17 ms a message: they use ``hl7.parse`` (tolerant) and then check
what the business needs, raising :class:`MessageError` with an HL7 table 0357 code.

The message families are built and read in adapter.his.patients and adapter.his.schedule (the
adapter's side) and adapter.his.simulator.wire (the HIS's side); docs/hl7-profile.md describes
every message field by field.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Field, Message, Segment
from hl7apy.exceptions import HL7apyException

from adapter.his.codes import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
)
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.ports import PatientIdentity

_V = "2.5"
_STRICT = VALIDATION_LEVEL.STRICT


class MessageError(Exception):
    """A message we cannot use; ``code`` is its HL7 table 0357 code, ``text`` says what."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


# --------------------------------------------------------------------------------------------
# Building (hl7apy validates)


@dataclass
class Seg:
    """One segment to build: its name and field number -> ER7 text (already escaped)."""

    name: str
    fields: dict[int, str | list[str]] = field(default_factory=dict)


@dataclass
class Grp:
    """A group of an hl7apy message structure (``SRR_S01_SCHEDULE``...), for validation."""

    name: str
    children: list[Seg | Grp]


def dtm(value: dt.datetime) -> str:
    """HL7 DTM with seconds and UTC offset, e.g. ``20250301080000+0800``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("HL7 times are written with their offset: pass an aware datetime")
    return value.strftime("%Y%m%d%H%M%S%z")


def xpn(name: str) -> str:
    """XPN (person name) of a patient."""
    # XPN: a Chinese name is one string, so all of it goes in 5.1 (family name), name type "L"
    # (legal) in 5.7; there is no given-name split to make.
    return f"{escape(name)}^^^^^^L"


def cx(value: str, authority: str, id_type: str) -> str:
    """CX (identifier with assigning authority and identifier type)."""
    return f"{escape(value)}^^^{escape(authority)}^{escape(id_type)}"


def xtn(phone: str) -> str:
    """XTN (telephone number); empty for no number."""
    # XTN-1 for the many HIS that only read the first component, XTN-12 (unformatted number)
    # as v2.5 prefers; PRN primary residence number, CP cellular phone (tables 0201, 0202).
    p = escape(phone)
    return f"{p}^PRN^CP^^^^^^^^^{p}" if phone else ""


def minutes_between(start: dt.datetime, end: dt.datetime) -> str:
    """Whole minutes from start to end, as written in duration fields."""
    return str(max(int((end - start).total_seconds() // 60), 0))


def _set_fields(segment: object, seg: Seg) -> None:
    for index in sorted(seg.fields):
        value = seg.fields[index]
        repetitions = value if isinstance(value, list) else [value]
        for repetition in repetitions:
            if repetition == "":
                continue
            hl7_field = Field(f"{seg.name}_{index}", version=_V, validation_level=_STRICT)
            hl7_field.value = repetition  # ER7 text, already escaped: hl7apy parses components
            segment.add(hl7_field)  # type: ignore[attr-defined]


def _add_children(parent: object, children: list[Seg | Grp]) -> None:
    for child in children:
        if isinstance(child, Grp):
            group = parent.add_group(child.name)  # type: ignore[attr-defined]
            _add_children(group, child.children)
        else:
            segment = parent.add_segment(child.name)  # type: ignore[attr-defined]
            _set_fields(segment, child)


def _segment_text(seg: Seg) -> str:
    values = {i: v for i, v in seg.fields.items() if v not in ("", [])}
    last = max(values, default=0)
    parts = [seg.name]
    for index in range(1, last + 1):
        value = values.get(index, "")
        parts.append("~".join(r for r in value) if isinstance(value, list) else value)
    return "|".join(parts)


def _serialize(children: list[Seg | Grp], out: list[str]) -> list[str]:
    for child in children:
        if isinstance(child, Grp):
            _serialize(child.children, out)
        else:
            out.append(_segment_text(child))
    return out


# Shapes hl7apy already passed in this process. A shape is everything about a message but the
# characters of its values: message type, segments and groups in order, and for each field its
# repetitions, components and sub-components with their exact lengths. hl7apy's STRICT checks
# (required parts, counts, v2.5 maximum lengths) depend on nothing else once the values are
# ours: dates and numbers come from our formatters, codes from the checked mappings, and text
# is escaped (header.escape) and bounded at the API's edge. Validating a message costs about
# 33 ms, against 0.2 ms to write it, and the outbox of a morning rush sends thousands; so each
# shape is validated once and a message of a known shape is only written.
_SHAPES: OrderedDict[tuple, None] = OrderedDict()
_SHAPES_KEPT = 4096
_SHAPES_LOCK = threading.Lock()


def _value_shape(value: str | list[str]) -> tuple:
    repetitions = value if isinstance(value, list) else [value]
    return tuple(tuple(tuple(len(sub) for sub in component.split("&"))
                       for component in repetition.split("^"))
                 for repetition in repetitions if repetition)


def _shape(children: list[Seg | Grp]) -> tuple:
    return tuple(
        ("group", child.name, _shape(child.children)) if isinstance(child, Grp)
        else (child.name, tuple((index, _value_shape(value))
                                for index, value in sorted(child.fields.items())
                                if value not in ("", [])))
        for child in children)


def _validated_once(msh: Seg, body: list[Seg | Grp]) -> None:
    """Validate with hl7apy unless a message of the same shape passed before."""
    shape = _shape([msh, *body])
    with _SHAPES_LOCK:
        if shape in _SHAPES:
            _SHAPES.move_to_end(shape)
            return
    _validated(msh, body)
    with _SHAPES_LOCK:
        _SHAPES[shape] = None
        while len(_SHAPES) > _SHAPES_KEPT:
            _SHAPES.popitem(last=False)


def _validated(msh: Seg, body: list[Seg | Grp]) -> Message:
    """The message as an hl7apy v2.5 tree, validated (STRICT): required parts, types, counts."""
    structure = str(msh.fields[9]).split("^")[2]
    msg = Message(structure, version=_V, validation_level=_STRICT)
    for index, value in msh.fields.items():
        if value:
            setattr(msg.msh, f"msh_{index}", value)  # MSH exists already: assign, not add
    _add_children(msg, body)
    msg.validate()
    return msg


def _msh(profile: Hl7Profile, message_type: str, control_id: str, now: dt.datetime,
         to_his: bool) -> Seg:
    """The MSH of a message to the HIS (or, ``to_his`` false, of the HIS answering)."""
    sender = (profile.sending_application, profile.sending_facility)
    receiver = (profile.his_application, profile.his_facility)
    if not to_his:  # the HIS (simulator) answering
        sender, receiver = receiver, sender
    return Seg(
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


def build_message(
    profile: Hl7Profile,
    message_type: str,
    control_id: str,
    now: dt.datetime,
    body: list[Seg | Grp],
    *,
    to_his: bool = True,
    sample_groups: int = 0,
) -> str:
    """Build, validate with hl7apy (once per shape, see _SHAPES) and encode one message,
    segments separated by CR.

    The text is written from the same segment list hl7apy validated (tests check both encode
    alike). With ``sample_groups``, only that many repeated groups are put through hl7apy: they
    are all made by one function, and hl7apy needs about 8 ms per slot group (4 s for 500).
    """
    msh = _msh(profile, message_type, control_id, now, to_his)
    sample = body
    if sample_groups:
        groups = [c for c in body if isinstance(c, Grp)]
        keep = {id(g) for g in groups[:sample_groups]}
        sample = [c for c in body if not isinstance(c, Grp) or id(c) in keep]
    try:
        _validated_once(msh, sample)
    except (HL7apyException, ValueError) as exc:
        # A value that does not fit its v2.5 data type is our bug or bad input. hl7apy's text
        # quotes the value (a name, a phone), so only the kind of error is said, and the
        # exception is not chained: its text would be logged with the traceback.
        raise MessageError(
            APPLICATION_INTERNAL_ERROR, f"cannot build {message_type}: {type(exc).__name__}"
        ) from None
    header = "MSH|^~\\&|" + _segment_text(msh)[len("MSH|||"):]
    return "\r".join([header] + _serialize(body, []))


def build_segments(
    profile: Hl7Profile,
    message_type: str,
    control_id: str,
    now: dt.datetime,
    body: list[Seg],
    *,
    to_his: bool = True,
) -> str:
    """Build a message of the hospital's own profile (a Z trigger event, v2.5 section 2.7.1:
    site-specific events are allowed; hl7apy has no structure for them). Each standard segment
    is validated on its own with hl7apy's v2.5 definitions (STRICT); Z segments are the
    profile's own (docs/hl7-profile.md) and are written as given."""
    for seg in body:
        if seg.name.startswith("Z"):
            continue
        # QPD-3 repeats one name^value pair per parameter (as in the Q22 conformance
        # statement); hl7apy's generic QPD defines one "varies" QPD-3: the first is checked.
        fields = {i: (v[:1] if seg.name == "QPD" and isinstance(v, list) else v)
                  for i, v in seg.fields.items()}
        try:
            segment = Segment(seg.name, version=_V, validation_level=_STRICT)
            _set_fields(segment, Seg(seg.name, fields))
            segment.validate()
        except (HL7apyException, ValueError) as exc:
            # As in build_message: the kind of error only, never hl7apy's text (it quotes values).
            raise MessageError(APPLICATION_INTERNAL_ERROR,
                               f"cannot build {message_type}: {type(exc).__name__}") from None
    msh = _msh(profile, message_type, control_id, now, to_his)
    header = "MSH|^~\\&|" + _segment_text(msh)[len("MSH|||"):]
    return "\r".join([header] + [_segment_text(seg) for seg in body])


def person(profile: Hl7Profile, *, application: bool = True) -> str:
    """XCN naming the adapter (``application``) or the HIS application as the actor."""
    # XCN for the required ARQ-15/ARQ-19/SCH-16/SCH-20: the system, not a person, acts here.
    name = profile.sending_application if application else profile.his_application
    return f"{escape(name)}^{escape(name)}"


def pid_segment(
    profile: Hl7Profile, patient: PatientIdentity, hl7_id_type: str, set_id: int = 1
) -> Seg:
    """PID of a patient: the HIS id (when known) and the document in PID-3, name, birth, sex."""
    ids: list[str] = []
    if patient.his_patient_id:
        authority, id_type = profile.his_assigning_authority, profile.his_identifier_type
        ids.append(cx(patient.his_patient_id, authority, id_type))
    ids.append(cx(patient.document_number, "", hl7_id_type))
    return Seg(
        "PID",
        {
            1: str(set_id),
            3: ids,
            5: xpn(patient.name),
            7: patient.birth_date.strftime("%Y%m%d"),
            8: escape(patient.sex),
            13: xtn(patient.phone),
        },
    )


# --------------------------------------------------------------------------------------------
# Parsing (python-hl7, tolerant)


def parse_message(text: str, expected: tuple[str, ...]) -> hl7.Message:
    """Parse with python-hl7 and check MSH-9 is one of ``expected`` (``"SRM^S01"``...)."""
    if not isinstance(text, str) or not text.lstrip().startswith("MSH"):
        raise MessageError(SEGMENT_SEQUENCE_ERROR, "message does not start with MSH")
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r").strip())
        msh = message.segment("MSH")
        code = msh.extract_field(1, 9, 1, 1, 1)
        event = msh.extract_field(1, 9, 1, 2, 1)
    except (hl7.ParseException, IndexError, KeyError, ValueError) as exc:
        # python-hl7's text may quote the message's content (PID is personal data).
        raise MessageError(SEGMENT_SEQUENCE_ERROR,
                           f"unreadable message ({type(exc).__name__})") from None
    if not code:
        raise MessageError(REQUIRED_FIELD_MISSING, "MSH-9 message type missing")
    codes = {e.split("^")[0] for e in expected}
    if code not in codes:
        raise MessageError(UNSUPPORTED_MESSAGE_TYPE, f"message type {code} not expected here")
    if f"{code}^{event}" not in expected:
        raise MessageError(UNSUPPORTED_EVENT_CODE, f"event {code}^{event} not expected here")
    return message


def get(segment: hl7.Segment, field_num: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One value, unescaped; empty when absent."""
    try:
        return segment.extract_field(1, field_num, rep, comp, sub).strip()
    except IndexError:
        return ""


def repetition_count(segment: hl7.Segment, field_num: int) -> int:
    """How many repetitions a field has (0 when empty or absent)."""
    if field_num >= len(segment):
        return 0
    value = segment(field_num)
    if value and isinstance(value[0], hl7.Repetition):
        return len(value)
    return 1 if str(value) else 0


def one(message: hl7.Message, name: str) -> hl7.Segment:
    """The first segment called ``name``; MessageError 100 when there is none."""
    try:
        return message.segment(name)
    except KeyError as exc:
        raise MessageError(SEGMENT_SEQUENCE_ERROR, f"{name} segment missing") from exc


def has(message: hl7.Message, name: str) -> bool:
    """Whether the message has a segment called ``name``."""
    return any(str(seg[0]) == name for seg in message)


def control_id_of(message: hl7.Message) -> str:
    """MSH-10."""
    return get(message.segment("MSH"), 10)


def required(value: str, where: str) -> str:
    """``value``, or MessageError 101 naming ``where`` when it is empty."""
    if not value:
        raise MessageError(REQUIRED_FIELD_MISSING, f"{where} missing")
    return value


_DTM_RE = re.compile(r"^(\d{8})(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


def parse_dtm(value: str, where: str, tz: dt.tzinfo) -> dt.datetime:
    """HL7 DTM (at least minutes) to an aware datetime; no offset means ``tz`` (the hospital's)."""
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


def parse_date(value: str, where: str) -> dt.date:
    """HL7 DT (first 8 characters of a DT/DTM); MessageError 102 otherwise."""
    try:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError as exc:
        raise MessageError(DATA_TYPE_ERROR, f"{where} is not an HL7 date") from exc


def outcome_error(message: hl7.Message) -> tuple[str, str, str]:
    """(HL7 0357 code, HIS application code, text) of a refusal."""
    msa = one(message, "MSA")
    hl7_code, app_code, text = "", "", get(msa, 3)
    for err in message.segments("ERR") if has(message, "ERR") else []:
        hl7_code = hl7_code or get(err, 3)
        app_code = app_code or get(err, 5)
        text = get(err, 8) or get(err, 5, 1, 2) or get(err, 3, 1, 2) or text
        break
    return hl7_code or APPLICATION_INTERNAL_ERROR, app_code, text


def refusal_of(text: str) -> tuple[str, str, str]:
    """(HL7 0357 code, HIS application code from ERR-5, text) of any acknowledgment."""
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r").strip())
    except (hl7.ParseException, IndexError, KeyError, ValueError) as exc:
        # python-hl7's text may quote the message's content (PID is personal data).
        raise MessageError(SEGMENT_SEQUENCE_ERROR,
                           f"unreadable message ({type(exc).__name__})") from None
    return outcome_error(message)


def patient_from_pid(
    pid: hl7.Segment,
    document_types_by_hl7: dict[str, str],
    his_identifier_type: str,
    his_assigning_authority: str = "",
) -> PatientIdentity:
    """The patient of a PID: HIS id and first known document from PID-3, PID-5/7/8/13."""
    his_id, doc_type, doc_number = "", "", ""
    for rep in range(1, repetition_count(pid, 3) + 1):
        value, authority, id_type = get(pid, 3, rep, 1), get(pid, 3, rep, 4), get(pid, 3, rep, 5)
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
    name = required(get(pid, 5), "PID-5 patient name")
    birth = parse_date(required(get(pid, 7), "PID-7 date of birth"), "PID-7")
    sex = get(pid, 8) or "U"
    if sex not in ("F", "M", "U", "O", "A", "N"):  # HL7 table 0001
        raise MessageError(TABLE_VALUE_NOT_FOUND, "PID-8 sex not in table 0001")
    phone = get(pid, 13, 1, 12) or get(pid, 13, 1, 1)
    return PatientIdentity(
        name=name,
        sex=sex,
        birth_date=birth,
        document_type=doc_type,
        document_number=doc_number,
        phone=phone,
        his_patient_id=his_id,
    )
