"""SIU schedule notifications: listener stores and ACKs, the worker applies them to the pool."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace

import pytest
from sqlalchemy import select

from adapter.config import Address, load_config
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator import wire
from adapter.mappings import load_mappings
from adapter.models import InboundMessage, InboundStatus, Slot
from adapter.ports import SlotRecord
from adapter.runtime import Runtime
from adapter.worker.inbound import process_inbound
from tests.conftest import MAPPINGS as MAPPINGS_DIR

MAPPINGS = load_mappings(MAPPINGS_DIR)
HIS_SIDE = Hl7Profile(sending_application="HIS", sending_facility="DEMO_HOSPITAL",
                      his_application="FHA", his_facility="WALLET")
TZ = load_config({}).tz


def _slot(n: int) -> SlotRecord:
    start = dt.datetime(2026, 12, 2, 8, 0, tzinfo=TZ) + dt.timedelta(minutes=15 * n)
    return SlotRecord(f"PED-D1-{n}", "PED", MAPPINGS.doctors_of("PED")[0].code,
                      MAPPINGS.doctors_of("PED")[0].service_code, start,
                      start + dt.timedelta(minutes=15), 1, 1,
                      MAPPINGS.fee_fen(MAPPINGS.doctors_of("PED")[0].service_code))


@pytest.fixture
def runtime(engine, session_factory):
    config = replace(load_config({}), mllp_listen=Address("127.0.0.1", 0))
    return Runtime(config, engine, session_factory, MAPPINGS, Hl7Profile(slot_sync="both"))


@pytest.fixture
def send(runtime):
    server = make_listener(runtime.config, runtime.session_factory, runtime.profile)
    server.start()
    client = MllpClient(*server.server_address[:2], connect_timeout=2, ack_timeout=10)

    def send(trigger: str, slot: SlotRecord, control_id: str) -> str:
        text = wire.build_siu(HIS_SIDE, control_id, dt.datetime.now(TZ), trigger=trigger,
                              slot=slot, location="MZ-PED")
        return parse_ack(client.send(text.encode())).code

    yield send
    client.close()
    server.shutdown()


def _pool(session_factory) -> dict[str, Slot]:
    with session_factory() as session:
        return {s.his_slot_id: s for s in session.scalars(select(Slot))}


def test_new_and_stopped_slots_reach_the_pool(runtime, send):
    assert send("S12", _slot(1), "N1") == "AA"
    assert send("S12", _slot(2), "N2") == "AA"
    assert process_inbound(runtime) == 2
    pool = _pool(runtime.session_factory)
    assert set(pool) == {"PED-D1-1", "PED-D1-2"}
    assert pool["PED-D1-1"].start_at == _slot(1).start_at and pool["PED-D1-1"].fee_fen > 0

    assert send("S15", _slot(1), "N3") == "AA"
    assert process_inbound(runtime) == 1
    assert _pool(runtime.session_factory)["PED-D1-1"].status == "closed"
    with runtime.session_factory() as session:
        statuses = session.scalars(select(InboundMessage.status)).all()
    assert set(statuses) == {InboundStatus.PROCESSED}


def test_a_notification_that_cannot_describe_a_slot_is_parked_for_admins(runtime, send):
    slot = replace(_slot(3), service_code="NO_SUCH_FEE")
    assert send("S12", slot, "N4") == "AA"
    process_inbound(runtime)
    with runtime.session_factory() as session:
        row = session.scalar(select(InboundMessage))
    assert row.status == InboundStatus.FAILED and "NO_SUCH_FEE" in row.error_text
    assert _pool(runtime.session_factory) == {}


@pytest.mark.postgres
def test_workers_racing_apply_each_message_once(runtime, send):
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("several workers are a PostgreSQL deployment")
    for n in range(40):
        assert send("S12", _slot(n), f"R{n}") == "AA"
    runtime = replace(runtime, config=replace(runtime.config, inbound_batch_size=3))

    def work() -> None:
        while process_inbound(runtime):
            pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with runtime.session_factory() as session:
        rows = session.scalars(select(InboundMessage)).all()
    assert all(r.status == InboundStatus.PROCESSED and r.attempts == 1 for r in rows)
    assert len(_pool(runtime.session_factory)) == 40
