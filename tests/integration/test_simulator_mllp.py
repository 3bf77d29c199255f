"""The HIS simulator behind a real MllpServer, reached with MllpClient as the adapter does."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from adapter.his import patients, schedule
from adapter.his.header import parse_ack
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient, MllpConnectionError
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.mappings import default_mappings_dir, load_mappings
from adapter.ports import AppointmentRequest, HisUnavailable, PatientIdentity

PROFILE = Hl7Profile()
MAPPINGS = load_mappings(default_mappings_dir())
BY_HL7 = {d.hl7_type: c for c, d in MAPPINGS.document_types.items()}
TZ = ZoneInfo("Asia/Shanghai")
TODAY = dt.datetime.now(TZ).date()


@pytest.fixture
def his():
    # The same "today" as the test (a run across midnight in the hospital's zone stays whole).
    simulator = HisSimulator(MAPPINGS, tz=TZ, seed=3, today=TODAY)
    server = MllpServer("127.0.0.1", 0, simulator.handle, on_connect=simulator.on_connect)
    server.start()
    yield simulator, server.server_address
    server.shutdown()


def client(address, **kw):
    options = dict(connect_timeout=2, ack_timeout=5, retries=3, backoff_initial=0.01,
                   backoff_max=0.05)
    options.update(kw)
    return MllpClient(*address, **options)


def now():
    return dt.datetime.now(TZ)


def test_registration_flow_over_one_connection(his):
    simulator, address = his
    person = PatientIdentity("欧阳·娜娜", "F", dt.date(1995, 8, 8), "RESIDENT_ID",
                             "110101199508080024", "13300133000")
    with client(address) as c:
        ack = parse_ack(c.send(patients.build_adt_a28(PROFILE, "I1", now(), patient=person,
                                                      hl7_id_type="NNCHN").encode()))
        assert ack.code == "AA" and ack.control_id == "I1"

        rsp = c.send(patients.build_qbp_q22(PROFILE, "I2", now(), query_tag="I2",
                                            hl7_id_type="NNCHN",
                                            document_number=person.document_number).encode())
        [found] = patients.parse_rsp_k22(rsp.decode(), BY_HL7, PROFILE)
        assert found.name == person.name and found.his_patient_id

        sqr = c.send(schedule.build_sqm_s25(PROFILE, "I3", now(), query_tag="I3", start=TODAY,
                                            end=TODAY + dt.timedelta(days=6)).encode())
        slots = schedule.parse_sqr_s25(sqr.decode(), TZ, MAPPINGS.fee_fen)
        assert len(slots) == len(simulator.slots)
        slot = next(s for s in slots if s.available and s.status == "open")

        request = AppointmentRequest("BK-1", slot.his_slot_id, found.his_patient_id,
                                     slot.department_code, slot.doctor_code, slot.service_code,
                                     slot.start_at, slot.end_at)
        srr = c.send(schedule.build_srm_s01(PROFILE, "I4", now(), request=request,
                                            his_location="MZ-PED").encode())
        booked = schedule.parse_srr(srr.decode(), "I4")
        assert booked.accepted and simulator.slots[slot.his_slot_id].available == 0

        srr = c.send(schedule.build_srm_s04(PROFILE, "I5", now(), placer_appointment_id="BK-1",
                                            filler_appointment_id=booked.filler_appointment_id,
                                            his_slot_id=slot.his_slot_id).encode())
        assert schedule.parse_srr(srr.decode(), "I5").accepted
        assert simulator.slots[slot.his_slot_id].available == 1


def test_dropped_answer_is_retransmitted_without_second_effect(his):
    simulator, address = his
    slot = next(s for s in simulator.slots.values() if s.available and s.status == "open")
    request = AppointmentRequest("BK-2", slot.his_slot_id, "P000123", slot.department_code,
                                 slot.doctor_code, slot.service_code, slot.start_at, slot.end_at)
    text = schedule.build_srm_s01(PROFILE, "D1", now(), request=request, his_location="MZ-PED")
    simulator.drop_rate = 1.0
    with client(address, retries=1) as c:
        with pytest.raises(HisUnavailable):
            c.send(text.encode())
        simulator.drop_rate = 0.0
        answer = c.send(text.encode())  # same MSH-10 on a new connection
    assert schedule.parse_srr(answer.decode(), "D1").accepted
    assert len(simulator.appointments) == 1


def test_refused_connections_then_recovery(his):
    simulator, address = his
    simulator.refuse_connections = True
    query = schedule.build_sqm_s25(PROFILE, "R1", now(), query_tag="R1", start=TODAY, end=TODAY)
    with client(address, retries=1) as c:
        with pytest.raises((MllpConnectionError, HisUnavailable)):
            c.send(query.encode())
        simulator.refuse_connections = False
        answer = c.send(query.encode())
    assert parse_ack(answer).code == "AA"
