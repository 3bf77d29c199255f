"""Registration-flow HL7 messages: hl7apy-valid v2.5, round trips, and 0357-coded refusals."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapter.his import messages as m
from adapter.his.header import decode_message
from adapter.his.profile import Hl7Profile
from adapter.ports import AppointmentRequest, PatientIdentity, SlotRecord

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=TZ)
PROFILE = Hl7Profile()
BY_HL7 = {"NNCHN": "RESIDENT_ID", "PPN": "PASSPORT"}
HL7_TYPES = {"RESIDENT_ID": "NNCHN", "PASSPORT": "PPN"}
UYGHUR = PatientIdentity("阿卜杜拉·买买提", "M", dt.date(1978, 2, 28), "RESIDENT_ID",
                         "650102197802281213", "13700137003", "P000125")
AWKWARD = PatientIdentity("A^B|C&D~E\\F", "F", dt.date(1990, 1, 1), "PASSPORT", "E1^2",
                          "", "P000126")


def hl7apy_valid(text: str) -> None:
    """The encoded text itself parses in hl7apy v2.5 STRICT and validates."""
    assert "\n" not in text and text.count("\r") >= 1
    msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert msg.validate()
    assert msg.to_er7() == text  # our writer and hl7apy encode alike


def header_of(text: str):
    return decode_message(text.encode("utf-8"))[1]


def request() -> AppointmentRequest:
    return AppointmentRequest("B0001", "D1001-20250301-A01", "P000125", "PED", "D1001",
                              "REG_CHIEF", NOW, NOW + dt.timedelta(minutes=24))


def slot(n: int, **kw) -> SlotRecord:
    start = NOW + dt.timedelta(minutes=24 * n)
    values = dict(his_slot_id=f"D1001-20250301-A{n:02d}", department_code="PED",
                  doctor_code="D1001", service_code="REG_CHIEF", start_at=start,
                  end_at=start + dt.timedelta(minutes=24), capacity=1, available=1,
                  fee_fen=5000)
    values.update(kw)
    return SlotRecord(**values)


# -- patient lookup -----------------------------------------------------------------------


def test_qbp_q22_valid_and_round_trips():
    text = m.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="NNCHN",
                           document_number="650102197802281213")
    assert "QBP^Q22^QBP_Q21" in text and "|20250301090000+0800|" in text
    assert "QPD|Q22^Find Candidates^HL70471|Q1|@PID.3.1^650102197802281213~@PID.3.5^NNCHN" in text
    # hl7apy's generic QPD has one non-repeating QPD-3; validate without the 2nd repetition.
    hl7apy_valid(text.replace("~@PID.3.5^NNCHN", ""))
    assert m.parse_qbp_q22(text) == ("Q1", "NNCHN", "650102197802281213")


@pytest.mark.parametrize("patients", [[UYGHUR], [UYGHUR, AWKWARD], []])
def test_rsp_k22_valid_and_round_trips(patients):
    query = m.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="NNCHN",
                            document_number="1")
    text = m.build_rsp_k22(PROFILE, "R1", NOW, request=header_of(query), query_tag="Q1",
                           patients=patients, hl7_id_types=HL7_TYPES)
    hl7apy_valid(text)
    assert "MSA|AA|C1" in text
    assert ("QAK|Q1|OK" if patients else "QAK|Q1|NF") in text
    assert m.parse_rsp_k22(text, BY_HL7, PROFILE) == patients


def test_names_with_delimiters_are_escaped():
    text = m.build_adt_a28(PROFILE, "A1", NOW, patient=AWKWARD, hl7_id_type="PPN")
    assert "A\\S\\B\\F\\C\\T\\D\\R\\E\\E\\F^^^^^^L" in text
    hl7apy_valid(text)
    assert m.parse_adt_a28(text, BY_HL7) == AWKWARD


def test_rsp_k22_error_is_raised_with_its_code():
    query = m.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="XX",
                            document_number="1")
    text = m.build_rsp_k22(PROFILE, "R1", NOW, request=header_of(query), query_tag="Q1",
                           patients=[], hl7_id_types=HL7_TYPES,
                           error=m.MessageError("103", "identifier type unknown"))
    hl7apy_valid(text)
    with pytest.raises(m.MessageError) as exc:
        m.parse_rsp_k22(text, BY_HL7, PROFILE)
    assert exc.value.code == "103"


def test_adt_a28_valid_and_round_trips():
    new = PatientIdentity("李娜", "F", dt.date(1992, 11, 3), "RESIDENT_ID",
                          "310104199211032629", "13900139002")
    text = m.build_adt_a28(PROFILE, "A1", NOW, patient=new, hl7_id_type="NNCHN")
    assert "ADT^A28^ADT_A05" in text and "\rPV1|1|N" in text and "\rEVN|A28|" in text
    hl7apy_valid(text)
    assert m.parse_adt_a28(text, BY_HL7) == new


# -- booking and cancellation -------------------------------------------------------------


def test_srm_s01_valid_and_round_trips():
    text = m.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    hl7apy_valid(text)
    parsed = m.parse_srm(text, TZ)
    r = request()
    assert (parsed.trigger, parsed.placer_appointment_id, parsed.his_slot_id) == (
        "S01", r.placer_appointment_id, r.his_slot_id)
    assert (parsed.his_patient_id, parsed.doctor_code, parsed.service_code) == (
        r.his_patient_id, r.doctor_code, r.service_code)
    assert (parsed.department_code, parsed.location) == ("PED", "MZ-PED")
    assert (parsed.start_at, parsed.end_at) == (r.start_at, r.end_at)


def test_srm_s04_and_siu_s15_valid_and_round_trip():
    args = dict(placer_appointment_id="B0001", filler_appointment_id="A00000001",
                his_slot_id="D1001-20250301-A01")
    s04 = m.build_srm_s04(PROFILE, "S2", NOW, **args)
    hl7apy_valid(s04)
    parsed = m.parse_srm(s04, TZ)
    assert (parsed.trigger, parsed.filler_appointment_id, parsed.his_slot_id) == (
        "S04", "A00000001", "D1001-20250301-A01")
    s15 = m.build_siu_s15(PROFILE, "S3", NOW, **args)
    hl7apy_valid(s15)
    event = m.parse_siu(s15, TZ)
    assert (event.trigger, event.placer_appointment_id, event.filler_appointment_id,
            event.his_slot_id, event.filler_status) == (
        "S15", "B0001", "A00000001", "D1001-20250301-A01", "Cancelled")


def test_srr_accepted_and_refused():
    srm = m.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    ok = m.build_srr(PROFILE, "H1", NOW, request=header_of(srm), trigger="S01", accepted=True,
                     placer_appointment_id="B0001", filler_appointment_id="A00000001")
    hl7apy_valid(ok)
    outcome = m.parse_srr(ok, "S1")
    assert outcome.accepted and outcome.filler_appointment_id == "A00000001"

    taken = m.build_srr(PROFILE, "H2", NOW, request=header_of(srm), trigger="S01",
                        accepted=False, placer_appointment_id="B0001",
                        error_code="SLOT_TAKEN", error_text="号源已被占用")
    hl7apy_valid(taken)
    assert "MSA|AE|S1" in taken and "|207^Application internal error^HL70357|E|SLOT_TAKEN^" in taken
    outcome = m.parse_srr(taken, "S1")
    assert not outcome.accepted
    assert (outcome.error_code, outcome.error_text) == ("SLOT_TAKEN", "号源已被占用")
    assert outcome.details["hl7_error_code"] == "207"

    unknown = m.build_srr(PROFILE, "H3", NOW, request=header_of(srm), trigger="S04",
                          accepted=False, placer_appointment_id="B0001", error_code="204",
                          error_text="unknown appointment")
    hl7apy_valid(unknown)
    assert m.parse_srr(unknown, "S1").error_code == "204"


def test_srr_for_another_message_is_refused():
    srm = m.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    ok = m.build_srr(PROFILE, "H1", NOW, request=header_of(srm), trigger="S01", accepted=True,
                     placer_appointment_id="B0001", filler_appointment_id="A1")
    with pytest.raises(m.MessageError) as exc:
        m.parse_srr(ok, "S-OTHER")
    assert exc.value.code == "204"


# -- slot pool ------------------------------------------------------------------------------


def test_sqm_s25_valid_and_round_trips():
    text = m.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=dt.date(2025, 3, 1),
                           end=dt.date(2025, 3, 7))
    hl7apy_valid(text)
    assert m.parse_sqm_s25(text) == ("T1", dt.date(2025, 3, 1), dt.date(2025, 3, 7))


def test_sqr_s25_valid_and_round_trips():
    slots = [slot(1), slot(2, available=0), slot(3, status="closed", available=0)]
    query = m.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=NOW.date(),
                            end=NOW.date())
    text = m.build_sqr_s25(PROFILE, "R1", NOW, request=header_of(query), query_tag="T1",
                           slots=slots, locations={"PED": "MZ-PED"})
    hl7apy_valid(text)
    assert "|Open\r" in text and "|Booked\r" in text and "|Blocked\r" in text
    assert m.parse_sqr_s25(text, TZ, lambda code: 5000) == slots


def test_sqr_s25_empty_pool_is_nf():
    query = m.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=NOW.date(),
                            end=NOW.date())
    text = m.build_sqr_s25(PROFILE, "R1", NOW, request=header_of(query), query_tag="T1",
                           slots=[])
    hl7apy_valid(text)
    assert "QAK|T1|NF" in text
    assert m.parse_sqr_s25(text, TZ, lambda code: 1) == []


@pytest.mark.parametrize("trigger", ["S12", "S15", "S17"])
def test_siu_slot_notifications(trigger):
    text = m.build_siu(PROFILE, "N1", NOW, trigger=trigger, slot=slot(1), location="MZ-PED")
    hl7apy_valid(text)
    event = m.parse_siu(text, TZ, lambda code: 5000)
    assert event.trigger == trigger and event.his_slot_id == slot(1).his_slot_id
    if trigger == "S12":
        assert event.slot == slot(1)
    else:
        assert event.slot.status == "closed" and event.slot.available == 0


# -- refusals -------------------------------------------------------------------------------


def _sqr(slots, **kw):
    query = m.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=NOW.date(),
                            end=NOW.date())
    return m.build_sqr_s25(PROFILE, "R1", NOW, request=header_of(query), query_tag="T1",
                           slots=slots, **kw)


def _code(call):
    with pytest.raises(m.MessageError) as exc:
        call()
    return exc.value.code


def test_parsers_refuse_broken_input_with_0357_codes():
    srm = m.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    qbp = m.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="NNCHN",
                          document_number="1")
    assert _code(lambda: m.parse_srm("not hl7", TZ)) == "100"
    assert _code(lambda: m.parse_srm(qbp, TZ)) == "200"
    assert _code(lambda: m.parse_srm(srm.replace("SRM^S01^", "SRM^S03^"), TZ)) == "201"
    assert _code(lambda: m.parse_srm(srm.replace("ARQ|B0001^FHA|", "ARQ||"), TZ)) == "101"
    assert _code(lambda: m.parse_srm(srm.replace(
        "20250301090000+0800^", "2025-03-01 09:00^"), TZ)) == "102"
    assert _code(lambda: m.parse_qbp_q22(qbp.replace("~@PID.3.5^NNCHN", ""))) == "101"
    assert _code(lambda: m.parse_qbp_q22(qbp.replace("QPD|Q22", "QPD|Q99"))) == "103"


def test_pid_refusals():
    text = m.build_adt_a28(PROFILE, "A1", NOW, patient=UYGHUR, hl7_id_type="NNCHN")
    assert _code(lambda: m.parse_adt_a28(text, {"PPN": "PASSPORT"})) == "103"
    assert _code(lambda: m.parse_adt_a28(text.replace("|19780228|", "|1978-02-28|"),
                                         BY_HL7)) == "102"
    assert _code(lambda: m.parse_adt_a28(text.replace("|M|", "|X|"), BY_HL7)) == "103"
    no_name = text.replace(m._xpn(UYGHUR.name), "")
    assert _code(lambda: m.parse_adt_a28(no_name, BY_HL7)) == "101"


def test_sqr_refusals():
    duplicate = _sqr([slot(1), slot(1)])
    assert _code(lambda: m.parse_sqr_s25(duplicate, TZ, lambda c: 1)) == "205"

    def no_fee(code):
        raise KeyError(code)

    assert _code(lambda: m.parse_sqr_s25(_sqr([slot(1)]), TZ, no_fee)) == "103"
    no_aip = "\r".join(s for s in _sqr([slot(1)]).split("\r") if not s.startswith("AIP"))
    assert _code(lambda: m.parse_sqr_s25(no_aip, TZ, lambda c: 1)) == "100"


def test_times_without_offset_are_read_in_the_zone_given():
    berlin = ZoneInfo("Europe/Berlin")
    assert m.parse_dtm("202503010900", "X", berlin) == dt.datetime(2025, 3, 1, 9, 0,
                                                                   tzinfo=berlin)
    with_offset = m.parse_dtm("20250301090000+0800", "X", berlin)
    assert with_offset == NOW and with_offset.utcoffset() == dt.timedelta(hours=8)


def test_builders_refuse_naive_times():
    with pytest.raises(ValueError):
        m.build_sqm_s25(PROFILE, "Q1", NOW.replace(tzinfo=None), query_tag="T",
                        start=NOW.date(), end=NOW.date())


def test_gb18030_profile_declares_it_in_msh18():
    profile = Hl7Profile(charset="GB 18030-2000")
    text = m.build_adt_a28(profile, "A1", NOW, patient=UYGHUR, hl7_id_type="NNCHN")
    assert text.split("\r")[0].endswith("|GB 18030-2000")
    decoded, header = decode_message(text.encode("gb18030"))
    assert header.charset == "GB 18030-2000"
    assert m.parse_adt_a28(decoded, BY_HL7) == UYGHUR
