"""Results as the adapter reads them: ORU^R01 from the HIS, LIS or PACS (HL7 v2.5 chapter 7).

Real result messages break the strict rules (OBX before its OBR, NM values with units in them,
no OBR-25, v2.3 to v2.8 fields), so the reading is tolerant: segments and fields are split
here by the message's own delimiters (MSH-1/2, taken by decode_message), and escape sequences
are undone once (``header.unescape``) on the leaf values. Only what cannot describe a result at
all (no OBR and no OBX) is refused; everything else becomes a :class:`ResultReport` and the
results flow decides whether it can be matched to a patient.

The LIS side of these messages is adapter.his.simulator.lab.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from decimal import Decimal, InvalidOperation

from adapter.his.codes import (
    OBSERVATION_DELETED,
    RESULT_CANCELLED,
    RESULT_CORRECTED,
    RESULT_FINAL,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_MESSAGE_TYPE,
)
from adapter.his.header import Header, unescape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import MessageError, parse_date, parse_dtm
from adapter.ports import (
    Observation,
    ResultAttachment,
    ResultOrder,
    ResultReport,
    ResultsReported,
    ResultStatus,
)

ORU_R01 = "ORU^R01"

# OBR-25 (table 0123) values other than F, C and X: some results, none verified yet.
_PRELIMINARY = ("P", "A", "R", "I", "S", "O", "Y", "Z")
_SN_COMPARATORS = ("<", ">", "<=", ">=", "=", "<>")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# ED (HL7 v2.5 2.A.24): ED-2 type of data, ED-3 subtype, ED-4 encoding, ED-5 data.
_CONTENT_TYPES = {"PDF": "application/pdf", "JPEG": "image/jpeg", "JPG": "image/jpeg",
                  "PNG": "image/png", "TIFF": "image/tiff", "HTML": "text/html",
                  "XML": "application/xml", "RTF": "application/rtf"}
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"\x89PNG\r\n\x1a\n", "image/png"))


class _Fields:
    """A segment's fields, raw, split by the message's delimiters; values unescaped once."""

    def __init__(self, fields: list[str], header: Header) -> None:
        self.fields = fields  # fields[0] is the segment's name, fields[n] its field n
        self.header = header

    def raw(self, n: int) -> str:
        return self.fields[n] if n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        raw = self.raw(n)
        return [r for r in raw.split(self.header.repetition_sep)] if raw else []

    def components(self, raw_repetition: str) -> list[str]:
        return raw_repetition.split(self.header.component_sep)

    def value(self, n: int, comp: int = 1, rep: int = 1) -> str:
        """One component of one repetition, its first subcomponent, unescaped and stripped."""
        reps = self.repetitions(n)
        if len(reps) < rep:
            return ""
        comps = self.components(reps[rep - 1])
        if len(comps) < comp:
            return ""
        first = comps[comp - 1].split(self.header.subcomponent_sep)[0]
        return unescape(first, self.header).strip()

    def text(self, raw: str) -> str:
        return unescape(raw, self.header)


def parse_oru_r01(text: str, header: Header, profile: Hl7Profile, *, tz: dt.tzinfo,
                  document_types_by_hl7: dict[str, str]) -> ResultsReported:
    """The reports of an ORU^R01 (one per PID); MessageError 100 when it has no OBR or OBX."""
    if header.message_type != ORU_R01:
        raise MessageError(UNSUPPORTED_MESSAGE_TYPE, f"{header.message_type} is not ORU^R01")
    reports: list[ResultReport] = []
    patient: _Fields | None = None
    orders: list[tuple[_Fields | None, list[_Fields]]] = []
    # Split here rather than with python-hl7: every field is taken raw and split by the
    # message's own delimiters below anyway, and hl7.parse's tree down to subcomponents (some
    # 450 splits for a 15-value blood count) was a third of the inbound runner's time.
    segments = re.split(r"\r\n?|\n", text.strip())
    if not segments or not segments[0].startswith("MSH"):
        raise MessageError(SEGMENT_SEQUENCE_ERROR, "message does not start with MSH")
    msh = segments[0].split(header.field_sep)  # msh[n - 1] is MSH-n
    for segment in segments[1:]:
        values = segment.strip().split(header.field_sep)
        name = values[0]
        fields = _Fields(values, header)
        if name == "PID":
            if patient is not None or orders:
                reports.append(_report(patient, orders, profile, tz, document_types_by_hl7))
            patient, orders = fields, []
        elif name == "OBR":
            if orders and orders[-1][0] is None:  # OBX came before its OBR: they belong to it
                orders[-1] = (fields, orders[-1][1])
            else:
                orders.append((fields, []))
        elif name == "OBX":
            if not orders:
                orders.append((None, []))
            orders[-1][1].append(fields)
    if patient is not None or orders:
        reports.append(_report(patient, orders, profile, tz, document_types_by_hl7))
    if not any(report.orders for report in reports):
        raise MessageError(SEGMENT_SEQUENCE_ERROR, "ORU^R01 without OBR or OBX")
    sender = f"{_first(msh[2] if len(msh) > 2 else '', header)}^" \
             f"{_first(msh[3] if len(msh) > 3 else '', header)}"
    return ResultsReported(control_id=header.control_id, sender=sender,
                           reports=tuple(r for r in reports if r.orders))


def ordering_key(text: str, header: Header, profile: Hl7Profile) -> str:
    """What an ORU^R01's place in line is kept by: the patient it is about (PID-3 under the
    HIS's authority, else its first id), else its first order number; "" when it names
    neither. Every message of one order is about one patient, so applying the messages of one
    patient in arrival order applies each order's in order, while other patients' results go
    in parallel (adapter.worker.inbound). A plain scan, not a parse: the listener computes it
    for every message before its ACK."""
    fs, cs, rs = header.field_sep, header.component_sep, header.repetition_sep
    pid_ids: list[list[str]] = []
    order = ""
    for segment in re.split(r"\r\n?|\n", text):
        if segment.startswith("PID" + fs) and not pid_ids:
            fields = segment.split(fs)
            raw = fields[3] if len(fields) > 3 else ""
            pid_ids = [rep.split(cs) for rep in raw.split(rs) if rep.split(cs)[0].strip()]
        elif segment.startswith("OBR" + fs) and not order:
            fields = segment.split(fs)
            filler = fields[3].split(cs)[0] if len(fields) > 3 else ""
            placer = fields[2].split(cs)[0] if len(fields) > 2 else ""
            order = (filler or placer).strip()
    own = [c for c in pid_ids if len(c) > 4 and c[4] == profile.his_identifier_type
           and c[3] == profile.his_assigning_authority]
    chosen = (own or pid_ids)[:1]
    if chosen:  # the id with its authority and type: another authority's id is another's
        cx = [c.strip() for c in (chosen[0] + [""] * 5)[:5]]
        value = f"patient\x1f{cx[0]}\x1f{cx[3]}\x1f{cx[4]}"
    elif order:
        value = f"order\x1f{order}"
    else:
        return ""
    digest = hashlib.sha256(f"{header.sender}\x1f{value}".encode()).hexdigest()
    return digest[:40]


def _first(raw: str, header: Header) -> str:
    return raw.split(header.component_sep)[0]


def _report(pid: _Fields | None, orders: list[tuple[_Fields | None, list[_Fields]]],
            profile: Hl7Profile, tz: dt.tzinfo,
            document_types_by_hl7: dict[str, str]) -> ResultReport:
    his_id, doc_type, doc_number, name, birth = "", "", "", "", None
    if pid is not None:
        for rep in range(1, len(pid.repetitions(3)) + 1):
            value = pid.value(3, 1, rep)
            authority, id_type = pid.value(3, 4, rep), pid.value(3, 5, rep)
            if not value:
                continue
            if id_type == profile.his_identifier_type and (
                    authority == profile.his_assigning_authority):
                his_id = his_id or value
            elif id_type in document_types_by_hl7 and not doc_number:
                doc_type, doc_number = document_types_by_hl7[id_type], value
        # XPN: a Chinese name is whole in PID-5.1; a Western one is family^given.
        family, given = pid.value(5, 1), pid.value(5, 2)
        name = f"{family} {given}".strip() if given else family
        try:
            birth = parse_date(pid.value(7), "PID-7") if pid.value(7) else None
        except MessageError:
            birth = None
    return ResultReport(
        his_patient_id=his_id, name=name, birth_date=birth, document_type=doc_type,
        document_number=doc_number,
        orders=tuple(_order(obr, obxs, profile, tz) for obr, obxs in orders),
    )


def _order(obr: _Fields | None, obxs: list[_Fields], profile: Hl7Profile,
           tz: dt.tzinfo) -> ResultOrder:
    observations = [_observation(obx, profile) for obx in obxs]
    shown = tuple(o for o in observations if o.status not in OBSERVATION_DELETED)
    if obr is None:
        return ResultOrder("", "", "", status=_status("", observations), observations=shown)
    observed_at = None
    raw_time = obr.value(7) or obr.value(22)
    if raw_time:
        try:
            observed_at = parse_dtm(raw_time, "OBR-7", tz)
        except MessageError:
            observed_at = None
    return ResultOrder(
        placer_order=obr.value(2), filler_order=obr.value(3), kind=obr.value(4, 1),
        kind_name=obr.value(4, 2), observed_at=observed_at,
        status=_status(obr.value(25), observations), observations=shown,
        ordering_provider=obr.value(16),
    )


def _status(obr_25: str, observations: list[Observation]) -> ResultStatus:
    """OBR-25; when empty, what the observations' OBX-11 say together."""
    code = obr_25.upper()
    if not code:
        codes = {o.status for o in observations}
        if codes and codes <= set(OBSERVATION_DELETED) | {RESULT_CANCELLED}:
            code = RESULT_CANCELLED
        elif RESULT_CORRECTED in codes:
            code = RESULT_CORRECTED
        elif codes and codes <= {RESULT_FINAL}:
            code = RESULT_FINAL
        else:
            code = "P"
    if code == RESULT_FINAL:
        return ResultStatus.FINAL
    if code == RESULT_CORRECTED:
        return ResultStatus.CORRECTED
    if code == RESULT_CANCELLED:
        return ResultStatus.CANCELLED
    return ResultStatus.PRELIMINARY


