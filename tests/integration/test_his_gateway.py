"""MllpHisGateway against the HIS simulator over real MLLP sockets, as the use cases will use it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from adapter.config import Address, load_config
from adapter.his.gateway import MllpHisGateway
from adapter.his.mllp import MllpServer
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import CLINIC_CLOSED, SLOT_TAKEN, HisSimulator
from adapter.mappings import load_mappings
from adapter.models import LinkState, Slot
from adapter.ports import AppointmentRequest, HisUnavailable, PatientIdentity
from adapter.registration.jobs import sync_slots
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS as MAPPINGS_DIR

MAPPINGS = load_mappings(MAPPINGS_DIR)
TZ = load_config({}).tz
CHILD = PatientIdentity("王小明", "M", dt.date(2020, 6, 1), "RESIDENT_ID", "11010120200601003X")


@pytest.fixture
def simulator():
    return HisSimulator(MAPPINGS, tz=TZ, seed=7)


@pytest.fixture
def his_address(simulator):
    server = MllpServer("127.0.0.1", 0, simulator.handle, on_connect=simulator.on_connect)
    server.start()
    yield server.server_address
    server.shutdown()


def _gateway(address, profile: Hl7Profile | None = None, **client_options) -> MllpHisGateway:
    options = {"connect_timeout": 2, "ack_timeout": 5, "retries": 2, "backoff_initial": 0.01,
               "backoff_max": 0.05, **client_options}
    return MllpHisGateway(MllpClient(*address, **options), profile or Hl7Profile(), MAPPINGS, TZ)


def _open_slot(simulator, doctor: str | None = None):
    return next(
        s for s in sorted(simulator.slots.values(), key=lambda s: s.start_at)
        if s.status == "open" and s.available and (doctor is None or s.doctor_code == doctor)
    )


def _request(slot, patient_id: str, placer: str) -> AppointmentRequest:
    return AppointmentRequest(placer, slot.his_slot_id, patient_id, slot.department_code,
                              slot.doctor_code, slot.service_code, slot.start_at, slot.end_at)


def test_patient_is_found_or_added(his_address):
    his = _gateway(his_address)
    assert his.find_patient("RESIDENT_ID", CHILD.document_number) is None
    added = his.register_patient(CHILD)
    assert added.his_patient_id and added.name == CHILD.name
    assert added.birth_date == CHILD.birth_date and added.sex == "M"
    assert his.find_patient("RESIDENT_ID", CHILD.document_number) == added
    assert his.register_patient(CHILD).his_patient_id == added.his_patient_id


@pytest.mark.parametrize("cancel_message", ["SRM^S04", "SIU^S15"])
def test_book_and_cancel_keep_the_filler_appointment_id(simulator, his_address, cancel_message):
    his = _gateway(his_address, Hl7Profile(cancel_message=cancel_message))
    patient = his.register_patient(CHILD)
    slot = _open_slot(simulator)
    booked = his.book_appointment(_request(slot, patient.his_patient_id, "BK100"))
    assert booked.accepted and booked.filler_appointment_id
    assert simulator.slots[slot.his_slot_id].available == slot.available - 1
    cancelled = his.cancel_appointment("BK100", booked.filler_appointment_id, slot.his_slot_id)
    assert cancelled.accepted
    assert simulator.slots[slot.his_slot_id].available == slot.available


def test_his_refusals_come_back_with_their_reason(simulator, his_address):
    his = _gateway(his_address)
    patient = his.register_patient(CHILD)
    unknown = his.book_appointment(_request(_open_slot(simulator), "P999999", "BK1"))
    assert not unknown.accepted and unknown.error_code == "204"

    taken = _open_slot(simulator)
    simulator.take_slot_in_his(taken.his_slot_id)
    outcome = his.book_appointment(_request(taken, patient.his_patient_id, "BK2"))
    assert not outcome.accepted and outcome.error_code == SLOT_TAKEN

    slot = _open_slot(simulator)
    simulator.close_clinic(slot.doctor_code, slot.start_at.astimezone(TZ).date())
    closed = his.book_appointment(_request(slot, patient.his_patient_id, "BK3"))
    assert not closed.accepted and closed.error_code == CLINIC_CLOSED


def test_his_internal_errors_are_unknown_outcomes_not_refusals(simulator, his_address):
    his = _gateway(his_address)
    patient = his.register_patient(CHILD)
    simulator.ae_rate = 1.0
    with pytest.raises(HisUnavailable):
        his.book_appointment(_request(_open_slot(simulator), patient.his_patient_id, "BK4"))


def test_his_down_is_unavailable(simulator, his_address):
    simulator.refuse_connections = True
    with pytest.raises(HisUnavailable):
        _gateway(his_address, retries=1).query_slot_pool(dt.date.today(), dt.date.today())


def test_worker_syncs_the_whole_pool_into_the_database(
    simulator, his_address, engine, session_factory
):
    config = replace(load_config({}), his_mllp=Address(*his_address[:2]))
    runtime = Runtime(config, engine, session_factory, MAPPINGS, Hl7Profile())
    his = _gateway(his_address)
    runtime.his = his
    sync_slots(runtime)
    with session_factory() as session:
        count = session.scalar(select(func.count()).select_from(Slot))
        assert session.get(LinkState, "his").up is True
    in_window = [s for s in simulator.slots.values()
                 if s.start_at.astimezone(TZ).date()
                 <= dt.datetime.now(TZ).date() + dt.timedelta(days=7)]
    assert count == len(in_window) > 100

    simulator.refuse_connections = True
    his.close()
    runtime.his = _gateway(his_address, retries=0)
    sync_slots(runtime)
    with session_factory() as session:
        assert session.get(LinkState, "his").up is False
        assert session.scalar(select(func.count()).select_from(Slot)) == count


def test_two_workers_syncing_at_once_apply_the_pool_once_without_a_race(
    simulator, his_address, engine, session_factory, caplog
):
    """Every worker syncs the pool at its start: while one applies it (holding the sync's
    advisory lock), another skips instead of racing its inserts of the new slots."""
    from sqlalchemy import text

    from adapter.registration.jobs import SLOT_SYNC_LOCK

    if engine.dialect.name != "postgresql":
        pytest.skip("several workers are a PostgreSQL deployment")
    config = replace(load_config({}), his_mllp=Address(*his_address[:2]))
    runtime = Runtime(config, engine, session_factory, MAPPINGS, Hl7Profile())
    runtime.his = _gateway(his_address)
    with engine.connect() as other:  # the other worker, in the middle of its sync
        other.execute(text("BEGIN"))
        assert other.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SLOT_SYNC_LOCK})
        with caplog.at_level("INFO", logger="adapter.registration.jobs"):
            sync_slots(runtime)
        assert "another worker is applying the pool" in caplog.text
        with session_factory() as session:
            assert session.scalar(select(func.count()).select_from(Slot)) == 0
        other.execute(text("COMMIT"))
    sync_slots(runtime)  # its turn: the pool is applied
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Slot)) > 100


def test_a_check_in_reaches_the_his_as_adt_a10_once(simulator, his_address):
    from adapter.ports import ArrivalNotice

    his = _gateway(his_address)
    patient = his.register_patient(CHILD)
    slot = _open_slot(simulator)
    booked = his.book_appointment(_request(slot, patient.his_patient_id, "BK200"))
    heard = []
    simulator.arrival_listeners.append(heard.append)
    arrived_at = slot.start_at - dt.timedelta(minutes=20)
    notice = ArrivalNotice("BK200", booked.filler_appointment_id, patient.his_patient_id,
                           MAPPINGS.departments[slot.department_code].location, "", arrived_at)
    assert his.patient_arrived(notice).accepted
    assert his.patient_arrived(notice).accepted  # the outbox may deliver it twice: one arrival
    assert [n.placer_appointment_id for n in heard] == ["BK200"]
    kept = simulator.arrivals[booked.filler_appointment_id]
    assert kept.his_patient_id == patient.his_patient_id and kept.arrived_at == arrived_at
    unknown = his.patient_arrived(replace(notice, placer_appointment_id="BK404",
                                          filler_appointment_id="F404"))
    assert not unknown.accepted and unknown.error_code == "204"
