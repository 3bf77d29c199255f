"""Patient index messages, both ends: hl7apy-valid v2.5, round trips, 0357-coded refusals.

The adapter builds QBP^Q22 and ADT^A28 and reads RSP^K22 (adapter.his.patients); the HIS's side
(adapter.his.simulator.wire) reads and answers them.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from adapter.his import patients, segments
from adapter.his.header import decode_message
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import wire
from adapter.ports import PatientIdentity
from tests.hl7_fixtures import error_code_of, header_of, hl7apy_valid

NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PROFILE = Hl7Profile()
BY_HL7 = {"NNCHN": "RESIDENT_ID", "PPN": "PASSPORT"}
HL7_TYPES = {"RESIDENT_ID": "NNCHN", "PASSPORT": "PPN"}
UYGHUR = PatientIdentity("阿卜杜拉·买买提", "M", dt.date(1978, 2, 28), "RESIDENT_ID",
                         "650102197802281213", "13700137003", "P000125")
AWKWARD = PatientIdentity("A^B|C&D~E\\F", "F", dt.date(1990, 1, 1), "PASSPORT", "E1^2",
                          "", "P000126")


def test_qbp_q22_valid_and_round_trips():
    text = patients.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="NNCHN",
                                  document_number="650102197802281213")
    assert "QBP^Q22^QBP_Q21" in text and "|20250301090000+0800|" in text
    assert "QPD|Q22^Find Candidates^HL70471|Q1|@PID.3.1^650102197802281213~@PID.3.5^NNCHN" in text
    # hl7apy's generic QPD has one non-repeating QPD-3; validate without the 2nd repetition.
    hl7apy_valid(text.replace("~@PID.3.5^NNCHN", ""))
    assert wire.parse_qbp_q22(text) == ("Q1", "NNCHN", "650102197802281213")


@pytest.mark.parametrize("candidates", [[UYGHUR], [UYGHUR, AWKWARD], []])
def test_rsp_k22_valid_and_round_trips(candidates):
    query = patients.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="NNCHN",
                                   document_number="1")
    text = wire.build_rsp_k22(PROFILE, "R1", NOW, request=header_of(query), query_tag="Q1",
                              patients=candidates, hl7_id_types=HL7_TYPES)
    hl7apy_valid(text)
    assert "MSA|AA|C1" in text
    assert ("QAK|Q1|OK" if candidates else "QAK|Q1|NF") in text
    assert patients.parse_rsp_k22(text, BY_HL7, PROFILE) == candidates


def test_names_with_delimiters_are_escaped():
    text = patients.build_adt_a28(PROFILE, "A1", NOW, patient=AWKWARD, hl7_id_type="PPN")
    assert "A\\S\\B\\F\\C\\T\\D\\R\\E\\E\\F^^^^^^L" in text
    hl7apy_valid(text)
    assert wire.parse_adt_a28(text, BY_HL7) == AWKWARD


def test_rsp_k22_error_is_raised_with_itserror_code_of():
    query = patients.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="XX",
                                   document_number="1")
    text = wire.build_rsp_k22(PROFILE, "R1", NOW, request=header_of(query), query_tag="Q1",
                              patients=[], hl7_id_types=HL7_TYPES,
                              error=segments.MessageError("103", "identifier type unknown"))
    hl7apy_valid(text)
    with pytest.raises(segments.MessageError) as exc:
        patients.parse_rsp_k22(text, BY_HL7, PROFILE)
    assert exc.value.code == "103"


def test_adt_a28_valid_and_round_trips():
    new = PatientIdentity("李娜", "F", dt.date(1992, 11, 3), "RESIDENT_ID",
                          "310104199211032629", "13900139002")
    text = patients.build_adt_a28(PROFILE, "A1", NOW, patient=new, hl7_id_type="NNCHN")
    assert "ADT^A28^ADT_A05" in text and "\rPV1|1|N" in text and "\rEVN|A28|" in text
    hl7apy_valid(text)
    assert wire.parse_adt_a28(text, BY_HL7) == new


def test_pid_refusals():
    text = patients.build_adt_a28(PROFILE, "A1", NOW, patient=UYGHUR, hl7_id_type="NNCHN")
    assert error_code_of(lambda: wire.parse_adt_a28(text, {"PPN": "PASSPORT"})) == "103"
    assert error_code_of(lambda: wire.parse_adt_a28(text.replace("|19780228|", "|1978-02-28|"),
                                                    BY_HL7)) == "102"
    assert error_code_of(lambda: wire.parse_adt_a28(text.replace("|M|", "|X|"), BY_HL7)) == "103"
    no_name = text.replace(segments.xpn(UYGHUR.name), "")
    assert error_code_of(lambda: wire.parse_adt_a28(no_name, BY_HL7)) == "101"


def test_gb18030_profile_declares_it_in_msh18():
    profile = Hl7Profile(charset="GB 18030-2000")
    text = patients.build_adt_a28(profile, "A1", NOW, patient=UYGHUR, hl7_id_type="NNCHN")
    assert text.split("\r")[0].endswith("|GB 18030-2000")
    decoded, header = decode_message(text.encode("gb18030"))
    assert header.charset == "GB 18030-2000"
    assert wire.parse_adt_a28(decoded, BY_HL7) == UYGHUR
