"""Appointment and slot pool messages, both ends: hl7apy-valid v2.5, round trips, refusals.

The adapter builds SRM^S01/S04, SIU^S15 and SQM^S25 and reads SRR, SQR^S25 and SIU
(adapter.his.schedule); the HIS's side (adapter.his.simulator.wire) reads and answers them.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from adapter.his import patients, schedule, segments
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import wire
from adapter.ports import AppointmentRequest, SlotRecord
from tests.hl7_fixtures import error_code_of, header_of, hl7apy_valid

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=TZ)
PROFILE = Hl7Profile()


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


# -- booking and cancellation -------------------------------------------------------------


def test_srm_s01_valid_and_round_trips():
    text = schedule.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    hl7apy_valid(text)
    parsed = wire.parse_srm(text, TZ)
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
    s04 = schedule.build_srm_s04(PROFILE, "S2", NOW, **args)
    hl7apy_valid(s04)
    parsed = wire.parse_srm(s04, TZ)
    assert (parsed.trigger, parsed.filler_appointment_id, parsed.his_slot_id) == (
        "S04", "A00000001", "D1001-20250301-A01")
    s15 = schedule.build_siu_s15(PROFILE, "S3", NOW, **args)
    hl7apy_valid(s15)
    event = schedule.parse_siu(s15, TZ)
    assert (event.trigger, event.placer_appointment_id, event.filler_appointment_id,
            event.his_slot_id, event.filler_status) == (
        "S15", "B0001", "A00000001", "D1001-20250301-A01", "Cancelled")


def test_srr_accepted_and_refused():
    srm = schedule.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    ok = wire.build_srr(PROFILE, "H1", NOW, request=header_of(srm), trigger="S01", accepted=True,
                        placer_appointment_id="B0001", filler_appointment_id="A00000001")
    hl7apy_valid(ok)
    outcome = schedule.parse_srr(ok, "S1")
    assert outcome.accepted and outcome.filler_appointment_id == "A00000001"

    taken = wire.build_srr(PROFILE, "H2", NOW, request=header_of(srm), trigger="S01",
                           accepted=False, placer_appointment_id="B0001",
                           error_code="SLOT_TAKEN", error_text="号源已被占用")
    hl7apy_valid(taken)
    assert "MSA|AE|S1" in taken and "|207^Application internal error^HL70357|E|SLOT_TAKEN^" in taken
    outcome = schedule.parse_srr(taken, "S1")
    assert not outcome.accepted
    assert (outcome.error_code, outcome.error_text) == ("SLOT_TAKEN", "号源已被占用")
    assert outcome.details["hl7_error_code"] == "207"

    unknown = wire.build_srr(PROFILE, "H3", NOW, request=header_of(srm), trigger="S04",
                             accepted=False, placer_appointment_id="B0001", error_code="204",
                             error_text="unknown appointment")
    hl7apy_valid(unknown)
    assert schedule.parse_srr(unknown, "S1").error_code == "204"


def test_srr_for_another_message_is_refused():
    srm = schedule.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    ok = wire.build_srr(PROFILE, "H1", NOW, request=header_of(srm), trigger="S01", accepted=True,
                        placer_appointment_id="B0001", filler_appointment_id="A1")
    with pytest.raises(segments.MessageError) as exc:
        schedule.parse_srr(ok, "S-OTHER")
    assert exc.value.code == "204"


# -- slot pool ------------------------------------------------------------------------------


def test_sqm_s25_valid_and_round_trips():
    text = schedule.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=dt.date(2025, 3, 1),
                                  end=dt.date(2025, 3, 7))
    hl7apy_valid(text)
    assert wire.parse_sqm_s25(text) == ("T1", dt.date(2025, 3, 1), dt.date(2025, 3, 7))


def test_sqr_s25_valid_and_round_trips():
    slots = [slot(1), slot(2, available=0), slot(3, status="closed", available=0)]
    query = schedule.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=NOW.date(),
                                   end=NOW.date())
    text = wire.build_sqr_s25(PROFILE, "R1", NOW, request=header_of(query), query_tag="T1",
                              slots=slots, locations={"PED": "MZ-PED"})
    hl7apy_valid(text)
    assert "|Open\r" in text and "|Booked\r" in text and "|Blocked\r" in text
    assert schedule.parse_sqr_s25(text, TZ, lambda code: 5000) == slots


def test_sqr_s25_empty_pool_is_nf():
    query = schedule.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=NOW.date(),
                                   end=NOW.date())
    text = wire.build_sqr_s25(PROFILE, "R1", NOW, request=header_of(query), query_tag="T1",
                              slots=[])
    hl7apy_valid(text)
    assert "QAK|T1|NF" in text
    assert schedule.parse_sqr_s25(text, TZ, lambda code: 1) == []


@pytest.mark.parametrize("trigger", ["S12", "S15", "S17"])
def test_siu_slot_notifications(trigger):
    text = wire.build_siu(PROFILE, "N1", NOW, trigger=trigger, slot=slot(1), location="MZ-PED")
    hl7apy_valid(text)
    event = schedule.parse_siu(text, TZ, lambda code: 5000)
    assert event.trigger == trigger and event.his_slot_id == slot(1).his_slot_id
    if trigger == "S12":
        assert event.slot == slot(1)
    else:
        assert event.slot.status == "closed" and event.slot.available == 0


# -- refusals and times ---------------------------------------------------------------------


def _sqr(slots, **kw):
    query = schedule.build_sqm_s25(PROFILE, "Q1", NOW, query_tag="T1", start=NOW.date(),
                                   end=NOW.date())
    return wire.build_sqr_s25(PROFILE, "R1", NOW, request=header_of(query), query_tag="T1",
                              slots=slots, **kw)


def test_parsers_refuse_broken_input_with_0357_codes():
    srm = schedule.build_srm_s01(PROFILE, "S1", NOW, request=request(), his_location="MZ-PED")
    qbp = patients.build_qbp_q22(PROFILE, "C1", NOW, query_tag="Q1", hl7_id_type="NNCHN",
                                 document_number="1")
    assert error_code_of(lambda: wire.parse_srm("not hl7", TZ)) == "100"
    assert error_code_of(lambda: wire.parse_srm(qbp, TZ)) == "200"
    assert error_code_of(lambda: wire.parse_srm(srm.replace("SRM^S01^", "SRM^S03^"), TZ)) == "201"
    no_placer = srm.replace("ARQ|B0001^FHA|", "ARQ||")
    assert error_code_of(lambda: wire.parse_srm(no_placer, TZ)) == "101"
    assert error_code_of(lambda: wire.parse_srm(srm.replace(
        "20250301090000+0800^", "2025-03-01 09:00^"), TZ)) == "102"
    assert error_code_of(lambda: wire.parse_qbp_q22(qbp.replace("~@PID.3.5^NNCHN", ""))) == "101"
    assert error_code_of(lambda: wire.parse_qbp_q22(qbp.replace("QPD|Q22", "QPD|Q99"))) == "103"


def test_sqr_refusals():
    duplicate = _sqr([slot(1), slot(1)])
    assert error_code_of(lambda: schedule.parse_sqr_s25(duplicate, TZ, lambda c: 1)) == "205"

    def no_fee(code):
        raise KeyError(code)

    assert error_code_of(lambda: schedule.parse_sqr_s25(_sqr([slot(1)]), TZ, no_fee)) == "103"
    no_aip = "\r".join(s for s in _sqr([slot(1)]).split("\r") if not s.startswith("AIP"))
    assert error_code_of(lambda: schedule.parse_sqr_s25(no_aip, TZ, lambda c: 1)) == "100"


def test_times_without_offset_are_read_in_the_zone_given():
    berlin = ZoneInfo("Europe/Berlin")
    assert segments.parse_dtm("202503010900", "X", berlin) == dt.datetime(2025, 3, 1, 9, 0,
                                                                          tzinfo=berlin)
    with_offset = segments.parse_dtm("20250301090000+0800", "X", berlin)
    assert with_offset == NOW and with_offset.utcoffset() == dt.timedelta(hours=8)


def test_builders_refuse_naive_times():
    with pytest.raises(ValueError):
        schedule.build_sqm_s25(PROFILE, "Q1", NOW.replace(tzinfo=None), query_tag="T",
                               start=NOW.date(), end=NOW.date())