def decimal_string(value: str) -> str:
    """A number as a canonical decimal string ("7.20" stays "7.20"), "" when not a number."""
    value = value.strip()
    if not _NUMBER_RE.match(value):
        return ""
    try:
        Decimal(value)
    except InvalidOperation:
        return ""
    return value.lstrip("+")


def _observation(obx: _Fields, profile: Hl7Profile) -> Observation:
    value_type = obx.value(2).upper()
    reps = obx.repetitions(5)
    number = comparator = ""
    attachment = None
    if value_type == "NM":
        texts = [obx.text(r).strip() for r in reps]
        number = decimal_string(texts[0]) if texts else ""
        text = "; ".join(t for t in texts if t)
    elif value_type == "SN":
        comparator, number, text = _structured_numeric(obx, reps[0] if reps else "")
    elif value_type in ("CWE", "CE", "CNE", "CF"):
        shown = []
        for rep in reps:
            comps = [obx.text(c).strip() for c in obx.components(rep)]
            shown.append(comps[1] if len(comps) > 1 and comps[1] else comps[0])
        text = "; ".join(s for s in shown if s)
    elif value_type == "ED":
        attachment = _attachment(obx, reps[0] if reps else "",
                                 profile.result_attachment_max_bytes)
        text = ""
    else:  # ST, TX, FT and anything else: text, repetitions on their own lines
        text = "\n".join(obx.text(r) for r in reps).strip()
    flags = tuple(f for f in (obx.value(8, 1, rep) for rep in range(1, len(obx.repetitions(8))
                                                                    + 1)) if f)
    return Observation(
        set_id=obx.value(1), value_type=value_type, code=obx.value(3, 1),
        name=obx.value(3, 2), text=text, number=number, comparator=comparator,
        units=obx.value(6, 1), reference_range=obx.value(7), abnormal_flags=flags,
        status=obx.value(11).upper(), attachment=attachment,
    )


