"""The simulator's clinic hall over real sockets: a check-in (ADT^A10) reaches the HIS
simulator, whose hall plays the doctor's queue back to the adapter's listener (SIU^S14), and
the adapter's queue follows it to the call."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from adapter.config import Address, load_config
from adapter.his.gateway import MllpHisGateway
from adapter.his.listener import make_listener
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import HisSimulator
from adapter.his.simulator.hall import ClinicHall
from adapter.mappings import load_mappings
from adapter.ports import AppointmentRequest, ArrivalNotice, PatientIdentity, session_of
from adapter.queueing.line import LineState
from adapter.queueing.policy import QueuePolicy
from adapter.queueing.service import load_queue, reconcile_queue
from adapter.runtime import Runtime
from adapter.worker.inbound import process_inbound
from tests.conftest import MAPPINGS as MAPPINGS_DIR

MAPPINGS = load_mappings(MAPPINGS_DIR)
TZ = load_config({}).tz


def test_a_check_in_is_played_back_as_the_his_queue_until_the_call(engine, session_factory):
    config = replace(load_config({}), mllp_listen=Address("127.0.0.1", 0))
    runtime = Runtime(config, engine, session_factory, MAPPINGS, Hl7Profile())
    listener = make_listener(config, session_factory, runtime.profile)
    listener.start()
    to_adapter = MllpClient(*listener.server_address[:2], connect_timeout=2, ack_timeout=10)
    simulator = HisSimulator(MAPPINGS, tz=TZ, seed=5)
    [soon] = [s for s in simulator.open_slots_soon(dt.datetime.now(TZ)) if s.startswith(
        MAPPINGS.doctors_of("PED")[0].code)]
    hall = ClinicHall(simulator, lambda text: to_adapter.send(text.encode()), tz=TZ,
                      time_scale=0, ahead=2, seed=1)
    played: list[int] = []
    simulator.arrival_listeners.append(lambda notice: played.append(hall.play(notice)))
    simulator.queue_source = hall.snapshot
    his_server = MllpServer("127.0.0.1", 0, simulator.handle, on_connect=simulator.on_connect)
    his_server.start()
    his = MllpHisGateway(MllpClient(*his_server.server_address[:2], connect_timeout=2,
                                    ack_timeout=10), Hl7Profile(), MAPPINGS, TZ)
    try:
        patient = his.register_patient(PatientIdentity(
            "王小明", "M", dt.date(2020, 6, 1), "RESIDENT_ID", "11010120200601003X"))
        slot = simulator.slots[soon]
        booked = his.book_appointment(AppointmentRequest(
            "BHALL1", slot.his_slot_id, patient.his_patient_id, slot.department_code,
            slot.doctor_code, slot.service_code, slot.start_at, slot.end_at))
        assert booked.accepted
        notice = ArrivalNotice("BHALL1", booked.filler_appointment_id, patient.his_patient_id,
                               "MZ-PED", "", dt.datetime.now(TZ))
        assert his.patient_arrived(notice).accepted
        # 2 ahead registered and arrived, ours, then three calls and three consults.
        assert played == [2 * 2 + 2 + 3 * 2]
        process_inbound(runtime)
        with session_factory() as session:
            queue = load_queue(session, slot.doctor_code, slot.start_at.astimezone(TZ).date(),
                               session_of(slot.start_at, TZ), QueuePolicy())
        ours = queue.line_of_placer("BHALL1")
        assert ours is not None and ours.state is LineState.FINISHED
        assert ours.his_patient_id == patient.his_patient_id
        assert [c.absent for c in queue.consults] == [False] * 3
        called = sorted(queue.lines.values(), key=lambda ln: ln.first_called_at)
        assert [ln.placer_id for ln in called] == ["", "", "BHALL1"]  # called in their order
        # The HIS's snapshot of the session (SQM^S25 QUEUE -> SQR^S25) agrees: nothing to add.
        snapshot = his.query_queue(slot.doctor_code, slot.start_at.astimezone(TZ).date(),
                                   session_of(slot.start_at, TZ))
        assert sorted((ln.visit_number, ln.kind.value) for ln in snapshot.lines) == sorted(
            (ln.visit_number, "finished") for ln in queue.lines.values())
        assert {ln.placer_id for ln in snapshot.lines} == {"", "BHALL1"}
        with session_factory.begin() as session:
            assert reconcile_queue(session, snapshot, QueuePolicy(), dt.datetime.now(TZ)) == 0
    finally:
        to_adapter.close()
        his_server.shutdown()
        listener.shutdown()
