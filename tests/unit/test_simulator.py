"""The HIS simulator, driven through handle() with messages the adapter builds."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from adapter.his import patients, schedule, segments
from adapter.his.header import parse_ack
from adapter.his.mllp import DropConnection
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.mappings import default_mappings_dir, load_mappings
from adapter.ports import AppointmentRequest, PatientIdentity

TZ = ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2025, 3, 3)  # a Monday
NOW = dt.datetime(2025, 3, 3, 7, 30, tzinfo=TZ)
PROFILE = Hl7Profile()
MAPPINGS = load_mappings(default_mappings_dir())
BY_HL7 = {d.hl7_type: c for c, d in MAPPINGS.document_types.items()}
_ids = itertools.count(1)


@pytest.fixture
def his():
    return HisSimulator(MAPPINGS, tz=TZ, today=TODAY, seed=7)


def cid() -> str:
    return f"T{next(_ids):06d}"


def send(his: HisSimulator, text: str) -> str:
    return his.handle(text.encode("utf-8")).decode("utf-8")


def find(his, number, id_type="NNCHN"):
    c = cid()
    answer = send(his, patients.build_qbp_q22(PROFILE, c, NOW, query_tag=c, hl7_id_type=id_type,
                                              document_number=number))
    return answer, patients.parse_rsp_k22(answer, BY_HL7, PROFILE)


def open_slot(his, doctor_code=None):
    return next(s for s in sorted(his.slots.values(), key=lambda s: s.his_slot_id)
                if s.available and s.status == "open"
                and (doctor_code is None or s.doctor_code == doctor_code))


def book(his, slot, patient_id="P000123", placer=None, control_id=None):
    request = AppointmentRequest(placer or f"B{next(_ids)}", slot.his_slot_id, patient_id,
                                 slot.department_code, slot.doctor_code, slot.service_code,
                                 slot.start_at, slot.end_at)
    control_id = control_id or cid()
    text = schedule.build_srm_s01(PROFILE, control_id, NOW, request=request, his_location="MZ-X")
    answer = send(his, text)
    return text, schedule.parse_srr(answer, control_id)


def cancel(his, placer, filler, slot_id, message="SRM^S04"):
    c = cid()
    build = schedule.build_srm_s04 if message == "SRM^S04" else schedule.build_siu_s15
    answer = send(his, build(PROFILE, c, NOW, placer_appointment_id=placer,
                             filler_appointment_id=filler, his_slot_id=slot_id))
    return schedule.parse_srr(answer, c) if message == "SRM^S04" else parse_ack(answer)


def test_seeded_demo_hospital(his):
    slots = his.slots.values()
    assert {s.doctor_code for s in slots} == set(MAPPINGS.doctors)
    assert {s.start_at.date() for s in slots} == {TODAY + dt.timedelta(d) for d in range(7)}
    assert {s.start_at.hour for s in slots} >= {8, 14}
    assert all(s.end_at.hour <= 17 and s.capacity == 1 for s in slots)
    assert all(s.fee_fen == MAPPINGS.fee_fen(MAPPINGS.doctors[s.doctor_code].service_code)
               for s in slots)
    assert any(s.status == "closed" for s in slots)
    # some doctors are off some days
    per_doctor_days = {(s.doctor_code, s.start_at.date()) for s in slots}
    assert len(per_doctor_days) < len(MAPPINGS.doctors) * 7
    assert len(his.patients) >= 5


def test_hospital_zone_comes_from_the_caller():
    his = HisSimulator(MAPPINGS, tz=ZoneInfo("Europe/Berlin"), today=TODAY, days=1, seed=7)
    slots = list(his.slots.values())
    assert {s.start_at.tzinfo for s in slots} == {ZoneInfo("Europe/Berlin")}
    assert min(s.start_at for s in slots).hour == 8  # sessions start 08:00 in that zone


def test_find_candidates_known_and_unknown(his):
    _, found = find(his, "650102197802281213")
    assert len(found) == 1 and found[0].name == "阿卜杜拉·买买提"
    assert found[0].his_patient_id.startswith("P")
    _, none = find(his, "110101200001010010")
    assert none == []


def test_find_candidates_unknown_identifier_type(his):
    answer, _ = find(his, "1", id_type="NNCHN")
    with pytest.raises(segments.MessageError) as exc:
        find(his, "1", id_type="ZZZ")
    assert exc.value.code == "103"
    assert "MSA|AA" in answer


def test_add_person_then_find_and_duplicate_keeps_one(his):
    person = PatientIdentity("赵敏", "F", dt.date(2001, 5, 6), "RESIDENT_ID",
                             "110101200105060027", "13500135000")
    for _ in range(2):
        ack = parse_ack(send(his, patients.build_adt_a28(PROFILE, cid(), NOW, patient=person,
                                                         hl7_id_type="NNCHN")))
        assert ack.code == "AA"
    _, found = find(his, person.document_number)
    assert len(found) == 1 and found[0].name == "赵敏"
    assert sum(p.document_number == person.document_number for p in his.patients.values()) == 1


def test_book_and_cancel_free_the_slot(his):
    slot = open_slot(his)
    _, outcome = book(his, slot, placer="B-1")
    assert outcome.accepted and outcome.filler_appointment_id.startswith("A")
    assert his.slots[slot.his_slot_id].available == 0
    assert his.appointments[outcome.filler_appointment_id].status == "booked"

    _, again = book(his, slot)
    assert not again.accepted and again.error_code == "SLOT_TAKEN"

    cancelled = cancel(his, "B-1", outcome.filler_appointment_id, slot.his_slot_id)
    assert cancelled.accepted
    assert his.slots[slot.his_slot_id].available == 1
    # cancelling again is harmless
    assert cancel(his, "B-1", outcome.filler_appointment_id, slot.his_slot_id).accepted
    assert his.slots[slot.his_slot_id].available == 1


def test_cancel_by_siu_s15(his):
    slot = open_slot(his)
    _, outcome = book(his, slot, placer="B-2")
    ack = cancel(his, "B-2", outcome.filler_appointment_id, slot.his_slot_id, "SIU^S15")
    assert ack.code == "AA"
    assert his.slots[slot.his_slot_id].available == 1
    unknown = cancel(his, "B-9", "A99999999", slot.his_slot_id, "SIU^S15")
    assert (unknown.code, unknown.error_code) == ("AE", "204")


def test_cancel_unknown_appointment(his):
    outcome = cancel(his, "B-9", "A99999999", "X")
    assert not outcome.accepted and outcome.error_code == "204"


def test_booking_refusals(his):
    slot = open_slot(his)
    _, unknown_patient = book(his, slot, patient_id="P999999")
    assert (unknown_patient.accepted, unknown_patient.error_code) == (False, "204")

    fake = slot.__class__(**{**slot.__dict__, "his_slot_id": "NOPE"})
    _, unknown_slot = book(his, fake)
    assert unknown_slot.error_code == "204"

    his.take_slot_in_his(slot.his_slot_id)
    _, taken = book(his, slot)
    assert taken.error_code == "SLOT_TAKEN"

    other = open_slot(his, doctor_code=next(
        d for d in MAPPINGS.doctors if d != slot.doctor_code))
    assert his.close_clinic(other.doctor_code, other.start_at.date()) > 0
    _, closed = book(his, other)
    assert closed.error_code == "CLINIC_CLOSED"


def test_retransmission_same_answer_no_second_effect(his):
    slot = open_slot(his)
    text, first = book(his, slot, placer="B-3", control_id="RETX-1")
    answer_again = send(his, text)
    assert schedule.parse_srr(answer_again, "RETX-1") == first
    assert len(his.appointments) == 1
    # the same booking under a new control id is idempotent on the placer id too
    _, third = book(his, slot, placer="B-3")
    assert third.filler_appointment_id == first.filler_appointment_id


def test_slot_pool_query(his):
    c = cid()
    answer = send(his, schedule.build_sqm_s25(PROFILE, c, NOW, query_tag=c, start=TODAY,
                                              end=TODAY + dt.timedelta(days=1)))
    slots = schedule.parse_sqr_s25(answer, TZ, MAPPINGS.fee_fen)
    expected = [s for s in his.slots.values() if s.start_at.date() <= TODAY + dt.timedelta(1)]
    assert len(slots) == len(expected) > 0
    assert {s.his_slot_id: s for s in slots} == {s.his_slot_id: s for s in expected}


def test_unsupported_and_unparseable(his):
    def adt_as(message_type):
        text = patients.build_adt_a28(PROFILE, cid(), NOW, patient=PatientIdentity(
            "甲", "M", dt.date(2000, 1, 1), "PASSPORT", "E1"), hl7_id_type="PPN")
        return parse_ack(send(his, text.replace("ADT^A28^ADT_A05", message_type)))

    a01 = adt_as("ADT^A01^ADT_A01")
    assert (a01.code, a01.error_code) == ("AR", "201")
    oru = adt_as("ORU^R01^ORU_R01")
    assert (oru.code, oru.error_code) == ("AR", "200")
    bad_srm = adt_as("SRM^S01^SRM_S01")  # no ARQ
    assert (bad_srm.code, bad_srm.error_code) == ("AE", "100")
    broken = parse_ack(his.handle(b"HELLO"))
    assert broken.code in ("AE", "AR") and broken.error_code == "100"


def test_injected_ae_is_not_remembered(his):
    his.ae_rate = 1.0
    slot = open_slot(his)
    text, outcome = book(his, slot, control_id="AE-1")
    assert not outcome.accepted and outcome.error_code == "207"
    his.ae_rate = 0.0
    assert schedule.parse_srr(send(his, text), "AE-1").accepted  # the retransmission goes through


def test_drop_fault_writes_half_and_keeps_the_answer(his):
    his.drop_rate = 1.0
    slot = open_slot(his)
    request = AppointmentRequest("B-4", slot.his_slot_id, "P000123", slot.department_code,
                                 slot.doctor_code, slot.service_code, slot.start_at, slot.end_at)
    text = schedule.build_srm_s01(PROFILE, "DROP-1", NOW, request=request, his_location="MZ-X")
    with pytest.raises(DropConnection) as exc:
        his.handle(text.encode())
    assert 0 < len(exc.value.partial)
    his.drop_rate = 0.0
    answer = his.handle(text.encode())
    assert answer.startswith(exc.value.partial)
    assert schedule.parse_srr(answer.decode(), "DROP-1").accepted
    assert len(his.appointments) == 1


def test_refuse_connections_and_latency(his):
    assert his.on_connect(None, ("127.0.0.1", 1)) is True
    his.refuse_connections = True
    assert his.on_connect(None, ("127.0.0.1", 1)) is False


def test_the_laboratory_reports_each_visitor_once_one_critical_a_pdf_then_a_correction():
    import re
    from dataclasses import replace as changed

    from adapter.his.inbound import read_event
    from adapter.his.simulator.lab import Laboratory, report_pdf

    tz = ZoneInfo("Asia/Shanghai")
    people = [changed(p, his_patient_id=f"P{n:06d}") for n, p in enumerate(
        (PatientIdentity("张伟", "M", dt.date(1985, 6, 12), "RESIDENT_ID", "110101198506121230"),
         PatientIdentity("李娜", "F", dt.date(1992, 11, 3), "RESIDENT_ID", "310104199211032629")))]
    lab = Laboratory(lambda day: people, Hl7Profile(), tz, {"RESIDENT_ID": "NNCHN"})
    now = dt.datetime(2030, 3, 7, 10, 0, tzinfo=tz)

    def read(text):
        return read_event(text.encode(), tz, lambda code: 0, profile=Hl7Profile(),
                          document_types_by_hl7={"NNCHN": "RESIDENT_ID"}).reports[0]

    first = lab.due(now)
    assert [what[2] for what, _ in first] == ["history", "first", "history", "first"]
    history = read(first[0][1]).orders[0]
    assert history.observed_at == now - dt.timedelta(days=90) and history.kind == "CBC"
    reports = [read(text) for what, text in first if what[2] == "first"]
    assert [r.his_patient_id for r in reports] == ["P000000", "P000001"]
    assert [o.kind for o in reports[0].orders] == ["CBC", "BMP", "CT"]
    potassium = [[o for o in r.orders[1].observations if o.code == "K"][0] for r in reports]
    assert [(k.number, k.abnormal_flags) for k in potassium] == [("6.9", ("HH",)),
                                                                 ("4.2", ("N",))]
    pdf = reports[0].orders[2].observations[1].attachment
    assert pdf.content_type == "application/pdf" and pdf.data == report_pdf(
        ("Chest CT (plain scan) - imaging report",
         "Findings: both lungs clear; no focal lesion.",
         "Mediastinum central; heart size normal.", "Impression: no abnormality seen."))
    # The cross-reference table points at each object (ISO 32000-1 7.5.4).
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", pdf.data)]
    assert [pdf.data[o:o + 7] for o in offsets] == [b"%d 0 obj" % n for n in range(1, 6)]

    assert lab.due(now) == first  # not acknowledged yet: offered again
    for what, _ in first:
        lab.sent(what)
    [(what, text)] = [d for d in lab.due(now) if d[0][1] == "P000000"]
    assert what[2] == "correction"
    [cbc] = read(text).orders
    assert cbc.status.value == "corrected" and cbc.filler_order == reports[0].orders[0].filler_order
    for what, _ in lab.due(now):
        lab.sent(what)
    assert lab.due(now) == []
    assert lab.due(now + dt.timedelta(days=1))[1][0][2] == "first"  # a new day, new visits
