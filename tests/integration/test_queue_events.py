"""Queue events (SIU^S14, SCH-6 QUEUE) from the HIS through the real listener: stored, ACKed,
applied by the worker into the same queue the HIS has, whatever the order and repeats."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from adapter.config import Address, load_config
from adapter.his.header import parse_ack
from adapter.his.listener import make_listener
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator.clinic import clinic_day
from adapter.his.simulator.clinic_wire import build_queue_siu, play
from adapter.mappings import load_mappings
from adapter.models import InboundMessage, InboundStatus, QueueEventRecord
from adapter.queueing.line import build_queue
from adapter.queueing.policy import QueuePolicy
from adapter.queueing.service import load_queue
from adapter.runtime import Runtime
from adapter.worker.inbound import process_inbound
from tests.conftest import MAPPINGS as MAPPINGS_DIR
from tests.hl7_fixtures import hl7apy_valid

MAPPINGS = load_mappings(MAPPINGS_DIR)
HIS_SIDE = Hl7Profile(sending_application="HIS", sending_facility="DEMO_HOSPITAL",
                      his_application="FHA", his_facility="WALLET")
TZ = load_config({}).tz
DAY = dt.date(2030, 3, 7)


@pytest.fixture
def runtime(engine, session_factory):
    config = replace(load_config({}), mllp_listen=Address("127.0.0.1", 0), inbound_batch_size=500)
    return Runtime(config, engine, session_factory, MAPPINGS, Hl7Profile(slot_sync="both"))


@pytest.fixture
def send(runtime):
    server = make_listener(runtime.config, runtime.session_factory, runtime.profile)
    server.start()
    client = MllpClient(*server.server_address[:2], connect_timeout=2, ack_timeout=10)

    def send(text: str) -> str:
        return parse_ack(client.send(text.encode())).code

    yield send
    client.close()
    server.shutdown()


def test_a_queue_event_is_valid_v25_and_reads_back_as_sent():
    event = clinic_day(2, DAY, TZ).events[40]
    text = build_queue_siu(HIS_SIDE, replace(event, sequence=0), location="MZ-PED",
                           department_code="PED")
    hl7apy_valid(text)


def test_a_doctors_session_shuffled_and_resent_over_mllp_gives_the_his_queue(runtime, send):
    day = clinic_day(4, DAY, TZ)
    # The busiest doctor's morning, halfway through: people are still waiting.
    sessions = [[e for e in day.events if e.doctor_code == d.code and e.session == "am"]
                for d in day.doctors]
    halves = [s[: len(s) // 2] for s in sessions]
    events = max(halves, key=lambda s: len(build_queue(s).waiting()))
    doctor = events[0].doctor_code
    rng = random.Random(1)
    wire = events + rng.sample(events, 10)  # retransmissions: same MSH-10, same bytes
    rng.shuffle(wire)
    acks = []
    play(wire, lambda text: acks.append(send(text)), HIS_SIDE, location="MZ-PED")
    assert set(acks) == {"AA"}
    while process_inbound(runtime):
        pass
    with runtime.session_factory() as session:
        statuses = set(session.scalars(select(InboundMessage.status)))
        kept = session.scalar(select(func.count()).select_from(QueueEventRecord))
        queue = load_queue(session, doctor, DAY, "am", QueuePolicy())
    assert statuses == {InboundStatus.PROCESSED}
    assert kept == len(events)
    truth = build_queue(events)
    assert [ln.visit_number for ln in queue.waiting()] == \
        [ln.visit_number for ln in truth.waiting()]
    assert len(queue.waiting()) >= 3
    assert {v: ln.state for v, ln in queue.lines.items()} == \
        {v: ln.state for v, ln in truth.lines.items()}


def test_a_queue_event_without_a_known_status_is_refused_for_good(runtime, send):
    event = clinic_day(2, DAY, TZ).events[0]
    text = build_queue_siu(HIS_SIDE, event).replace("|Booked", "|Teleported")
    assert send(text) == "AA"  # stored first; the worker says why it cannot use it
    process_inbound(runtime)
    with runtime.session_factory() as session:
        message = session.scalars(select(InboundMessage)).one()
    assert message.status == InboundStatus.FAILED and "SCH-25" in message.error_text
