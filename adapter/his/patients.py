"""The patient index as the adapter asks it: QBP^Q22 -> RSP^K22 and ADT^A28 (HL7 v2.5 chapter 3).

The HIS's side of these messages is adapter.his.simulator.wire.
"""

from __future__ import annotations

import datetime as dt

from adapter.his.codes import ACCEPT_ACK_CODES, FIND_CANDIDATES
from adapter.his.header import escape
from adapter.his.profile import Hl7Profile
from adapter.his.segments import (
    MessageError,
    Seg,
    build_message,
    dtm,
    get,
    has,
    one,
    outcome_error,
    parse_message,
    patient_from_pid,
    pid_segment,
)
from adapter.ports import PatientIdentity

# --------------------------------------------------------------------------------------------
# Patient lookup: QBP^Q22 / RSP^K22 ("Find Candidates")


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
    text = build_message(
        profile,
        "QBP^Q22^QBP_Q21",
        control_id,
        now,
        [
            Seg("QPD", {1: FIND_CANDIDATES, 2: escape(query_tag), 3: number_param}),
            Seg("RCP", {1: "I"}),  # I immediate (table 0091)
        ],
    )
    # The Q22 conformance statement makes QPD-3 a repeating QIP; hl7apy's generic QPD defines
    # QPD-3 as one "varies" field, so the structure is validated with the first parameter and
    # the second repetition is added here.
    qpd = f"\rQPD|{FIND_CANDIDATES}|{escape(query_tag)}|{number_param}"
    assert qpd in text
    return text.replace(qpd, f"{qpd}~{type_param}", 1)


def parse_rsp_k22(
    text: str, document_types_by_hl7: dict[str, str], profile: Hl7Profile
) -> list[PatientIdentity]:
    """The candidates of an RSP^K22 (empty for NF); MessageError when the HIS refused."""
    message = parse_message(text, ("RSP^K22", "ACK^Q22"))  # ACK: refused before answering
    msa = one(message, "MSA")
    if get(msa, 1) not in ACCEPT_ACK_CODES:
        hl7_code, app_code, err_text = outcome_error(message)
        raise MessageError(hl7_code, err_text or app_code or "query refused")
    qak = one(message, "QAK")
    if get(qak, 2) == "NF":
        return []
    return [
        patient_from_pid(
            pid,
            document_types_by_hl7,
            profile.his_identifier_type,
            profile.his_assigning_authority,
        )
        for pid in (message.segments("PID") if has(message, "PID") else [])
    ]


# --------------------------------------------------------------------------------------------
# Add person: ADT^A28


def build_adt_a28(
    profile: Hl7Profile,
    control_id: str,
    now: dt.datetime,
    *,
    patient: PatientIdentity,
    hl7_id_type: str,
) -> str:
    """Add a person to the HIS patient index (EVN, PID, PV1-2 N: no visit)."""
    return build_message(
        profile,
        "ADT^A28^ADT_A05",
        control_id,
        now,
        [
            Seg("EVN", {1: "A28", 2: dtm(now)}),
            pid_segment(profile, patient, hl7_id_type),
            Seg("PV1", {1: "1", 2: "N"}),  # N not applicable (table 0004)
        ],
    )