def _structured_numeric(obx: _Fields, raw: str) -> tuple[str, str, str]:
    """SN (2.A.72): comparator ^ num1 ^ separator/suffix ^ num2 -> (comparator, num1, text)."""
    comps = [obx.text(c).strip() for c in obx.components(raw)] + ["", "", "", ""]
    comparator = comps[0] if comps[0] in _SN_COMPARATORS else ""
    number = decimal_string(comps[1])
    text = "".join(comps[:4]) if comparator or number else obx.text(raw).strip()
    return comparator, number, text


def _attachment(obx: _Fields, raw: str, max_bytes: int) -> ResultAttachment:
    comps = obx.components(raw) + ["", "", "", "", ""]
    subtype, encoding = comps[2].strip().upper(), comps[3].strip().upper()
    declared = _CONTENT_TYPES.get(subtype, "application/octet-stream")
    data = comps[4].strip()
    if encoding.upper() not in ("BASE64", "A"):  # only Base64 (and plain ASCII) are read here
        return ResultAttachment(declared, problem="unreadable")
    # Base64 of N bytes is about 4N/3 characters: refuse before decoding.
    if len(data) * 3 // 4 > max_bytes + 3:
        return ResultAttachment(declared, problem="too_large")
    if encoding.upper() == "A":
        payload = obx.text(data).encode("utf-8")
    else:
        try:
            payload = base64.b64decode(re.sub(r"\s+", "", obx.text(data)), validate=True)
        except (binascii.Error, ValueError):
            return ResultAttachment(declared, problem="unreadable")
    if len(payload) > max_bytes:
        return ResultAttachment(declared, problem="too_large")
    if not payload:
        return ResultAttachment(declared, problem="unreadable")
    # Served with the type its bytes show: a PDF labelled otherwise is still a PDF, and a
    # label claiming PDF over other bytes is not believed.
    sniffed = next((kind for magic, kind in _MAGIC if payload.startswith(magic)), "")
    if sniffed:
        content_type = sniffed
    elif declared in ("application/pdf", "image/jpeg", "image/png"):
        content_type = "application/octet-stream"
    else:
        content_type = declared
    return ResultAttachment(content_type, payload)
